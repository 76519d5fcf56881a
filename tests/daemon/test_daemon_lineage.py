"""Lineage both ways: what a dataset trained, what a version was derived from (issue 2, acceptance 4)."""

from __future__ import annotations

import pytest

from registry_harness import Registry


@pytest.fixture
async def family(registry: Registry, src) -> Registry:
    """fraud@1,@2 and churn@1 trained on txns@2026-11; fraud@3 on txns@2026-12; fraud-q@1 derived from fraud@2."""
    c = registry.client()
    data = src / "w.bin"
    data.write_bytes(b"weights")
    blob = await c.upload_blob(data)
    files = [{"path": "w.bin", "sha256": blob["sha256"], "size": blob["size"]}]
    await c.register("fraud", files=files, datasets=["txns@2026-11"], run="r41")
    await c.register("fraud", files=files, datasets=["txns@2026-11", {"ref": "holdout@3", "relation": "evaluated_on"}],
                     run="r42")
    await c.register("fraud", files=files, datasets=["txns@2026-12"])
    await c.register("churn", files=files, datasets=["txns@2026-11"])
    await c.register("fraud-q", files=files, parent="fraud@2", description="int8 quantised")
    await c.register("fraud-q2", files=files, parent="fraud-q@1")
    return registry


async def test_dataset_lists_every_version_trained_on_it_across_models(family: Registry) -> None:
    out = await family.client().dataset_versions("txns@2026-11")
    assert out["known"] is True
    assert [(i["ref"], i["relation"]) for i in out["items"]] == [
        ("churn@1", "trained_on"), ("fraud@1", "trained_on"), ("fraud@2", "trained_on")]
    # Without a version: every version of the dataset.
    every = await family.client().dataset_versions("txns")
    assert [(i["ref"], i["dataset"]) for i in every["items"]] == [
        ("churn@1", "txns@2026-11"), ("fraud@1", "txns@2026-11"), ("fraud@2", "txns@2026-11"),
        ("fraud@3", "txns@2026-12")]
    evaluated = await family.client().dataset_versions("holdout@3")
    assert [(i["ref"], i["relation"]) for i in evaluated["items"]] == [("fraud@2", "evaluated_on")]


async def test_unknown_dataset_is_an_empty_answer_not_an_error(family: Registry) -> None:
    out = await family.client().dataset_versions("txns@1999-01")
    assert out["known"] is False and out["items"] == []


async def test_derived_version_shows_up_downstream_of_its_parent(family: Registry) -> None:
    c = family.client()
    down = (await c.lineage("fraud@2", direction="down"))["downstream"]
    assert down["ref"] == "fraud@2"
    assert [ch["ref"] for ch in down["children"]] == ["fraud-q@1"]
    assert [g["ref"] for g in down["children"][0]["children"]] == ["fraud-q2@1"]
    assert (await c.lineage("fraud@1", direction="down"))["downstream"]["children"] == []


async def test_upstream_walks_parents_to_their_datasets_and_runs(family: Registry) -> None:
    up = (await family.client().lineage("fraud-q2@1", direction="up"))["upstream"]
    assert up["ref"] == "fraud-q2@1"
    (q,) = up["parents"]
    assert q["ref"] == "fraud-q@1"
    (base,) = q["parents"]
    assert base["ref"] == "fraud@2" and base["run"]["id"] == "r42"
    assert {(d["dataset"], d["relation"]) for d in base["datasets"]} == {
        ("txns@2026-11", "trained_on"), ("holdout@3", "evaluated_on")}
    both = await family.client().lineage("fraud-q@1")
    assert set(both) == {"upstream", "downstream"}
    # The version itself shows its parent too.
    assert (await family.client().version("fraud-q@1"))["lineage"]["parents"] == [{"ref": "fraud@2", "stage": "none"}]


@pytest.mark.parametrize("ref", ["nosuch@1", "fraud@99", "nosuch@latest"])
async def test_lineage_of_an_unknown_ref_is_404(family: Registry, ref: str) -> None:
    r = await family.call("GET", f"/v1/lineage/{ref}", accept_json=True)
    assert r.status == 404 and r.error["code"] == "not_found"
    assert ref.split("@")[0] in r.error["message"]
