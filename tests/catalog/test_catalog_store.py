"""The catalog store (issue 9): the live-version counter the triggers keep, a version's detail
in one statement with exact REAL values, and the bounded count of a filtered page."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelreg.daemon.store.sql import catalog
from modelreg.daemon.store.sqlite import SqliteStore
from modelreg.daemon.store.sqlite.engine import WriteTx, _split_sql


@pytest.fixture
async def store(tmp_path: Path):
    s = SqliteStore(tmp_path / "registry.db")
    await s.open()
    yield s
    await s.close()


def _versions(model_id: int, count: int, auc: float = 0.1 + 0.2):
    def fn(tx: WriteTx) -> None:
        for _ in range(count):
            n = tx.one("SELECT next_version FROM models WHERE id = ?", (model_id,))[0]
            tx.execute("UPDATE models SET next_version = next_version + 1 WHERE id = ?", (model_id,))
            vid = tx.execute(
                "INSERT INTO versions (model_id, number, status, source, created_at, created_by, updated_at) "
                "VALUES (?, ?, 'ready', 'test', ?, 'test', ?)", (model_id, n, tx.now + n, tx.now)).lastrowid
            tx.execute("INSERT INTO metric_latest VALUES (?, 'auc', ?)", (vid, auc))
            tx.execute("INSERT INTO metrics (version_id, key, value, source, recorded_at) "
                       "VALUES (?, 'auc', ?, 'offline', ?)", (vid, auc, 1767225600.123456))
    return fn


async def _model(store: SqliteStore, name: str = "fraud") -> int:
    await store.catalog.create_model(name, "", {}, {}, "test")
    return await store.engine.read(lambda q: catalog.model_id(q, name))


async def test_the_counter_follows_creation_and_deletion(store: SqliteStore) -> None:
    mid = await _model(store)
    await store.engine.write(_versions(mid, 5))
    assert (await store.catalog.get_model("fraud"))["version_count"] == 5
    await store.catalog.delete_version("fraud@2", "gone", False, "test", 3, lambda rec, target: None)
    page = await store.catalog.page_versions("fraud")
    assert page["total"] == 4 and page["total_exact"] and len(page["items"]) == 4
    assert (await store.catalog.get_model("fraud"))["version_count"] == 4


async def test_detail_is_one_statement_and_reals_are_exact(store: SqliteStore) -> None:
    mid = await _model(store)
    await store.engine.write(_versions(mid, 1))
    statements: list[str] = []

    def read(q):  # noqa: ANN001, ANN202
        q.conn.set_trace_callback(statements.append)
        try:
            return catalog.detail_by_ref(q, "fraud@1")
        finally:
            q.conn.set_trace_callback(None)

    view = await store.engine.read(read)
    assert len(statements) == 1
    assert view["metrics"] == {"auc": 0.1 + 0.2}  # 0.30000000000000004, not SQLite JSON's 0.3
    assert view["metric_records"][0]["value"] == 0.1 + 0.2
    assert view["metric_records"][0]["recorded_at"] == "2026-01-01T00:00:00.123Z"
    assert view == await store.catalog.version_detail((await store.catalog.resolve("fraud@1")).id)


async def test_a_filtered_page_counts_at_most_the_cap(store: SqliteStore, monkeypatch) -> None:
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
