"""GGUF files (llama.cpp).

Layout: ``GGUF``, u32 version, u64 tensor count, u64 key/value count (u32 counts
in version 1), typed key/values, tensor infos (name, n_dims, dims innermost
first, ggml type, offset), then tensor data starting at the next multiple of
``general.alignment`` (32 by default).

Chat templates are Jinja programs (CVE-2024-34359): only their length is
recorded, their text is skipped unread. Big arrays (vocabularies, merges) are
skipped with only their length recorded.
"""

from __future__ import annotations

import math
import os
import re
import struct
from pathlib import Path

from .reader import Cursor, Malformed, Truncated
from .result import MAX_ITEMS, SniffResult, bounded, failed

MAGIC = b"GGUF"
MAX_TENSORS = 1_000_000
MAX_KVS = 10_000
MAX_KEY = 8192
MAX_TYPE_NAMES = 64
MAX_STRING_KEPT = 4096
MAX_ARRAY_KEPT = 64
MAX_ELEMENTS_WALKED = 10_000_000
MAX_DIMS = 8

STRING, ARRAY = 8, 9
# value type -> struct format
SCALARS = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d",
}
TYPE_NAMES = {
    0: "uint8", 1: "int8", 2: "uint16", 3: "int16", 4: "uint32", 5: "int32", 6: "float32",
    7: "bool", 8: "string", 9: "array", 10: "uint64", 11: "int64", 12: "float64",
}

# ggml type -> (name, elements per block, bytes per block), as in gguf-py's GGML_QUANT_SIZES.
GGML_TYPES = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 40),
    10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292), 16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98), 19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2),
    26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66), 39: ("MXFP4", 32, 17),
    40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18),
}

# general.file_type -> llama.cpp's name for the quantisation mix (LlamaFileType without MOSTLY_).
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
    23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S",
    29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0",
    38: "MXFP4_MOE", 39: "NVFP4", 40: "Q1_0", 1024: "GUESSED",
}

SPLIT_NAME = re.compile(r"^(?P<stem>.*)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")


class _Skipped:
    """A value the sniffer deliberately did not keep."""

    def __init__(self, summary: dict) -> None:
        self.summary = summary


def sniff(path: Path, name: str) -> SniffResult:
    """Architecture, quantisation, context length, parameter count and the data-end check."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        cur = Cursor(f, size)
        try:
            return _parse(cur, name, size)
        except Truncated as exc:
            return failed("gguf", f"{name} is truncated: {exc}")
        except Malformed as exc:
            return failed("gguf", f"{name} is not a valid GGUF file: {exc}")


def _parse(cur: Cursor, name: str, size: int) -> SniffResult:
    if cur.read(4, "the magic") != MAGIC:
        raise Malformed("missing GGUF magic")
    version = cur.u32()
    if version in (1 << 24, 2 << 24, 3 << 24):
        raise Malformed("big-endian GGUF files are not supported")
    if version not in (1, 2, 3):
        raise Malformed(f"unsupported GGUF version {version}")
    count = cur.u32 if version == 1 else cur.u64
    n_tensors, n_kv = count(), count()
    if n_tensors > MAX_TENSORS:
        raise Malformed(f"{n_tensors:,} tensors announced, over the {MAX_TENSORS:,} limit")
    if n_kv > MAX_KVS:
        raise Malformed(f"{n_kv:,} metadata keys announced, over the {MAX_KVS:,} limit")
    walker = _Walker(cur, count)
    meta: dict[str, object] = {}
    chat_templates: dict[str, int] = {}
    for _ in range(n_kv):
        key = walker.key()
        vtype = cur.u32()
        if key.startswith("tokenizer.chat_template") and vtype == STRING:
            length = count()
            cur.skip(length, key)  # never read, never rendered
            chat_templates[key] = length
            continue
        meta[key] = walker.value(vtype, 0)

    alignment = meta.get("general.alignment", 32)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise Malformed(f"general.alignment {alignment!r} is not a power of two")

    params = 0
    type_counts: dict[str, int] = {}
    tensors = []
    last_end = 0
    last_unknown = None
    for _ in range(n_tensors):
        tname = walker.key()
        n_dims = cur.u32()
        if n_dims > MAX_DIMS:
            raise Malformed(f"tensor {tname} has {n_dims} dimensions")
        dims = [count() for _ in range(n_dims)]
        gtype = cur.u32()
        offset = cur.u64()
        elements = math.prod(dims)
        params += elements
        known = GGML_TYPES.get(gtype)
        tname_type = known[0] if known else f"type {gtype}"
        counted = tname_type if tname_type in type_counts or len(type_counts) < MAX_TYPE_NAMES else "other"
        type_counts[counted] = type_counts.get(counted, 0) + 1
        if known:
            _, block, block_bytes = known
            end = offset + -(-elements // block) * block_bytes
            if end > last_end:
                last_end, last_unknown = end, None
        elif offset >= last_end:
            last_end, last_unknown = offset, tname_type
        if len(tensors) < MAX_ITEMS:
            # Stored innermost first; reversed gives the shape as numpy / PyTorch print it.
            tensors.append({"name": tname, "type": tname_type, "shape": dims[::-1]})

    data_start = -(-cur.pos // alignment) * alignment if n_tensors else cur.pos
    data_end = data_start + last_end
    problems = []
    if size < data_end:
        problems.append(f"{name} is truncated: its tensors end at byte {data_end:,}, file has {size:,}")

    def plain(key: str) -> object:
        value = meta.get(key)
        return None if isinstance(value, _Skipped) else value

    arch = plain("general.architecture")
    arch_key = arch if isinstance(arch, str) else ""

    def arch_fact(suffix: str) -> object:
        return plain(f"{arch_key}.{suffix}")

    file_type = plain("general.file_type")
    facts: dict[str, object] = {
        "gguf_version": version,
        "architecture": arch,
        "name": plain("general.name"),
        "file_type": file_type,
        "file_type_name": FILE_TYPES.get(file_type) if isinstance(file_type, int) else None,
        "context_length": arch_fact("context_length"),
        "embedding_length": arch_fact("embedding_length"),
        "block_count": arch_fact("block_count"),
        "head_count": arch_fact("attention.head_count"),
        "parameter_count": params,
        "tensor_count": n_tensors,
        "tensor_types": type_counts,
        "alignment": alignment,
        "data_offset": data_start,
        "has_chat_template": bool(chat_templates),
        "chat_template_lengths": chat_templates,
        "metadata": {k: (v.summary if isinstance(v, _Skipped) else v) for k, v in meta.items()},
        "tensors": tensors,
    }
    if last_unknown:
        facts["completeness_unverified"] = f"the last tensor has {last_unknown}, whose size is unknown"
    if size > data_end + alignment:
        facts["trailing_bytes"] = size - data_end
    split = _split_facts(meta)
    if split:
        facts["split"] = split
    facts = {k: v for k, v in facts.items() if v is not None}
    return SniffResult(
        format="gguf",
        facts=bounded(facts),
        complete=not problems,
        problems=problems,
        lineage=_lineage(meta),
    )


class _Walker:
    """Reads keys and typed values, skipping what is too big to keep."""

    def __init__(self, cur: Cursor, count) -> None:
        self.cur = cur
        self.count = count
        self.walked = 0

    def key(self) -> str:
        n = self.count()
        if n > MAX_KEY:
            raise Malformed(f"a {n:,}-byte key or tensor name at byte {self.cur.pos:,}")
        return self.cur.read(n, "a key").decode("utf-8", "replace")

    def value(self, vtype: int, depth: int) -> object:
        cur = self.cur
        fmt = SCALARS.get(vtype)
        if fmt:
            return cur.unpack(fmt)[0]
        if vtype == STRING:
            n = self.count()
            if n <= MAX_STRING_KEPT:
                return cur.read(n, "a string").decode("utf-8", "replace")
            cur.skip(n, "a string")
            return _Skipped({"type": "string", "length": n})
        if vtype == ARRAY:
            if depth >= 3:
                raise Malformed("arrays nested more than 3 deep")
            etype = cur.u32()
            n = self.count()
            self.walked += n
            if self.walked > MAX_ELEMENTS_WALKED:
                raise Malformed(f"metadata arrays exceed {MAX_ELEMENTS_WALKED:,} elements")
            summary = {"type": "array", "element_type": TYPE_NAMES.get(etype, str(etype)), "length": n}
            efmt = SCALARS.get(etype)
            if efmt:
                width = struct.calcsize(efmt)
                if n <= MAX_ARRAY_KEPT:
                    return list(struct.unpack(f"<{n}{efmt[1]}", cur.read(n * width, "an array")))
                cur.skip(n * width, "an array")
                return _Skipped(summary)
            if etype == STRING and n > MAX_ARRAY_KEPT:
                for _ in range(n):
                    cur.skip(self.count(), "an array of strings")
                return _Skipped(summary)
            if etype in (STRING, ARRAY):
                keep = n <= MAX_ARRAY_KEPT
                items = []
                for _ in range(n):
                    item = self.value(etype, depth + 1)
                    if keep:
                        items.append(item)
                if keep and not any(isinstance(i, _Skipped) for i in items):
                    return items
                return _Skipped(summary)
            raise Malformed(f"array of unknown value type {etype}")
        raise Malformed(f"unknown value type {vtype} at byte {cur.pos:,}")


def _split_facts(meta: dict) -> dict | None:
    count = meta.get("split.count")
    if not isinstance(count, int) or count <= 1:
        return None
    facts = {"count": count, "no": meta.get("split.no"), "tensors_count": meta.get("split.tensors.count")}
    return {k: v for k, v in facts.items() if isinstance(v, int)}


def _repo_id(meta: dict, prefix: str) -> str | None:
    url = meta.get(f"{prefix}.repo_url")
    if isinstance(url, str):
        m = re.match(r"https?://huggingface\.co/(?:datasets/)?([^/\s]+/[^/\s]+)", url)
        if m:
            return m.group(1)
    org, name = meta.get(f"{prefix}.organization"), meta.get(f"{prefix}.name")
    if isinstance(name, str) and name:
        return f"{org}/{name}" if isinstance(org, str) and org else name
    return url if isinstance(url, str) and url else None


def _lineage(meta: dict) -> list[dict]:
    edges = []
    kinds = (("base_model", "derived_from", "model"), ("dataset", "trained_on", "dataset"))
    for kind, relation, field in kinds:
        count = meta.get(f"general.{kind}.count")
        if not isinstance(count, int):
            continue
        for i in range(min(count, 64)):
            ref = _repo_id(meta, f"general.{kind}.{i}")
            if ref:
                edges.append({"relation": relation, field: ref[:512]})
    return edges
