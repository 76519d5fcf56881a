"""Versions side by side (the TUI's compare, for every client): metrics with deltas judged by
each metric's direction, params that differ, files added/removed/changed by sha256, and
safetensors tensors whose dtype or shape changed. The first ref is the baseline; refs may
name versions of different models.
"""

from __future__ import annotations

from typing import Any

from modelreg.shared.errors import InvalidInput
from modelreg.shared.names import metric_direction

from ..store import Store

MAX_REFS = 20


async def compare(store: Store, refs: list[str]) -> dict[str, Any]:
    if not 2 <= len(refs) <= MAX_REFS:
        raise InvalidInput(f"compare takes 2 to {MAX_REFS} refs (ref=A&ref=B…), not {len(refs)}")
    details, directions = await store.catalog.compare_details(refs)  # one read for every ref
    return {
        "baseline": _ref(details[0]),
        "versions": [{"ref": _ref(d), "model": d["model"], "version": d["version"], "stage": d["stage"],
                      "status": d["status"], "created_at": d["created_at"], "content_digest": d["content_digest"],
                      "total_size": d["total_size"], "file_count": d["file_count"]} for d in details],
        "metrics": metric_rows(details, directions),
        "params": param_diff(details),
        "files": file_diff(details),
        "tensors": tensor_diff(details),
    }


def _ref(detail: dict[str, Any]) -> str:
    return f"{detail['model']}@{detail['version']}"


def judge(key: str, delta: float, directions: dict[str, str]) -> str:
    """better / worse / same for a change of ``delta`` in metric ``key``."""
    if delta == 0:
        return "same"
    up = metric_direction(key, directions) == "higher"
    return "better" if (delta > 0) == up else "worse"


def metric_rows(details: list[dict[str, Any]], directions: dict[str, str]) -> list[dict[str, Any]]:
    """One row per metric key: the latest value on each version, its delta to the baseline."""
    base = details[0]["metrics"]
    rows = []
    for key in sorted({k for d in details for k in d["metrics"]}):
        values = [d["metrics"].get(key) for d in details]
        deltas: list[float | None] = [None]
        judged: list[str | None] = [None]
        for value in values[1:]:
            if value is None or key not in base:
                deltas.append(None)
                judged.append(None)
            else:
                deltas.append(value - base[key])
                judged.append(judge(key, value - base[key], directions))
        rows.append({"key": key, "direction": metric_direction(key, directions), "values": values,
                     "deltas": deltas, "judged": judged})
    return rows


def param_diff(details: list[dict[str, Any]]) -> dict[str, Any]:
    """Params whose value is not the same on every version (absent is ``null``), and how many are."""
    params = [d["params"] for d in details]
    keys = sorted({k for p in params for k in p})
    differ = [{"key": k, "values": [p.get(k) for p in params]} for k in keys
              if len({p.get(k) for p in params}) > 1]
    return {"differ": differ, "same": len(keys) - len(differ)}


def _status(base: Any, other: Any) -> str:
    if base is None:
        return "added"
    if other is None:
        return "removed"
    return "same" if base == other else "changed"


def file_diff(details: list[dict[str, Any]]) -> dict[str, Any]:
    """Paths that are not identical (by sha256) on every version; each version's status against the baseline."""
    manifests = [{f["path"]: f for f in d["files"]} for d in details]
    paths = sorted({p for m in manifests for p in m})
    rows, same = [], 0
    for path in paths:
        shas = [m[path]["sha256"] if path in m else None for m in manifests]
        if len(set(shas)) == 1:
            same += 1
            continue
        base = shas[0]
        rows.append({"path": path, "sha256": shas, "size": [m[path]["size"] if path in m else None for m in manifests],
                     "status": [None] + [_status(base, sha) if sha != base else ("same" if sha else "absent")
                                         for sha in shas[1:]]})
    return {"differ": rows, "same": same}


def tensors(detail: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], bool]:
    """``'file:tensor'`` → ``{dtype, shape}`` from a version's safetensors facts, and whether
    the sniffer cut the list short (it keeps the first 1000 tensors of a file)."""
    out, truncated = {}, False
    files = (detail.get("facts") or {}).get("files") or {}
    for path, info in files.items():
        if not isinstance(info, dict) or not isinstance(info.get("tensors"), list):
            continue
        truncated = truncated or bool(info.get("tensors_truncated"))
        for t in info["tensors"]:
            if isinstance(t, dict) and "name" in t:
                out[f"{path}:{t['name']}"] = {"dtype": t.get("dtype"), "shape": t.get("shape")}
    return out, truncated


def tensor_diff(details: list[dict[str, Any]]) -> dict[str, Any]:
    """Tensors added, removed, or with another dtype or shape than on the baseline."""
    per = [tensors(d) for d in details]
    maps = [m for m, _ in per]
    names = sorted({n for m in maps for n in m})
    rows, same = [], 0
    for name in names:
        values = [m.get(name) for m in maps]
        if all(v == values[0] for v in values):
            same += 1
            continue
        rows.append({"tensor": name, "values": values,
                     "status": [None] + [_status(values[0], v) if v != values[0] else ("same" if v else "absent")
                                         for v in values[1:]]})
    return {"available": [bool(m) for m in maps], "differ": rows, "same": same,
            "truncated": any(t for _, t in per)}
