"""Model files written at test time by the real libraries (and by hand where no library exists).

A uniquely named module (not conftest) so tests can import its helpers without clashing
with conftest modules elsewhere in the suite.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from modelreg.daemon.sniff import SniffResult
from modelreg.daemon.sniff.result import MAX_ITEMS, MAX_STR

TENSORS = {
    "embed.weight": np.arange(32 * 16, dtype=np.float32).reshape(32, 16),
    "layer.0.bias": np.zeros(16, dtype=np.float16),
    "layer.0.step": np.array(7, dtype=np.int64),  # a 0-d tensor counts as one parameter
    "mask": np.ones((4, 4), dtype=np.bool_),
    "codes": np.zeros((2, 3, 5), dtype=np.uint8),
}


def real_parameter_count(tensors: dict[str, np.ndarray]) -> int:
    return sum(int(a.size) for a in tensors.values())


def assert_json_safe(result: SniffResult) -> None:
    """What a caller stores must serialise, and untrusted strings and lists must stay bounded."""
    json.dumps(
        {"facts": result.facts, "problems": result.problems,
         "lineage": result.lineage, "metrics": result.metrics},
        allow_nan=False,
    )

    def walk(value: object) -> None:
        if isinstance(value, str):
            assert len(value) <= MAX_STR
        elif isinstance(value, list):
            assert len(value) <= MAX_ITEMS
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    walk(result.facts)


@pytest.fixture
def safetensors_file(tmp_path: Path) -> Path:
    from safetensors.numpy import save_file

    path = tmp_path / "model.safetensors"
    save_file(TENSORS, str(path), metadata={"format": "pt", "source": "unit-test"})
    return path


def write_gguf(path: Path, tensors: dict[str, np.ndarray], *, chat_template: str | None = None,
               vocab: int = 0, quantized: bool = False) -> int:
    """A llama-architecture GGUF; returns the parameter count gguf's own reader sees."""
    import gguf
    from gguf import quants

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-llama")
    writer.add_context_length(4096)
    writer.add_embedding_length(16)
    writer.add_block_count(2)
    writer.add_head_count(4)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0 if quantized else gguf.LlamaFileType.ALL_F32)
    writer.add_base_model_count(1)
    writer.add_base_model_name(0, "Llama 3 8B")
    writer.add_base_model_organization(0, "Meta Llama")
    writer.add_base_model_repo_url(0, "https://huggingface.co/meta-llama/Meta-Llama-3-8B")
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    if vocab:
        writer.add_token_list([f"tok{i}" for i in range(vocab)])
    for name, array in tensors.items():
        writer.add_tensor(name, array)
    if quantized:
        weights = np.random.default_rng(0).random((8, 64), dtype=np.float32)
        q = quants.quantize(weights, gguf.GGMLQuantizationType.Q8_0)
        writer.add_tensor("quantized.weight", q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    reader = gguf.GGUFReader(str(path))
    return sum(int(np.prod(t.shape)) for t in reader.tensors)


GGUF_TENSORS = {
    "token_embd.weight": np.zeros((32, 16), dtype=np.float32),
    "blk.0.attn_norm.weight": np.ones(16, dtype=np.float32),
    "output.weight": np.zeros((32, 16), dtype=np.float16),
}


@pytest.fixture
def gguf_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.gguf"
    write_gguf(path, GGUF_TENSORS, chat_template="{{ cycler.__init__.__globals__.os.popen('id').read() }}",
               vocab=2000, quantized=True)
    return path


def make_onnx_model(initializers: dict[str, np.ndarray] | None = None):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    initializers = initializers if initializers is not None else {
        "W": np.random.default_rng(0).random((16, 8), dtype=np.float32),
        "B": np.zeros(8, dtype=np.float32),
    }
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"]),
        helper.make_node("Add", ["h", "B"], ["y0"]),
        helper.make_node("Relu", ["y0"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny-mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
        initializer=[numpy_helper.from_array(a, name) for name, a in initializers.items()],
    )
    model = helper.make_model(
        graph, producer_name="modelreg-tests", producer_version="1.2.3",
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)],
    )
    model.model_version = 5
    helper.set_model_props(model, {"author": "tests", "license": "apache-2.0"})
    onnx.checker.check_model(model)
    return model


@pytest.fixture
def onnx_file(tmp_path: Path) -> Path:
    import onnx

    path = tmp_path / "model.onnx"
    onnx.save(make_onnx_model(), str(path))
    return path


SEQUENTIAL_CONFIG = {
    "module": "keras",
    "class_name": "Sequential",
    "config": {
        "name": "tiny_sequential",
        "layers": [
            {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [None, 4]}},
            {"module": "keras.layers", "class_name": "Dense", "config": {"units": 8, "activation": "relu"}},
            {"module": "keras.layers", "class_name": "Dense", "config": {"units": 1}},
        ],
    },
    "compile_config": {"optimizer": {"module": "keras.optimizers", "class_name": "Adam", "config": {}},
                       "loss": "mse"},
}


def keras_bytes(config: dict | None = None, keras_version: str = "3.3.3") -> bytes:
    """A .keras archive laid out as keras.saving writes it (the weights are a stand-in blob)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        metadata = {"keras_version": keras_version, "date_saved": "2024-05-01@10:00:00"}
        zf.writestr("metadata.json", json.dumps(metadata))
        zf.writestr("config.json", json.dumps(config or SEQUENTIAL_CONFIG))
        zf.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + bytes(4096))
    return buffer.getvalue()


@pytest.fixture
def keras_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.keras"
    path.write_bytes(keras_bytes())
    return path
