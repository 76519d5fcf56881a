"""Pickle-based files: the globals a load would import, listed by a static scan that never loads."""

from __future__ import annotations

import bz2
import collections
import gzip
import lzma
import os
import pickle
import subprocess
import sys
import types
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from sniff_fixtures import assert_json_safe

from modelreg.daemon.sniff import sniff_drop, sniff_file

OS_SYSTEM = {"posix.system", "nt.system", "os.system"}


class Evil:
    """Unpickling this runs a shell command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class LinearRegression:
    """Stands in for an estimator class: its module is this test module, not an allowlisted one."""

    def __getstate__(self):
        return {"coef_": [1.0, 2.0], "_sklearn_version": "1.5.2"}


def evil_bytes(marker: Path, protocol: int) -> bytes:
    return pickle.dumps(Evil(f"echo pwned > {marker}"), protocol=protocol)


def test_the_payload_is_real_when_unpickled(tmp_path: Path) -> None:
    """Control: loading the fixture in a child process runs the command, so the tests below mean something."""
    control = tmp_path / "CONTROL"
    payload = tmp_path / "control.pkl"
    payload.write_bytes(evil_bytes(control, 4))

    code = f"import pickle; pickle.loads(open({str(payload)!r}, 'rb').read())"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)

    assert control.exists()


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
def test_os_system_is_listed_flagged_and_never_run(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "MARKER"
    path = tmp_path / "model.pkl"
    path.write_bytes(evil_bytes(marker, protocol))

    result = sniff_file(path)
    drop = sniff_drop(tmp_path, ["model.pkl"])

    assert not marker.exists()
    assert result.format == "pickle"
    assert result.unsafe and drop.unsafe
    assert OS_SYSTEM & set(result.facts["globals"]), result.facts
    assert OS_SYSTEM & set(result.facts["unsafe_globals"])
    assert any("model.pkl would import" in p and "system" in p for p in result.problems)
    assert result.complete


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numpy_state_dict_is_safe(tmp_path: Path, protocol: int) -> None:
    state = collections.OrderedDict(
        weight=np.arange(12, dtype=np.float32).reshape(3, 4),
        steps=np.int64(10),
        big=np.zeros(70_000, np.float64),
    )
    path = tmp_path / "weights.pkl"
    path.write_bytes(pickle.dumps(state, protocol=protocol))

    result = sniff_file(path)

    assert result.complete and not result.unsafe, result.problems
    assert "collections.OrderedDict" in result.facts["globals"]
    assert any(g.endswith(("._reconstruct", "._frombuffer")) for g in result.facts["globals"])
    assert result.facts["scan_complete"] is True
    assert_json_safe(result)


def test_stack_global_names_are_tracked_through_the_memo(tmp_path: Path) -> None:
    # Memoise 'builtins'/'len', push and pop a decoy pair, then import through the memo.
    # A scanner that pairs the last two strings it saw would report collections.OrderedDict.
    data = (
        b"\x80\x04"
        b"\x8c\x08builtins\x94\x8c\x03len\x94" b"00"
        b"\x8c\x0bcollections\x8c\x0bOrderedDict" b"00"
        b"h\x00h\x01\x93" b"\x8c\x03abc\x85R."
    )
    assert pickle.loads(data) == 3  # harmless: proves this is what the unpickler really imports
    path = tmp_path / "hidden.pkl"
    path.write_bytes(data)

    result = sniff_file(path)

    assert result.facts["globals"] == ["builtins.len"]
    assert result.unsafe


def test_import_names_built_at_load_time_are_unsafe(tmp_path: Path) -> None:
    path = tmp_path / "computed.pkl"
    path.write_bytes(b"\x80\x04))\x93.")

    result = sniff_file(path)

    assert result.unsafe
    assert any("cannot read" in p for p in result.problems)


def test_estimator_class_and_sklearn_version(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    path.write_bytes(pickle.dumps(LinearRegression(), protocol=4))

    result = sniff_file(path)

    assert result.facts["first_global"] == f"{__name__}.LinearRegression"
    assert result.facts["sklearn_version"] == "1.5.2"
    assert result.unsafe


@pytest.mark.parametrize(
    ("kind", "compress"),
    [("gzip", gzip.compress), ("zlib", zlib.compress), ("bz2", bz2.compress), ("xz", lzma.compress)],
)
def test_compressed_joblib_is_reported_not_decompressed(tmp_path: Path, kind: str, compress) -> None:
    marker = tmp_path / "MARKER"
    path = tmp_path / "model.joblib"
    path.write_bytes(compress(evil_bytes(marker, 4)))

    result = sniff_file(path)

    assert result.format == "pickle"
    assert result.facts == {"compression": kind, "scanned": False}
    assert result.unsafe
    assert any("compressed, not scanned" in p for p in result.problems)
    assert not marker.exists()


def test_joblib_inline_array_bytes_are_not_read_as_opcodes(tmp_path: Path) -> None:
    raw_array = b"cposix\nsystem\n" * 4  # looks like an import if misread as opcodes
    data = b"\x80\x02cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81}b" + raw_array + b"."
    path = tmp_path / "arrays.joblib"
    path.write_bytes(data)

    result = sniff_file(path)

    assert result.facts["globals"] == ["joblib.numpy_pickle.NumpyArrayWrapper"]
    assert result.facts["scan_complete"] is False
    assert result.unsafe


def test_truncated_pickle_is_incomplete(tmp_path: Path) -> None:
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickle.dumps({"a": list(range(100))}, protocol=4)[:-20])

    result = sniff_file(path)

    assert not result.complete
    assert any("cut.pkl is truncated" in p for p in result.problems)


def test_pickle_under_an_unknown_name_is_still_found(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    path = tmp_path / "weights.dat"
    path.write_bytes(evil_bytes(marker, 2))
    random_bin = tmp_path / "raw.bin"
    random_bin.write_bytes(np.random.default_rng(0).random(1000).astype(np.float32).tobytes())

    assert sniff_file(path).unsafe
    assert sniff_file(random_bin).format is None
    assert not marker.exists()


def test_legacy_torch_save_format_is_scanned_past_its_header_pickles(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    data = b"".join(
        pickle.dumps(obj, protocol=2)
        for obj in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True})
    )
    data += evil_bytes(marker, 2) + pickle.dumps(["0"], protocol=2) + b"\x80\x02" + bytes(64)
    path = tmp_path / "old.pt"
    path.write_bytes(data)

    result = sniff_file(path)

    assert result.facts["legacy_torch"] is True
    assert OS_SYSTEM & set(result.facts["globals"])
    assert result.unsafe and result.complete
    assert not marker.exists()


# --- PyTorch zip checkpoints, written the way torch.save lays them out -----------------------------


def torch_data_pkl(monkeypatch: pytest.MonkeyPatch) -> bytes:
    """data.pkl for a one-tensor state dict, pickled by torch's own recipe against stand-in modules."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called")

    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    torch.FloatStorage, utils._rebuild_tensor_v2 = FloatStorage, _rebuild_tensor_v2
    storage = object()

    class Tensor:
        def __reduce_ex__(self, protocol):
            return (_rebuild_tensor_v2, (storage, 0, (2, 3), (3, 1), False, collections.OrderedDict()))

    class TorchPickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", FloatStorage, "0", "cpu", 6) if obj is storage else None

    with monkeypatch.context() as m:
        m.setitem(sys.modules, "torch", torch)
        m.setitem(sys.modules, "torch._utils", utils)
        import io

        buffer = io.BytesIO()
        TorchPickler(buffer, protocol=2).dump(collections.OrderedDict(weight=Tensor()))
    return buffer.getvalue()


def write_torch_zip(path: Path, data_pkl: bytes) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", data_pkl)
        zf.writestr("archive/byteorder", "little")
        zf.writestr("archive/data/0", np.arange(6, dtype=np.float32).tobytes())
        zf.writestr("archive/version", "3\n")


def test_torch_zip_with_tensor_rebuilds_only_is_safe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "pytorch_model.bin"
    write_torch_zip(path, torch_data_pkl(monkeypatch))

    result = sniff_file(path)

    assert result.format == "torch-zip"
    assert result.complete and not result.unsafe, result.problems
    assert set(result.facts["globals"]) == {
        "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch.FloatStorage",
    }
    assert result.facts["persistent_ids"] == 1
    assert result.facts["storage_count"] == 1 and result.facts["storage_bytes"] == 24
    assert result.facts["byteorder"] == "little"
    assert_json_safe(result)


def test_torch_zip_with_os_system_is_unsafe(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    path = tmp_path / "model.pt"
    write_torch_zip(path, evil_bytes(marker, 2))

    result = sniff_file(path)

    assert result.format == "torch-zip" and result.unsafe
    assert OS_SYSTEM & set(result.facts["unsafe_globals"])
    assert not marker.exists()


def test_truncated_torch_zip_is_incomplete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    full = tmp_path / "full.pt"
    write_torch_zip(full, torch_data_pkl(monkeypatch))
    data = full.read_bytes()
    for keep in (len(data) - 10, len(data) // 2):
        cut = tmp_path / f"cut{keep}.pt"
        cut.write_bytes(data[:keep])
        result = sniff_file(cut)
        assert result.format == "torch-zip" and not result.complete, keep
        assert cut.name in result.problems[0]
