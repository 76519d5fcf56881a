"""Metadata sniffers: facts about model files, read without executing or unpickling anything.

``sniff_file`` reads one file; ``sniff_drop`` reads a whole drop (a file or a
folder) and adds the folder-level formats: a Hugging Face ``config.json`` and
model card, an MLflow ``MLmodel``, sharded-weight indexes. Both are blocking
(call them from a thread pool) and never raise: any failure becomes
``complete=False`` with a readable sentence in ``problems``.

Every parser treats its input as hostile: headers are read with bounded sizes,
counts and lengths are checked against the file before anything is allocated,
and the facts are cut to JSON-safe sizes (see ``result.py``).
"""

from __future__ import annotations

import json
import os
import posixpath
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from . import gguf, huggingface, keras, mlflow, onnx, pickle_scan, safetensors
from .result import MAX_ITEMS, SniffResult, cap_str

__all__ = ["SniffResult", "sniff_drop", "sniff_file"]

HEAD_BYTES = 16
MAX_DROP_FILES = 10_000
README_NAMES = ("README.md", "readme.md", "README.MD")
# Extensions whose zero-byte files are a broken (still being written?) model, not an unknown file.
EMPTY_MEANS_BROKEN = {
    ".safetensors": "safetensors", ".gguf": "gguf", ".onnx": "onnx", ".keras": "keras",
    **{ext: "pickle" for ext in pickle_scan.PICKLE_EXTS - pickle_scan.AMBIGUOUS_EXTS},
}


def sniff_file(path: Path) -> SniffResult:
    """Facts about one file, dispatched by name, extension and magic bytes.

    Unrecognised files give ``SniffResult(format=None, facts={})``. Paths a file
    refers to (shards, external data) are looked up beside it on disk.
    """
    path = Path(path)
    folder = path.parent

    def exists(rel: str) -> bool:
        return safetensors.is_inside(rel) and (folder / rel).is_file()

    return _guarded(path, path.name, exists)


def sniff_drop(root: Path, files: list[str]) -> SniffResult:
    """Facts about one drop: ``root`` is a file or a folder, ``files`` its files as posix relative paths.

    Per-file results go under ``facts["files"][relpath]`` (recognised formats only);
    folder-level formats under ``facts["huggingface"]``, ``facts["mlflow"]`` and
    ``facts["safetensors-sharded"]``; ``facts["parameter_count"]`` sums the
    safetensors and GGUF weights (a sharded model's shards once) and
    ``facts["format"]`` names the drop's main format.
    """
    root = Path(root)
    try:
        return _drop(root, list(files))
    except Exception as exc:  # noqa: BLE001 - a sniffer never raises; the reason is reported
        return SniffResult(format=None, facts={}, complete=False,
                           problems=[f"{root.name} could not be read: {cap_str(repr(exc), 300)}"])


# --- one file -------------------------------------------------------------------------------------


def _guarded(path: Path, name: str, exists: Callable[[str], bool]) -> SniffResult:
    guess: str | None = None
    try:
        plan = _plan(path, name, exists)
        if plan is None:
            return SniffResult(format=None, facts={})
        guess, run = plan
        result = run()
        return result if result is not None else SniffResult(format=None, facts={})
    except Exception as exc:  # noqa: BLE001 - hostile input must not take the daemon down
        return SniffResult(format=guess, facts={}, complete=False,
                           problems=[f"{name} could not be read: {cap_str(repr(exc), 300)}"])


def _plan(
    path: Path, name: str, exists: Callable[[str], bool]
) -> tuple[str | None, Callable[[], SniffResult | None]] | None:
    """``(format guess, thunk)`` for the sniffer that owns this file, or ``None``."""
    base = path.name
    lower = base.lower()
    if not path.is_file():
        return None
    if lower.endswith(".safetensors.index.json"):
        return "safetensors-sharded", lambda: safetensors.sniff_index(path, name, exists)
    if base == "MLmodel":
        return "mlflow", lambda: mlflow.sniff(path, name)
    if lower == "config.json":
        return "huggingface", lambda: huggingface.sniff_config(path, name)
    with open(path, "rb") as f:
        head = f.read(HEAD_BYTES)
    ext = PurePosixPath(lower).suffix
    if not head and ext in EMPTY_MEANS_BROKEN:
        fmt = EMPTY_MEANS_BROKEN[ext]
        return fmt, lambda: SniffResult(format=fmt, facts={}, complete=False, problems=[f"{name} is empty"])
    if head.startswith(gguf.MAGIC) or ext == ".gguf":
        return "gguf", lambda: gguf.sniff(path, name)
    if ext == ".safetensors" or safetensors.looks_like(head):
        return "safetensors", lambda: safetensors.sniff(path, name)
    if ext == ".onnx":
        return "onnx", lambda: onnx.sniff(path, name, exists)
    if ext == ".keras":
        return "keras", lambda: keras.sniff(path, name)
    if pickle_scan.is_zip(head) and ext not in pickle_scan.PICKLE_EXTS and _is_keras_zip(path):
        return "keras", lambda: keras.sniff(path, name)
    if ext in pickle_scan.PICKLE_EXTS or pickle_scan.is_zip(head) or head[:1] == b"\x80":
        guess = "torch-zip" if pickle_scan.is_zip(head) else "pickle"
        return guess, lambda: pickle_scan.sniff(path, name, head)
    return None


def _is_keras_zip(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError):
        return False
    return {"config.json", "metadata.json"} <= names


# --- a drop ---------------------------------------------------------------------------------------


def _safe_rel(rel: str) -> bool:
    if not rel or rel.startswith("/") or "\\" in rel:
        return False
    return ".." not in PurePosixPath(rel).parts


def _drop(root: Path, files: list[str]) -> SniffResult:
    problems: list[str] = []
    if root.is_file():
        base, rels = root.parent, [root.name]
        is_folder = False
    else:
        base, is_folder = root, True
        rels = sorted({posixpath.normpath(f) for f in files if isinstance(f, str)})
    fileset = set(rels)
    real_root = base.resolve() if is_folder else None

    results: dict[str, SniffResult] = {}
    vanished: list[str] = []
    for rel in rels[:MAX_DROP_FILES]:
        if not _safe_rel(rel):
            problems.append(f"{cap_str(rel, 200)} is not a path inside the drop; not read")
            continue
        if is_folder and rel in ("config.json", *README_NAMES):
            continue  # read by the folder-level Hugging Face sniffer
        path = base / rel
        if not path.exists() and not path.is_symlink():
            vanished.append(rel)
            continue
        if real_root is not None and not path.resolve().is_relative_to(real_root):
            problems.append(f"{rel} points outside the drop; not read")
            continue
        folder = posixpath.dirname(rel)

        def exists(target: str, folder: str = folder) -> bool:
            if not safetensors.is_inside(target):
                return False
            return posixpath.normpath(posixpath.join(folder, target)) in fileset

        result = _guarded(path, rel, exists)
        if result.format is not None or not result.complete:
            results[rel] = result

    hf = None
    if is_folder:
        try:
            hf = huggingface.sniff_folder(base, rels)
        except Exception as exc:  # noqa: BLE001
            hf = SniffResult(format="huggingface", facts={}, complete=False,
                             problems=[f"config.json could not be read: {cap_str(repr(exc), 300)}"])

    facts: dict[str, object] = {}
    if len(rels) > MAX_DROP_FILES:
        facts["files_not_sniffed"] = len(rels) - MAX_DROP_FILES
    facts["files"] = {
        rel: {"format": r.format, "complete": r.complete, "unsafe": r.unsafe, **r.facts}
        for rel, r in results.items()
        if r.format is not None
    }
    everything = list(results.values()) + ([hf] if hf else [])
    for fmt in ("mlflow", "safetensors-sharded"):
        shallowest = min((rel for rel, r in results.items() if r.format == fmt),
                         key=lambda rel: (rel.count("/"), rel), default=None)
        if shallowest is not None:
            facts[fmt] = results[shallowest].facts
    if hf:
        facts["huggingface"] = hf.facts

    drop_problems = _missing_gguf_splits(results, fileset)
    if vanished:
        shown = ", ".join(cap_str(v, 200) for v in vanished[:5]) + (" …" if len(vanished) > 5 else "")
        drop_problems.append(f"{len(vanished)} listed file(s) disappeared before they could be read: {shown}")
    params = _parameter_count(results)
    if params is not None:
        facts["parameter_count"] = params
    main = _main_format(results, facts, base)
    facts["format"] = main

    return SniffResult(
        format=main,
        facts=facts,
        complete=all(r.complete for r in everything) and not drop_problems,
        problems=_unique([*problems, *drop_problems, *(p for r in everything for p in r.problems)]),
        unsafe=any(r.unsafe for r in everything),
        lineage=_unique_dicts(x for r in everything for x in r.lineage),
        metrics=_unique_dicts(x for r in everything for x in r.metrics),
    )


def _parameter_count(results: dict[str, SniffResult]) -> int | None:
    """Safetensors + GGUF parameters; with an index, its shards once and no stray copies beside it."""
    shards: set[str] = set()
    index_dirs: set[str] = set()
    for rel, r in results.items():
        if r.format == "safetensors-sharded":
            folder = posixpath.dirname(rel)
            index_dirs.add(folder)
            shards.update(posixpath.normpath(posixpath.join(folder, s)) for s in r.facts.get("shards", []))
    total = None
    for rel, r in results.items():
        count = r.facts.get("parameter_count")
        if not isinstance(count, int):
            continue
        if r.format == "safetensors":
            # A file beside an index but not named by it (e.g. consolidated.safetensors) is another copy.
            if rel not in shards and posixpath.dirname(rel) in index_dirs:
                continue
        elif r.format != "gguf":
            continue
        total = (total or 0) + count
    if total is None:
        onnx_counts = [r.facts["parameter_count"] for r in results.values()
                       if r.format == "onnx" and isinstance(r.facts.get("parameter_count"), int)]
        if onnx_counts:
            total = sum(onnx_counts)
    return total


def _missing_gguf_splits(results: dict[str, SniffResult], fileset: set[str]) -> list[str]:
    """gguf-split names its parts ``stem-00001-of-00003.gguf``; every part must be in the drop."""
    problems = []
    seen: set[str] = set()
    for rel, r in results.items():
        m = gguf.SPLIT_NAME.match(rel)
        if r.format != "gguf" or not m or m.group("stem") in seen:
            continue
        seen.add(m.group("stem"))
        count = int(m.group("count"))
        if count > MAX_ITEMS:
            continue
        expected = [f"{m.group('stem')}-{i:05d}-of-{count:05d}.gguf" for i in range(1, count + 1)]
        missing = [e for e in expected if e not in fileset]
        if missing:
            problems.append(
                f"{m.group('stem')}.gguf is split into {count} parts but {len(missing)} are missing: "
                + ", ".join(missing[:5])
            )
    return problems


def _main_format(results: dict[str, SniffResult], facts: dict, base: Path) -> str | None:
    if "mlflow" in facts:
        return "mlflow"
    if "huggingface" in facts:
        return "huggingface"
    if "safetensors-sharded" in facts:
        return "safetensors-sharded"
    recognised = [(rel, r) for rel, r in results.items() if r.format is not None]
    if not recognised:
        return None

    def size(rel: str) -> int:
        try:
            return os.path.getsize(base / rel)
        except OSError:
            return -1

    return max(recognised, key=lambda item: (size(item[0]), item[0]))[1].format


def _unique(items) -> list[str]:
    return list(dict.fromkeys(items))


def _unique_dicts(items) -> list[dict]:
    out: dict[str, dict] = {}
    for item in items:
        out.setdefault(json.dumps(item, sort_keys=True, default=str), item)
    return list(out.values())
