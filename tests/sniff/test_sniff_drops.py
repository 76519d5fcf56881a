"""Whole drops: Hugging Face folders, MLflow models, sharded weights, and how results combine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
from sniff_fixtures import TENSORS, assert_json_safe, real_parameter_count, write_gguf

from modelreg.daemon.sniff import sniff_drop, sniff_file

CARD = """---
license: apache-2.0
base_model: meta-llama/Llama-3-8B
datasets:
  - imdb
  - stanfordnlp/sst2
tags: [sentiment]
model-index:
  - name: llama-3-imdb
    results:
      - task: {type: text-classification}
        dataset: {name: IMDb, type: imdb, split: test}
        metrics:
          - {type: accuracy, value: 0.91, name: Accuracy}
          - {type: f1, value: "88.5", name: F1}
          - {type: loss, value: not-a-number}
---
# llama-3-imdb

Fine-tuned on IMDb.
"""

HF_CONFIG = {
    "architectures": ["LlamaForSequenceClassification"],
    "model_type": "llama",
    "torch_dtype": "bfloat16",
    "transformers_version": "4.44.0",
    "hidden_size": 16,
    "quantization_config": {"quant_method": "bitsandbytes", "load_in_4bit": True},
}


def files_of(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def hf_folder(tmp_path: Path, config: dict | None = None) -> Path:
    folder = tmp_path / "llama-3-imdb"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config or HF_CONFIG))
    (folder / "README.md").write_text(CARD)
    save_file(TENSORS, str(folder / "model.safetensors"))
    return folder


def test_hugging_face_folder_gives_card_metrics_and_lineage(tmp_path: Path) -> None:
    folder = hf_folder(tmp_path)

    result = sniff_drop(folder, files_of(folder))

    assert result.format == "huggingface" and result.facts["format"] == "huggingface"
    assert result.complete and not result.unsafe, result.problems
    hf = result.facts["huggingface"]
    assert hf["architectures"] == ["LlamaForSequenceClassification"]
    assert hf["torch_dtype"] == "bfloat16" and hf["model_type"] == "llama"
    assert hf["quantization_config"]["quant_method"] == "bitsandbytes"
    assert hf["card"]["license"] == "apache-2.0"
    assert {"relation": "derived_from", "model": "meta-llama/Llama-3-8B"} in result.lineage
    assert {"relation": "trained_on", "dataset": "imdb"} in result.lineage
    assert {"relation": "trained_on", "dataset": "stanfordnlp/sst2"} in result.lineage
    assert result.metrics == [
        {"key": "accuracy", "value": 0.91, "source": "model-card", "dataset": "imdb"},
        {"key": "f1", "value": 88.5, "source": "model-card", "dataset": "imdb"},
    ]
    assert result.facts["parameter_count"] == real_parameter_count(TENSORS)
    assert result.facts["files"]["model.safetensors"]["format"] == "safetensors"
    assert_json_safe(result)


def test_remote_code_makes_the_folder_unsafe(tmp_path: Path) -> None:
    folder = hf_folder(tmp_path, {**HF_CONFIG, "auto_map": {"AutoModel": "modeling_tiny.TinyModel"}})
    (folder / "modeling_tiny.py").write_text("import os\n")

    result = sniff_drop(folder, files_of(folder))

    assert result.unsafe
    assert result.facts["huggingface"]["remote_code"] is True
    assert any("auto_map" in p for p in result.problems)
    assert any("modeling_tiny.py" in p for p in result.problems)


def test_broken_card_yaml_is_a_problem_but_not_incomplete(tmp_path: Path) -> None:
    folder = hf_folder(tmp_path)
    (folder / "README.md").write_text("---\nlicense: [unclosed\n---\n# card\n")

    result = sniff_drop(folder, files_of(folder))

    assert result.complete
    assert any("README.md front matter is not valid YAML" in p for p in result.problems)


def sharded_folder(tmp_path: Path) -> tuple[Path, int]:
    folder = tmp_path / "sharded"
    folder.mkdir()
    shard_1 = {k: TENSORS[k] for k in ("embed.weight", "layer.0.bias")}
    shard_2 = {k: TENSORS[k] for k in ("layer.0.step", "mask", "codes")}
    weight_map = {}
    for i, shard in enumerate((shard_1, shard_2), start=1):
        name = f"model-0000{i}-of-00002.safetensors"
        save_file(shard, str(folder / name))
        weight_map.update({k: name for k in shard})
    total = sum(a.nbytes for a in TENSORS.values())
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map})
    )
    # A consolidated copy beside the shards (as some repos ship) must not be counted twice.
    save_file(TENSORS, str(folder / "consolidated.safetensors"))
    return folder, total


def test_sharded_model_counts_each_shard_once(tmp_path: Path) -> None:
    folder, total = sharded_folder(tmp_path)

    result = sniff_drop(folder, files_of(folder))

    assert result.complete, result.problems
    assert result.format == "safetensors-sharded"
    assert result.facts["parameter_count"] == real_parameter_count(TENSORS)
    index = result.facts["safetensors-sharded"]
    assert index["total_size"] == total and index["shard_count"] == 2 and index["missing_shards"] == []


def test_sharded_model_with_a_missing_shard_is_incomplete(tmp_path: Path) -> None:
    folder, _ = sharded_folder(tmp_path)
    (folder / "model-00002-of-00002.safetensors").unlink()

    result = sniff_drop(folder, files_of(folder))
    alone = sniff_file(folder / "model.safetensors.index.json")

    assert not result.complete and not alone.complete
    assert any("model-00002-of-00002.safetensors" in p and "missing" in p for p in result.problems)
    assert result.facts["safetensors-sharded"]["missing_shards"] == ["model-00002-of-00002.safetensors"]


def test_index_naming_a_shard_outside_the_folder_is_incomplete(tmp_path: Path) -> None:
    folder = tmp_path / "escape"
    folder.mkdir()
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": {"w": "../../secrets.safetensors"}})
    )

    result = sniff_drop(folder, files_of(folder))

    assert not result.complete
    assert any("outside the model folder" in p for p in result.problems)


MLMODEL = """artifact_path: model
flavors:
  python_function:
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.sklearn
    model_path: model.pkl
    predict_fn: predict
    python_version: 3.11.7
  sklearn:
    code: null
    pickled_model: model.pkl
    serialization_format: cloudpickle
    sklearn_version: 1.5.2
mlflow_version: 2.16.0
model_size_bytes: 1031
model_uuid: 7c1f0e0a9b2d4d54a7f7a1c1b2c3d4e5
run_id: 3f2a9c8b7d6e4f5a8b9c0d1e2f3a4b5c
signature:
  inputs: '[{"type": "double", "name": "sepal length (cm)", "required": true}, {"type":
    "double", "name": "sepal width (cm)", "required": true}]'
  outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]'
  params: null
utc_time_created: '2024-09-12 08:15:30.123456'
"""


def test_mlflow_model_gives_flavors_signature_and_run_lineage(tmp_path: Path) -> None:
    folder = tmp_path / "mlflow-model"
    folder.mkdir()
    (folder / "MLmodel").write_text(MLMODEL)

    result = sniff_drop(folder, files_of(folder))

    assert result.format == "mlflow"
    assert result.complete
    mlflow = result.facts["mlflow"]
    assert mlflow["flavors"] == ["python_function", "sklearn"]
    assert mlflow["flavor_details"]["sklearn"]["sklearn_version"] == "1.5.2"
    assert mlflow["model_uuid"] == "7c1f0e0a9b2d4d54a7f7a1c1b2c3d4e5"
    assert mlflow["utc_time_created"] == "2024-09-12 08:15:30.123456"
    assert [c["name"] for c in mlflow["signature"]["inputs"]] == ["sepal length (cm)", "sepal width (cm)"]
    assert mlflow["signature"]["outputs"][0]["tensor-spec"]["dtype"] == "int64"
    assert result.lineage == [{"relation": "produced_by", "run": "3f2a9c8b7d6e4f5a8b9c0d1e2f3a4b5c"}]


def test_drop_of_one_file_and_gguf_parameters_are_summed(tmp_path: Path) -> None:
    path = tmp_path / "tiny.gguf"
    expected = write_gguf(path, {"w": np.zeros((4, 8), np.float32)})

    result = sniff_drop(path, [path.name])

    assert result.format == "gguf" and result.complete
    assert result.facts["parameter_count"] == expected == 32
    assert result.facts["files"]["tiny.gguf"]["architecture"] == "llama"


def test_missing_gguf_split_part_is_incomplete(tmp_path: Path) -> None:
    folder = tmp_path / "split"
    folder.mkdir()
    write_gguf(folder / "tiny-00001-of-00002.gguf", {"w": np.zeros(4, np.float32)})

    result = sniff_drop(folder, files_of(folder))

    assert not result.complete
    assert any("tiny-00002-of-00002.gguf" in p for p in result.problems)


def test_unsafe_file_anywhere_makes_the_drop_unsafe_and_problems_are_not_repeated(tmp_path: Path) -> None:
    import os
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    folder = hf_folder(tmp_path)
    (folder / "training_args.bin").write_bytes(pickle.dumps(Evil(), protocol=2))

    result = sniff_drop(folder, files_of(folder))

    assert result.unsafe
    assert result.facts["files"]["training_args.bin"]["unsafe"] is True
    assert result.facts["files"]["model.safetensors"]["unsafe"] is False
    assert len(result.problems) == len(set(result.problems))
    assert len(result.lineage) == len({json.dumps(x, sort_keys=True) for x in result.lineage})


def test_unknown_files_are_ignored_and_paths_outside_the_drop_are_not_read(tmp_path: Path) -> None:
    folder = tmp_path / "misc"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    outside = tmp_path / "secret.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, str(outside))
    (folder / "link.safetensors").symlink_to(outside)

    result = sniff_drop(folder, ["notes.txt", "link.safetensors", "../secret.safetensors"])

    assert result.format is None
    assert result.facts["files"] == {}
    assert "parameter_count" not in result.facts
    assert any("link.safetensors points outside the drop" in p for p in result.problems)
    assert sniff_file(folder / "notes.txt").format is None
    assert sniff_file(folder / "notes.txt").facts == {}
