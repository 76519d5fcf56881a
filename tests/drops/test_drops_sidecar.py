"""A drop's modelreg.toml: metadata, lineage and a stage request that goes through the gates (PRODUCT.md §6)."""

from __future__ import annotations

import os
from pathlib import Path

from drops_support import sha256_of, write_safetensors

SIDECAR = """\
name = "ranker"
description = "Click ranker, weekly retrain"
parent = "base@1"
stage = "staging"
datasets = ["clicks@2026-11", {{ ref = "clicks-holdout@2026-11", relation = "evaluated_on" }}]

[params]
lr = 0.001
epochs = 3
optimizer = "adamw"

[metrics]
auc = {auc}
logloss = 0.31

[tags]
team = "search"

[run]
id = "run-{run}"
experiment = "ranker-weekly"
code_revision = "9f1c2ab"
"""


def candidate(root: Path, name: str, seed: int, auc: float) -> dict[str, str]:
    folder = root / name
    folder.mkdir(parents=True)
    write_safetensors(folder / "model.safetensors", seed)
    (folder / "modelreg.toml").write_text(SIDECAR.format(auc=auc, run=seed))
    return {"model.safetensors": sha256_of(folder / "model.safetensors")}


def test_sidecar_metadata_lands_on_the_version_and_its_stage_request_is_gated(reg, modelreg, inbox, tmp_path):
    base = tmp_path / "base"
    write_safetensors(base, 0)
    assert reg.client.register("base", path=base, wait=True)["version"]["version"] == 1
    reg.watch(inbox, settle=0.5)
    src = tmp_path / "src"

    files = candidate(src, "ranker-2026-11-20", 1, auc=0.95)
    os.rename(src / "ranker-2026-11-20", inbox / "ranker-2026-11-20")
    event = reg.entry_event("drop.registered", "ranker-2026-11-20", timeout=10)
    assert (event["model"], event["version"]) == ("ranker", 1), "the sidecar's name wins over the folder's"
    staged = reg.wait_event("stage.changed", timeout=10, where=lambda e: e["model"] == "ranker")[0]
    assert (staged["version"], staged["data"]["to"]) == (1, "staging")

    v = reg.version("ranker@1")
    assert v["stage"] == "staging" and v["status"] == "ready"
    assert v["description"] == "Click ranker, weekly retrain"
    assert v["params"] == {"lr": "0.001", "epochs": "3", "optimizer": "adamw"}
    assert v["metrics"] == {"auc": 0.95, "logloss": 0.31}
    assert v["tags"] == {"team": "search"}
    assert {f["path"]: f["sha256"] for f in v["files"]} == files, "the sidecar is metadata, not an artifact"
    assert v["lineage"]["parents"] == [{"ref": "base@1", "stage": "none"}]
    assert {(d["dataset"], d["relation"]) for d in v["lineage"]["datasets"]} == {
        ("clicks@2026-11", "trained_on"), ("clicks-holdout@2026-11", "evaluated_on")}
    run = v["lineage"]["run"]
    assert (run["id"], run["experiment"], run["code_revision"]) == ("run-1", "ranker-weekly", "9f1c2ab")

    # A staging gate the next drop does not meet: registered, but it stays in `none`.
    modelreg("gate", "add", "ranker", "--stage", "staging", "auc >= 0.99", check=True)
    after = reg.last_event_id()
    candidate(src, "ranker-2026-11-27", 2, auc=0.96)
    os.rename(src / "ranker-2026-11-27", inbox / "ranker-2026-11-27")
    event = reg.entry_event("drop.registered", "ranker-2026-11-27", timeout=10, after=after)
    assert (event["model"], event["version"]) == ("ranker", 2)
    refused = reg.wait_event("stage.refused", timeout=10, after=after)[0]
    assert (refused["model"], refused["version"]) == ("ranker", 2)
    assert "auc" in str(refused["data"])
    assert reg.version("ranker@2")["stage"] == "none"
    assert reg.version("ranker@1")["stage"] == "staging"
    assert reg.events("stage.changed", after=after) == []
    assert reg.events("drop.failed") == []
