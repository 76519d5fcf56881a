"""search across every model: name glob, tag, metric, stage, dataset, fact; ordered and paged."""

from __future__ import annotations

import json

import pytest

from modelreg.shared.errors import InvalidInput


@pytest.fixture
def catalog(client, reg):
    reg.add("fraud-small", metrics={"auc": 0.91}, tags={"team": "risk"}, datasets=["txns@2026-11"])
    reg.add("fraud-small", metrics={"auc": 0.85}, datasets=["txns@2026-10"])
    reg.add("Fraud-big", metrics={"auc": 0.95})
    reg.add("llama-tune", metrics={"loss": 1.2})
    client.update_model("Fraud-big", tags={"team": "risk"})
    reg.set_facts("llama-tune@1", {"format": "gguf", "files": {"m.gguf": {"format": "gguf", "architecture": "llama",
                                                                          "unsafe": False}}})
    client.transition("fraud-small@1", "production")


def refs(page) -> list[str]:
    return [f"{v['model']}@{v['version']}" for v in page["items"]]


def test_search_filters(client, catalog) -> None:
    assert sorted(refs(client.search(name="fraud*"))) == ["Fraud-big@1", "fraud-small@1", "fraud-small@2"]
    assert sorted(refs(client.search(metrics=["auc>=0.9"]))) == ["Fraud-big@1", "fraud-small@1"]
    # A tag matches on the version or on its model.
    assert sorted(refs(client.search(tags=["team=risk"]))) == ["Fraud-big@1", "fraud-small@1"]
    assert refs(client.search(stage="production")) == ["fraud-small@1"]
    assert refs(client.search(datasets=["txns@2026-10"])) == ["fraud-small@2"]
    assert sorted(refs(client.search(datasets=["txns"]))) == ["fraud-small@1", "fraud-small@2"]
    assert refs(client.search(facts=["architecture=LLaMA"])) == ["llama-tune@1"]
    assert refs(client.search(facts=["format=gguf", "unsafe=false"])) == ["llama-tune@1"]
    assert refs(client.search(facts=["architecture=mistral"])) == []
    assert refs(client.search(name="fraud*", metrics=["auc<0.9"])) == ["fraud-small@2"]


def test_search_order_and_paging(client, catalog) -> None:
    assert refs(client.search(order="-metric:auc"))[:3] == ["Fraud-big@1", "fraud-small@1", "fraud-small@2"]
    assert refs(client.search(order="-created"))[0] == "llama-tune@1"
    seen, cursor = [], None
    while True:
        page = client.search(order="name", limit=1, cursor=cursor)
        assert page["total"] == 4
        seen += refs(page)
        cursor = page["next"]
        if not cursor:
            break
    assert seen == ["Fraud-big@1", "fraud-small@1", "fraud-small@2", "llama-tune@1"]


def test_search_refuses_bad_input(client, catalog) -> None:
    for bad in (dict(metrics=["auc>>1"]), dict(order="-number"), dict(order="sideways"), dict(cursor="n:3"),
                dict(tags=["bad key=1"]), dict(datasets=["no such@x"]), dict(stage="prod"), dict(limit=0)):
        with pytest.raises(InvalidInput):
            client.search(**bad)


def test_search_skips_deleted(client, catalog) -> None:
    client.delete_version("fraud-small@2", reason="leaked test data")
    assert refs(client.search(name="fraud-small")) == ["fraud-small@1"]


def test_search_cli(modelreg, catalog) -> None:
    r = modelreg("search", "--name", "fraud*", "--metric", "auc>=0.9", "--tag", "team=risk")
    assert r.returncode == 0, r.stderr
    assert "Fraud-big@1" in r.stdout and "fraud-small@1" in r.stdout and "fraud-small@2" not in r.stdout
    j = json.loads(modelreg("search", "--fact", "architecture=llama", "--json").stdout)
    assert [v["model"] for v in j["items"]] == ["llama-tune"] and j["total"] == 1 and j["next"] is None
    everything = json.loads(modelreg("search", "--all", "--limit", "1", "--json").stdout)
    assert everything["total"] == 4
    assert modelreg("search", "--metric", "auc>>1").returncode == 2
