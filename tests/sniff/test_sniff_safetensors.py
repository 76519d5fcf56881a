"""Safetensors: header facts, the parameter count, and the file-size completeness check."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

from sniff_fixtures import TENSORS, assert_json_safe, real_parameter_count

from modelreg.daemon.sniff import sniff_file


def test_parameter_count_dtypes_and_metadata_match_the_library(safetensors_file: Path) -> None:
    from safetensors import safe_open

    result = sniff_file(safetensors_file)

    assert result.format == "safetensors"
    assert result.complete and not result.problems and not result.unsafe
    assert result.facts["parameter_count"] == real_parameter_count(TENSORS)
    with safe_open(str(safetensors_file), "np") as f:
        assert result.facts["tensor_count"] == len(list(f.keys()))
        assert result.facts["metadata"] == f.metadata()
    assert result.facts["dtypes"] == {"F32": 1, "F16": 1, "I64": 1, "BOOL": 1, "U8": 1}
    shapes = {t["name"]: t["shape"] for t in result.facts["tensors"]}
    assert shapes["codes"] == [2, 3, 5] and shapes["layer.0.step"] == []
    assert_json_safe(result)


def test_truncated_file_is_incomplete_and_the_problem_names_the_file(safetensors_file: Path) -> None:
    data = safetensors_file.read_bytes()
    cut = safetensors_file.with_name("half.safetensors")
    cut.write_bytes(data[: len(data) // 2 + 100])

    result = sniff_file(cut)

    assert result.format == "safetensors"
    assert not result.complete
    assert any(
        "half.safetensors is truncated" in p and f"{len(data):,}" in p and f"{len(data) // 2 + 100:,}" in p
        for p in result.problems
    ), result.problems


def test_bytes_after_the_data_also_fail_the_check(safetensors_file: Path) -> None:
    padded = safetensors_file.with_name("padded.safetensors")
    padded.write_bytes(safetensors_file.read_bytes() + b"\0" * 10)

    result = sniff_file(padded)

    assert not result.complete
    assert any("10 bytes after" in p for p in result.problems)


def test_header_length_over_100_mb_is_rejected_without_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge-header.safetensors"
    path.write_bytes(struct.pack("<Q", 200 * 1000 * 1000) + b"{}")

    started = time.perf_counter()
    result = sniff_file(path)

    assert time.perf_counter() - started < 1
    assert not result.complete
    assert any("100 MB" in p and "huge-header.safetensors" in p for p in result.problems)


def test_header_that_claims_more_bytes_than_the_file_has(tmp_path: Path) -> None:
    path = tmp_path / "short.safetensors"
    path.write_bytes(struct.pack("<Q", 5000) + b'{"a": 1}')

    result = sniff_file(path)

    assert not result.complete
    assert any("short.safetensors is truncated" in p for p in result.problems)


def test_garbage_and_bad_json_are_incomplete_not_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"this is not a model at all" * 10)
    bad_json = tmp_path / "badjson.safetensors"
    header = b'{"a": {"dtype": "F32", '
    bad_json.write_bytes(struct.pack("<Q", len(header)) + header)

    for path in (garbage, bad_json):
        result = sniff_file(path)
        assert result.format == "safetensors"
        assert not result.complete
        assert result.problems and path.name in result.problems[0]


def test_inconsistent_tensor_sizes_are_reported(tmp_path: Path) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}).encode()
    path = tmp_path / "lying.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(8))

    result = sniff_file(path)

    assert not result.complete
    assert any("spans 8 bytes" in p for p in result.problems)


def test_oversized_metadata_strings_are_capped(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    import numpy as np

    path = tmp_path / "chatty.safetensors"
    save_file({"w": np.zeros(2, np.float32)}, str(path), metadata={"notes": "x" * 1_000_000})

    result = sniff_file(path)

    assert result.complete
    assert 0 < len(result.facts["metadata"]["notes"]) <= 4096
    assert_json_safe(result)
