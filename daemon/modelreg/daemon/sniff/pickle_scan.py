"""Pickle-based files (``.pt .pth .bin .pkl .pickle .joblib .ckpt``…), scanned, never unpickled.

A static pass over the opcode stream lists every global the pickle would import
(``GLOBAL``, ``INST``, and ``STACK_GLOBAL`` whose module and name strings are
tracked through a small model of the unpickler's stack and memo). The file is
unsafe when any global is outside an allowlist of tensor-rebuild and container
helpers, when a global cannot be resolved statically, when the copyreg
extension registry is used, or when the stream could not be scanned to its end:
the verdict is only "safe" when the whole stream was seen.

The opcode table comes from :mod:`pickletools` (the one ``genops`` uses), but the
walk is done here so that a multi-gigabyte ``BINBYTES8`` payload (numpy arrays
pickled in-band, joblib files) is skipped with a seek instead of read into memory.

PyTorch zip checkpoints are scanned through every ``*/data.pkl`` (and TorchScript's
``constants.pkl``); legacy ``torch.save`` files are five pickles in a row.
Compressed joblib files are reported, not decompressed.
"""

from __future__ import annotations

import codecs
import os
import pickletools
import posixpath
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .reader import Cursor, Malformed, Truncated, zip_damage
from .result import MAX_ITEMS, SniffResult, bounded, cap_str, failed

PICKLE_EXTS = {".pt", ".pth", ".bin", ".pkl", ".pickle", ".joblib", ".jbl", ".ckpt", ".sav"}
# Extensions that other tools also use for non-pickle data: only a matching magic counts.
AMBIGUOUS_EXTS = {".bin", ".ckpt"}

MAX_OPS = 5_000_000
MAX_LINE = 65_536
MAX_KEPT_STRING = 1024
MAX_MEMBER_PICKLES = 64
MAX_NAMED = 20  # unsafe globals spelled out in problems; all are in facts["unsafe_globals"]
TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

_TORCH_STORAGES = {
    f"{kind}Storage"
    for kind in ("Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool",
                 "ComplexFloat", "ComplexDouble", "QInt8", "QUInt8", "QInt32", "QUInt4x2", "QUInt2x4",
                 "Untyped", "Typed", "Float8_e4m3fn", "Float8_e5m2", "UInt16", "UInt32", "UInt64")
}
_TORCH_DTYPES = {
    "float32", "float", "float64", "double", "float16", "half", "bfloat16", "int64", "long", "int32",
    "int", "int16", "short", "int8", "uint8", "uint16", "uint32", "uint64", "bool", "complex64",
    "complex128", "cfloat", "cdouble", "qint8", "quint8", "qint32", "quint4x2", "float8_e4m3fn",
    "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz",
}
ALLOWED: frozenset[tuple[str, str]] = frozenset(
    {("torch._utils", n) for n in (
        "_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
        "_rebuild_parameter_with_state", "_rebuild_qtensor", "_rebuild_sparse_tensor",
        "_rebuild_meta_tensor_no_storage", "_rebuild_device_tensor_from_numpy", "_rebuild_nested_tensor",
        "_rebuild_wrapper_subclass",
    )}
    | {("torch._tensor", "_rebuild_from_type_v2"), ("torch._tensor", "_rebuild_from_type")}
    | {("torch", n) for n in _TORCH_STORAGES | _TORCH_DTYPES}
    | {("torch", n) for n in ("Size", "device", "strided", "sparse_coo", "per_tensor_affine",
                              "per_channel_affine", "per_tensor_symmetric", "per_channel_symmetric")}
    | {("torch.nn.parameter", "Parameter"), ("torch.serialization", "_get_layout")}
    | {("collections", n) for n in ("OrderedDict", "defaultdict", "Counter", "deque")}
    | {("builtins", n) for n in ("set", "frozenset", "dict", "list", "tuple", "int", "float", "complex",
                                 "bool", "bytes", "bytearray", "str", "slice")}
    | {("_codecs", "encode")}
    | {(m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray")
       for n in ("_reconstruct", "scalar")}
    | {(m, "_frombuffer") for m in ("numpy.core.numeric", "numpy._core.numeric")}
    | {("numpy", "ndarray"), ("numpy", "dtype")}
)
_ALIASES = {"__builtin__": "builtins", "copy_reg": "copyreg"}
_FRIENDLY = {"posix": "os", "nt": "os"}
_JOBLIB_WRAPPERS = {
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ("sklearn.externals.joblib.numpy_pickle", "NumpyArrayWrapper"),
}

COMPRESSIONS = (
    (b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"), (b"\x04\x22\x4d\x18", "lz4"),
    (b"ZF", "zlib (old joblib)"),
)


def compression(head: bytes) -> str | None:
    """The compression a joblib-style file starts with, if any."""
    for magic, kind in COMPRESSIONS:
        if head.startswith(magic):
            return kind
    if len(head) >= 2 and head[0] & 0x0F == 8 and head[0] >> 4 <= 7 and (head[0] << 8 | head[1]) % 31 == 0:
        return "zlib"
    return None


def is_zip(head: bytes) -> bool:
    return head[:4] in (b"PK\x03\x04", b"PK\x05\x06")


# --- opcode model ---------------------------------------------------------------------------------

_MARK = object()
_OPAQUE = object()
_JOBLIB_CLASS = object()
_JOBLIB_ARRAY = object()

_FIXED = {"uint1": "<B", "uint2": "<H", "int4": "<i", "uint4": "<I", "uint8": "<Q", "float8": ">d"}
_PREFIXED = {
    "string1": "<B", "bytes1": "<B", "unicodestring1": "<B", "long1": "<B", "string4": "<i", "long4": "<i",
    "bytes4": "<I", "unicodestring4": "<I", "bytes8": "<Q", "bytearray8": "<Q", "unicodestring8": "<Q",
}
_LINES = {"stringnl", "stringnl_noescape", "decimalnl_short", "decimalnl_long", "floatnl", "unicodestringnl"}


@dataclass(frozen=True)
class _Op:
    name: str
    arg: str | None
    pops: int  # plain items popped (below the mark when ``to_mark``)
    to_mark: bool
    pushes: int


def _op_table() -> dict[int, _Op]:
    table = {}
    for op in pickletools.opcodes:
        before = op.stack_before
        to_mark = pickletools.markobject in before
        pops = before.index(pickletools.markobject) if to_mark else len(before)
        arg = op.arg.name if op.arg else None
        if arg and arg not in {*_FIXED, *_PREFIXED, *_LINES, "stringnl_noescape_pair"}:
            # A new pickle protocol must fail the import (and the tests), not scan wrongly.
            raise RuntimeError(f"pickletools argument kind {arg} is not handled")
        table[ord(op.code)] = _Op(op.name, arg, pops, to_mark, len(op.stack_after))
    return table


_OPS = _op_table()
_STRING_PUSHES = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING",
                  "SHORT_BINSTRING"}


@dataclass
class _Scan:
    globals: dict[str, None] = field(default_factory=dict)  # ordered set of "module.name"
    unsafe_globals: dict[str, None] = field(default_factory=dict)
    unresolved: int = 0
    extensions: int = 0
    persistent_ids: int = 0
    protocol: int = 0
    ops: int = 0
    pickles: int = 0
    sklearn_version: str | None = None
    stopped: str | None = None
    legacy_torch: bool = False

    def add_global(self, module: str, name: str) -> None:
        module = _ALIASES.get(module, module)
        label = cap_str(f"{module}.{name}", 512)
        if label not in self.globals and len(self.globals) < MAX_ITEMS:
            self.globals[label] = None
        if (module, name) not in ALLOWED and len(self.unsafe_globals) < MAX_ITEMS:
            self.unsafe_globals[label] = None

    @property
    def unsafe(self) -> bool:
        return bool(self.unsafe_globals or self.unresolved or self.extensions or self.stopped)


def _read_arg(cur: Cursor, op: _Op) -> object:
    kind = op.arg
    if kind is None:
        return None
    if kind in _FIXED:
        fmt = _FIXED[kind]
        return struct.unpack(fmt, cur.read(struct.calcsize(fmt), op.name))[0]
    if kind in _PREFIXED:
        fmt = _PREFIXED[kind]
        (n,) = struct.unpack(fmt, cur.read(struct.calcsize(fmt), op.name))
        if n < 0:
            raise Malformed(f"{op.name} with negative length at byte {cur.pos:,}")
        if kind.startswith("long") and n <= 64:
            return int.from_bytes(cur.read(n, op.name), "little", signed=True)
        if kind.startswith(("unicode", "string")) and n <= MAX_KEPT_STRING:
            raw = cur.read(n, op.name)
            if kind.startswith("unicode"):
                return raw.decode("utf-8", "surrogatepass")
            return raw.decode("latin-1")
        cur.skip(n, op.name)
        return None
    if kind == "stringnl_noescape_pair":
        first, second = cur.readline(MAX_LINE), cur.readline(MAX_LINE)
        if first is None or second is None:
            raise Malformed(f"{op.name} with a name over {MAX_LINE:,} bytes")
        return first[:-1].decode("utf-8", "replace"), second[:-1].decode("utf-8", "replace")
    line = cur.readline(MAX_LINE)
    if line is None or len(line) > MAX_KEPT_STRING:
        return None
    text = line[:-1]
    if kind in ("decimalnl_short", "decimalnl_long"):
        try:
            return int(text.rstrip(b"L"))
        except ValueError:
            raise Malformed(f"{op.name} argument is not a number") from None
    if kind == "stringnl":
        if len(text) >= 2 and text[:1] == text[-1:] and text[:1] in (b"'", b'"'):
            return codecs.escape_decode(text[1:-1])[0].decode("latin-1")
        raise Malformed(f"{op.name} argument is not quoted")
    if kind == "unicodestringnl":
        return text.decode("raw-unicode-escape")
    return text.decode("latin-1")


def _scan_pickle(cur: Cursor, st: _Scan) -> None:
    """Walk one pickle up to its STOP opcode (or to where scanning has to stop)."""
    stack: list[object] = []
    memo: dict[object, object] = {}
    first = st.pickles == 0
    while True:
        st.ops += 1
        if st.ops > MAX_OPS:
            st.stopped = f"the scan stopped after {MAX_OPS:,} opcodes"
            return
        pos = cur.pos
        code = cur.read(1, "the next opcode (the pickle has no STOP)")[0]
        op = _OPS.get(code)
        if op is None:
            raise Malformed(f"byte 0x{code:02x} at offset {pos:,} is not a pickle opcode")
        arg = _read_arg(cur, op)
        name = op.name
        if name == "STOP":
            st.pickles += 1
            return
        if name in _STRING_PUSHES:
            stack.append(arg if isinstance(arg, str) else _OPAQUE)
            if st.sklearn_version == "" and isinstance(arg, str):
                st.sklearn_version = cap_str(arg, 64)
            elif arg == "_sklearn_version" and st.sklearn_version is None:
                st.sklearn_version = ""
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            if stack:
                memo[arg] = stack[-1]
        elif name == "MEMOIZE":
            if stack:
                memo[len(memo)] = stack[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(memo.get(arg, _OPAQUE))
        elif name in ("GLOBAL", "INST"):
            module, gname = arg
            st.add_global(module, gname)
            if name == "INST":
                _pop_to_mark(stack)
            stack.append(_JOBLIB_CLASS if (module, gname) in _JOBLIB_WRAPPERS else _OPAQUE)
        elif name == "STACK_GLOBAL":
            gname = stack.pop() if stack else _OPAQUE
            module = stack.pop() if stack else _OPAQUE
            if isinstance(module, str) and isinstance(gname, str):
                st.add_global(module, gname)
                stack.append(_JOBLIB_CLASS if (module, gname) in _JOBLIB_WRAPPERS else _OPAQUE)
            else:
                st.unresolved += 1
                stack.append(_OPAQUE)
        elif name in ("NEWOBJ", "REDUCE"):
            if stack:
                stack.pop()
            cls = stack.pop() if stack else _OPAQUE
            stack.append(_JOBLIB_ARRAY if cls is _JOBLIB_CLASS else _OPAQUE)
        elif name == "BUILD":
            if stack:
                stack.pop()
            if stack and stack[-1] is _JOBLIB_ARRAY:
                st.stopped = (
                    "joblib stores numpy array bytes inline after its NumpyArrayWrapper; "
                    "the rest was not scanned"
                )
                return
        elif name in ("EXT1", "EXT2", "EXT4"):
            st.extensions += 1
            stack.append(_OPAQUE)
        elif name == "DUP":
            stack.append(stack[-1] if stack else _OPAQUE)
        elif name == "MARK":
            stack.append(_MARK)
        elif name == "PROTO":
            st.protocol = max(st.protocol, arg)
        else:
            if name in ("PERSID", "BINPERSID"):
                st.persistent_ids += 1
            if first and name == "LONG1" and arg == TORCH_LEGACY_MAGIC:
                st.legacy_torch = True
            if op.to_mark:
                _pop_to_mark(stack)
            for _ in range(op.pops):
                if stack:
                    stack.pop()
            stack.extend([_OPAQUE] * op.pushes)


def _pop_to_mark(stack: list[object]) -> None:
    while stack:
        if stack.pop() is _MARK:
            return


def _scan_stream(cur: Cursor, st: _Scan, legacy_ok: bool) -> None:
    _scan_pickle(cur, st)
    # torch.save's legacy format: magic number, protocol version, sys info, the object, storage keys.
    if legacy_ok and st.legacy_torch:
        while st.pickles < 5 and not st.stopped:
            _scan_pickle(cur, st)


# --- files ----------------------------------------------------------------------------------------


def sniff(path: Path, name: str, head: bytes) -> SniffResult | None:
    """Scan a pickle-based file. ``None`` when it is not one (e.g. a ``.bin`` of raw floats)."""
    ext = Path(name).suffix.lower()
    known = ext in PICKLE_EXTS
    if is_zip(head):
        return _torch_zip(path, name, known)
    kind = compression(head)
    if kind and known:
        return SniffResult(
            format="pickle",
            facts={"compression": kind, "scanned": False},
            unsafe=True,
            problems=[
                f"{name} is {kind}-compressed, not scanned: its pickle could not be checked, "
                "so it is treated as unsafe to load"
            ],
        )
    magic = len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5
    if not magic and (not known or ext in AMBIGUOUS_EXTS):
        return None
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        st = _Scan()
        try:
            _scan_stream(Cursor(f, size), st, legacy_ok=True)
        except (Truncated, Malformed) as exc:
            # A stream that fails to parse is only "not a pickle" if nothing was imported before the
            # failure: pickle.load runs every REDUCE it reaches before it meets the bad bytes.
            if (not known or ext in AMBIGUOUS_EXTS) and not (st.globals or st.unresolved or st.extensions):
                return None
            return _result("pickle", name, st, {}, exc)
    return _result("pickle", name, st, {"legacy_torch": st.legacy_torch} if st.legacy_torch else {}, None)


def _result(fmt: str, name: str, st: _Scan, extra: dict, error: Exception | None) -> SniffResult:
    problems = []
    complete = True
    if isinstance(error, Truncated):
        complete = False
        problems.append(
            f"{name} is truncated: its pickle stream ends at byte {error.size:,}, before its STOP opcode"
        )
    elif error is not None:
        complete = False
        problems.append(f"{name} is not a valid pickle: {error}")
    unsafe_globals = list(st.unsafe_globals)
    for label in unsafe_globals[:MAX_NAMED]:
        module, _, attr = label.rpartition(".")
        alias = f" ({_FRIENDLY[module]}.{attr})" if module in _FRIENDLY else ""
        problems.append(
            f"{name} would import {label}{alias} when loaded: outside the tensor-rebuild allowlist"
        )
    if len(unsafe_globals) > MAX_NAMED:
        problems.append(f"{name} would import {len(unsafe_globals) - MAX_NAMED} more globals outside the allowlist")
    if st.unresolved:
        problems.append(
            f"{name} builds {st.unresolved} import name(s) at load time that a static scan cannot read"
        )
    if st.extensions:
        problems.append(f"{name} uses the copyreg extension registry ({st.extensions} time(s))")
    if st.stopped:
        problems.append(f"{name}: {st.stopped}, so it cannot be vouched for")
    facts = {
        "globals": list(st.globals),
        "unsafe_globals": list(st.unsafe_globals),
        "protocol": st.protocol,
        "opcodes": st.ops,
        "scan_complete": error is None and not st.stopped,
        **extra,
    }
    if st.persistent_ids:
        facts["persistent_ids"] = st.persistent_ids
    if st.sklearn_version:
        facts["sklearn_version"] = st.sklearn_version
    first = next(iter(st.globals), None)
    if first:
        facts["first_global"] = first
    return SniffResult(
        format=fmt,
        facts=bounded(facts),
        complete=complete,
        problems=problems,
        unsafe=st.unsafe or error is not None,
    )


def _torch_zip(path: Path, name: str, known: bool) -> SniffResult | None:
    size = os.path.getsize(path)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        if not known:
            return None
        return failed("torch-zip", f"{name} is a damaged or truncated zip: {exc}")
    with zf:
        infos = zf.infolist()
        pickles = [
            i for i in infos
            if posixpath.basename(i.filename) in ("data.pkl", "constants.pkl")
        ]
        if not pickles:
            return None
        damage = zip_damage(zf, size)
        if damage:
            return failed("torch-zip", f"{name} is truncated: {damage}")
        st = _Scan()
        error: Exception | None = None
        if len(pickles) > MAX_MEMBER_PICKLES:
            st.stopped = f"only {MAX_MEMBER_PICKLES} of its {len(pickles)} pickles were scanned"
        for info in pickles[:MAX_MEMBER_PICKLES]:
            try:
                with zf.open(info) as member:
                    _scan_stream(Cursor(member, info.file_size), st, legacy_ok=False)
            except (Truncated, Malformed, zipfile.BadZipFile, EOFError) as exc:
                error = Malformed(f"{info.filename}: {exc}")
                break
        storages = [i for i in infos if "/data/" in i.filename and not i.filename.endswith("/")]
        small = {}
        for key in ("version", "byteorder"):
            # archive/version, not archive/.data/version (the storage format, not the archive's).
            member = next(
                (i for i in infos if i.filename.count("/") == 1 and i.filename.endswith("/" + key)
                 and i.file_size <= 64),
                None,
            )
            if member:
                try:
                    small[key] = zf.read(member).decode("utf-8", "replace").strip()
                except (zipfile.BadZipFile, EOFError) as exc:
                    error = error or Malformed(f"{member.filename}: {exc}")
        extra = {
            "archive_files": len(infos),
            "pickles": [i.filename for i in pickles],
            "storage_count": len(storages),
            "storage_bytes": sum(i.file_size for i in storages),
            "torchscript": any(
                i.filename.endswith("/constants.pkl") or "/code/" in i.filename for i in infos
            ),
            **small,
        }
    return _result("torch-zip", name, st, extra, error)
