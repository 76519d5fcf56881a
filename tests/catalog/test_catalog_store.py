"""The catalog store (issue 9): the live-version counter the triggers keep, a version's detail
in one statement with exact REAL values, and the bounded count of a filtered page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import team_backend
from modelreg.daemon.store import Store, open_store
from modelreg.daemon.store.sql import catalog
from modelreg.daemon.store.sqlite.engine import _split_sql


@pytest.fixture
async def store(tmp_path: Path):
    # The backend the run uses: SQLite's file, or the home's PostgreSQL database.
    s = open_store(team_backend.env_for(tmp_path).get("MODELREG_DATABASE"), tmp_path)
    await s.open()
    yield s
    await s.close()


def _versions(model_id: int, count: int, auc: float = 0.1 + 0.2):
    def fn(tx: Any) -> None:
        for _ in range(count):
            n = tx.one("SELECT next_version FROM models WHERE id = ?", (model_id,))[0]
            tx.execute("UPDATE models SET next_version = next_version + 1 WHERE id = ?", (model_id,))
            vid = tx.execute(
                "INSERT INTO versions (model_id, number, status, source, created_at, created_by, updated_at) "
                "VALUES (?, ?, 'ready', 'test', ?, 'test', ?) RETURNING id", (model_id, n, tx.now + n, tx.now)
            ).fetchone()[0]
            tx.execute("INSERT INTO metric_latest VALUES (?, 'auc', ?)", (vid, auc))
            tx.execute("INSERT INTO metrics (version_id, key, value, source, recorded_at) "
                       "VALUES (?, 'auc', ?, 'offline', ?)", (vid, auc, 1767225600.123456))
    return fn


class _Counted:
    """A read handle that counts the statements a read function runs (either backend)."""

    def __init__(self, q: Any) -> None:
        self._q, self.statements = q, 0

    def __getattr__(self, name: str) -> Any:
        if name in ("one", "all"):
            self.statements += 1
        return getattr(self._q, name)


async def _model(store: Store, name: str = "fraud") -> int:
    await store.catalog.create_model(name, "", {}, {}, "test")
    return await store.engine.read(lambda q: catalog.model_id(q, name))


async def test_the_counter_follows_creation_and_deletion(store: Store) -> None:
    mid = await _model(store)
    await store.engine.write(_versions(mid, 5))
    assert (await store.catalog.get_model("fraud"))["version_count"] == 5
    await store.catalog.delete_version("fraud@2", "gone", False, "test", 3, lambda rec, target: None)
    page = await store.catalog.page_versions("fraud")
    assert page["total"] == 4 and page["total_exact"] and len(page["items"]) == 4
    assert (await store.catalog.get_model("fraud"))["version_count"] == 4


async def test_detail_is_one_statement_and_reals_are_exact(store: Store) -> None:
    mid = await _model(store)
    await store.engine.write(_versions(mid, 1))
    counted: list[_Counted] = []

    def read(q):  # noqa: ANN001, ANN202
        counted.append(_Counted(q))
        return catalog.detail_by_ref(counted[0], "fraud@1")

    view = await store.engine.read(read)
    assert counted[0].statements == 1
    assert view["metrics"] == {"auc": 0.1 + 0.2}  # 0.30000000000000004, not SQLite JSON's 0.3
    assert view["metric_records"][0]["value"] == 0.1 + 0.2
    assert view["metric_records"][0]["recorded_at"] == "2026-01-01T00:00:00.123Z"
    assert view == await store.catalog.version_detail((await store.catalog.resolve("fraud@1")).id)


async def test_a_filtered_page_counts_at_most_the_cap(store: Store, monkeypatch) -> None:
    monkeypatch.setattr(catalog, "TOTAL_CAP", 7)
    mid = await _model(store)
    await store.engine.write(_versions(mid, 12, auc=0.95))
    page = await store.catalog.page_versions("fraud", metric_filters=["auc>=0.9"], limit=5)
    assert len(page["items"]) == 5 and page["total"] == 7 and page["total_exact"] is False
    whole = await store.catalog.page_versions("fraud", metric_filters=["auc>=0.9"], limit=100)
    assert whole["total"] == 12 and whole["total_exact"]  # one page holds every match: exact
    few = await store.catalog.page_versions("fraud", metric_filters=["auc>=0.96"], limit=5)
    assert few["items"] == [] and few["total"] == 0 and few["total_exact"]


def test_a_trigger_body_stays_one_statement() -> None:
    script = """
    CREATE TABLE a (x);  -- a comment; with a semicolon
    CREATE TRIGGER t AFTER INSERT ON a BEGIN
        UPDATE a SET x = 1;
        UPDATE a SET x = 2;
    END;
    CREATE INDEX i ON a(x);
    """
    parts = _split_sql(script)
    assert len(parts) == 3 and parts[1].startswith("CREATE TRIGGER") and parts[1].endswith("END")
