"""Request bodies of the HTTP API, declared once (issue 9 item 3; PRODUCT.md §10 for the limits).

Each body is a msgspec Struct: ``msgspec.convert(decoded_body, RegistrationBody)`` checks the
types, the lengths of text, lists and maps, and the closed sets of values in one pass, without
an ``isinstance`` chain. What a type cannot say (names, refs, keys and relative paths follow
``modelreg.shared.names``; "exactly one of path or files") is checked by the daemon's
``payloads.parse_*`` functions after the conversion, which also turn msgspec's
``ValidationError`` into an ``InvalidInput`` that names the field.

Unknown fields are ignored (clients send more than one daemon version knows). Fields that may
be absent default to ``None``; the parse functions supply the documented defaults.
"""

from typing import Annotated, Literal, Union

from msgspec import Meta, Struct

from .names import KEY_RE

MAX_TEXT = 10_000  # a description, a param or tag value
MAX_ITEMS = 10_000  # entries of any list or map in a body
MAX_PATH = 4096
MAX_REASON = 2000  # an audited reason (the daemon's lifecycle.MAX_REASON)
MAX_HOOK_TARGET = 4000
MAX_GLOBS = 100  # a watch's include/exclude list (the daemon's ingest.filters.MAX_GLOBS)
MAX_INT = 2**63 - 1  # SQLite integers are 64-bit signed
RETENTION_DAYS = 90  # gc's default and least retention (the daemon's gc.RETENTION_DAYS)
DEFAULT_SETTLE = 3.0  # seconds a drop must stay unchanged (the daemon's ingest.manager.DEFAULT_SETTLE)
NO_NUL = "^[^\x00]*$"


def _text(limit: int, min_length: int = 0) -> object:
    return Annotated[str, Meta(min_length=min_length or None, max_length=limit, pattern=NO_NUL)]


Text = _text(MAX_TEXT)
Short = _text(200)
PathText = _text(MAX_PATH)
Reason = _text(MAX_REASON)
Hardware = _text(500)
RunId = _text(200, min_length=1)
DatasetText = _text(400)
Events = _text(1000)
HookTarget = _text(MAX_HOOK_TARGET)
Secret = _text(500)
# A metric, param or tag key (names.KEY_RE; names.validate_key words the refusal).
Key = Annotated[str, Meta(pattern=KEY_RE.pattern)]
# A param, tag or hyperparameter value: kept as its text (true/false, repr of a number).
Scalar = Union[Text, bool, int, float, None]
ScalarMap = Annotated[dict[Key, Scalar], Meta(max_length=MAX_ITEMS)]
Sha256 = Annotated[str, Meta(pattern="^[0-9a-f]{64}$")]
Size = Annotated[int, Meta(ge=0, le=MAX_INT)]
VersionNumber = Annotated[int, Meta(ge=1, le=MAX_INT)]
# A number as sent: an int stays an int, a float a float (event data echoes it unchanged).
Retention = Union[Annotated[int, Meta(ge=RETENTION_DAYS)], Annotated[float, Meta(ge=RETENTION_DAYS)]]


# -- registration and its metadata (also a drop's modelreg.toml sidecar) ------------------------


class Metric(Struct):
    key: Key
    value: Union[float, str]  # a number, or its text ("0.91"); must be finite
    source: Union[str, None] = None  # one of names.METRIC_SOURCES; absent: the request's default
    step: Union[Annotated[int, Meta(ge=0, lt=2**62)], None] = None
    dataset: Union[str, None] = None  # NAME@VERSION


# {"auc": 0.91} or [{"key": "auc", "value": 0.91, ...}, ...]
Metrics = Union[Annotated[dict[Key, Union[float, str]], Meta(max_length=MAX_ITEMS)],
                Annotated[list[Metric], Meta(max_length=MAX_ITEMS)]]


class Dataset(Struct):
    ref: Union[str, None] = None  # NAME@VERSION, or name + version
    name: Union[str, None] = None
    version: Union[str, int, None] = None
    relation: Literal["trained_on", "evaluated_on"] = "trained_on"
    digest: Union[Short, None] = None
    uri: Union[PathText, None] = None


class Run(Struct):
    id: RunId
    experiment: Union[Short, None] = None
    started_at: Union[str, int, float, None] = None  # ISO 8601 text or Unix seconds
    ended_at: Union[str, int, float, None] = None
    hardware: Union[Hardware, None] = None
    code_revision: Union[Short, None] = None
    hyperparameters: Union[ScalarMap, None] = None


class FileEntry(Struct):
    """One blob uploaded to /v1/blobs, placed at ``path`` in the version."""

    path: str  # relative, posix (names.validate_relpath)
    sha256: Sha256
    size: Size


class Metadata(Struct):
    """What a version says about itself: a registration's metadata, or a drop's sidecar."""

    description: Union[Text, None] = None
    params: Union[ScalarMap, None] = None
    tags: Union[ScalarMap, None] = None
    metrics: Union[Metrics, None] = None
    datasets: Union[Annotated[list[Union[DatasetText, Dataset]], Meta(max_length=MAX_ITEMS)], None] = None
    run: Union[RunId, Run, None] = None  # a run id, or the run
    parent: Union[str, Annotated[list[str], Meta(max_length=MAX_ITEMS)], None] = None  # refs


class RegistrationBody(Metadata):
    """POST /v1/models/{name}/versions: exactly one of ``path`` or ``files``, plus metadata."""

    path: Union[PathText, None] = None  # absolute, on the daemon's machine
    files: Union[Annotated[list[FileEntry], Meta(max_length=MAX_ITEMS)], None] = None
    mode: Literal["copy", "move"] = "copy"
    source: Literal["cli", "api", "mlflow"] = "api"  # "mlflow": copied by `modelreg import mlflow`
    # Ask for this version number (an import keeping MLflow's numbers): honoured when it is at
    # least the model's next number, refused (409) below it, since numbers are never reused;
    # with ``renumber`` a spent number takes the next one instead (the reply's version says which).
    number: Union[Annotated[int, Meta(ge=1, lt=MAX_INT)], None] = None
    renumber: bool = False
    # Instead of path or files: an external URI (s3://…) the version only points at, as MLflow
    # registers one. No files, ready at once; the URI is the version's source.
    reference: Union[PathText, None] = None
    # The source as the registry it was copied from names it (MLflow's ``runs:/…/model``,
    # ``models:/m-…``): kept verbatim as the version's source instead of ``source``.
    source_uri: Union[PathText, None] = None
    # Parents outside this registry (``derived_from``), e.g. ``mlflow:<URL>/<name>/<version>``.
    external_parents: Union[Annotated[list[DatasetText], Meta(max_length=100)], None] = None
    # An OpenSSF Model Signing bundle given with the version (issue 12): the sha256 of a blob
    # uploaded to /v1/blobs, or a file on the daemon's machine (absolute); verified, never ignored.
    signature: Union[Sha256, None] = None
    signature_path: Union[PathText, None] = None


class MetricsBody(Struct):
    """POST /v1/models/{name}/versions/{selector}/metrics (a bare list is ``{"metrics": list}``)."""

    metrics: Union[Metrics, None] = None
    source: Union[str, None] = None  # default source of the records
    dataset: Union[str, None] = None  # default dataset of the records


# -- models and versions --------------------------------------------------------------------------


Directions = Annotated[dict[Key, Literal["higher", "lower"]], Meta(max_length=MAX_ITEMS)]
KeyList = Union[Key, Annotated[list[Key], Meta(max_length=MAX_ITEMS)]]


class ModelFields(Struct):
    description: Union[Text, None] = None
    tags: Union[ScalarMap, None] = None
    metric_directions: Union[Directions, None] = None


class ModelCreate(ModelFields):
    """POST /v1/models."""

    name: Union[str, None] = None  # names.validate_name


class ModelUpdate(ModelFields):
    """PATCH /v1/models/{name} and PATCH /v1/models/{name}/versions/{selector} (no directions)."""

    untag: Union[KeyList, None] = None  # tag keys to remove


class RenameBody(Struct):
    """POST /v1/models/{name}/rename."""

    name: Union[str, None] = None  # the new name
    reason: Union[Reason, None] = None


class DeleteBody(Struct):
    """DELETE /v1/models/{name} and DELETE /v1/models/{name}/versions/{selector}."""

    reason: Union[Reason, None] = None  # required (audited)
    force: bool = False


# -- lifecycle ------------------------------------------------------------------------------------


class TransitionBody(Struct):
    """POST /v1/models/{name}/versions/{selector}/transition."""

    to: Union[str, None] = None  # a stage; absent: production
    reason: Union[Reason, None] = None
    force: bool = False


class RollbackBody(Struct):
    """POST /v1/models/{name}/rollback."""

    to: Union[VersionNumber, None] = None  # absent: the previous production version
    reason: Union[Reason, None] = None


class AliasBody(Struct):
    """PUT /v1/models/{name}/aliases/{alias}."""

    version: VersionNumber
    reason: Union[Reason, None] = None
    force: bool = False  # past the alias's failed gates (needs a reason; audited)


class VoteBody(Struct):
    """POST /v1/requests/{id}/approve and .../reject (issue 12): a vote needs its reason."""

    reason: Union[Reason, None] = None


class GateBody(Struct):
    """POST /v1/gates: exactly one of ``stage`` and ``alias`` is the target."""

    stage: Union[Literal["staging", "production"], None] = None
    rule: Union[str, None] = None  # the gate grammar (daemon gates.parse_rule)
    timeout: Union[Annotated[int, Meta(gt=0, le=86400)], Annotated[float, Meta(gt=0, le=86400)], None] = None
    model: Union[str, None] = None  # absent: registry-wide
    alias: Union[str, None] = None  # the gate guards moving this alias (names.validate_alias)


class HookBody(Struct):
    """POST /v1/hooks."""

    kind: Literal["webhook", "command"]
    target: HookTarget  # an http(s) URL or a shell command
    events: Union[Events, None] = None  # comma-separated kinds or globs
    model: Union[str, None] = None
    stage: Union[Literal["", "none", "staging", "production", "archived"], None] = None
    secret: Union[Secret, None] = None  # absent for a webhook: the daemon makes one


# -- drop folders, maintenance --------------------------------------------------------------------


Globs = Union[str, Annotated[list[str], Meta(max_length=MAX_GLOBS)]]


class WatchBody(Struct):
    """POST /v1/watches."""

    path: PathText  # absolute
    model: Union[str, None] = None
    mode: Literal["move", "copy"] = "move"
    settle: Union[Annotated[int, Meta(ge=0, le=3600)], Annotated[float, Meta(ge=0, le=3600)]] = DEFAULT_SETTLE
    poll: Union[bool, None] = None  # absent: decided from the filesystem type
    include: Union[Globs, None] = None
    exclude: Union[Globs, None] = None


class GcBody(Struct):
    """POST /v1/gc."""

    dry_run: bool = True
    retention_days: Retention = RETENTION_DAYS


class VerifyBody(Struct):
    """POST /v1/verify."""

    ref: Union[DatasetText, None] = None  # one version, or absent for the whole store
