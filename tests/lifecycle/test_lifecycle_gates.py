"""Gates on the way into production (issue 3, acceptance 1): refusal, dry run, audited override."""

from __future__ import annotations

import json

from lifecycle_support import Versions


def _events(modelreg, after: int = 0) -> list[dict]:
    out = modelreg("events", "--after", str(after), "--limit", "1000", "--json", check=True).stdout
    return json.loads(out)  # one JSON array; `events --follow --json` is the NDJSON form


async def test_worse_candidate_is_refused_then_forced_with_an_audited_reason(daemon, modelreg, client, versions: Versions):
    await versions.add(1, auc=0.91)
    await versions.add(2, auc=0.87)
    await versions.add(3, auc=0.95)
    modelreg("promote", "fraud@1", "--reason", "first model", check=True)
    added = modelreg("gate", "add", "fraud", "auc >= production", "auc >= 0.8", "--stage", "production", check=True)
    assert "auc >= production" in added.stdout and "auc >= 0.8" in added.stdout
    last_before = (await client.events(limit=1))["last_id"]

    refused = modelreg("promote", "fraud@2", "--reason", "try it")
    assert refused.returncode == 3, refused
    lines = refused.stdout.splitlines()
    assert "fraud@2 → production: failed (production: v1)" in lines[0]
    # Rule by rule, in the order they were added, each with its mark and the observed values.
    versus = lines.index("  ✗ auc >= production")
    assert "0.87" in lines[versus + 1] and "0.91" in lines[versus + 1]
    threshold = lines.index("  ✓ auc >= 0.8")
    assert versus < threshold and "0.87" in lines[threshold + 1]
    assert "refused" in refused.stderr and "--force" in refused.stderr
    assert await versions.stages() == {1: "production", 2: "none", 3: "none"}
    # The refusal is audited too, with its verdict, and nothing moved.
    (event,) = [e for e in _events(modelreg, last_before) if e["kind"] != "gate.added"]
    assert event["kind"] == "stage.refused" and event["version"] == 2
    assert event["data"]["verdict"]["passed"] is False

    # check is a dry run: the same verdict, no change, no event.
    last_before = (await client.events(limit=1))["last_id"]
    dry_fail = modelreg("check", "fraud@2", "--to", "production")
    assert dry_fail.returncode == 3, dry_fail
    assert "✗ auc >= production" in dry_fail.stdout and "0.87" in dry_fail.stdout and "0.91" in dry_fail.stdout
    dry_pass = modelreg("check", "fraud@3", "--to", "production")
    assert dry_pass.returncode == 0, dry_pass
    assert "fraud@3 → production: passed" in dry_pass.stdout and "0.95" in dry_pass.stdout
    verdict = json.loads(modelreg("check", "fraud@2", "--to", "production", "--json").stdout)
    assert verdict["passed"] is False
    assert [(r["rule"], r["status"], r["observed"]) for r in verdict["rules"]] == [
        ("auc >= production", "fail", 0.87), ("auc >= 0.8", "pass", 0.87)]
    assert verdict["rules"][0]["production"] == 0.91
    assert await versions.stages() == {1: "production", 2: "none", 3: "none"}
    assert (await client.events(limit=1))["last_id"] == last_before

    # --force needs a reason; with one the move happens and is recorded as forced.
    no_reason = modelreg("promote", "fraud@2", "--force")
    assert no_reason.returncode == 2 and "reason" in no_reason.stderr
    forced = modelreg("promote", "fraud@2", "--force", "--reason", "hotfix approved by risk team")
    assert forced.returncode == 0, forced
    assert "(forced)" in forced.stdout and "fraud@2 is now production; v1 archived" in forced.stdout
    assert await versions.stages() == {1: "archived", 2: "production", 3: "none"}

    changes = [e for e in _events(modelreg, last_before) if e["kind"] == "stage.changed"]
    assert [(e["version"], e["data"]["from"], e["data"]["to"]) for e in changes] == [
        (1, "production", "archived"), (2, "none", "production")]
    override = changes[1]["data"]
    assert override["forced"] is True and override["reason"] == "hotfix approved by risk team"
    assert override["verdict"]["passed"] is False and override["verdict"]["forced"] is True
    assert changes[1]["actor"]

    history = json.loads(modelreg("history", "fraud", "--json", check=True).stdout)["items"]
    last = history[-1]
    assert (last["version"], last["to"], last["forced"], last["passed"], last["reason"]) == (
        2, "production", True, False, "hotfix approved by risk team")
    human = modelreg("history", "fraud", check=True).stdout
    assert "forced" in human and "hotfix approved by risk team" in human
    assert modelreg("audit", "verify").returncode == 0


async def test_gate_rules_are_listed_and_removed(daemon, modelreg, versions: Versions):
    await versions.add(1, auc=0.91)
    await versions.add(2, auc=0.5)
    modelreg("gate", "add", "*", "auc >= 0.9", "--stage", "production", check=True)
    gates = json.loads(modelreg("gate", "list", "fraud", "--json", check=True).stdout)
    assert [(g["model"], g["stage"], g["rule"]) for g in gates] == [(None, "production", "auc >= 0.9")]
    # The registry-wide default applies to every model.
    assert modelreg("check", "fraud@2", "--to", "production").returncode == 3
    assert modelreg("check", "fraud@2", "--to", "staging").returncode == 0
    bad = modelreg("gate", "add", "fraud", "auc is good", "--stage", "production")
    assert bad.returncode == 2 and "cannot read gate rule" in bad.stderr
    modelreg("gate", "rm", str(gates[0]["id"]), check=True)
    assert json.loads(modelreg("gate", "list", "--json", check=True).stdout) == []
    assert modelreg("check", "fraud@2", "--to", "production").returncode == 0
