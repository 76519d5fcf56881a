"""GGUF: header facts cross-checked against gguf-py's reader, chat templates never read, truncation."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import numpy as np
from sniff_fixtures import GGUF_TENSORS, assert_json_safe, write_gguf

from modelreg.daemon.sniff import sniff_file


def test_facts_and_parameter_count_match_gguf_reader(gguf_file: Path) -> None:
    import gguf

    result = sniff_file(gguf_file)
    reader = gguf.GGUFReader(str(gguf_file))

    assert result.format == "gguf"
    assert result.complete and not result.problems and not result.unsafe
    assert result.facts["parameter_count"] == sum(int(np.prod(t.shape)) for t in reader.tensors)
    assert result.facts["parameter_count"] == sum(a.size for a in GGUF_TENSORS.values()) + 8 * 64
    assert result.facts["tensor_count"] == len(reader.tensors)
    assert result.facts["architecture"] == "llama"
    assert result.facts["name"] == "tiny-llama"
    assert result.facts["context_length"] == 4096
    assert result.facts["embedding_length"] == 16
    assert result.facts["block_count"] == 2
    assert result.facts["file_type_name"] == "Q8_0"
    assert result.facts["tensor_types"] == {"F32": 2, "F16": 1, "Q8_0": 1}
    assert result.facts["data_offset"] == reader.data_offset
    assert_json_safe(result)


def test_shapes_are_reported_in_numpy_order(gguf_file: Path) -> None:
    shapes = {t["name"]: t["shape"] for t in sniff_file(gguf_file).facts["tensors"]}

    assert shapes["token_embd.weight"] == [32, 16]
    assert shapes["quantized.weight"] == [8, 64]


def test_chat_template_is_never_kept_and_big_arrays_only_by_length(gguf_file: Path) -> None:
    result = sniff_file(gguf_file)
    dumped = json.dumps(result.facts)

    assert result.facts["has_chat_template"] is True
    assert "__globals__" not in dumped and "popen" not in dumped
    tokens = result.facts["metadata"]["tokenizer.ggml.tokens"]
    assert tokens == {"type": "array", "element_type": "string", "length": 2000}
    assert "tok1999" not in dumped


def test_base_model_becomes_derived_from_lineage(gguf_file: Path) -> None:
    lineage = sniff_file(gguf_file).lineage

    assert lineage == [{"relation": "derived_from", "model": "meta-llama/Meta-Llama-3-8B"}]


def test_truncated_tensor_data_is_incomplete(gguf_file: Path) -> None:
    data = gguf_file.read_bytes()
    cut = gguf_file.with_name("cut.gguf")
    cut.write_bytes(data[:-600])

    result = sniff_file(cut)

    assert result.format == "gguf"
    assert not result.complete
    assert any("cut.gguf is truncated" in p for p in result.problems), result.problems


def test_truncated_header_is_incomplete(gguf_file: Path) -> None:
    cut = gguf_file.with_name("header-only.gguf")
    cut.write_bytes(gguf_file.read_bytes()[:200])

    result = sniff_file(cut)

    assert not result.complete
    assert any("header-only.gguf is truncated" in p for p in result.problems)


def test_hostile_counts_and_lengths_fail_fast(tmp_path: Path) -> None:
    head = b"GGUF" + struct.pack("<I", 3)
    cases = {
        "many-tensors.gguf": head + struct.pack("<QQ", 2**60, 0),
        "many-keys.gguf": head + struct.pack("<QQ", 0, 2**40),
        "long-key.gguf": head + struct.pack("<QQ", 0, 1) + struct.pack("<Q", 2**62),
        "huge-array.gguf": head + struct.pack("<QQ", 0, 1) + struct.pack("<Q", 1) + b"k"
        + struct.pack("<IIQ", 9, 8, 2**50) + struct.pack("<Q", 3) + b"abc",
        "nested-arrays.gguf": head + struct.pack("<QQ", 0, 1) + struct.pack("<Q", 1) + b"k"
        + struct.pack("<I", 9) + struct.pack("<IQ", 9, 1) * 50,
        "bad-type.gguf": head + struct.pack("<QQ", 0, 1) + struct.pack("<Q", 1) + b"k"
        + struct.pack("<I", 77),
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        started = time.perf_counter()
        result = sniff_file(path)
        assert time.perf_counter() - started < 1, name
        assert result.format == "gguf" and not result.complete, name
        assert result.problems and name in result.problems[0], (name, result.problems)


def test_a_file_without_tensors_is_complete(tmp_path: Path) -> None:
    path = tmp_path / "vocab-only.gguf"
    write_gguf(path, {}, vocab=100)

    result = sniff_file(path)

    assert result.complete and result.facts["parameter_count"] == 0
