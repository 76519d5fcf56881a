"""Upgrades (issue 11): a registry the previous release wrote opens, migrates and verifies; a
migration that fails half-way leaves the old schema as it was; a newer database is refused."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from daemon_process import start_daemon
from modelreg.daemon.store.sqlite import engine as engine_module
from modelreg.daemon.store.sqlite.engine import SqliteEngine
from modelreg.daemon.store.sqlite.migrations import LATEST, MIGRATIONS
from modelreg.shared.sync_client import SyncClient
from rel_home_support import FIXTURE, FIXTURE_SCHEMA, as_json, copy_fixture, schema_of

pytestmark = pytest.mark.sqlite_only(reason="the SQLite migrations of a registry.db an older release wrote (the "
                                            "schema-8 fixture home)")


def test_registry_of_the_previous_release_opens_migrates_and_verifies(home: Path, modelreg):
    copy_fixture(home)
    assert schema_of(home / "registry.db")[0] == FIXTURE_SCHEMA
    daemon = start_daemon(home)
    try:
        assert schema_of(home / "registry.db")[0] == LATEST
        assert as_json(modelreg("verify", "--json"))["ok"]
        chain = as_json(modelreg("audit", "verify", "--json"))
        assert chain["ok"] and chain["checked"] >= 29  # every event the release wrote, and the chain still links

        # What the release recorded reads back: stages, aliases, gates, history, files, the MLflow run.
        with SyncClient(url=daemon.url, token=daemon.token) as c:
            prod = c.resolve("fraud@production", path=True)
            assert prod["version"] == 2
            folder = Path(prod["path"])
            assert (folder / "model.bin").read_bytes() == b"fraud weights v2\n" * 8
            assert (home / "serving" / "fraud" / "production").resolve() == folder.resolve()
            assert c.aliases("fraud")["aliases"] == {"champion": 2}
            rules = {(g["target"], g["rule"]) for g in c.gates("fraud")["items"]}
            assert {("production", "auc >= 0.9"), ("production", "requires dataset"), ("@champion", "auc >= 0.92")} <= rules
            assert "rollback" in [h["kind"] for h in c.history("fraud")["items"]]
            assert c.version("fraud@3")["stage"] == "archived"
            tracked = c.version("tracked@1")
            assert tracked["status"] == "ready" and tracked["params"] == {"C": "0.5"} and tracked["metrics"]["auc"] == 0.95

            # The migrated registry takes new writes as a fresh one does, and its chain goes on.
            new = home.parent / "new.bin"
            new.write_bytes(b"after the upgrade")
            assert c.register("fraud", path=new, wait=True, metrics={"auc": 0.95})["version"]["version"] == 4
            assert c.audit_verify()["ok"]
    finally:
        daemon.stop()


async def test_a_migration_failing_half_way_leaves_the_old_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    db = copy_fixture(tmp_path / "home") / "registry.db"
    before = schema_of(db)
    with closing(sqlite3.connect(db)) as conn:
        rows_before = conn.execute("SELECT count(*) FROM versions").fetchone()[0]
    # A next migration whose first statements succeed and whose third fails.
    broken = (LATEST + 1, "a step that fails half-way", """
        CREATE TABLE half_done (id INTEGER PRIMARY KEY);
        ALTER TABLE versions ADD COLUMN half_done_column TEXT;
        INSERT INTO no_such_table VALUES (1);
    """)
    monkeypatch.setattr(engine_module, "MIGRATIONS", [*MIGRATIONS, broken])
    monkeypatch.setattr(engine_module, "LATEST", LATEST + 1)
    engine = SqliteEngine(db)
    with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
        await engine.open()
    # Every migration up to LATEST applied (the fixture is older), the broken one not at all.
    version, objects = schema_of(db)
    assert version == LATEST
    assert not any(name == "half_done" for _, name, _ in objects)
    assert all("half_done_column" not in sql for _, _, sql in objects)
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT max(number) FROM schema_migrations").fetchone()[0] == LATEST
        assert conn.execute("SELECT count(*) FROM versions").fetchone()[0] == rows_before

    # Failing on the fixture's own schema: nothing of the step is left, the schema is the release's.
    db2 = copy_fixture(tmp_path / "home2") / "registry.db"
    monkeypatch.setattr(engine_module, "MIGRATIONS", [*MIGRATIONS[:FIXTURE_SCHEMA],
                                                     (FIXTURE_SCHEMA + 1, broken[1], broken[2])])
    monkeypatch.setattr(engine_module, "LATEST", FIXTURE_SCHEMA + 1)
    with pytest.raises(sqlite3.OperationalError):
        await SqliteEngine(db2).open()
    assert schema_of(db2) == before

    # The real code opens it afterwards as if nothing had happened.
    monkeypatch.undo()
    healthy = SqliteEngine(db2)
    await healthy.open()
    await healthy.close()
    assert schema_of(db2)[0] == LATEST


async def test_migrating_keeps_every_row_and_every_reference(tmp_path: Path):
    """No migration loses or orphans a row of the old release (a table rebuilt while foreign keys
    are on could cascade-delete the rows that reference it)."""
    db = copy_fixture(tmp_path / "home") / "registry.db"

    def counts() -> dict[str, int]:
        with closing(sqlite3.connect(db)) as conn:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                                 "AND name NOT IN ('schema_migrations', 'sqlite_sequence')")]
            return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}

    before = counts()
    assert before["versions"] == 5 and before["events"] == 29 and before["manifest"] > 0
    engine = SqliteEngine(db)
    await engine.open()
    await engine.close()
    after = counts()
    assert {t: after[t] for t in before} == before
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# SQLite's table rebuild (a CHECK or a constraint cannot change in place) of a table others
# reference: with foreign keys on, DROP TABLE would cascade or refuse.
REBUILD_DATASETS = """
    CREATE TABLE datasets_next (
        id INTEGER PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL, digest TEXT, uri TEXT,
        created_at REAL NOT NULL, license TEXT NOT NULL DEFAULT '', UNIQUE (name, version));
    INSERT INTO datasets_next (id, name, version, digest, uri, created_at)
        SELECT id, name, version, digest, uri, created_at FROM datasets;
    DROP TABLE datasets;
    ALTER TABLE datasets_next RENAME TO datasets;
"""


async def test_a_migration_may_rebuild_a_referenced_table_and_may_not_orphan_rows(tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch):
    db = copy_fixture(tmp_path / "home") / "registry.db"
    query = "SELECT l.relation, d.name, d.version FROM lineage l JOIN datasets d ON d.id = l.dataset_id ORDER BY l.id"
    with closing(sqlite3.connect(db)) as conn:
        lineage = conn.execute(query).fetchall()
    assert len(lineage) == 2  # fraud@1 and fraud@2 were trained on a dataset each
    monkeypatch.setattr(engine_module, "MIGRATIONS", [*MIGRATIONS, (LATEST + 1, "rebuild datasets", REBUILD_DATASETS)])
    monkeypatch.setattr(engine_module, "LATEST", LATEST + 1)
    engine = SqliteEngine(db)
    await engine.open()
    await engine.close()
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST + 1
        assert conn.execute(query).fetchall() == lineage
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []

    # A migration that would leave lineage naming datasets that are gone is refused whole.
    db2 = copy_fixture(tmp_path / "home2") / "registry.db"
    monkeypatch.setattr(engine_module, "MIGRATIONS", [*MIGRATIONS, (LATEST + 1, "lose datasets", "DELETE FROM datasets")])
    with pytest.raises(engine_module.MigrationFailed, match=r"would leave 2 row\(s\) of lineage naming a row"):
        await SqliteEngine(db2).open()
    with closing(sqlite3.connect(db2)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST
        assert conn.execute(query).fetchall() == lineage


def test_a_database_newer_than_the_code_is_refused_and_left_alone(home: Path, modelreg):
    copy_fixture(home)
    db = home / "registry.db"
    with closing(sqlite3.connect(db)) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST + 5}")
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    with pytest.raises(RuntimeError) as refused:
        start_daemon(home)
    message = str(refused.value)
    assert "newer modelreg" in message and f"schema {LATEST + 5}" in message and "upgrade modelreg" in message
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    # doctor says the same, with its fix, and exits 1.
    result = modelreg("doctor", "--json")
    assert result.returncode == 1
    findings = json.loads(result.stdout)["findings"]
    assert any(f["check"] == "database" and "newer modelreg" in f["problem"] and "upgrade" in f["fix"] for f in findings)


def test_the_fixture_is_committed_data_not_rebuilt(tmp_path: Path):
    """The upgrade test means something only if its database is the old release's bytes: one
    self-contained file (no -wal beside it), of the old schema. Read from a copy: SQLite would
    leave -wal and -shm files beside the committed one."""
    assert sorted(p.name for p in FIXTURE.iterdir()) == ["blobs", "registry.db"]
    assert schema_of(copy_fixture(tmp_path / "home") / "registry.db")[0] == FIXTURE_SCHEMA <= LATEST
