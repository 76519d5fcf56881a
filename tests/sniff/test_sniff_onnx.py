"""ONNX: protobuf read by hand, fields after the graph found, external data checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sniff_fixtures import assert_json_safe, make_onnx_model

from modelreg.daemon.sniff import sniff_drop, sniff_file


def test_header_fields_after_the_graph_and_parameter_count(onnx_file: Path) -> None:
    import onnx

    model = onnx.load(str(onnx_file))
    result = sniff_file(onnx_file)

    assert result.format == "onnx"
    assert result.complete and not result.problems and not result.unsafe
    assert result.facts["ir_version"] == model.ir_version
    assert result.facts["producer_name"] == "modelreg-tests"
    assert result.facts["producer_version"] == "1.2.3"
    assert result.facts["model_version"] == 5
    assert result.facts["opset"] == 17
    assert {"domain": "ai.onnx.ml", "version": 3} in result.facts["opset_import"]
    assert result.facts["metadata_props"] == {p.key: p.value for p in model.metadata_props}
    assert result.facts["parameter_count"] == sum(
        int(np.prod(t.dims)) for t in model.graph.initializer
    ) == 16 * 8 + 8
    graph = result.facts["graph"]
    assert graph["op_types"] == {"MatMul": 1, "Add": 1, "Relu": 1}
    assert graph["inputs"] == ["x"] and graph["outputs"] == ["y"]
    assert_json_safe(result)


def test_large_inline_initializer_is_skipped_not_read(tmp_path: Path) -> None:
    import onnx

    big = np.zeros((512, 1024), dtype=np.float32)  # 2 MiB written before opset/metadata
    path = tmp_path / "big.onnx"
    model = make_onnx_model({"W": big[:, :8].copy(), "B": np.zeros(8, np.float32), "extra": big})
    onnx.save(model, str(path))

    result = sniff_file(path)

    assert result.complete
    assert result.facts["parameter_count"] == 512 * 8 + 8 + 512 * 1024
    assert result.facts["opset"] == 17


def _external_model(tmp_path: Path) -> Path:
    import onnx

    model = make_onnx_model({"W": np.ones((256, 8), np.float32), "B": np.zeros(8, np.float32)})
    folder = tmp_path / "ext"
    folder.mkdir()
    onnx.save(model, str(folder / "model.onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    return folder


def test_external_data_present_in_the_drop_is_complete(tmp_path: Path) -> None:
    folder = _external_model(tmp_path)

    result = sniff_drop(folder, ["model.onnx", "weights.bin"])

    assert result.complete, result.problems
    assert result.facts["files"]["model.onnx"]["graph"]["external_data"] == ["weights.bin"]


def test_missing_external_data_makes_the_drop_incomplete(tmp_path: Path) -> None:
    folder = _external_model(tmp_path)
    (folder / "weights.bin").unlink()

    result = sniff_drop(folder, ["model.onnx"])

    assert not result.complete
    assert any("weights.bin" in p and "model.onnx" in p for p in result.problems)


def test_external_data_outside_the_folder_is_unsafe(tmp_path: Path) -> None:
    import onnx
    from onnx.external_data_helper import set_external_data

    model = make_onnx_model()
    tensor = model.graph.initializer[0]
    set_external_data(tensor, location="../../../etc/passwd", offset=0, length=64)
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    path = tmp_path / "escape.onnx"
    path.write_bytes(model.SerializeToString())

    result = sniff_file(path)

    assert result.unsafe
    assert any("../../../etc/passwd" in p and "outside" in p for p in result.problems)


def test_truncated_and_garbage_files_are_incomplete(onnx_file: Path, tmp_path: Path) -> None:
    data = onnx_file.read_bytes()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07" + bytes(range(256)) * 4)
    text = tmp_path / "text.onnx"
    text.write_text("definitely not protobuf\n")

    for path in (truncated, garbage, text):
        result = sniff_file(path)
        assert result.format == "onnx" and not result.complete, path.name
        assert result.problems and path.name in result.problems[0]
    assert "truncated" in sniff_file(truncated).problems[0]
