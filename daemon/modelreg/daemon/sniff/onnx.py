"""ONNX models, read as protobuf wire format by hand (no onnx package at runtime).

``ModelProto`` fields used: 1 ir_version, 2 producer_name, 3 producer_version,
4 domain, 5 model_version, 6 doc_string, 7 graph, 8 opset_import,
14 metadata_props. opset_import and metadata_props are written *after* the
graph, which may hold gigabytes of initializers, so the graph is walked field by
field and every tensor payload is skipped with a seek.

External data locations are checked: one that leaves the model's folder
(CVE-2022-25882, CVE-2024-27318) makes the model unsafe to load; one missing
from the drop makes it incomplete.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from .reader import Cursor, Malformed, Truncated
from .result import MAX_ITEMS, SniffResult, bounded, cap_str, failed
from .safetensors import is_inside

MAX_SMALL_MESSAGE = 1 << 20
MAX_FIELDS = 5_000_000

MODEL_FIELDS = {1: "ir_version", 2: "producer_name", 3: "producer_version", 4: "domain",
                5: "model_version", 6: "doc_string", 7: "graph", 8: "opset_import", 14: "metadata_props"}
DATA_TYPES = {
    1: "float", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 8: "string",
    9: "bool", 10: "float16", 11: "double", 12: "uint32", 13: "uint64", 14: "complex64",
    15: "complex128", 16: "bfloat16", 17: "float8e4m3fn", 18: "float8e4m3fnuz", 19: "float8e5m2",
    20: "float8e5m2fnuz", 21: "uint4", 22: "int4", 23: "float4e2m1",
}


class _Wire:
    """Iterates protobuf fields of one message range, with a global field budget."""

    def __init__(self, cur: Cursor) -> None:
        self.cur = cur
        self.budget = MAX_FIELDS

    def fields(self, start: int, end: int, where: str) -> Iterator[tuple[int, int, object]]:
        """Yield ``(field, wire_type, value)``; for wire type 2 the value is ``(offset, length)``
        and the cursor is moved past the field whatever the consumer read."""
        cur = self.cur
        cur.seek(start)
        while cur.pos < end:
            self.budget -= 1
            if self.budget < 0:
                raise Malformed(f"more than {MAX_FIELDS:,} protobuf fields")
            key = cur.varint(end)
            field, wire = key >> 3, key & 7
            if field == 0:
                raise Malformed(f"field number 0 in {where} at byte {cur.pos:,}")
            if wire == 0:
                yield field, wire, cur.varint(end)
            elif wire == 1:
                yield field, wire, self._fixed(8, end, where)
            elif wire == 5:
                yield field, wire, self._fixed(4, end, where)
            elif wire == 2:
                length = cur.varint(end)
                body = cur.pos
                if body + length > end:
                    if end < cur.size:
                        raise Malformed(f"field {field} of {where} overruns its enclosing message")
                    label = MODEL_FIELDS.get(field, "unknown") if where == "the model" else "unknown"
                    raise Truncated(body + length, end, f"field {field} ({label}) of {where}")
                yield field, wire, (body, length)
                cur.seek(body + length)
            else:
                raise Malformed(f"wire type {wire} in {where} at byte {cur.pos:,}")

    def _fixed(self, n: int, end: int, where: str) -> bytes:
        if self.cur.pos + n > end:
            raise Truncated(self.cur.pos + n, end, where)
        return self.cur.read(n)

    def text(self, span: tuple[int, int], cap: int = 4096) -> str:
        start, length = span
        self.cur.seek(start)
        data = self.cur.read(min(length, cap))
        text = data.decode("utf-8", "replace")
        return text if length <= cap else text + "…"

    def entry(self, span: tuple[int, int], where: str) -> tuple[str, str]:
        """A StringStringEntryProto (1 key, 2 value)."""
        key = value = ""
        start, length = span
        for field, wire, val in self.fields(start, start + length, where):
            if wire == 2 and field == 1:
                key = self.text(val, 1024)
            elif wire == 2 and field == 2:
                value = self.text(val)
        return key, value


def sniff(path: Path, name: str, exists: Callable[[str], bool]) -> SniffResult:
    """ir/opset, producer, metadata props, graph summary and external-data checks."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        wire = _Wire(Cursor(f, size))
        try:
            facts, externals = _model(wire, size)
        except Truncated as exc:
            if exc.size < size:
                overrun = f"{name} is not a valid ONNX model: a field overruns its enclosing message"
                return failed("onnx", overrun)
            return failed("onnx", f"{name} is truncated: {exc}")
        except Malformed as exc:
            return failed("onnx", f"{name} is not a valid ONNX model: {exc}")
    problems: list[str] = []
    unsafe = False
    missing = []
    for location in externals:
        if not is_inside(location):
            unsafe = True
            problems.append(
                f"{name} points its external data at {cap_str(location, 300)}, outside the model's "
                "folder: loading it would read that file"
            )
        elif not exists(location):
            missing.append(location)
    if missing:
        shown = ", ".join(cap_str(m, 200) for m in missing[:5]) + (" …" if len(missing) > 5 else "")
        problems.append(f"{name} needs external data that is not in the drop: {shown}")
    if "ir_version" not in facts:
        problems.append(f"{name} is not a valid ONNX model: it has no ir_version")
    elif "graph" not in facts:
        problems.append(f"{name} is not a valid ONNX model: it has no graph")
    complete = not missing and "ir_version" in facts and "graph" in facts
    return SniffResult(
        format="onnx", facts=bounded(facts), complete=complete, problems=problems, unsafe=unsafe
    )


def _model(wire: _Wire, size: int) -> tuple[dict, list[str]]:
    facts: dict[str, object] = {}
    opsets = []
    props: dict[str, str] = {}
    externals: list[str] = []
    for field, kind, val in wire.fields(0, size, "the model"):
        if kind == 0 and field in (1, 5):
            facts[MODEL_FIELDS[field]] = val
        elif kind == 2 and field in (2, 3, 4, 6):
            facts[MODEL_FIELDS[field]] = wire.text(val)
        elif kind == 2 and field == 7:
            facts["graph"] = _graph(wire, val, externals)
        elif kind == 2 and field == 8:
            if len(opsets) < MAX_ITEMS:
                opsets.append(_opset(wire, val))
        elif kind == 2 and field == 14:
            if len(props) < MAX_ITEMS:
                key, value = wire.entry(val, "metadata_props")
                props[key] = value
    facts["opset_import"] = opsets
    facts["metadata_props"] = props
    default = [o["version"] for o in opsets if o["domain"] in ("", "ai.onnx")]
    if default:
        facts["opset"] = default[0]
    if "graph" in facts:
        facts["parameter_count"] = facts["graph"]["parameter_count"]
    return facts, externals


def _opset(wire: _Wire, span: tuple[int, int]) -> dict:
    domain, version = "", None
    start, length = span
    for field, kind, val in wire.fields(start, start + length, "opset_import"):
        if kind == 2 and field == 1:
            domain = wire.text(val, 256)
        elif kind == 0 and field == 2:
            version = val
    return {"domain": domain, "version": version}


def _graph(wire: _Wire, span: tuple[int, int], externals: list[str]) -> dict:
    """GraphProto: 1 node, 2 name, 5 initializer, 11 input, 12 output, 15 sparse_initializer."""
    start, length = span
    nodes = 0
    op_types: dict[str, int] = {}
    inits = 0
    sparse = 0
    params = 0
    dtypes: dict[str, int] = {}
    inputs: list[str] = []
    outputs: list[str] = []
    name = ""
    for field, kind, val in wire.fields(start, start + length, "the graph"):
        if kind != 2:
            continue
        if field == 1:
            nodes += 1
            op = _node_op(wire, val)
            if op and (op in op_types or len(op_types) < MAX_ITEMS):
                op_types[op] = op_types.get(op, 0) + 1
        elif field == 2:
            name = wire.text(val, 1024)
        elif field == 5:
            inits += 1
            count, dtype = _tensor(wire, val, externals)
            params += count
            dtypes[dtype] = dtypes.get(dtype, 0) + 1
        elif field == 15:
            sparse += 1
        elif field in (11, 12):
            target = inputs if field == 11 else outputs
            if len(target) < MAX_ITEMS:
                target.append(_value_info_name(wire, val))
    return {
        "name": name,
        "node_count": nodes,
        "op_types": op_types,
        "initializer_count": inits,
        "sparse_initializer_count": sparse,
        "initializer_dtypes": dtypes,
        "parameter_count": params,
        "inputs": inputs,
        "outputs": outputs,
        "external_data": sorted(set(externals))[:MAX_ITEMS],
    }


def _node_op(wire: _Wire, span: tuple[int, int]) -> str | None:
    """NodeProto: 4 op_type, 7 domain -> ``op`` or ``domain::op``."""
    start, length = span
    if length > MAX_SMALL_MESSAGE:
        return None
    op = domain = ""
    for field, kind, val in wire.fields(start, start + length, "a node"):
        if kind == 2 and field == 4:
            op = wire.text(val, 256)
        elif kind == 2 and field == 7:
            domain = wire.text(val, 256)
    if not op:
        return None
    return f"{domain}::{op}" if domain and domain != "ai.onnx" else op


def _value_info_name(wire: _Wire, span: tuple[int, int]) -> str:
    start, length = span
    for field, kind, val in wire.fields(start, start + length, "a value info"):
        if kind == 2 and field == 1:
            return wire.text(val, 1024)
    return ""


def _tensor(wire: _Wire, span: tuple[int, int], externals: list[str]) -> tuple[int, str]:
    """TensorProto: 1 dims, 2 data_type, 13 external_data, 14 data_location; payloads are skipped."""
    start, length = span
    dims: list[int] = []
    dtype = 0
    location = None
    for field, kind, val in wire.fields(start, start + length, "an initializer"):
        if field == 1 and kind == 0:
            dims.append(val)
        elif field == 1 and kind == 2:
            dims.extend(_packed_varints(wire, val))
        elif field == 2 and kind == 0:
            dtype = val
        elif field == 13 and kind == 2:
            key, value = wire.entry(val, "external_data")
            if key == "location":
                location = value
    if len(dims) > 64:
        raise Malformed(f"an initializer with {len(dims)} dimensions")
    if location is not None and len(externals) < MAX_ITEMS:
        externals.append(location)
    # Dims are int64 on the wire; a negative one arrives as a huge unsigned varint.
    count = math.prod(dims) if all(d < 1 << 62 for d in dims) else 0
    return count, DATA_TYPES.get(dtype, f"type {dtype}")


def _packed_varints(wire: _Wire, span: tuple[int, int]) -> list[int]:
    start, length = span
    if length > 1024:
        raise Malformed(f"a {length:,}-byte dims list")
    wire.cur.seek(start)
    values = []
    while wire.cur.pos < start + length:
        values.append(wire.cur.varint(start + length))
    return values

