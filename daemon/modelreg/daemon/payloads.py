"""Validation of untrusted request bodies, in one place (PRODUCT.md §10).

Each ``parse_*`` takes the decoded body and returns a typed value or raises InvalidInput
with a message that names the offending field.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from modelreg.shared.errors import InvalidInput
from modelreg.shared.timefmt import parse_time
from modelreg.shared.names import (
    METRIC_SOURCES,
    parse_dataset_ref,
    parse_ref,
    validate_key,
    validate_relpath,
)

MAX_TEXT = 10_000
MAX_ITEMS = 10_000
_SHA_CHARS = frozenset("0123456789abcdef")


def _obj(body: Any, what: str = "body") -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidInput(f"{what} must be an object")
    return body


def _text(value: Any, what: str, limit: int = MAX_TEXT) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string")
    if len(value) > limit or "\x00" in value:
        raise InvalidInput(f"{what} is too long or contains NUL (at most {limit} characters)")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput(f"{what} must be a list")
    if len(value) > MAX_ITEMS:
        raise InvalidInput(f"{what} has more than {MAX_ITEMS} items")
    return value


def _str_map(value: Any, what: str) -> dict[str, str]:
    """{key: scalar} with validated keys; numbers and booleans are kept as their text."""
    value = _obj(value, what)
    if len(value) > MAX_ITEMS:
        raise InvalidInput(f"{what} has more than {MAX_ITEMS} entries")
    out = {}
    for key, raw in value.items():
        validate_key(key, f"{what} key")
        if isinstance(raw, bool):
            raw = "true" if raw else "false"
        elif isinstance(raw, (int, float)):
            raw = repr(raw)
        out[key] = _text(raw, f"{what}[{key}]")
    return out


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


@dataclass
class MetricRecord:
    key: str
    value: float
    source: str = "offline"
    step: int | None = None
    dataset: str | None = None


def parse_metrics(value: Any, default_source: str = "offline") -> list[MetricRecord]:
    """Either {"auc": 0.91} or [{"key", "value", "source"?, "step"?, "dataset"?}]."""
    if isinstance(value, dict):
        value = [{"key": k, "value": v} for k, v in value.items()]
    records = []
    for i, item in enumerate(_list(value, "metrics")):
        item = _obj(item, f"metrics[{i}]")
        key = validate_key(item.get("key"), "metric key")
        source = item.get("source") or default_source
        if source not in METRIC_SOURCES:
            raise InvalidInput(f"unknown metric source {source!r}: expected {', '.join(METRIC_SOURCES)}")
        step = item.get("step")
        if step is not None and (isinstance(step, bool) or not isinstance(step, int) or not 0 <= step < 2**62):
            raise InvalidInput(f"metric step for {key!r} must be a non-negative integer")
        dataset = item.get("dataset")
        if dataset is not None:
            dataset = str(parse_dataset_ref(dataset))
        records.append(MetricRecord(key, finite(item.get("value"), f"metric {key!r}"), source, step, dataset))
    return records


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


def parse_registration(body: Any) -> Registration:
    """A registration request: where the files are (path or uploaded blobs) plus metadata."""
    body = _obj(body)
    path = body.get("path")
    files = body.get("files")
    if (path is None) == (files is None):
        raise InvalidInput("give exactly one of 'path' (a file or folder on the daemon's machine) "
                           "or 'files' (blobs uploaded to /v1/blobs)")
    if path is not None:
        path = _text(path, "path", 4096)
        if not os.path.isabs(path):
            raise InvalidInput(f"path {path!r} must be absolute (the daemon has its own working directory)")
    mode = body.get("mode", "copy")
    if mode not in ("copy", "move"):
        raise InvalidInput(f"mode must be 'copy' or 'move', not {mode!r}")
    source = body.get("source", "api")
    if source not in ("cli", "api"):
        raise InvalidInput("source must be 'cli' or 'api'")
    reg = parse_metadata(body, source)
    reg.path, reg.move = path, mode == "move"
    reg.files = _file_refs(files) if files is not None else None
    return reg


def _file_refs(files: Any) -> list[FileRef]:
    refs, seen = [], set()
    for i, f in enumerate(_list(files, "files")):
        f = _obj(f, f"files[{i}]")
        rel = validate_relpath(f.get("path"))
        if rel in seen:
            raise InvalidInput(f"files lists {rel!r} twice")
        seen.add(rel)
        sha = f.get("sha256")
        if not isinstance(sha, str) or len(sha) != 64 or not set(sha) <= _SHA_CHARS:
            raise InvalidInput(f"files[{i}].sha256 must be 64 lower-case hex digits")
        size = f.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InvalidInput(f"files[{i}].size must be a non-negative integer")
        refs.append(FileRef(rel, sha, size))
    if not refs:
        raise InvalidInput("files is empty: a version needs at least one file")
    return refs


def parse_metadata(body: Any, source: str) -> Registration:
    """Description, params, tags, metrics, datasets, run and parent (also a drop's sidecar)."""
    body = _obj(body)
    datasets = []
    for i, ds in enumerate(_list(body.get("datasets"), "datasets")):
        if isinstance(ds, str):
            ds = {"ref": ds}
        ds = _obj(ds, f"datasets[{i}]")
        ref = ds.get("ref") or (f"{ds.get('name')}@{ds.get('version')}" if ds.get("name") else None)
        relation = ds.get("relation", "trained_on")
        if relation not in ("trained_on", "evaluated_on"):
            raise InvalidInput(f"datasets[{i}].relation must be trained_on or evaluated_on")
        datasets.append({"ref": str(parse_dataset_ref(ref)), "relation": relation,
                         "digest": _text(ds.get("digest"), "dataset digest", 200) or None,
                         "uri": _text(ds.get("uri"), "dataset uri", 4096) or None})
    run = body.get("run")
    if run is not None:
        if isinstance(run, str):
            run = {"id": run}
        run = _obj(run, "run")
        run_id = _text(run.get("id"), "run id", 200)
        if not run_id:
            raise InvalidInput("run id must not be empty")
        run = {"id": run_id, "experiment": _text(run.get("experiment"), "run experiment", 200) or None,
               "started_at": run.get("started_at"), "ended_at": run.get("ended_at"),
               "hardware": _text(run.get("hardware"), "run hardware", 500) or None,
               "code_revision": _text(run.get("code_revision"), "run code_revision", 200) or None,
               "hyperparameters": _str_map(run.get("hyperparameters"), "run hyperparameters")}
        for key in ("started_at", "ended_at"):
            if isinstance(run[key], str):
                run[key] = parse_time(run[key])
            elif run[key] is not None:
                run[key] = finite(run[key], f"run {key}")
    parents = body.get("parent")
    parents = [parents] if isinstance(parents, str) else _list(parents, "parent")
    for p in parents:
        parse_ref(p)
    return Registration(
        path=None, move=False, files=None,
        description=_text(body.get("description"), "description"),
        params=_str_map(body.get("params"), "params"),
        tags=_str_map(body.get("tags"), "tags"),
        metrics=parse_metrics(body.get("metrics")),
        datasets=datasets, run=run, parents=parents, source=source,
    )


def parse_model(body: Any) -> tuple[str, dict[str, str], dict[str, str]]:
    body = _obj(body)
    directions = _str_map(body.get("metric_directions"), "metric_directions")
    for key, value in directions.items():
        if value not in ("higher", "lower"):
            raise InvalidInput(f"metric_directions[{key}] must be 'higher' or 'lower'")
    return _text(body.get("description"), "description"), _str_map(body.get("tags"), "tags"), directions
