"""Validation of untrusted request bodies, in one place (PRODUCT.md §10).

The bodies are declared once as msgspec Structs in ``modelreg.shared.bodies``; each
``parse_*`` here converts the decoded body with ``msgspec.convert``, adds the few checks a type
cannot express (names, refs, keys and paths by ``modelreg.shared.names``, "exactly one of"),
and returns a typed value. Every refusal is an InvalidInput whose message names the field.
"""

from __future__ import annotations

import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import msgspec

from modelreg.shared import bodies
from modelreg.shared.bodies import (
    MAX_GLOBS,
    MAX_ITEMS,
    MAX_REASON,
    MAX_TEXT,
    NO_NUL,
    RETENTION_DAYS,
    AliasBody,
    DeleteBody,
    GateBody,
    GcBody,
    HookBody,
    Metadata,
    MetricsBody,
    ModelCreate,
    ModelFields,
    ModelUpdate,
    RegistrationBody,
    RenameBody,
    RollbackBody,
    TransitionBody,
    VoteBody,
    VerifyBody,
    WatchBody,
)
from modelreg.shared.errors import InvalidInput
from modelreg.shared.names import (
    KEY_RE,
    METRIC_SOURCES,
    parse_dataset_ref,
    parse_ref,
    validate_alias,
    validate_key,
    validate_name,
    validate_relpath,
)
from modelreg.shared.timefmt import parse_time

from .ingest.filters import parse_globs

# -- msgspec's ValidationError as an InvalidInput naming the field --------------------------------

KEY_PATTERN = KEY_RE.pattern.encode("unicode_escape").decode()  # as msgspec's message shows it
# "Expected `str`, got `int` - at `$.runs[0].id`"; a map's key: "... - at `key` in `$.tags`".
_ERROR = re.compile(r"^(?P<msg>.*?)(?: - at `(?P<key>key` in `)?\$(?P<path>[^`]*)`)?$", re.DOTALL)
_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_TYPE_NAMES = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false",
               "array": "a list", "object": "an object"}
_GOT_NAMES = {**_TYPE_NAMES, "bool": "a boolean", "null": "null"}
_MISSING = object()


@dataclass
class _At:
    """Where in the body an error is: ``metrics[auc]`` for people, ``metrics[*]`` for the overrides."""

    field: str
    pattern: str
    value: Any
    type: Any

    def child(self, name: str | int, pattern: str, value: Any, tp: Any) -> _At:
        if isinstance(name, int) or pattern == "[*]":
            return _At(f"{self.field}[{name}]", self.pattern + pattern, value, tp)
        return _At(f"{self.field}.{name}" if self.field else name, f"{self.pattern}.{name}" if self.pattern else name,
                   value, tp)


def _convert(body: Any, tp: Any, messages: dict[str, str] | None = None, *, root: str = "",
             not_object: str = "body must be an object") -> Any:
    try:
        return msgspec.convert({} if body is None and not root else body, tp)
    except msgspec.ValidationError as exc:
        try:
            err = _invalid(str(exc), _At(root, root, body, tp), messages or {}, not_object)
        except InvalidInput as refused:  # validate_key's own wording
            err = refused
        except Exception:  # noqa: BLE001 - a message msgspec words in a new way is still a 400, never a 500
            err = InvalidInput(f"invalid {root or 'body'}: {exc}")
        raise err from None


def _invalid(text: str, at: _At, messages: dict[str, str], not_object: str) -> InvalidInput:
    m = _ERROR.match(text)
    msg, path = m["msg"], m["path"] or ""
    for seg in _SEGMENT.finditer(path):
        name, index = seg.group(1), seg.group(2)
        if index == "...":
            # msgspec does not say which entry of a map failed: find it by converting each value.
            value_type = typing.get_args(_member(at.type, dict))[1]
            for key, value in (at.value if isinstance(at.value, dict) else {}).items():
                try:
                    msgspec.convert(value, value_type)
                except msgspec.ValidationError as sub:
                    return _invalid(str(sub), at.child(key, "[*]", value, value_type), messages, not_object)
            return InvalidInput(f"{at.field or 'body'}: {msg}", {"field": at.field})
        at = _step(at, name if name is not None else int(index))
    if m["key"]:
        for key in at.value if isinstance(at.value, dict) else ():
            validate_key(key, _key_what(at))  # raises with the usual wording
        return InvalidInput(f"the keys of {at.field or 'body'} must be text", {"field": at.field})
    if msg.startswith(f"Expected `str` matching regex '{KEY_PATTERN}'") and isinstance(at.value, str):
        validate_key(at.value, _key_what(at))
    missing = re.match(r"Object missing required field `(.+)`$", msg)
    if missing:
        at = at.child(missing[1], missing[1], _MISSING, None)
    where = at.field or "body"
    template = messages.get(at.pattern)
    if template is not None and msg != "Number out of range":
        value = None if at.value is _MISSING else at.value
        return InvalidInput(template.format(field=where, value=value), {"field": where})
    return InvalidInput(_explain(msg, where, at, not_object), {"field": where})


def _key_what(at: _At) -> str:
    """What validate_key calls a key: "tags key", "metric key" (the wording before msgspec)."""
    return _KEY_WHAT.get(at.pattern, at.field or "body") + " key"


_KEY_WHAT = {"metrics": "metric", "metrics[#].key": "metric", "untag": "tag", "untag[#]": "tag",
             "run.hyperparameters": "run hyperparameters"}


def _explain(msg: str, where: str, at: _At, not_object: str) -> str:
    if msg.startswith("Object missing required field"):
        return f"{where} is required"
    if msg == "Number out of range":
        return f"{where} is too large"
    if m := re.match(r"Expected `(.+?)`, got `(\w+)`$", msg):
        expected = [t for t in m[1].split(" | ") if t != "null"] or ["null"]
        if not at.field and expected == ["object"]:
            return not_object
        if {"int", "float"} <= set(expected):
            expected.remove("int")
        if {"str", "bool", "float"} <= set(expected):
            names = ["a string, number or boolean"]
        else:
            names = [_TYPE_NAMES.get(t, t) for t in expected]
        wanted = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        return f"{where} must be {wanted}, not {_GOT_NAMES.get(m[2], m[2])}"
    if m := re.match(r"Expected `(\w+)` of length <= (\d+)$", msg):
        if m[1] == "str":
            return f"{where} is too long (at most {m[2]} characters)"
        return f"{where} has more than {m[2]} {'entries' if m[1] == 'object' else 'items'}"
    if m := re.match(r"Expected `(\w+)` of length >= (\d+)$", msg):
        return f"{where} must not be empty" if m[2] == "1" else f"{where} is too short (at least {m[2]})"
    if m := re.match(r"Expected `str` matching regex '(.*)'$", msg, re.DOTALL):
        nul = m[1] in (NO_NUL, NO_NUL.encode("unicode_escape").decode())  # msgspec shows the regex escaped
        return f"{where} contains NUL" if nul else f"{where} is not in the expected form"
    if m := re.match(r"Expected `(int|float)` ([<>]=?) (.+)$", msg):
        return f"{where} must be {_TYPE_NAMES[m[1]]} {m[2]} {m[3]}"
    if m := re.match(r"Invalid enum value (.+)$", msg):
        choices = [repr(c) for c in typing.get_args(_member(at.type, typing.Literal))]
        if choices:
            return f"{where} must be {', '.join(choices[:-1])} or {choices[-1]}, not {m[1]}"
        return f"{where} has an unknown value {m[1]}"
    return f"{where}: {msg[:1].lower()}{msg[1:]}"


def _strip(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _members(tp: Any) -> list[Any]:
    tp = _strip(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [_strip(t) for t in typing.get_args(tp)]
    return [tp]


def _member(tp: Any, kind: Any) -> Any:
    """The member of a (union) type that is a ``kind``: dict, list, Literal or a Struct."""
    for t in _members(tp):
        origin = typing.get_origin(t) or t
        if origin is kind or (kind is msgspec.Struct and isinstance(t, type) and issubclass(t, msgspec.Struct)):
            return t
    return None


def _step(at: _At, name: str | int) -> _At:
    if isinstance(name, int):
        tp = _member(at.type, list)
        value = at.value[name] if isinstance(at.value, list) and name < len(at.value) else _MISSING
        return at.child(name, "[#]", value, typing.get_args(tp)[0] if tp is not None else None)
    struct = _member(at.type, msgspec.Struct)
    hints = typing.get_type_hints(struct, include_extras=True) if struct is not None else {}
    value = at.value.get(name, _MISSING) if isinstance(at.value, dict) else _MISSING
    return at.child(name, name, value, hints.get(name))


# -- the parts bodies share -----------------------------------------------------------------------


def _scalars(value: dict[str, Any] | None) -> dict[str, str]:
    """{key: scalar} (keys checked by msgspec); numbers and booleans are kept as their text."""
    if not value:
        return {}
    return {key: raw if type(raw) is str else _scalar_text(raw) for key, raw in value.items()}


def _scalar_text(raw: bool | int | float | None) -> str:
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return repr(raw)


def finite(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value) if isinstance(value, str) else None
        except ValueError:
            value = None
        if value is None:
            raise InvalidInput(f"{what} must be a number")
    try:
        value = float(value)
    except OverflowError:
        raise InvalidInput(f"{what} is too large") from None
    if not math.isfinite(value):
        raise InvalidInput(f"{what} must be a finite number, not {value}")
    return value


def _reason(reason: str | None, required: str | None = None) -> str:
    reason = (reason or "").strip()
    if required and not reason:
        raise InvalidInput(required)
    return reason


_REASON = f"reason must be text of at most {MAX_REASON} characters"
_FORCE = "force must be true or false"


# -- metrics --------------------------------------------------------------------------------------


@dataclass
class MetricRecord:
    key: str
    value: float
    source: str = "offline"
    step: int | None = None
    dataset: str | None = None


_METRIC_MESSAGES = {"metrics[*]": "{field} must be a number", "metrics[#].value": "{field} must be a number",
                    "metrics[#].step": "{field} must be a non-negative integer"}


def parse_metrics(value: Any, default_source: str = "offline") -> list[MetricRecord]:
    """Either {"auc": 0.91} or [{"key", "value", "source"?, "step"?, "dataset"?}]."""
    if value is None:
        return []
    return _metric_records(_convert(value, bodies.Metrics, _METRIC_MESSAGES, root="metrics"), default_source)


def _metric_records(metrics: dict[str, Any] | list[bodies.Metric] | None, default_source: str) -> list[MetricRecord]:
    if not metrics:
        return []
    if isinstance(metrics, dict):
        _source(default_source)
        return [MetricRecord(key, _finite(value, key), default_source) for key, value in metrics.items()]
    records = []
    for item in metrics:
        source = _source(item.source or default_source)
        dataset = str(parse_dataset_ref(item.dataset)) if item.dataset is not None else None
        records.append(MetricRecord(item.key, _finite(item.value, item.key), source, item.step, dataset))
    return records


def _source(source: str) -> str:
    if source not in METRIC_SOURCES:
        raise InvalidInput(f"unknown metric source {source!r}: expected {', '.join(METRIC_SOURCES)}")
    return source


def _finite(value: float | str, key: str) -> float:
    return value if type(value) is float and math.isfinite(value) else finite(value, f"metric {key!r}")


def parse_record_metrics(body: Any) -> list[MetricRecord]:
    """POST .../metrics: {"metrics": ..., "source"?, "dataset"?} or a bare list of records."""
    if isinstance(body, list):
        body = {"metrics": body}
    if not isinstance(body, dict) or not body.get("metrics"):
        raise InvalidInput('body needs "metrics": {"auc": 0.91} or [{"key": "auc", "value": 0.91}, ...]')
    b = _convert(body, MetricsBody, _METRIC_MESSAGES)
    records = _metric_records(b.metrics, b.source or "offline")
    if b.dataset is not None:
        extra = str(parse_dataset_ref(b.dataset))
        for r in records:
            r.dataset = r.dataset or extra
    return records


# -- registration ---------------------------------------------------------------------------------


@dataclass
class FileRef:
    path: str
    sha256: str
    size: int


@dataclass
class Registration:
    path: str | None
    move: bool
    files: list[FileRef] | None
    description: str
    params: dict[str, str]
    tags: dict[str, str]
    metrics: list[MetricRecord]
    datasets: list[dict[str, Any]]
    run: dict[str, Any] | None
    parents: list[str]
    external_parents: list[str] = field(default_factory=list)
    source: str = "api"
    facts: dict[str, Any] = field(default_factory=dict)
    number: int | None = None  # the number asked for (RegistrationBody.number); None: the next
    renumber: bool = False  # a spent ``number`` takes the next one instead of a Conflict
    reference: str | None = None  # an external URI: a version without files (RegistrationBody.reference)
    signature: str | None = None  # a signature bundle's blob (RegistrationBody.signature; issue 12)
    signature_path: str | None = None  # or its file on the daemon's machine


_METADATA_MESSAGES = {**_METRIC_MESSAGES, "datasets[#].relation": "{field} must be trained_on or evaluated_on"}
_REGISTRATION_MESSAGES = {
    **_METADATA_MESSAGES,
    "mode": "mode must be 'copy' or 'move', not {value!r}",
    "source": "source must be 'cli', 'api' or 'mlflow'",
    "number": "number must be a version number (an integer from 1)",
    "external_parents[#]": "{field} must be text of at most 400 characters",
    "files[#].sha256": "{field} must be 64 lower-case hex digits",
    "files[#].size": "{field} must be a non-negative integer",
    "signature": "signature must be the sha256 (64 lower-case hex digits) of a bundle uploaded to /v1/blobs",
}


def parse_registration(body: Any) -> Registration:
    """A registration request: where the files are (path or uploaded blobs) plus metadata."""
    b: RegistrationBody = _convert(body, RegistrationBody, _REGISTRATION_MESSAGES)
    if [b.path, b.files, b.reference].count(None) != 2:
        raise InvalidInput("give exactly one of 'path' (a file or folder on the daemon's machine), "
                           "'files' (blobs uploaded to /v1/blobs) or 'reference' (an external URI such as s3://…)")
    if b.path is not None and not os.path.isabs(b.path):
        raise InvalidInput(f"path {b.path!r} must be absolute (the daemon has its own working directory)")
    reg = _registration(b, b.source)
    reg.path, reg.move = b.path, b.mode == "move"
    reg.files = _file_refs(b.files) if b.files is not None else None
    reg.number, reg.renumber = b.number, b.renumber
    if b.reference is not None:
        reg.reference = reg.source = _reference(b.reference)
    elif b.source_uri is not None and b.source_uri.strip():
        reg.source = b.source_uri.strip()
    reg.external_parents = list(dict.fromkeys(p for p in b.external_parents or () if p.strip()))
    reg.signature, reg.signature_path = _signature(b)
    return reg


def _signature(b: RegistrationBody) -> tuple[str | None, str | None]:
    """A signature bundle given with the version: at most one, never for a version without files."""
    if b.signature is not None and b.signature_path is not None:
        raise InvalidInput("give one signature bundle: 'signature' (an uploaded blob) or 'signature_path'")
    if (b.signature or b.signature_path) and b.reference is not None:
        raise InvalidInput("a reference version has no files a signature could be verified against",
                           {"field": "signature"})
    if b.signature_path is not None and not os.path.isabs(b.signature_path):
        raise InvalidInput(f"signature_path {b.signature_path!r} must be absolute (the daemon has its own working "
                           "directory)", {"field": "signature_path"})
    return b.signature, b.signature_path


def _file_refs(files: list[bodies.FileEntry]) -> list[FileRef]:
    refs, seen = [], set()
    for f in files:
        rel = validate_relpath(f.path)
        if rel in seen:
            raise InvalidInput(f"files lists {rel!r} twice")
        seen.add(rel)
        refs.append(FileRef(rel, f.sha256, f.size))
    if not refs:
        raise InvalidInput("files is empty: a version needs at least one file")
    return refs


_EXTERNAL_URI = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]+)://\S+$", re.IGNORECASE)


def _reference(uri: str) -> str:
    """An external URI (``s3://bucket/key``, ``gs://…``, ``https://…``): never a local path."""
    m = _EXTERNAL_URI.match(uri.strip())
    if m is None or m["scheme"].lower() == "file":
        raise InvalidInput(f"reference {uri[:200]!r} must be an external URI such as s3://bucket/model "
                           "(a local file is registered with 'path')", {"field": "reference"})
    return uri.strip()


def parse_metadata(body: Any, source: str) -> Registration:
    """Description, params, tags, metrics, datasets, run and parent (also a drop's sidecar)."""
    return _registration(_convert(body, Metadata, _METADATA_MESSAGES), source)


def _registration(meta: Metadata, source: str) -> Registration:
    datasets = []
    for ds in meta.datasets or ():
        if isinstance(ds, str):
            ds = bodies.Dataset(ref=ds)
        ref = ds.ref or (f"{ds.name}@{ds.version}" if ds.name else None)
        datasets.append({"ref": str(parse_dataset_ref(ref)), "relation": ds.relation,
                         "digest": ds.digest or None, "uri": ds.uri or None})
    run = meta.run
    if run is not None:
        if isinstance(run, str):
            run = bodies.Run(id=run)
        run = {"id": run.id, "experiment": run.experiment or None,
               "started_at": _when(run.started_at, "run.started_at"), "ended_at": _when(run.ended_at, "run.ended_at"),
               "hardware": run.hardware or None, "code_revision": run.code_revision or None,
               "hyperparameters": _scalars(run.hyperparameters)}
    parents = meta.parent
    parents = [parents] if isinstance(parents, str) else (parents or [])
    for p in parents:
        parse_ref(p)
    return Registration(
        path=None, move=False, files=None,
        description=meta.description or "",
        params=_scalars(meta.params),
        tags=_scalars(meta.tags),
        metrics=_metric_records(meta.metrics, "offline"),
        datasets=datasets, run=run, parents=parents, source=source,
    )


def _when(value: str | float | None, what: str) -> float | None:
    if isinstance(value, str):
        return parse_time(value)
    return None if value is None else finite(value, what)


# -- models and versions --------------------------------------------------------------------------


_MODEL_MESSAGES = {"metric_directions[*]": "{field} must be 'higher' or 'lower'"}
_UPDATE_MESSAGES = {**_MODEL_MESSAGES, "untag": "untag must be a list of tag keys",
                    "untag[#]": "untag must be a list of tag keys"}


def parse_model(body: Any) -> tuple[str, dict[str, str], dict[str, str]]:
    """Description, tags and metric directions of a model (a create or an update)."""
    return _model_fields(_convert(body, ModelFields, _MODEL_MESSAGES))


def _model_fields(m: ModelFields) -> tuple[str, dict[str, str], dict[str, str]]:
    return m.description or "", _scalars(m.tags), dict(m.metric_directions or {})


@dataclass
class NewModel:
    name: str
    description: str
    tags: dict[str, str]
    directions: dict[str, str]


def parse_model_create(body: Any) -> NewModel:
    """POST /v1/models: a valid name plus description, tags and metric directions."""
    m: ModelCreate = _convert(body, ModelCreate, _MODEL_MESSAGES)
    name = validate_name(m.name)
    return NewModel(name, *_model_fields(m))


@dataclass
class Change:
    """A PATCH of a model or a version. ``fields`` are the keys the body gave (the event says them)."""

    fields: list[str]
    description: str
    tags: dict[str, str]
    directions: dict[str, str]
    untag: list[str]

    def gives(self, name: str) -> bool:
        return name in self.fields


def parse_model_update(body: Any) -> Change:
    """PATCH /v1/models/{name}: set description / metric directions, merge tags, remove ``untag`` keys."""
    m: ModelUpdate = _convert(body, ModelUpdate, _UPDATE_MESSAGES)
    description, tags, directions = _model_fields(m)
    untag = [m.untag] if isinstance(m.untag, str) else (m.untag or [])
    keys = sorted(set(untag))
    both = sorted(set(keys) & set(tags))
    if both:
        raise InvalidInput(f"tag {both[0]!r} is both set and removed in one update")
    return Change(sorted(body or {}), description, tags, directions, keys)


def parse_version_update(body: Any) -> Change:
    """PATCH /v1/models/{name}/versions/{selector}: like a model's, without metric directions."""
    change = parse_model_update(body)
    if change.gives("metric_directions"):
        raise InvalidInput("metric_directions belong to the model: update NAME, not NAME@N")
    return change


_OPTION_MESSAGES = {"reason": _REASON, "force": _FORCE}


def parse_rename(body: Any) -> tuple[str, str]:
    """POST /v1/models/{name}/rename: (new name, reason)."""
    not_object = 'body must be an object: {"name": "NEW"}'
    if body is None:
        raise InvalidInput(not_object)
    b: RenameBody = _convert(body, RenameBody, _OPTION_MESSAGES, not_object=not_object)
    return validate_name(b.name, "new model name"), _reason(b.reason)


def parse_delete(body: Any) -> tuple[str, bool]:
    """DELETE a version or a model: (reason, force); the reason is required (audited)."""
    b: DeleteBody = _convert(body, DeleteBody, _OPTION_MESSAGES)
    return _reason(b.reason, "deleting needs a reason (recorded in the audit log)"), b.force


# -- lifecycle ------------------------------------------------------------------------------------


@dataclass
class TransitionRequest:
    to: str
    reason: str
    force: bool


def parse_transition(body: Any) -> TransitionRequest:
    """POST .../transition: target stage (default production), reason, force."""
    b: TransitionBody = _convert(body, TransitionBody, _OPTION_MESSAGES)
    return TransitionRequest(b.to or "production", b.reason or "", b.force)


def parse_rollback(body: Any) -> tuple[int | None, str]:
    """POST /v1/models/{name}/rollback: (target version number or None, reason)."""
    b: RollbackBody = _convert(body, RollbackBody, {"to": "to must be a version number", "reason": _REASON})
    return b.to, b.reason or ""


def parse_alias(body: Any) -> AliasBody:
    """PUT /v1/models/{name}/aliases/{alias}: the version number the alias points at, and an
    override of the alias's gates (force, with its reason)."""
    return _convert(body, AliasBody, {"version": "version must be a version number",
                                      "force": "force must be true or false"})


def parse_vote(body: Any) -> str:
    """POST /v1/requests/{id}/approve|reject: the reason, which a vote must give."""
    b: VoteBody = _convert(body or None, VoteBody, {"reason": _REASON})
    reason = (b.reason or "").strip()
    if not reason:
        raise InvalidInput("an approval or rejection needs a reason (--reason): votes are audited",
                           {"field": "reason"})
    return reason


# -- gates, hooks, watches, maintenance -----------------------------------------------------------


@dataclass
class GateRequest:
    stage: str | None  # None for an alias gate
    rule: str | None  # text: gates.parse_rule reads the grammar
    timeout: float | None
    model: str | None
    alias: str | None = None  # None for a stage gate


def parse_gate(body: Any) -> GateRequest:
    """POST /v1/gates: stage or alias (exactly one), rule, timeout, model (absent: registry-wide)."""
    b: GateBody = _convert(body, GateBody, {
        "stage": "stage must be staging or production: gates guard the way into them",
        "rule": "a gate rule is a non-empty line of text",
        "timeout": "timeout must be a number of seconds between 0 and 86400",
        "alias": "alias must be an alias name, e.g. champion",
    })
    if (b.stage is None) == (b.alias is None):
        raise InvalidInput("a gate guards a stage or an alias: give exactly one of stage "
                           "(staging or production) and alias", {"field": "stage" if b.stage is None else "alias"})
    alias = validate_alias(b.alias) if b.alias is not None else None
    return GateRequest(b.stage, b.rule, b.timeout, validate_name(b.model) if b.model else None, alias)


@dataclass
class HookRequest:
    kind: str
    target: str  # stripped
    events: str  # "" for every event
    model: str | None
    stage: str | None
    secret: str | None  # None (or empty) for a webhook: the service makes one


def parse_hook(body: Any) -> HookRequest:
    """POST /v1/hooks: a webhook (http(s) URL) or a command, filtered by event kinds, model, stage."""
    target_message = "target must be a URL (webhook) or a shell command (command)"
    b: HookBody = _convert(body, HookBody, {
        "kind": "kind must be webhook or command",
        "target": target_message,
        "events": "events must be a comma-separated list of kinds or globs, e.g. 'stage.*,drop.failed'",
        "stage": "stage must be none, staging, production or archived",
        "secret": "secret must be text",
    })
    target = b.target.strip()
    if not target:
        raise InvalidInput(target_message)
    if b.kind == "webhook":
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(f"webhook target {b.target!r} must be an http(s) URL")
    if b.model:
        validate_name(b.model)
    return HookRequest(b.kind, target, b.events or "", b.model, b.stage, b.secret)


@dataclass
class WatchRequest:
    path: str  # absolute
    model: str | None
    mode: str
    settle: float
    poll: bool | None
    include: list[str]
    exclude: list[str]


_GLOBS = f"{{field}} must be a list of at most {MAX_GLOBS} glob patterns (text)"
_GLOB = "{field} must be a glob pattern (text) for an entry name"


def parse_watch(body: Any) -> WatchRequest:
    """POST /v1/watches: folder, model, mode, settle, poll, include/exclude globs."""
    b: WatchBody = _convert(body, WatchBody, {
        "path": "path must be an absolute folder path",
        "mode": "mode must be move or copy",
        "settle": "settle must be between 0 and 3600 seconds",
        "poll": "poll must be true, false or absent (absent: decided from the filesystem type)",
        "include": _GLOBS, "include[#]": _GLOB, "exclude": _GLOBS, "exclude[#]": _GLOB,
    })
    if not os.path.isabs(b.path):
        raise InvalidInput("path must be an absolute folder path")
    if b.model is not None:
        validate_name(b.model)
    return WatchRequest(b.path, b.model, b.mode, b.settle, b.poll,
                        list(parse_globs(b.include, "include")), list(parse_globs(b.exclude, "exclude")))


def parse_gc(body: Any) -> tuple[bool, float]:
    """POST /v1/gc: (dry_run, retention_days); a dry run unless told otherwise."""
    b: GcBody = _convert(body or None, GcBody, {
        "dry_run": "dry_run must be true or false",
        "retention_days": f"retention_days must be a number of at least {RETENTION_DAYS}",
    })
    return b.dry_run, b.retention_days


def parse_verify(body: Any) -> str | None:
    """POST /v1/verify: the one version to re-hash (a ref), or None for the whole store."""
    b: VerifyBody = _convert(body or None, VerifyBody, {"ref": "ref must be a string such as fraud@3"})
    return b.ref
