"""Gates that guard an alias (issue 10, "Our rules hold"): moving NAME@ALIAS runs the alias's gates.

MLflow users promote by moving an alias, so a gate added with ``--alias champion`` refuses a
move that fails it exactly as a stage gate refuses a promotion: exit 3, the failing rule and
its verdict in the message, an audited refusal, an audited ``--force --reason`` override.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from lifecycle_support import Versions
from modelreg.daemon.store.sqlite.engine import _migrate, _split_sql
from modelreg.daemon.store.sqlite.migrations import LATEST, MIGRATIONS
from modelreg.shared.errors import GateFailed, InvalidInput


def _events(modelreg, after: int = 0) -> list[dict]:
    return json.loads(modelreg("events", "--after", str(after), "--limit", "1000", "--json", check=True).stdout)


def _resolved(modelreg, ref: str) -> str:
    return modelreg("resolve", ref, check=True).stdout.strip()


async def test_an_alias_gate_refuses_a_move_that_fails_it_and_audits_the_refusal(daemon, modelreg, client,
                                                                                 versions: Versions):
    await versions.add(1, auc=0.91)
    await versions.add(2, auc=0.87)
    await versions.add(3, auc=0.95)
    modelreg("alias", "set", "fraud", "champion", "1", check=True)  # no gates yet: it just moves
    added = modelreg("gate", "add", "fraud", "--alias", "champion", "auc >= production", "auc >= 0.8", check=True)
    assert "fraud → @champion: auc >= production" in added.stdout, added
    assert "fraud → @champion: auc >= 0.8" in added.stdout
    listed = modelreg("gate", "list", "fraud", check=True).stdout
    assert "→ @champion" in listed and "auc >= production" in listed, listed
    gates = json.loads(modelreg("gate", "list", "fraud", "--json", check=True).stdout)
    assert [(g["stage"], g["alias"], g["target"], g["rule"]) for g in gates] == [
        (None, "champion", "@champion", "auc >= production"), (None, "champion", "@champion", "auc >= 0.8")]
    # A stage's gates are not the alias's: a promotion of the worse version is not refused by them.
    assert modelreg("check", "fraud@2", "--to", "production").returncode == 0
    last_before = (await client.events(limit=1))["last_id"]

    refused = modelreg("alias", "set", "fraud", "champion", "2")
    assert refused.returncode == 3, refused
    lines = refused.stdout.splitlines()
    assert "gates for fraud@2 → @champion: failed" in lines[0], lines
    # "production" in an alias gate is the version the alias points at now.
    versus = lines.index("  ✗ auc >= production")
    assert "0.87" in lines[versus + 1] and "@champion v1 0.91" in lines[versus + 1], lines
    assert "  ✓ auc >= 0.8" in lines
    assert "refused" in refused.stderr and "--force" in refused.stderr
    assert _resolved(modelreg, "fraud@champion") == "fraud@1"

    # The refusal is audited, with its verdict; nothing else was written.
    (event,) = _events(modelreg, last_before)
    assert (event["kind"], event["version"], event["data"]["alias"], event["data"]["from"]) == (
        "alias.refused", 2, "champion", 1)
    assert event["data"]["verdict"]["passed"] is False and event["actor"]
    assert [r["status"] for r in event["data"]["verdict"]["rules"]] == ["fail", "pass"]

    # Through the API: GateFailed whose message names the failing rule and the verdict's words.
    with pytest.raises(GateFailed) as info:
        await client.set_alias("fraud", "champion", 2)
    assert "auc >= production" in info.value.message and "0.87" in info.value.message, info.value.message
    assert "auc >= 0.8" not in info.value.message  # only the failing rule
    assert info.value.details["verdict"]["target"] == "@champion"

    # A dry run gives the same verdict and writes nothing.
    last_before = (await client.events(limit=1))["last_id"]
    assert modelreg("check", "fraud@2", "--alias", "champion").returncode == 3
    passing = modelreg("check", "fraud@3", "--alias", "champion")
    assert passing.returncode == 0 and "fraud@3 → @champion: passed" in passing.stdout, passing
    assert (await client.events(limit=1))["last_id"] == last_before

    # A version that passes moves the alias; its verdict is kept with the alias.set event.
    moved = modelreg("alias", "set", "fraud", "champion", "3")
    assert moved.returncode == 0 and "fraud@champion → v3" in moved.stdout, moved
    assert _resolved(modelreg, "fraud@champion") == "fraud@3"
    (event,) = _events(modelreg, last_before)
    assert event["kind"] == "alias.set" and event["data"]["verdict"]["passed"] is True
    assert modelreg("audit", "verify").returncode == 0


async def test_force_with_a_reason_overrides_an_alias_gate_and_is_audited(daemon, modelreg, client,
                                                                         versions: Versions):
    await versions.add(1, auc=0.7)
    modelreg("gate", "add", "fraud", "--alias", "champion", "auc >= 0.9", check=True)
    assert modelreg("alias", "set", "fraud", "champion", "1").returncode == 3
    no_reason = modelreg("alias", "set", "fraud", "champion", "1", "--force")
    assert no_reason.returncode == 2 and "reason" in no_reason.stderr, no_reason
    with pytest.raises(InvalidInput):  # the daemon asks for the reason too, not only the CLI
        await client.set_alias("fraud", "champion", 1, force=True)
    last_before = (await client.events(limit=1))["last_id"]
    forced = modelreg("alias", "set", "fraud", "champion", "1", "--force", "--reason", "demo for the risk team")
    assert forced.returncode == 0, forced
    assert "(forced)" in forced.stdout and "fraud@champion → v1" in forced.stdout
    (event,) = _events(modelreg, last_before)
    assert event["kind"] == "alias.set"
    assert (event["data"]["forced"], event["data"]["reason"]) == (True, "demo for the risk team")
    assert event["data"]["verdict"]["passed"] is False and event["data"]["verdict"]["forced"] is True


async def test_removing_the_gate_lifts_it_and_registry_wide_alias_gates_apply_to_every_model(
        daemon, modelreg, client, versions: Versions, tmp_path):
    await versions.add(1, auc=0.5)
    other = Versions(client, tmp_path / "other", model="churn")
    await other.add(1, auc=0.5)
    modelreg("gate", "add", "*", "--alias", "champion", "requires metric:recall", check=True)
    gates = json.loads(modelreg("gate", "list", "--json", check=True).stdout)
    assert [(g["model"], g["alias"]) for g in gates] == [(None, "champion")]
    assert "→ @champion" in modelreg("gate", "list", "churn", check=True).stdout
    for model in ("fraud", "churn"):
        r = modelreg("alias", "set", model, "champion", "1")
        assert r.returncode == 3 and "missing: metric:recall" in r.stdout, (model, r)
    # Another alias of the same model is not guarded by champion's gates.
    modelreg("alias", "set", "fraud", "challenger", "1", check=True)

    modelreg("gate", "rm", str(gates[0]["id"]), check=True)
    modelreg("alias", "set", "fraud", "champion", "1", check=True)
    modelreg("alias", "set", "churn", "champion", "1", check=True)
    assert _resolved(modelreg, "churn@champion") == "churn@1"


def test_gate_add_takes_exactly_one_target(daemon, modelreg):
    both = modelreg("gate", "add", "*", "auc >= 0.9", "--stage", "production", "--alias", "champion")
    assert both.returncode == 2 and "exactly one of --stage" in both.stderr, both
    neither = modelreg("gate", "add", "*", "auc >= 0.9")
    assert neither.returncode == 2 and "exactly one of --stage" in neither.stderr, neither
    reserved = modelreg("gate", "add", "*", "auc >= 0.9", "--alias", "production")
    assert reserved.returncode == 2 and "reserved" in reserved.stderr, reserved
    assert json.loads(modelreg("gate", "list", "--json", check=True).stdout) == []


async def test_the_api_refuses_a_gate_with_both_or_no_target(daemon, client):
    for body in ({"rule": "auc >= 0.9"}, {"rule": "auc >= 0.9", "stage": "production", "alias": "champion"},
                 {"rule": "auc >= 0.9", "alias": "Champion!"}, {"rule": "auc >= 0.9", "alias": 5}):
        with pytest.raises(InvalidInput):
            await client.request("POST", "/v1/gates", body=body)
    assert (await client.gates())["items"] == []


@pytest.mark.sqlite_only(reason="SQLite's migration 8 rebuilds its gates table (it cannot widen a CHECK)")
def test_migration_8_keeps_stage_gates_their_ids_and_the_id_counter(tmp_path):
    """The gates table is rebuilt (SQLite cannot widen a CHECK): a database written before it keeps
    its stage gates under their ids (the audit log names them) and a removed gate's id is not reused."""
    path = tmp_path / "registry.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_migrations (number INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)")
    for number, name, sql in [m for m in MIGRATIONS if m[0] < 8]:
        for statement in _split_sql(sql):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (number, name))
        conn.execute(f"PRAGMA user_version = {number}")
    for rule in ("auc >= 0.9", "auc >= 0.8", "auc >= 0.7"):
        conn.execute("INSERT INTO gates (stage, rule, created_at, created_by) VALUES ('production', ?, 0, 'ana')",
                     (rule,))
    conn.execute("DELETE FROM gates WHERE id = 3")  # the newest: its id must not come back
    _migrate(conn, path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST
    assert conn.execute("SELECT id, stage, alias, rule FROM gates ORDER BY id").fetchall() == [
        (1, "production", None, "auc >= 0.9"), (2, "production", None, "auc >= 0.8")]
    added = conn.execute("INSERT INTO gates (alias, rule, created_at, created_by) "
                         "VALUES ('champion', 'auc >= 0.9', 0, 'ana') RETURNING id").fetchone()[0]
    assert added == 4
    try:
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO gates (stage, alias, rule, created_at, created_by) "
                         "VALUES ('production', 'champion', 'x', 0, 't')")
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO gates (stage, alias, rule, created_at, created_by) VALUES (NULL, NULL, 'x', 0, 't')")
    finally:
        conn.close()
