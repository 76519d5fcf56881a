"""Hostile input: damaged copies of every format must give an answer, never an exception."""

from __future__ import annotations

import json
import pickle
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sniff_fixtures import assert_json_safe, keras_bytes, write_gguf

import modelreg.daemon.sniff as sniff
from modelreg.daemon.sniff import sniff_drop, sniff_file


def originals(tmp_path: Path) -> dict[str, bytes]:
    import onnx
    from safetensors.numpy import save_file
    from sniff_fixtures import make_onnx_model

    save_file({"a": np.zeros((8, 8), np.float32), "b": np.ones(3, np.int64)}, str(tmp_path / "o.safetensors"))
    write_gguf(tmp_path / "o.gguf", {"w": np.zeros((4, 32), np.float32)}, chat_template="{{ x }}", vocab=100)
    onnx.save(make_onnx_model(), str(tmp_path / "o.onnx"))
    return {
        ".safetensors": (tmp_path / "o.safetensors").read_bytes(),
        ".gguf": (tmp_path / "o.gguf").read_bytes(),
        ".onnx": (tmp_path / "o.onnx").read_bytes(),
        ".keras": keras_bytes(),
        ".pkl": pickle.dumps({"w": np.arange(50, dtype=np.float32), "n": list(range(30))}, protocol=4),
        ".pt": pickle.dumps({"w": np.arange(5)}, protocol=2),
    }


def mutations(data: bytes, rng: np.random.Generator):
    n = len(data)
    cuts = {0, 1, 4, 8, 9, 16, 24, 40, n // 3, n // 2, n - 1} | set(rng.integers(0, n, 6).tolist())
    for cut in sorted(cuts):
        if 0 <= cut < n:
            yield f"cut{cut}", data[:cut]
    for i in range(25):
        flipped = bytearray(data)
        for pos in rng.integers(0, n, 1 + i % 4):
            flipped[pos] = int(rng.integers(0, 256))
        yield f"flip{i}", bytes(flipped)
    for i in range(6):
        smashed = bytearray(data)
        start = int(rng.integers(0, n))
        smashed[start : start + 8] = b"\xff" * 8
        yield f"ff{i}", bytes(smashed)


def test_damaged_files_never_raise_and_stay_json_safe(tmp_path: Path) -> None:
    rng = np.random.default_rng(1234)
    started = time.perf_counter()
    seen = 0
    for ext, data in originals(tmp_path).items():
        for label, mutated in mutations(data, rng):
            path = tmp_path / f"m-{label}{ext}"
            path.write_bytes(mutated)
            t0 = time.perf_counter()
            result = sniff_file(path)
            assert time.perf_counter() - t0 < 2, path.name
            assert isinstance(result, sniff.SniffResult)
            assert_json_safe(result)
            if not result.complete:
                assert result.problems, path.name
            seen += 1
    assert seen > 200
    assert time.perf_counter() - started < 10


def test_recursion_and_alias_bombs_are_contained(tmp_path: Path) -> None:
    deep = b"[" * 200_000 + b"]" * 200_000
    header = b'{"a": ' + deep + b"}"
    (tmp_path / "deep.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    folder = tmp_path / "bomb"
    folder.mkdir()
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(9)
    )
    (folder / "MLmodel").write_text("flavors:\n  python_function: {}\n" + laughs + "run_id: r1\n")
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (folder / "README.md").write_text("---\n" + laughs + "license: mit\nbase_model: [*j]\n---\n")

    started = time.perf_counter()
    deep_result = sniff_file(tmp_path / "deep.safetensors")
    drop = sniff_drop(folder, ["MLmodel", "config.json", "README.md"])

    assert time.perf_counter() - started < 5
    assert not deep_result.complete and deep_result.problems
    assert drop.lineage == [{"relation": "produced_by", "run": "r1"}]
    assert drop.facts["huggingface"]["card"]["license"] == "mit"
    assert_json_safe(drop)


def test_an_unexpected_error_inside_a_sniffer_becomes_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(path, name):
        raise RuntimeError("parser bug")

    monkeypatch.setattr(sniff.safetensors, "sniff", boom)
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"whatever")

    result = sniff_file(path)
    drop = sniff_drop(tmp_path, ["model.safetensors"])

    assert result.format == "safetensors" and not result.complete
    assert "model.safetensors could not be read" in result.problems[0] and "parser bug" in result.problems[0]
    assert not drop.complete


def test_missing_and_unreadable_paths_do_not_raise(tmp_path: Path) -> None:
    assert sniff_file(tmp_path / "nope.safetensors").format is None
    assert sniff_file(tmp_path).format is None
    result = sniff_drop(tmp_path / "gone", ["a.safetensors"])
    assert not result.complete
    assert any("disappeared" in p and "a.safetensors" in p for p in result.problems)


def test_runtime_needs_no_ml_libraries(tmp_path: Path) -> None:
    """The daemon ships without numpy/onnx/safetensors/torch: sniffing must not import them."""
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(2, np.float32)}, str(tmp_path / "m.safetensors"))
    (tmp_path / "m.onnx").write_bytes(b"\x08\x07")
    (tmp_path / "m.pkl").write_bytes(pickle.dumps({"w": np.zeros(2)}, protocol=4))
    code = (
        "import sys; from pathlib import Path; from modelreg.daemon.sniff import sniff_drop; "
        f"r = sniff_drop(Path({str(tmp_path)!r}), ['m.safetensors', 'm.onnx', 'm.pkl']); "
        "assert r.facts['files']['m.safetensors']['parameter_count'] == 2; "
        "heavy = ('numpy', 'onnx', 'safetensors', 'gguf', 'torch', 'google.protobuf'); "
        "loaded = [m for m in heavy if m in sys.modules]; "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("name", ["model.safetensors", "model.gguf", "model.onnx", "model.keras", "model.pt"])
def test_empty_model_file_is_incomplete(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"")

    result = sniff_file(tmp_path / name)

    assert result.format is not None and not result.complete
    assert result.problems == [f"{name} is empty"]
