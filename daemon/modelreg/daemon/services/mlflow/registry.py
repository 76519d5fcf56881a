"""MLflow's model registry over ours: the policy behind ``api/mlflow/registry.py`` (issue 10).

There is one registry. An MLflow registered model IS a modelreg model and a model version IS
a version: everything MLflow writes goes through the same services as ``/v1`` (catalog,
changes, lifecycle with its gates, the registrar), so it shows in ``modelreg versions``, the
TUI, the gates and the audit log. Where the two disagree, ours holds and this says so:

- Names: an MLflow name our rules refuse (``names.validate_name``: 1-128 of A-Z a-z 0-9 . _ -)
  is INVALID_PARAMETER_VALUE with our message. Aliases likewise (``names.validate_alias``).
  Our names are unique without regard to case, so ``get`` of ``FRAUD`` finds ``fraud`` and
  ``Fraud`` cannot be created beside it; search filters compare case-sensitively, as MLflow.
- Stages: ``None``/``Staging``/``Production``/``Archived`` (any case) are ours. A transition
  goes through ``Lifecycle.transition``, so the gates run and a refusal is PERMISSION_DENIED
  naming the failing rule. At most one version is in production: promoting one archives the
  previous production version even with ``archive_existing_versions=false``. With ``true``
  the other versions in the target stage are archived too (for Staging, one by one after the
  promotion). A version cannot go back to ``None`` (ours: none is where a version starts).
- Deletes are ours (soft): the version or model leaves every MLflow answer and its number is
  never reused. Deleting a production version or a rollback target is refused (our rule;
  MLflow has no force), as is deleting a model with a version in production or staging.
- model-versions/create resolves the source: a registry version (``models:/NAME/N``, as
  ``copy_model_version`` sends it) and files the tracking service stores (``models:/m-…``,
  ``runs:/…``, ``mlflow-artifacts:/…``) become an upload-mode version of those blobs; an external URI (``s3://``, ``gs://``, ``https://``, ``dbfs:/`` … any scheme
  but file) a reference version without files, ready at once, source kept verbatim; a local
  path (``/abs`` or ``file://``) is read only inside a folder of MODELREG_MLFLOW_ROOTS, after
  resolving symlinks, never from anywhere else (MLflow's CVE-2023-1177 class of bug), as a
  copying registration that stays PENDING_REGISTRATION until its job ends.
- A version's MLflow run (``run_id``, or the logged model's source run) is its lineage run: the
  run's params become its hyperparameters (and the version's params, which gates read), its
  latest metrics the version's offline metrics, its experiment the run's experiment. A
  version's facts come from its files, so ``run_link`` is kept for reference versions only.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from concurrent.futures import Executor
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from modelreg.shared.errors import Conflict, GateFailed, InvalidInput, NotFound
from modelreg.shared.names import validate_key, validate_name

from ...payloads import FileRef, MetricRecord, Registration
from ...store import Store
from ...store.records import MlflowModel, MlflowPage, MlflowVersion, RunFacts
from ..identity import Identity
from ..lifecycle import Lifecycle
from ..registry import Registrar
from .. import catalog, changes
from . import filters

STAGE_NAMES = {"none": "None", "staging": "Staging", "production": "Production", "archived": "Archived"}
STATUS_NAMES = {"ready": "READY", "pending": "PENDING_REGISTRATION", "failed": "FAILED_REGISTRATION"}
REGISTRY_FOLDER = "_registry"  # mlflow-artifacts:/_registry/<model>/<version>: a version's own files
MAX_TAG_VALUE = 100_000  # MLflow's MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH
MAX_SOURCE = 8000
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")  # two letters at least: C:\ is a drive, not a scheme
_DOCS = " See the API docs for more information about request parameters."
REASON = "through the MLflow API"
FACTS_KEY = "mlflow_registration"  # run_link / model_id a create_model_version gave (the sniffer owns "mlflow")
_LOGGED = re.compile(r"^models:/m-[0-9a-f]{1,64}$")  # a logged model (MLflow 3), not a registry URI
_REGISTRY_URI = re.compile(r"^models:/([A-Za-z0-9][A-Za-z0-9._-]{0,127})(?:/([A-Za-z0-9]+)|@([a-z][a-z0-9_-]{0,63}))/?$")


class Tracking(Protocol):
    """What the tracking service (``services/mlflow/tracking.py``) offers the registry."""

    async def files_at(self, source: str) -> list[tuple[str, str, int]] | None: ...

    async def run_facts(self, run_id: str) -> RunFacts | None: ...


def missing(param: str) -> InvalidInput:
    return InvalidInput(f"Missing value for required parameter '{param}'.{_DOCS}")


def required(params: dict[str, Any], key: str) -> str:
    value = params.get(key)
    if value is None or value == "":
        raise missing(key)
    if not isinstance(value, str):
        raise InvalidInput(f"Invalid value {value!r} for parameter '{key}' supplied. Hint: Value was of type "
                           f"'{type(value).__name__}'.{_DOCS}")
    return value


def optional(params: dict[str, Any], key: str) -> str | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"Invalid value {value!r} for parameter '{key}' supplied. Hint: Value was of type "
                           f"'{type(value).__name__}'.{_DOCS}")
    return value


def model_name(name: str, param: str = "name") -> str:
    """MLflow's checks of a model name, then ours."""
    if not name.strip():
        raise missing(param)
    if "/" in name or ":" in name:
        raise InvalidInput(f"Invalid model name '{name}'. Names cannot contain '/' or ':'.")
    return validate_name(name)


def version_number(value: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"Parameter 'version' must be an integer, got '{value}'.") from None
    if not 1 <= number < 2**62:
        raise NotFound(f"Model Version (version={value}) not found")
    return number


def stage_of(value: Any) -> str:
    """An MLflow stage name (any case) as ours."""
    ours = value.lower() if isinstance(value, str) else ""
    if ours not in STAGE_NAMES:
        raise InvalidInput(f"Invalid Model Version stage: {value}. Value must be one of None, Staging, Production, "
                           "Archived.")
    return ours


def tags_of(items: Any, what: str = "tags") -> dict[str, str]:
    """MLflow's ``[{key, value}]`` as our tags, keys checked by our rules."""
    if items is None:
        return {}
    if not isinstance(items, list):
        raise InvalidInput(f"Invalid value {items!r} for parameter '{what}' supplied.{_DOCS}")
    out: dict[str, str] = {}
    for item in items:
        if not isinstance(item, dict):
            raise InvalidInput(f"Invalid value {item!r} for parameter '{what}' supplied.{_DOCS}")
        key, value = item.get("key"), item.get("value", "")
        out[tag_key(key)] = tag_value(value)
    return out


def tag_key(key: Any) -> str:
    if key is None or key == "":
        raise missing("key")
    return validate_key(key, "tag key")


def tag_value(value: Any) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"Invalid value {value!r} for parameter 'value' supplied.{_DOCS}")
    if len(value) > MAX_TAG_VALUE:
        raise InvalidInput(f"'value' exceeds the maximum length of {MAX_TAG_VALUE} characters")
    return value


class MlflowRegistry:
    def __init__(self, store: Store, registrar: Registrar, lifecycle: Lifecycle, pool: Executor, home: Path,
                 roots: tuple[Path, ...], tracking: Tracking | None = None) -> None:
        self.store, self.registrar, self.lifecycle, self.pool, self.home = store, registrar, lifecycle, pool, home
        self.roots = roots
        self.tracking = tracking

    # -- registered models ----------------------------------------------------------------------

    async def create_model(self, params: dict[str, Any], actor: str) -> MlflowModel:
        name = model_name(required(params, "name"))
        body = {"name": name, "description": optional(params, "description") or "",
                "tags": tags_of(params.get("tags"))}
        try:
            await catalog.create_model(self.store, body, actor)
        except Conflict:
            raise Conflict(f"Registered Model (name={name}) already exists.", {"exists": name}) from None
        return await self.store.mlflow_search.get_model(name)

    async def get_model(self, params: dict[str, Any]) -> MlflowModel:
        return await self.store.mlflow_search.get_model(model_name(required(params, "name")))

    async def update_model(self, params: dict[str, Any], actor: str) -> MlflowModel:
        name = model_name(required(params, "name"))
        await self._model_change(name, {"description": optional(params, "description") or ""}, actor)
        return await self.store.mlflow_search.get_model(name)

    async def rename_model(self, params: dict[str, Any], actor: str) -> MlflowModel:
        name = model_name(required(params, "name"))
        new = model_name(required(params, "new_name"), "new_name")
        try:
            await changes.rename_model(self.store, self.pool, self.home, self.lifecycle.refresh_serving, name,
                                       {"name": new, "reason": REASON}, actor)
        except NotFound:
            raise self._model_missing(name) from None
        except Conflict as exc:
            if "already exists" in exc.message:
                raise Conflict(f"Registered Model (name={new}) already exists.", {"exists": new}) from None
            raise
        return await self.store.mlflow_search.get_model(new)

    async def delete_model(self, params: dict[str, Any], actor: str) -> None:
        name = model_name(required(params, "name"))
        try:
            await changes.delete_model(self.store, self.pool, self.home, name, {"reason": REASON}, actor)
        except NotFound:
            raise self._model_missing(name) from None

    async def set_model_tag(self, params: dict[str, Any], actor: str) -> None:
        name = model_name(required(params, "name"))
        await self._model_change(name, {"tags": {tag_key(params.get("key")): tag_value(params.get("value"))}}, actor)

    async def delete_model_tag(self, params: dict[str, Any], actor: str) -> None:
        name = model_name(required(params, "name"))
        await self._model_change(name, {"untag": [tag_key(params.get("key"))]}, actor)

    async def _model_change(self, name: str, body: dict[str, Any], actor: str) -> None:
        try:
            await changes.update_model(self.store, name, body, actor)
        except NotFound:
            raise self._model_missing(name) from None

    @staticmethod
    def _model_missing(name: str) -> NotFound:
        return NotFound(f"Registered Model with name={name} not found", {"model": name})

    async def search_models(self, params: dict[str, Any]) -> MlflowPage:
        limit = filters.max_results(params.get("max_results"), filters.MODELS_DEFAULT, filters.MODELS_MAX)
        found = filters.parse_model_filter(optional(params, "filter"))
        orders = filters.parse_model_order(_list(params.get("order_by")))
        offset = filters.page_offset(params.get("page_token"))
        return await self.store.mlflow_search.search_models(found.clauses, orders, offset, limit, found.prompts)

    async def latest_versions(self, params: dict[str, Any]) -> list[MlflowVersion]:
        name = model_name(required(params, "name"))
        stages = [stage_of(s) for s in _list(params.get("stages"))]
        return await self.store.mlflow_search.latest_versions(name, stages)

    # -- aliases ----------------------------------------------------------------------------------

    async def set_alias(self, params: dict[str, Any], who: Identity) -> None:
        name = model_name(required(params, "name"))
        alias = _alias(params)
        number = version_number(required(params, "version"))
        await self.store.mlflow_search.get_version(name, number)  # MLflow's not-found words
        _not_held(await self.lifecycle.set_alias(name, alias, number, who))

    async def delete_alias(self, params: dict[str, Any], who: Identity) -> None:
        """Removing an alias the model does not have is no error (as MLflow)."""
        name = model_name(required(params, "name"))
        alias = _alias(params)
        await self.store.mlflow_search.get_model(name)
        try:
            await self.lifecycle.remove_alias(name, alias, who)
        except NotFound:
            pass

    async def version_by_alias(self, params: dict[str, Any]) -> MlflowVersion:
        name = model_name(required(params, "name"))
        alias = params.get("alias")
        if not alias:
            raise InvalidInput("Registered model alias name cannot be empty.")
        if not isinstance(alias, str):
            raise InvalidInput(f"Invalid alias name: '{alias}'.")
        if alias.lower() == "latest":
            versions = await self.store.mlflow_search.latest_versions(name, [])
            if not versions:
                raise NotFound(f"Latest version not found for model {name}.")
            return max(versions, key=lambda v: v.version.number)
        return await self.store.mlflow_search.version_by_alias(name, alias)

    # -- model versions ---------------------------------------------------------------------------

    async def create_version(self, params: dict[str, Any], actor: str) -> MlflowVersion:
        name = model_name(required(params, "name"))
        source = required(params, "source")
        if len(source) > MAX_SOURCE or "\x00" in source:
            raise InvalidInput(f"Invalid model version source: '{source[:200]}'.")
        run_id = optional(params, "run_id") or None
        tags = tags_of(params.get("tags"))
        model_id = optional(params, "model_id") or (source[len("models:/"):] if _LOGGED.match(source) else None)
        if run_id is None and model_id:  # MLflow 3 sends the logged model; its run is the version's run
            logged = await self.store.tracking.logged_model(model_id)
            run_id = logged.source_run_id if logged is not None else None
        extra = {k: v for k in ("run_link", "model_id") if (v := optional(params, k))}
        # Kept for a reference version; a version with files gets its facts from its files.
        reg = Registration(path=None, move=False, files=None, description=optional(params, "description") or "",
                           params={}, tags=tags, metrics=[], datasets=[], run=None, parents=[], source=source,
                           facts={FACTS_KEY: extra} if extra else {})
        if run_id:
            await self._take_run(reg, run_id)
        files = await self._registry_files(source)
        if files is None and self.tracking is not None:
            files = await self.tracking.files_at(source)
        if files is None and _is_external(source):
            rec = await self.registrar.register_reference(name, reg, actor)
            if rec is None:
                raise self._model_missing(name)
            return MlflowVersion(version=rec, tags=tags, aliases=[], run_id=run_id)
        await self.store.mlflow_search.get_model(name)  # MLflow never creates the model here
        if files is not None:
            reg.files = [FileRef(path, sha, size) for path, sha, size in files]
        else:
            reg.path = str(self._local(source))
        registered = await self.registrar.register(name, reg, actor)
        return MlflowVersion(version=registered.version, tags=tags, aliases=[], run_id=run_id)

    async def _registry_files(self, source: str) -> list[tuple[str, str, int]] | None:
        """The files of the registry version ``models:/NAME/N`` (or ``/Stage``, ``@alias``) names, as
        ``copy_model_version`` sends it: the copy shares its blobs. None: not such a URI, or a
        version without files (then the copy is a reference to the same URI)."""
        m = _REGISTRY_URI.match(source)
        if m is None:
            return None
        name, selector, alias = m.groups()
        if alias is not None:
            ref = f"{name}@{alias}"
        elif selector.isdigit():
            ref = f"{name}@{int(selector)}"
        elif selector.lower() in ("production", "staging", "latest"):
            ref = f"{name}@{selector.lower()}"
        else:
            return None
        rec, files = await self.store.catalog.resolve_with_files(ref)
        if rec.purged_at:
            raise Conflict(f"{rec.ref}'s files were removed by gc after its retention period; nothing to copy")
        if rec.status != "ready":
            raise Conflict(f"{rec.ref} is {rec.status}; only a ready version can be copied")
        return [(f["path"], f["sha256"], f["size"]) for f in files] or None

    async def _take_run(self, reg: Registration, run_id: str) -> None:
        """The run as the version's lineage run, with its params and latest metrics."""
        facts = await self.tracking.run_facts(run_id) if self.tracking is not None else None
        run: dict[str, Any] = {"id": run_id}
        if facts is not None:
            run.update(experiment=facts.experiment, started_at=facts.started_at, ended_at=facts.ended_at,
                       hyperparameters=dict(facts.params))
            reg.params = dict(facts.params)
            reg.metrics = [MetricRecord(key, value, "offline") for key, value in facts.metrics.items()]
        reg.run = run

    def _local(self, source: str) -> Path:
        """The folder or file a local source names, only inside an allowed root."""
        setting = "MODELREG_MLFLOW_ROOTS"
        raw = source
        if source.lower().startswith("file:"):
            parts = urllib.parse.urlsplit(source)
            if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
                raise InvalidInput(f"source {source!r}: only file URIs of this machine are read (file:///path)")
            raw = parts.path
        text = urllib.parse.unquote(raw) if raw is not source else raw
        if not os.path.isabs(text):
            raise InvalidInput(f"source {source!r} is not a URI nor an absolute path on the daemon's machine")
        if ".." in PurePosixPath(text).parts or ".." in PurePosixPath(raw).parts:
            raise InvalidInput(f"source {source!r} contains '..'; name the folder itself")
        if not self.roots:
            raise InvalidInput(f"source {source!r} is a local path, and the daemon reads local model files only "
                               f"inside the folders listed in {setting} (none are set); upload the files, or "
                               f"start the daemon with {setting}=/path/to/models")
        real = Path(os.path.realpath(text))
        if not any(real == root or real.is_relative_to(root) for root in self.roots):
            raise InvalidInput(f"source {source!r} lies outside the folders in {setting} "
                               f"({os.pathsep.join(map(str, self.roots))}); the daemon reads nothing else")
        return real

    async def get_version(self, params: dict[str, Any]) -> MlflowVersion:
        name = model_name(required(params, "name"))
        return await self.store.mlflow_search.get_version(name, version_number(required(params, "version")))

    async def update_version(self, params: dict[str, Any], actor: str) -> MlflowVersion:
        name, number = await self._version_ref(params)
        await self._version_change(name, number, {"description": optional(params, "description") or ""}, actor)
        return await self.store.mlflow_search.get_version(name, number)

    async def delete_version(self, params: dict[str, Any], actor: str) -> None:
        name, number = await self._version_ref(params)
        await changes.delete_version(self.store, self.lifecycle.refresh_serving, f"{name}@{number}",
                                     {"reason": REASON}, actor)

    async def set_version_tag(self, params: dict[str, Any], actor: str) -> None:
        name, number = await self._version_ref(params)
        body = {"tags": {tag_key(params.get("key")): tag_value(params.get("value"))}}
        await self._version_change(name, number, body, actor)

    async def delete_version_tag(self, params: dict[str, Any], actor: str) -> None:
        name, number = await self._version_ref(params)
        await self._version_change(name, number, {"untag": [tag_key(params.get("key"))]}, actor)

    async def _version_ref(self, params: dict[str, Any]) -> tuple[str, int]:
        """Name and number of an existing live version (MLflow's not-found words otherwise)."""
        name = model_name(required(params, "name"))
        number = version_number(required(params, "version"))
        rec = await self.store.mlflow_search.get_version(name, number)
        return rec.version.model_name, number

    async def _version_change(self, name: str, number: int, body: dict[str, Any], actor: str) -> None:
        await changes.update_version(self.store, f"{name}@{number}", body, actor)

    async def transition(self, params: dict[str, Any], who: Identity) -> MlflowVersion:
        name, number = await self._version_ref(params)
        to = stage_of(required(params, "stage"))
        archive = params.get("archive_existing_versions", False)
        if isinstance(archive, str) and archive.lower() in ("true", "false"):
            archive = archive.lower() == "true"
        if not isinstance(archive, bool):
            raise InvalidInput(f"Invalid value {archive!r} for parameter 'archive_existing_versions' supplied. "
                               f"Hint: Value was of type '{type(archive).__name__}'.{_DOCS}")
        if archive and to not in ("staging", "production"):
            raise InvalidInput(f"Model version transition cannot archive existing model versions because "
                               f"'{params['stage']}' is not an Active stage. Valid stages are "
                               "['Staging', 'Production']")
        current = await self.store.mlflow_search.get_version(name, number)
        if to == "none":
            if current.version.stage == "none":
                return current
            raise InvalidInput(f"{name}@{number} cannot go back to stage None in modelreg (a version starts there); "
                               "archive it instead")
        if current.version.stage != to:
            _not_held(await self.lifecycle.transition(f"{name}@{number}", to, who, REASON))
        if archive and to == "staging":
            for other in await self.store.mlflow_search.in_stage(name, "staging"):
                if other != number:
                    await self.lifecycle.transition(f"{name}@{other}", "archived", who,
                                                    f"archive_existing_versions: v{number} went to staging ({REASON})")
        return await self.store.mlflow_search.get_version(name, number)

    async def download_uri(self, params: dict[str, Any]) -> str:
        """A version with files: the virtual folder of its files that ``mlflow-artifacts`` serves;
        a reference: its source, verbatim."""
        found = await self.get_version(params)
        v = found.version
        if v.status == "ready" and v.file_count == 0:
            return v.source
        return f"mlflow-artifacts:/{REGISTRY_FOLDER}/{v.model_name}/{v.number}"

    async def search_versions(self, params: dict[str, Any]) -> MlflowPage:
        limit = filters.max_results(params.get("max_results"), filters.VERSIONS_DEFAULT, filters.VERSIONS_MAX)
        found = filters.parse_version_filter(optional(params, "filter"))
        orders = filters.parse_version_order(_list(params.get("order_by")))
        offset = filters.page_offset(params.get("page_token"))
        return await self.store.mlflow_search.search_versions(found.clauses, orders, offset, limit, found.prompts)


def _not_held(result: dict[str, Any]) -> None:
    """MLflow has no approval requests: a move an ``approvals`` gate held back is refused there,
    saying which request now waits for approvals (issue 12)."""
    request = result.get("request")
    if request is not None:
        raise GateFailed(f"{request['ref']} → {request['target']} needs {request['required']} approvals: approval "
                         f"request #{request['id']} is open (modelreg approve {request['id']} --reason …)",
                         {"request": request, "verdict": result.get("verdict")})


def _alias(params: dict[str, Any]) -> str:
    alias = params.get("alias")
    if alias is None or alias == "":
        raise InvalidInput("Registered model alias name cannot be empty.")
    if not isinstance(alias, str):
        raise InvalidInput(f"Invalid alias name: '{alias}'.")
    if alias.lower() == "latest":
        raise InvalidInput("'latest' alias name (case insensitive) is reserved.")
    if re.fullmatch(r"[vV]\d+", alias):
        raise InvalidInput(f"Version alias name '{alias}' is reserved.")
    return alias


def _list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def _is_external(source: str) -> bool:
    """A URI of another system (s3://, gs://, https://, dbfs:/, models:/ …): any scheme but file."""
    m = _SCHEME.match(source)
    return m is not None and m.group(1).lower() != "file"
