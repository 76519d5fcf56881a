"""Keras .keras archives: facts from config.json / metadata.json, code-running configs flagged."""

from __future__ import annotations

import copy
from pathlib import Path

from sniff_fixtures import SEQUENTIAL_CONFIG, assert_json_safe, keras_bytes

from modelreg.daemon.sniff import sniff_file


def test_version_class_and_layers(keras_file: Path) -> None:
    result = sniff_file(keras_file)

    assert result.format == "keras"
    assert result.complete and not result.unsafe and not result.problems
    assert result.facts["keras_version"] == "3.3.3"
    assert result.facts["class_name"] == "Sequential"
    assert result.facts["model_name"] == "tiny_sequential"
    assert result.facts["layer_count"] == 3
    assert result.facts["layer_classes"] == {"InputLayer": 1, "Dense": 2}
    assert result.facts["optimizer"] == "Adam" and result.facts["loss"] == "mse"
    assert result.facts["has_weights"] is True
    assert_json_safe(result)


def test_a_keras_archive_is_recognised_without_its_extension(tmp_path: Path) -> None:
    path = tmp_path / "exported_model.zip"
    path.write_bytes(keras_bytes())

    assert sniff_file(path).format == "keras"


def test_lambda_layer_makes_the_model_unsafe(tmp_path: Path) -> None:
    config = copy.deepcopy(SEQUENTIAL_CONFIG)
    config["config"]["layers"].append({
        "module": "keras.layers", "class_name": "Lambda",
        "config": {"function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAA"}}},
    })
    path = tmp_path / "lambda.keras"
    path.write_bytes(keras_bytes(config))

    result = sniff_file(path)

    assert result.unsafe
    assert result.facts["lambda_layers"] == 1
    assert any("Lambda" in p and "lambda.keras" in p for p in result.problems)


def test_config_importing_a_foreign_module_is_unsafe(tmp_path: Path) -> None:
    config = copy.deepcopy(SEQUENTIAL_CONFIG)
    config["config"]["layers"][1]["config"]["activation"] = {
        "module": "subprocess", "class_name": "Popen", "config": {"args": ["id"]},
    }
    path = tmp_path / "cve.keras"
    path.write_bytes(keras_bytes(config))

    result = sniff_file(path)

    assert result.unsafe
    assert result.facts["foreign_modules"] == ["subprocess"]


def test_truncated_archive_is_incomplete(keras_file: Path) -> None:
    data = keras_file.read_bytes()
    for keep in (len(data) - 30, len(data) // 2, 10):
        cut = keras_file.with_name(f"cut{keep}.keras")
        cut.write_bytes(data[:keep])
        result = sniff_file(cut)
        assert result.format == "keras" and not result.complete, keep
        assert result.problems and cut.name in result.problems[0]


def test_zip_without_config_is_not_a_complete_keras_model(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "empty.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("notes.txt", "hello")

    result = sniff_file(path)

    assert not result.complete
    assert "config.json" in result.problems[0]
