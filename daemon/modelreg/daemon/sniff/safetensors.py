"""Safetensors files and sharded ``*.safetensors.index.json`` indexes.

Layout: a u64 little-endian header length N, N bytes of JSON (``{name: {dtype,
shape, data_offsets}}`` plus an optional ``__metadata__`` string map), then the
tensor bytes. The checks are the ones the safetensors library applies when it
loads a file, so "complete" here means "the library would accept it".
"""

from __future__ import annotations

import json
import math
import os
import posixpath
import struct
from collections.abc import Callable
from pathlib import Path

from .result import MAX_ITEMS, SniffResult, bounded, cap_str, failed, plural

MAX_HEADER = 100 * 1000 * 1000
MAX_INDEX = 64 * 1000 * 1000
MAX_DIMS = 64

# Bits per element, as the safetensors Dtype enum defines them.
DTYPE_BITS = {
    "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8,
    "F8_E4M3": 8, "F8_E8M0": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32,
    "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64,
}


def looks_like(head: bytes) -> bool:
    """True when the first bytes are a plausible safetensors header start."""
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n <= MAX_HEADER and head[8:9] == b"{"


def sniff(path: Path, name: str) -> SniffResult:
    """Header facts and the file-size completeness check of one ``.safetensors`` file."""
    fmt = "safetensors"
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < 8:
            return failed(fmt, f"{name} is truncated: {size:,} bytes, too short for a safetensors header")
        (n,) = struct.unpack("<Q", f.read(8))
        if n > MAX_HEADER:
            return failed(
                fmt, f"{name} announces a {n:,}-byte header, over the 100 MB limit: not a valid safetensors file"
            )
        if 8 + n > size:
            return failed(
                fmt, f"{name} is truncated: header says its header alone is {8 + n:,} bytes, file has {size:,}"
            )
        raw = f.read(n)
    if not raw.startswith(b"{"):
        return failed(fmt, f"{name} is not a safetensors file: its header is not a JSON object")
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        return failed(fmt, f"{name} has an unreadable header: {cap_str(str(exc), 200)}")
    if not isinstance(header, dict):
        return failed(fmt, f"{name} is not a safetensors file: its header is not a JSON object")
    return _check(header, name, n, size)


def _check(header: dict, name: str, n: int, size: int) -> SniffResult:
    problems: list[str] = []
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
    ):
        problems.append(f"{name} has a __metadata__ that is not a string-to-string map")
    params = 0
    dtypes: dict[str, int] = {}
    tensors = []
    spans = []
    for tname, info in header.items():
        shape = info.get("shape") if isinstance(info, dict) else None
        dtype = info.get("dtype") if isinstance(info, dict) else None
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (
            isinstance(dtype, str)
            and isinstance(shape, list)
            and len(shape) <= MAX_DIMS
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
            and isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)
            and offsets[0] <= offsets[1]
        ):
            problems.append(f"{name}: tensor {cap_str(str(tname), 200)} has an invalid entry")
            continue
        count = math.prod(shape)
        params += count
        dtypes[dtype] = dtypes.get(dtype, 0) + 1
        bits = DTYPE_BITS.get(dtype)
        if bits is None:
            problems.append(f"{name}: tensor {cap_str(tname, 200)} has unknown dtype {cap_str(dtype, 40)}")
        elif count * bits != (offsets[1] - offsets[0]) * 8:
            problems.append(
                f"{name}: tensor {cap_str(tname, 200)} is {dtype} {shape} but spans "
                f"{offsets[1] - offsets[0]:,} bytes"
            )
        spans.append((offsets[0], offsets[1]))
        if len(tensors) < MAX_ITEMS:
            tensors.append({"name": tname, "dtype": dtype, "shape": shape})
    spans.sort()
    expected = 0
    for begin, end in spans:
        if begin != expected:
            problems.append(f"{name}: tensor data has a gap or overlap at byte {begin:,} of the data section")
            break
        expected = end
    data_end = 8 + n + (spans[-1][1] if spans else 0)
    if size < data_end:
        problems.append(f"{name} is truncated: header says {data_end:,} bytes, file has {size:,}")
    elif size > data_end:
        problems.append(
            f"{name} has {size - data_end:,} bytes after the data its header describes ({data_end:,} bytes)"
        )
    facts = bounded(
        {
            "tensor_count": len(spans),
            "parameter_count": params,
            "dtypes": dtypes,
            "header_bytes": n,
            "data_bytes": data_end - 8 - n,
            "metadata": metadata if isinstance(metadata, dict) else {},
            "tensors": tensors,
        }
    )
    if len(spans) > MAX_ITEMS:
        facts["tensors_truncated"] = True
    return SniffResult(format="safetensors", facts=facts, complete=not problems, problems=problems)


def sniff_index(path: Path, name: str, exists: Callable[[str], bool]) -> SniffResult:
    """A sharded index: ``metadata.total_size``, ``weight_map``; complete when every shard is present.

    ``exists`` answers whether a path relative to the index's folder is part of the drop.
    """
    fmt = "safetensors-sharded"
    if os.path.getsize(path) > MAX_INDEX:
        return failed(fmt, f"{name} is over {MAX_INDEX:,} bytes; not read")
    try:
        index = json.loads(Path(path).read_bytes())
    except (ValueError, RecursionError) as exc:
        return failed(fmt, f"{name} is not valid JSON: {cap_str(str(exc), 200)}")
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict):
        return failed(fmt, f"{name} has no weight_map")
    metadata = index.get("metadata") if isinstance(index.get("metadata"), dict) else {}
    shards = sorted({s for s in weight_map.values() if isinstance(s, str)})
    problems = []
    missing = []
    for shard in shards:
        if not is_inside(shard):
            problems.append(f"{name} names shard {cap_str(shard, 200)}, which is outside the model folder")
        elif not exists(shard):
            missing.append(shard)
    if missing:
        shown = ", ".join(cap_str(s, 200) for s in missing[:5]) + (" …" if len(missing) > 5 else "")
        problems.append(f"{name} is missing {plural(len(missing), 'shard')} of {len(shards):,}: {shown}")
    facts = bounded(
        {
            "total_size": metadata.get("total_size"),
            "metadata": metadata,
            "tensor_count": len(weight_map),
            "shard_count": len(shards),
            "shards": shards,
            "missing_shards": missing,
        }
    )
    return SniffResult(format=fmt, facts=facts, complete=not problems, problems=problems)


def is_inside(rel: str) -> bool:
    """True when a relative path written inside a file stays within that file's folder."""
    if not rel or rel.startswith(("/", "\\")) or ":" in rel or "\\" in rel:
        return False
    norm = posixpath.normpath(rel)
    return norm != ".." and not norm.startswith("../")
