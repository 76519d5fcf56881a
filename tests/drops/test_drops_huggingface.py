"""`cp -r` of a Hugging Face folder into a watched folder (issue 4, acceptance 1)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import team_backend
from drops_support import sha256_of, write_safetensors

CARD = """---
license: apache-2.0
base_model: some/base
datasets:
  - acme/support-tickets
model-index:
  - name: tiny-ft
    results:
      - task:
          type: text-classification
        dataset:
          type: acme/support-eval
          name: Support eval
        metrics:
          - type: accuracy
            value: 0.913
          - type: f1
            value: 0.887
---

# tiny-ft

A fine-tune of some/base on support tickets.
"""


def hf_folder(folder: Path) -> int:
    """A Hugging Face style model folder with two shards; returns its real parameter count."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "torch_dtype": "float32",
        "hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 1000}))
    (folder / "README.md").write_text(CARD)
    shard1 = {"model.embed_tokens.weight": (1000, 64), "model.layers.0.mlp.weight": (64, 172)}
    shard2 = {"model.layers.1.mlp.weight": (64, 172), "lm_head.weight": (1000, 64), "model.norm.weight": (64,)}
    params = write_safetensors(folder / "model-00001-of-00002.safetensors", 1, shard1)
    params += write_safetensors(folder / "model-00002-of-00002.safetensors", 2, shard2)
    weight_map = {**{k: "model-00001-of-00002.safetensors" for k in shard1},
                  **{k: "model-00002-of-00002.safetensors" for k in shard2}}
    total = sum((folder / s).stat().st_size for s in set(weight_map.values()))
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}))
    return params


def test_cp_r_of_a_hugging_face_folder_registers_one_version_with_card_facts(reg, inbox, tmp_path):
    src = tmp_path / "src" / "tiny-ft"
    params = hf_folder(src)
    expected = {p.name: sha256_of(p) for p in src.iterdir()}
    assert params == 1000 * 64 * 2 + 64 * 172 * 2 + 64
    reg.watch(inbox, settle=1.0)

    subprocess.run(["cp", "-r", str(src), str(inbox)], check=True)
    event = reg.entry_event("drop.registered", "tiny-ft", timeout=20)

    assert (event["model"], event["version"]) == ("tiny-ft", 1)
    assert [v["version"] for v in reg.versions("tiny-ft")] == [1], "exactly one version"
    assert len(reg.events("drop.registered")) == 1
    v = reg.version("tiny-ft@1")
    assert v["status"] == "ready"
    assert {f["path"]: f["sha256"] for f in v["files"]} == expected, "every file of the folder, byte for byte"
    assert v["facts"]["parameter_count"] == params
    assert v["facts"]["format"] == "huggingface"
    assert v["facts"]["huggingface"]["model_type"] == "llama"
    assert v["facts"]["huggingface"]["card"]["license"] == "apache-2.0"

    card_metrics = {(m["key"], m["value"]) for m in v["metric_records"] if m["source"] == "model-card"}
    assert card_metrics == {("accuracy", 0.913), ("f1", 0.887)}
    assert v["metrics"]["accuracy"] == 0.913
    assert v["lineage"]["parents"] == [{"ref": "some/base", "external": True}]
    with team_backend.connect(reg.home) as db:  # the edge's kind, as stored
        assert db.execute("SELECT relation FROM lineage WHERE external = 'some/base'").fetchall() == [("derived_from",)]
    datasets = {(d["dataset"], d["relation"]) for d in v["lineage"]["datasets"]}
    assert datasets == {("acme--support-tickets@hub", "trained_on"), ("acme--support-eval@hub", "evaluated_on")}

    assert not (inbox / "tiny-ft").exists(), "move mode: the drop left the folder once registered"
