"""Copying an MLflow model registry into modelreg (``modelreg import mlflow --from URL``).

Reads the MLflow server through its REST API (``modelreg.shared.mlflow_rest``) and writes
through the same /v1 client every command uses. What it copies, and how:

- registered models with their description and tags;
- READY versions, each with its number where possible (``number`` with ``renumber``: a number
  already spent in modelreg takes the next one, and the summary says so), MLflow's source URI
  (verbatim, as the version's source), description, tags, run (id, experiment, times, params
  as hyperparameters) and the run's latest metrics as
  offline metrics, and its files, byte for byte (uploaded as blobs: identical bytes are stored
  once). Each version records its origin, ``mlflow:<URL>/<name>/<version>``, as an external
  parent in its lineage: that origin is how a later run knows the version is already here;
- stages and aliases, applied **forced**, with the audited reason ``imported from mlflow at
  URL``: an import reproduces the registry as it is, it does not re-decide promotions.

A second run copies only versions whose origin is not present, and applies what changed on
the source: tags and descriptions (added or changed; nothing is removed), stages, aliases that
moved. A version whose files live outside the server (an ``s3://`` source) is copied as a
reference version without files; versions that are not READY are listed and skipped.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from modelreg.shared.errors import ModelregError, NotFound, Unavailable
from modelreg.shared.mlflow_rest import MlflowRest, MlflowUnreachable
from modelreg.shared.names import validate_alias, validate_key, validate_name
from modelreg.shared.sync_client import SyncClient

STAGES = {"none": "none", "staging": "staging", "production": "production", "archived": "archived"}
ORIGIN = "mlflow:"


@dataclass
class Summary:
    """What an import did (or, with ``dry_run``, would do)."""

    source: str
    dry_run: bool = False
    models: int = 0
    models_created: int = 0
    copied: int = 0
    present: int = 0  # versions whose origin was already in modelreg
    skipped: int = 0  # not READY on the source
    updated: int = 0  # tags / descriptions applied to what was already here
    aliases: int = 0  # set or moved
    stages: int = 0  # transitions applied
    bytes: int = 0  # downloaded from MLflow and uploaded
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class Progress:
    """What the importer tells its caller as it goes (a progress bar, or nothing)."""

    def start(self, versions: int) -> None: ...
    def version(self, label: str) -> None: ...
    def advance(self) -> None: ...
    def bytes(self, n: int) -> None: ...


@dataclass
class _Source:
    model: dict[str, Any]
    versions: list[dict[str, Any]]


class Importer:
    def __init__(self, mlflow: MlflowRest, client: SyncClient, *, models: str | None = None,
                 dry_run: bool = False, progress: Progress | None = None) -> None:
        self.mlflow, self.client, self.pattern, self.dry_run = mlflow, client, models, dry_run
        self.progress = progress or Progress()
        self.summary = Summary(mlflow.url, dry_run)
        self.reason = f"imported from mlflow at {mlflow.url}"
        self._runs: dict[str, dict[str, Any] | None] = {}
        self._experiments: dict[str, str | None] = {}

    def run(self) -> Summary:
        """Read every selected model, then copy each; a failure of one part is listed and the rest goes on."""
        self.mlflow.check()
        sources = []
        for rm in self.mlflow.registered_models():
            name = rm.get("name", "")
            if self.pattern and not fnmatchcase(name, self.pattern):
                continue
            versions = sorted(self.mlflow.model_versions(name), key=lambda v: int(v.get("version", 0)))
            sources.append(_Source(self.mlflow.registered_model(name), versions))
        self.progress.start(sum(len(s.versions) for s in sources))
        for src in sources:
            self.summary.models += 1
            try:
                self._model(src)
            except (MlflowUnreachable, Unavailable):
                raise  # one side is gone: nothing further can succeed
            except ModelregError as exc:
                self.summary.failures.append(f"{src.model.get('name')}: {exc.message}")
        return self.summary

    # -- one model --------------------------------------------------------------------------------

    def _model(self, src: _Source) -> None:
        name = src.model["name"]
        try:
            validate_name(name)
        except ModelregError as exc:
            self.summary.failures.append(f"{name}: not copied, {len(src.versions)} version(s): {exc.message}")
            for _ in src.versions:
                self.progress.advance()
            return
        self._model_fields(name, src.model)
        present = self._present(name)
        numbers: dict[str, int] = {}  # MLflow version → ours
        for mv in src.versions:
            label = f"{name} v{mv['version']}"
            self.progress.version(label)
            try:
                number = self._version(name, mv, present)
                if number is not None:
                    numbers[mv["version"]] = number
            except (MlflowUnreachable, Unavailable):
                raise
            except ModelregError as exc:
                self.summary.failures.append(f"{label}: {exc.message}")
            self.progress.advance()
        self._stages(name, src.versions, numbers)
        self._aliases(name, src.model.get("aliases") or [], numbers)

    def _model_fields(self, name: str, rm: dict[str, Any]) -> None:
        tags = self._tags(rm.get("tags"), name)
        description = rm.get("description") or ""
        try:
            ours = self.client.model(name)
        except NotFound:
            self.summary.models_created += 1
            if not self.dry_run:
                self.client.create_model(name, description=description, tags=tags)
            return
        change: dict[str, Any] = {}
        if description and description != (ours.get("description") or ""):
            change["description"] = description
        new_tags = {k: v for k, v in tags.items() if (ours.get("tags") or {}).get(k) != v}
        if new_tags:
            change["tags"] = new_tags
        if change:
            self.summary.updated += 1
            if not self.dry_run:
                self.client.update_model(name, **change)

    def _present(self, name: str) -> dict[str, dict[str, Any]]:
        """The versions of ``name`` already imported from this server: origin → version detail."""
        out: dict[str, dict[str, Any]] = {}
        try:
            # Imported versions have MLflow's source (a URI) or "mlflow"; cli and api ones are not looked at.
            mine = [v for v in self.client.iter_versions(name, limit=1000)
                    if v.get("source") == "mlflow" or ":" in str(v.get("source"))]
        except NotFound:
            return out
        for v in mine:
            detail = self.client.version(f"{name}@{v['version']}")
            for parent in (detail.get("lineage") or {}).get("parents", []):
                if parent.get("external") and str(parent.get("ref", "")).startswith(ORIGIN):
                    out[parent["ref"]] = detail
        return out

    # -- one version ------------------------------------------------------------------------------

    def _origin(self, name: str, version: str) -> str:
        return f"{ORIGIN}{self.mlflow.url}/{name}/{version}"

    def _version(self, name: str, mv: dict[str, Any], present: dict[str, dict[str, Any]]) -> int | None:
        """Copy one version (or bring an imported one up to date); its number in modelreg."""
        version, label = mv["version"], f"{name} v{mv['version']}"
        if mv.get("status", "READY") != "READY":
            self.summary.skipped += 1
            self.summary.notes.append(f"{label}: {mv.get('status')} on the source, not copied")
            return None
        tags = self._tags(mv.get("tags"), label)
        description = mv.get("description") or ""
        detail = present.get(self._origin(name, version))
        if detail is not None:
            self.summary.present += 1
            self._update(detail, description, tags)
            return detail["version"]
        uri = self.mlflow.download_uri(name, version)
        root = self.mlflow.artifact_path(uri)
        if root is None:
            return self._reference(name, mv, uri, tags, description)
        files = self.mlflow.list_files(root)
        if not files:
            raise ModelregError(f"no artifacts at {uri}: not copied (a modelreg version needs files)")
        self.summary.copied += 1
        if self.dry_run:
            self.summary.bytes += sum(size for _, size in files)
            return int(version)
        metadata = self._run_metadata(mv.get("run_id") or "", label)
        with tempfile.TemporaryDirectory(prefix="modelreg-import-") as tmp:
            entries = []
            for i, (rel, _size) in enumerate(files):
                local = Path(tmp) / str(i)
                sha, size = self.mlflow.download(f"{root}/{rel}", local, self.progress.bytes)
                blob = self.client.upload_blob(local)
                if blob["sha256"] != sha:
                    raise ModelregError(f"{rel}: modelreg stored {blob['sha256']}, MLflow sent {sha}")
                local.unlink()
                entries.append({"path": rel, "sha256": sha, "size": size})
                self.summary.bytes += size
        result = self.client.register(
            name, files=entries, source="mlflow", source_uri=mv.get("source") or None, number=int(version),
            renumber=True, description=description,
            tags=tags, external_parents=[self._origin(name, version)], **metadata)
        return self._number(result["version"], label, version)

    def _reference(self, name: str, mv: dict[str, Any], uri: str, tags: dict[str, str], description: str) -> int:
        """A version whose files live elsewhere (s3://…): copied as a reference version, without
        files, as MLflow holds it. A local path of the server's machine cannot be copied."""
        version, label = mv["version"], f"{name} v{mv['version']}"
        where = mv.get("source") or uri
        if "://" not in where or where.lower().startswith("file:"):
            raise ModelregError(f"source {where} is a path on the MLflow server's machine, not served by the "
                                "server: not copied")
        self.summary.copied += 1
        self.summary.notes.append(f"{label}: its files are at {where} (not on the MLflow server): "
                                  "copied as a reference version without files")
        if self.dry_run:
            return int(version)
        result = self.client.register(
            name, reference=where, number=int(version), renumber=True, description=description, tags=tags,
            external_parents=[self._origin(name, version)], **self._run_metadata(mv.get("run_id") or "", label))
        return self._number(result["version"], label, version)

    def _number(self, v: dict[str, Any], label: str, version: str) -> int:
        if v["version"] != int(version):
            self.summary.notes.append(f"{label}: number {version} was already spent in modelreg, "
                                      f"copied as {v['model']}@{v['version']}")
        return v["version"]

    def _update(self, detail: dict[str, Any], description: str, tags: dict[str, str]) -> None:
        change: dict[str, Any] = {}
        if description and description != (detail.get("description") or ""):
            change["description"] = description
        new_tags = {k: v for k, v in tags.items() if (detail.get("tags") or {}).get(k) != v}
        if new_tags:
            change["tags"] = new_tags
        if change:
            self.summary.updated += 1
            if not self.dry_run:
                self.client.update_version(f"{detail['model']}@{detail['version']}", **change)

    def _run_metadata(self, run_id: str, label: str) -> dict[str, Any]:
        """The lineage run and offline metrics a version gets from its MLflow run."""
        if not run_id:
            return {}
        if run_id not in self._runs:
            try:
                self._runs[run_id] = self.mlflow.run(run_id)
            except NotFound:
                self._runs[run_id] = None
        run = self._runs[run_id]
        if run is None:
            return {"run": {"id": run_id}}
        info, data = run.get("info") or {}, run.get("data") or {}
        out: dict[str, Any] = {"run": {
            "id": run_id, "experiment": self._experiment(str(info.get("experiment_id") or "")),
            "started_at": _seconds(info.get("start_time")), "ended_at": _seconds(info.get("end_time")),
            "hyperparameters": self._valid({p["key"]: p.get("value", "") for p in data.get("params") or []},
                                           f"{label} run param")}}
        metrics = {m["key"]: m["value"] for m in data.get("metrics") or []
                   if isinstance(m.get("value"), (int, float)) and math.isfinite(m["value"])}
        if metrics := self._valid(metrics, f"{label} run metric"):
            out["metrics"] = metrics
        return out

    def _experiment(self, experiment_id: str) -> str | None:
        if not experiment_id:
            return None
        if experiment_id not in self._experiments:
            try:
                self._experiments[experiment_id] = self.mlflow.experiment(experiment_id).get("name")
            except NotFound:
                self._experiments[experiment_id] = None
        return self._experiments[experiment_id]

    # -- stages and aliases -----------------------------------------------------------------------

    def _stages(self, name: str, versions: list[dict[str, Any]], numbers: dict[str, int]) -> None:
        """Our stages made the source's, forced with the import's reason. MLflow may hold several
        Production versions; modelreg holds one, so the most recently changed stays production
        and the others are archived (listed in the summary)."""
        wanted = {numbers[v["version"]]: STAGES.get(str(v.get("current_stage", "None")).lower(), "none")
                  for v in versions if v["version"] in numbers}
        production = [v for v in versions if v["version"] in numbers
                      and wanted[numbers[v["version"]]] == "production"]
        if len(production) > 1:
            production.sort(key=lambda v: (v.get("last_updated_timestamp") or 0, int(v["version"])))
            for v in production[:-1]:
                wanted[numbers[v["version"]]] = "archived"
                self.summary.notes.append(f"{name} v{v['version']}: Production on the source beside "
                                          f"v{production[-1]['version']}; archived (modelreg keeps one)")
        current = self._current_stages(name, set(wanted))
        order = {"none": 0, "archived": 1, "staging": 2, "production": 3}
        for number, stage in sorted(wanted.items(), key=lambda item: (order[item[1]], item[0])):
            have = current.get(number, "none")
            if have == stage:
                continue
            if stage == "none":
                self.summary.notes.append(f"{name}@{number}: None on the source, {have} here "
                                          "(a version does not go back to none); left as it is")
                continue
            self.summary.stages += 1
            if self.dry_run:
                continue
            try:
                self.client.transition(f"{name}@{number}", stage, reason=self.reason, force=True)
            except (MlflowUnreachable, Unavailable):
                raise
            except ModelregError as exc:
                self.summary.stages -= 1
                self.summary.failures.append(f"{name}@{number} → {stage}: {exc.message}")

    def _current_stages(self, name: str, numbers: set[int]) -> dict[int, str]:
        try:
            return {v["version"]: v["stage"] for v in self.client.iter_versions(name, limit=1000)
                    if v["version"] in numbers}
        except NotFound:  # a dry run of a model that is not here yet
            return {}

    def _aliases(self, name: str, aliases: list[dict[str, Any]], numbers: dict[str, int]) -> None:
        try:
            ours = self.client.aliases(name)["aliases"]
        except NotFound:
            ours = {}
        for entry in aliases:
            alias, version = entry.get("alias", ""), str(entry.get("version", ""))
            try:
                validate_alias(alias)
            except ModelregError as exc:
                self.summary.failures.append(f"{name}@{alias}: alias not copied: {exc.message}")
                continue
            if version not in numbers:
                self.summary.failures.append(f"{name}@{alias}: alias not copied: it points at v{version}, "
                                             "which was not copied")
                continue
            if ours.get(alias) == numbers[version]:
                continue
            self.summary.aliases += 1
            if self.dry_run:
                continue
            try:
                self.client.set_alias(name, alias, numbers[version], reason=self.reason, force=True)
            except (MlflowUnreachable, Unavailable):
                raise
            except ModelregError as exc:
                self.summary.aliases -= 1
                self.summary.failures.append(f"{name}@{alias} → {numbers[version]}: {exc.message}")

    # -- keys ---------------------------------------------------------------------------------------

    def _tags(self, tags: list[dict[str, Any]] | None, label: str) -> dict[str, str]:
        return self._valid({t["key"]: t.get("value") or "" for t in tags or []}, f"{label} tag")

    def _valid(self, values: dict[str, Any], what: str) -> dict[str, Any]:
        """The entries whose keys modelreg accepts; the others are listed in the summary."""
        out = {}
        for key, value in values.items():
            try:
                out[validate_key(key, what)] = value
            except ModelregError as exc:
                self.summary.failures.append(f"{what} {key!r} not copied: {exc.message}")
        return out


def _seconds(ms: Any) -> float | None:
    return ms / 1000 if isinstance(ms, (int, float)) and ms > 0 else None

