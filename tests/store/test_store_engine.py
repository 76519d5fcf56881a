"""The SQLite engine (issue 9): group commit, a failing write alone, durability settings."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from modelreg.daemon.store.sqlite.engine import SqliteEngine, WriteTx
from modelreg.daemon.store.sql import events

pytestmark = pytest.mark.sqlite_only(reason="the SQLite engine itself: its group commit, pragmas and file "
                                            "(tests/postgres tests PostgreSQL's)")


@pytest.fixture
async def engine(tmp_path: Path):
    e = SqliteEngine(tmp_path / "registry.db")
    await e.open()
    yield e
    await e.close()


def _create_model(name: str):
    def fn(tx: WriteTx) -> int:
        cur = tx.execute("INSERT INTO models (name, created_at, updated_at) VALUES (?, ?, ?)", (name, tx.now, tx.now))
        events.append(tx, "model.created", "test", model=name)
        return cur.lastrowid
    return fn


async def test_writes_queued_together_commit_as_one_group(engine: SqliteEngine) -> None:
    published: list[list[dict]] = []
    engine.on_commit.append(published.append)
    ids = await asyncio.gather(*(engine.write(_create_model(f"m{i}")) for i in range(40)))
    assert len(set(ids)) == 40
    assert engine.grouped_writes == 40 and engine.groups < 40  # fewer commits than writes
    names = [r["name"] for r in await engine.all("SELECT name FROM models ORDER BY id")]
    assert names == [f"m{i}" for i in range(40)]
    assert sorted(e["model"] for batch in published for e in batch) == sorted(names)


async def test_a_failing_write_rolls_back_alone(engine: SqliteEngine) -> None:
    published: list[dict] = []
    engine.on_commit.append(published.extend)

    def half_then_fail(tx: WriteTx) -> None:
        _create_model("doomed")(tx)  # a row and an event, then the failure
        raise ValueError("refused on purpose")

    results = await asyncio.gather(engine.write(_create_model("a")), engine.write(half_then_fail),
                                   engine.write(_create_model("b")), return_exceptions=True)
    assert isinstance(results[1], ValueError) and str(results[1]) == "refused on purpose"
    assert isinstance(results[0], int) and isinstance(results[2], int)
    assert engine.groups == 1  # all three ran in the same group
    names = [r["name"] for r in await engine.all("SELECT name FROM models ORDER BY id")]
    assert names == ["a", "b"]
    assert [e["model"] for e in published] == ["a", "b"]  # the failed write's event never left
    # The hash chain has no gap where the failed write's event was rolled back.
    rows = await engine.all("SELECT id, prev_hash, hash FROM events ORDER BY id")
    assert [r["id"] for r in rows] == [1, 2] and rows[1]["prev_hash"] == rows[0]["hash"]


async def test_a_write_cannot_leave_its_transaction_open(engine: SqliteEngine) -> None:
    """A write that commits or rolls back itself breaks the group: the error says so, nothing is lost."""
    def commits_itself(tx: WriteTx) -> None:
        tx.execute("COMMIT")

    with pytest.raises(sqlite3.Error):
        await engine.write(commits_itself)
    assert await engine.write(_create_model("after")) >= 1  # the engine still writes


async def test_acknowledged_writes_are_durable_settings(engine: SqliteEngine) -> None:
    """synchronous=FULL (2) on the writer in WAL mode: a commit is fsynced before its future resolves."""
    assert await engine.pragma("journal_mode") == "wal"
    assert await engine.pragma("synchronous") == 2
    assert await engine.pragma("foreign_keys") == 1
    assert await engine.pragma("query_only", writer=False) == 1


async def test_reads_see_committed_writes(engine: SqliteEngine, tmp_path: Path) -> None:
    await engine.write(_create_model("seen"))
    row = await engine.one("SELECT name FROM models WHERE name = ?", ("seen",))
    assert row["name"] == "seen"
    # A separate process-level connection (the sqlite3 shell) sees it too: it is on disk.
    outside = sqlite3.connect(tmp_path / "registry.db")
    assert outside.execute("SELECT count(*) FROM models").fetchone()[0] == 1
    outside.close()
