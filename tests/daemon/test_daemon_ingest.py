"""One way in (issue 8 item 3): a path, an upload and a drop are read by the same pipeline —
the same sniffed facts, unsafe-pickle flag, format-completeness check and card lineage."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from modelreg.shared.errors import InvalidInput
from registry_harness import Registry, blob_files

TENSORS = {"w": np.zeros((4, 8), np.float32), "b": np.zeros(8, np.float16), "step": np.array(3, np.int64)}
CARD = """---
license: mit
base_model: org/base-model
datasets: [imdb]
model-index:
  - name: clf
    results:
      - task: {type: text-classification}
        dataset: {name: IMDb, type: imdb}
        metrics:
          - {type: accuracy, value: 0.8}
          - {type: f1, value: 0.7}
---
# clf
"""
MLMODEL = """artifact_path: model
flavors:
  sklearn:
    pickled_model: model.pkl
    sklearn_version: 1.5.2
run_id: 0123456789abcdef0123456789abcdef
model_uuid: 7c1f0e0a9b2d4d54a7f7a1c1b2c3d4e5
"""


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def tiny_safetensors(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(TENSORS, str(path))
    return path


def truncated_safetensors(path: Path) -> Path:
    data = tiny_safetensors(path).read_bytes()
    path.write_bytes(data[:-16])
    return path


def onnx_file(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])], "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        initializer=[numpy_helper.from_array(np.ones((4, 2), np.float32), "W")])
    onnx.save(helper.make_model(graph, producer_name="tests", opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def gguf_file(path: Path) -> Path:
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-llama")
    writer.add_context_length(2048)
    writer.add_tensor("token_embd.weight", np.zeros((8, 4), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def hf_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"],
                                                    "model_type": "bert"}))
    (folder / "README.md").write_text(CARD)
    tiny_safetensors(folder / "model.safetensors")
    return folder


@pytest.fixture(params=["path", "upload"])
async def register(request, registry: Registry):
    """``await register(name, path, **metadata)`` → the version, through either way in."""
    c = registry.client()

    async def run(name: str, path: Path, **metadata):
        if request.param == "path":
            return (await c.register(name, path=path, wait=True, **metadata))["version"]
        return (await c.upload_and_register(name, path, **metadata))["version"]

    run.mode = request.param
    return run


async def test_safetensors_facts_are_sniffed(register, src: Path) -> None:
    v = await register("t", tiny_safetensors(src / "tiny.safetensors"))
    facts = v["facts"]
    assert facts["format"] == "safetensors" and facts["parameter_count"] == 32 + 8 + 1
    per_file = facts["files"]["tiny.safetensors"]
    assert per_file["tensor_count"] == 3 and per_file["dtypes"] == {"F32": 1, "F16": 1, "I64": 1}
    assert facts["complete"] is True and facts["unsafe"] is False


async def test_a_truncated_file_is_refused_with_the_formats_reason_and_no_version(
        register, registry: Registry, src: Path) -> None:
    with pytest.raises(InvalidInput) as refused:
        await register("t", truncated_safetensors(src / "cut.safetensors"))
    message = refused.value.message
    assert "incomplete or broken" in message and "cut.safetensors is truncated" in message
    assert (await registry.call("GET", "/v1/models/t")).status == 404, "no version number is spent"
    if register.mode == "path":
        assert blob_files(registry.home) == [], "nothing is stored for a refused path"
    assert list((registry.home / "blobs" / "tmp").iterdir()) == []


async def test_the_api_refuses_a_truncated_path_with_a_400_envelope(registry: Registry, src: Path) -> None:
    cut = truncated_safetensors(src / "cut.safetensors")
    r = await registry.call("POST", "/v1/models/t/versions?wait=1", body={"path": str(cut)}, accept_json=True)
    assert r.status == 400 and r.error["code"] == "invalid_input"
    assert "truncated" in r.error["message"] and r.error["details"]["problems"]


async def test_a_pickle_that_imports_os_system_is_flagged_unsafe(register, src: Path) -> None:
    path = src / "evil.pkl"
    path.write_bytes(pickle.dumps(Evil()))
    v = await register("e", path)
    assert v["status"] == "ready" and v["facts"]["unsafe"] is True
    assert v["facts"]["files"]["evil.pkl"]["unsafe_globals"] == ["posix.system"]
    assert any("posix.system" in p for p in v["facts"]["problems"])


async def test_onnx_and_gguf_facts(register, src: Path) -> None:
    folder = src / "both"
    folder.mkdir()
    onnx_file(folder / "model.onnx")
    gguf_file(folder / "model.gguf")
    files = (await register("both", folder))["facts"]["files"]
    assert files["model.onnx"]["format"] == "onnx" and files["model.onnx"]["opset"] == 17
    assert files["model.gguf"]["architecture"] == "llama" and files["model.gguf"]["context_length"] == 2048


async def test_hugging_face_card_gives_lineage_and_metrics_and_explicit_values_win(register, src: Path) -> None:
    v = await register("clf", hf_folder(src / "clf"), metrics={"accuracy": 0.95}, datasets=["imdb@hub"])
    assert v["facts"]["format"] == "huggingface"
    assert v["lineage"]["datasets"] == [{"dataset": "imdb@hub", "relation": "trained_on", "digest": None, "uri": None}]
    assert [p["ref"] for p in v["lineage"]["parents"]] == ["org/base-model"]
    assert v["metrics"] == {"accuracy": 0.95, "f1": 0.7}, "the explicit metric is the value"
    records = {(r["key"], r["source"]): r["value"] for r in v["metric_records"]}
    assert records == {("accuracy", "model-card"): 0.8, ("accuracy", "offline"): 0.95, ("f1", "model-card"): 0.7}


async def test_mlmodel_run_id_becomes_the_run_unless_one_is_given(register, src: Path) -> None:
    folder = src / "mlflow"
    folder.mkdir()
    (folder / "MLmodel").write_text(MLMODEL)
    (folder / "model.pkl").write_bytes(pickle.dumps({"coef": [1.0, 2.0]}))
    v = await register("ml", folder)
    assert v["facts"]["format"] == "mlflow" and v["lineage"]["run"]["id"] == "0123456789abcdef0123456789abcdef"
    given = await register("ml", folder, run="r42")
    assert given["lineage"]["run"]["id"] == "r42"


async def test_sniffing_an_upload_leaves_nothing_in_the_temp_folder(registry: Registry, src: Path) -> None:
    folder = hf_folder(src / "clf")
    await registry.client().upload_and_register("clf", folder)
    assert list((registry.home / "blobs" / "tmp").iterdir()) == []
    # The blobs keep their single, read-only link: the sniffing tree's hardlinks are gone.
    assert all(p.stat().st_nlink == 1 and p.stat().st_mode & 0o222 == 0 for p in blob_files(registry.home))


async def test_a_drop_and_a_registration_of_the_same_folder_get_the_same_facts(
        registry: Registry, src: Path, tmp_path: Path) -> None:
    c = registry.client()
    registered = (await c.register("clf", path=hf_folder(src / "clf"), wait=True))["version"]
    inbox = tmp_path / "inbox"
    await c.add_watch(inbox, mode="copy", settle=0.2)
    os.rename(hf_folder(src / "again"), inbox / "clf2")  # another model: the same content is no duplicate
    deadline = time.monotonic() + 20
    while not (events := (await c.events(kind="drop.registered"))["items"]):
        assert time.monotonic() < deadline, "the drop was not registered within 20 s"
        await asyncio.sleep(0.05)
    dropped = await c.version("clf2@1")
    assert dropped["facts"] == registered["facts"]
    assert dropped["metrics"] == registered["metrics"]
    assert dropped["lineage"]["datasets"] == registered["lineage"]["datasets"]
    assert dropped["lineage"]["parents"] == registered["lineage"]["parents"]
