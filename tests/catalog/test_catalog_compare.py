"""compare: metrics with judged deltas, params, files and safetensors tensors, from the API, the
client and the CLI (issue 8 item 6)."""

from __future__ import annotations

import json
import urllib.request

import pytest

from catalog_support import safetensors_bytes
from modelreg.shared.errors import InvalidInput, NotFound


@pytest.fixture
def pair(reg):
    # Real safetensors files: the tensor lists come from what the daemon's sniffer read.
    one = safetensors_bytes({"w": ("F32", [4, 4]), "b": ("F32", [4]), "gone": ("F16", [2])})
    two = safetensors_bytes({"w": ("BF16", [4, 4]), "b": ("F32", [4]), "extra": ("F32", [1])})
    reg.add("fraud", {"model.safetensors": one, "config.json": b"{}", "old.txt": b"x"},
            metrics={"auc": 0.90, "val_loss": 0.30, "f1": 0.5}, params={"lr": "0.1", "depth": "6", "seed": "1"})
    reg.add("fraud", {"model.safetensors": two, "config.json": b"{}", "new.txt": b"y"},
            metrics={"auc": 0.93, "val_loss": 0.35}, params={"lr": "0.05", "depth": "6", "seed": "1"})


def test_compare_api(client, pair) -> None:
    c = client.compare("fraud@1", "fraud@2")
    assert c["baseline"] == "fraud@1" and [v["ref"] for v in c["versions"]] == ["fraud@1", "fraud@2"]
    rows = {r["key"]: r for r in c["metrics"]}
    assert rows["auc"]["values"] == [0.90, 0.93] and rows["auc"]["judged"] == [None, "better"]
    assert rows["auc"]["deltas"][1] == pytest.approx(0.03)
    # val_loss went up: lower is better for a loss, so it is worse (the one direction rule).
    assert rows["val_loss"]["direction"] == "lower" and rows["val_loss"]["judged"] == [None, "worse"]
    assert rows["f1"]["values"] == [0.5, None] and rows["f1"]["judged"] == [None, None]
    assert c["params"] == {"differ": [{"key": "lr", "values": ["0.1", "0.05"]}], "same": 2}
    files = {f["path"]: f["status"][1] for f in c["files"]["differ"]}
    assert files == {"model.safetensors": "changed", "new.txt": "added", "old.txt": "removed"}
    assert c["files"]["same"] == 1
    tensors = {t["tensor"]: t for t in c["tensors"]["differ"]}
    assert {k: t["status"][1] for k, t in tensors.items()} == {
        "model.safetensors:w": "changed", "model.safetensors:gone": "removed", "model.safetensors:extra": "added"}
    assert tensors["model.safetensors:w"]["values"] == [{"dtype": "F32", "shape": [4, 4]},
                                                        {"dtype": "BF16", "shape": [4, 4]}]
    assert c["tensors"]["same"] == 1 and c["tensors"]["truncated"] is False


def test_compare_across_models_and_refs(client, reg) -> None:
    reg.add("fraud", metrics={"auc": 0.8})
    reg.add("ranker", metrics={"auc": 0.7})
    client.transition("fraud@1", "production")
    c = client.compare("fraud@production", "ranker@latest", "fraud@1")
    assert [v["ref"] for v in c["versions"]] == ["fraud@1", "ranker@1", "fraud@1"]
    assert c["metrics"][0]["judged"] == [None, "worse", "same"]


def test_compare_refuses_bad_input(client, daemon, reg) -> None:
    reg.add("fraud")
    with pytest.raises(InvalidInput, match="2 to 20 refs"):
        client.compare("fraud@1")
    with pytest.raises(NotFound, match="fraud@9 does not exist"):
        client.compare("fraud@1", "fraud@9")
    req = urllib.request.Request(f"{daemon.url}/v1/compare?ref=fraud@1&ref=no%20such",
                                 headers={"Authorization": f"Bearer {daemon.token}", "Accept": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 400 and json.loads(e.value.read())["error"]["code"] == "invalid_input"


def test_compare_cli(modelreg, pair) -> None:
    r = modelreg("compare", "fraud@1", "fraud@2")
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert "baseline fraud@1" in text
    line = next(l for l in text.splitlines() if l.strip().startswith("val_loss"))
    assert "↓ lower" in line and "+0.05" in line
    assert "lr" in text and "2 identical params" in text
    assert "added" in text and "removed" in text and "model.safetensors:w" in text and "BF16 [4, 4]" in text
    assert "[" not in text.replace("[4, 4]", "").replace("[4]", "").replace("[1]", "").replace("[2]", "")
    j = modelreg("compare", "fraud@1", "fraud@2", "--json")
    assert j.returncode == 0 and json.loads(j.stdout)["params"]["same"] == 2
    assert modelreg("compare", "fraud@1").returncode == 2
    missing = modelreg("compare", "fraud@1", "fraud@7")
    assert missing.returncode == 4 and "fraud@7 does not exist" in missing.stderr
