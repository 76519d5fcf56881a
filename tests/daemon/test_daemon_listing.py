"""Listing versions: paging visits every version once; filters and ordering pick the right ones."""

from __future__ import annotations

import pytest

from registry_harness import Registry

N = 250


def auc_of(n: int) -> float | None:
    """Version n's auc: none for every 25th, ties in pairs, so ordering by it is not just by number."""
    return None if n % 25 == 0 else round(((n * 37) % 100) / 100, 2)


@pytest.fixture
async def many(registry: Registry, src) -> Registry:
    c = registry.client()
    data = src / "w.bin"
    data.write_bytes(b"weights")
    blob = await c.upload_blob(data)
    files = [{"path": "w.bin", "sha256": blob["sha256"], "size": blob["size"]}]
    for n in range(1, N + 1):
        tags = {"team": "risk" if n % 10 == 0 else "growth"}
        if n % 7 == 0:
            tags["candidate"] = ""
        auc = auc_of(n)
        await c.register("fraud", files=files, tags=tags, metrics={"auc": auc} if auc is not None else None)
    for n in (3, 5):
        r = await registry.call("POST", f"/v1/models/fraud/versions/{n}/transition", body={"to": "staging"})
        assert r.status == 200, r.raw
    r = await registry.call("POST", "/v1/models/fraud/versions/8/transition", body={"to": "production"})
    assert r.status == 200, r.raw
    return registry


async def _all_pages(registry: Registry, **filters) -> tuple[list[dict], int, list[int]]:
    c = registry.client()
    items, cursor, sizes = [], None, []
    while True:
        page = await c.versions("fraud", cursor=cursor, **filters)
        items += page["items"]
        sizes.append(len(page["items"]))
        cursor = page["next"]
        if not cursor:
            return items, page["total"], sizes


async def test_paging_by_number_visits_every_version_once(many: Registry) -> None:
    items, total, sizes = await _all_pages(many, limit=100)
    numbers = [v["version"] for v in items]
    assert numbers == list(range(N, 0, -1))
    assert total == N and sizes == [100, 100, 50]
    ascending, _, _ = await _all_pages(many, limit=100, order="number")
    assert [v["version"] for v in ascending] == list(range(1, N + 1))


async def test_paging_ignores_versions_registered_meanwhile(many: Registry) -> None:
    c = many.client()
    first = await c.versions("fraud", limit=100)
    new = await c.register("fraud", files=(await c.version("fraud@1"))["files"])
    assert new["version"]["version"] == N + 1
    rest, cursor = [], first["next"]
    while cursor:
        page = await c.versions("fraud", limit=100, cursor=cursor)
        rest += page["items"]
        cursor = page["next"]
    seen = [v["version"] for v in first["items"] + rest]
    assert seen == list(range(N, 0, -1)), "no version skipped or repeated"


async def test_order_by_metric_pages_through_everything_best_first(many: Registry) -> None:
    items, total, sizes = await _all_pages(many, limit=100, order="-metric:auc")
    numbers = [v["version"] for v in items]
    assert sorted(numbers) == list(range(1, N + 1)) and total == N and sizes == [100, 100, 50]
    with_auc = [n for n in range(1, N + 1) if auc_of(n) is not None]
    expected = sorted(with_auc, key=lambda n: (-auc_of(n), -n)) + sorted(
        (n for n in range(1, N + 1) if auc_of(n) is None), reverse=True)
    assert numbers == expected
    assert [v["metrics"].get("auc") for v in items[:3]] == [0.99, 0.99, 0.99]

    worst_first = await many.client().versions("fraud", order="metric:auc", limit=5)
    assert [v["metrics"]["auc"] for v in worst_first["items"]] == sorted(auc_of(n) for n in with_auc)[:5]


async def test_metric_filter(many: Registry) -> None:
    items, total, _ = await _all_pages(many, metrics=["auc>=0.9"], limit=100)
    expected = {n for n in range(1, N + 1) if (auc_of(n) or 0) >= 0.9}
    assert expected and {v["version"] for v in items} == expected and total == len(expected)
    assert all(v["metrics"]["auc"] >= 0.9 for v in items)
    below, _, _ = await _all_pages(many, metrics=["auc<0.1"], limit=100)
    assert {v["version"] for v in below} == {n for n in range(1, N + 1) if auc_of(n) is not None and auc_of(n) < 0.1}
    between, _, _ = await _all_pages(many, metrics=["auc>=0.5", "auc<=0.5"], limit=100)
    assert {v["version"] for v in between} == {n for n in range(1, N + 1) if auc_of(n) == 0.5}


async def test_tag_filters(many: Registry) -> None:
    risk, total, _ = await _all_pages(many, tags=["team=risk"], limit=100)
    assert [v["version"] for v in risk] == [n for n in range(N, 0, -1) if n % 10 == 0] and total == N // 10
    candidates, _, _ = await _all_pages(many, tags=["candidate"], limit=100)
    assert [v["version"] for v in candidates] == [n for n in range(N, 0, -1) if n % 7 == 0]
    both, _, _ = await _all_pages(many, tags=["team=risk", "candidate"], metrics=["auc>=0.5"], limit=100)
    assert [v["version"] for v in both] == [n for n in range(N, 0, -1)
                                             if n % 70 == 0 and (auc_of(n) or 0) >= 0.5]


async def test_stage_filters(many: Registry) -> None:
    c = many.client()
    staging = await c.versions("fraud", stage="staging")
    assert [v["version"] for v in staging["items"]] == [5, 3] and staging["total"] == 2
    production = await c.versions("fraud", stage="production")
    assert [v["version"] for v in production["items"]] == [8]
    none_stage, total, _ = await _all_pages(many, stage="none", limit=100)
    assert total == N - 3 and {3, 5, 8}.isdisjoint(v["version"] for v in none_stage)
    assert (await c.version("fraud@staging"))["version"] == 5
    assert (await c.version("fraud@production"))["version"] == 8


async def test_model_listing_pages_by_name(registry: Registry) -> None:
    c = registry.client()
    names = [f"m{i:02d}" for i in range(12)]
    for name in reversed(names):
        await c.create_model(name, description=f"model {name}")
    seen, cursor = [], None
    while True:
        page = await c.models(limit=5, cursor=cursor)
        seen += [m["name"] for m in page["items"]]
        cursor = page["next"]
        if not cursor:
            break
    assert seen == names
    assert [m["name"] for m in (await c.models(query="m1"))["items"]] == ["m10", "m11"]
