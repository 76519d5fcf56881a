"""update, rename, delete (issue 8 item 6) and the resolve messages of item 11, against the real
daemon through the client, raw HTTP and the CLI."""

from __future__ import annotations

import json
import os
import urllib.request

import pytest

from modelreg.shared.errors import Conflict, InvalidInput, NotFound


def http(daemon, method: str, path: str, body=None) -> tuple[int, dict]:
    req = urllib.request.Request(f"{daemon.url}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {daemon.token}", "Accept": "application/json",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


# -- update -----------------------------------------------------------------------------------


def test_update_version_and_model(client, reg) -> None:
    reg.add("fraud", tags={"owner": "ana", "tmp": "1"})
    v = client.update_version("fraud@1", description="first try", tags={"owner": "bo"}, untag=["tmp"])
    assert v["description"] == "first try" and v["tags"] == {"owner": "bo"}
    event = reg.events("version.updated")[-1]
    assert (event["model"], event["version"]) == ("fraud", 1)
    assert event["data"]["untagged"] == ["tmp"] and event["data"]["tags"] == {"owner": "bo"}
    client.update_model("fraud", tags={"team": "risk", "x": "1"})
    m = client.update_model("fraud", untag=["x"], description="scorer")
    assert m["tags"] == {"team": "risk"} and m["description"] == "scorer"
    assert reg.events("model.updated")[-1]["data"]["untagged"] == ["x"]
    with pytest.raises(InvalidInput, match="both set and removed"):
        client.update_model("fraud", tags={"a": "1"}, untag=["a"])
    with pytest.raises(InvalidInput):
        client.update_version("fraud", description="which version?")


def test_update_cli(modelreg, client, reg) -> None:
    reg.add("fraud", tags={"tmp": "1"})
    r = modelreg("update", "fraud@1", "--description", "tuned", "--tag", "team=risk", "--untag", "tmp")
    assert r.returncode == 0, r.stderr
    assert client.version("fraud@1")["tags"] == {"team": "risk"}
    j = json.loads(modelreg("update", "fraud", "--tag", "k=v", "--json").stdout)
    assert j["name"] == "fraud" and j["tags"] == {"k": "v"}
    assert modelreg("update", "fraud@1").returncode == 2           # nothing to change
    assert modelreg("update", "fraud@7", "--tag", "a=b").returncode == 4


# -- rename -----------------------------------------------------------------------------------


def test_rename_moves_refs_aliases_gates_history_and_serving(client, reg, home, daemon) -> None:
    reg.add("fraud", metrics={"auc": 0.9})
    reg.add("fraud", metrics={"auc": 0.92})
    client.transition("fraud@1", "production")
    client.transition("fraud@2", "staging")
    client.set_alias("fraud", "champion", 1)
    client.add_gate("auc >= 0.5", stage="production", model="fraud")
    m = client.rename_model("fraud", "ranker", reason="the team renamed it")
    assert (m["name"], m["production"], m["staging"]) == ("ranker", 1, 2)
    assert client.resolve("ranker@champion")["version"] == 1
    assert [g["rule"] for g in client.gates(model="ranker")["items"]] == ["auc >= 0.5"]
    assert [h["version"] for h in client.history("ranker")["items"]] == [1, 2]
    event = reg.events("model.renamed")[-1]
    assert event["data"]["from"] == "fraud" and event["data"]["to"] == "ranker" and event["model"] == "ranker"
    link = home / "serving" / "ranker" / "production"
    assert (link.resolve() / "weights.bin").read_bytes() == b"fraud-1"
    assert not (home / "serving" / "fraud").exists()
    # The old name is free: a new model, numbered from 1, with nothing of the old one.
    with pytest.raises(NotFound, match="no model named 'fraud'"):
        client.model("fraud")
    v = reg.add("fraud")
    assert v["version"] == 1 and v["stage"] == "none"
    assert client.gates(model="fraud")["items"] == []


def test_rename_refusals(client, reg, daemon) -> None:
    reg.add("fraud")
    reg.add("ranker")
    with pytest.raises(Conflict, match="already exists"):
        client.rename_model("fraud", "RANKER")
    with pytest.raises(InvalidInput):
        client.rename_model("fraud", "no/such")
    assert http(daemon, "POST", "/v1/models/fraud/rename", {"name": 7})[0] == 400
    assert http(daemon, "POST", "/v1/models/nosuch/rename", {"name": "x"})[0] == 404
    assert client.rename_model("fraud", "Fraud")["name"] == "Fraud"  # a change of case is a rename


def test_rename_cli(modelreg, reg) -> None:
    reg.add("fraud")
    r = modelreg("rename", "fraud", "ranker")
    assert r.returncode == 0 and "renamed fraud → ranker" in r.stdout
    assert modelreg("resolve", "ranker@1").stdout.strip() == "ranker@1"
    assert modelreg("rename", "fraud", "x").returncode == 4


# -- delete a version ---------------------------------------------------------------------------


def test_delete_version_policy(client, reg, daemon) -> None:
    for n in range(1, 4):
        reg.add("fraud", metrics={"auc": 0.8 + n / 100})
    client.transition("fraud@1", "production")
    client.transition("fraud@2", "production")     # fraud@1 is now a rollback target
    client.set_alias("fraud", "champion", 3)
    with pytest.raises(Conflict, match="in production"):
        client.delete_version("fraud@2", reason="r")
    with pytest.raises(Conflict, match="rollback target"):
        client.delete_version("fraud@1", reason="r")
    status, body = http(daemon, "DELETE", "/v1/models/fraud/versions/3", {})
    assert status == 400 and "reason" in body["error"]["message"]

    out = client.delete_version("fraud@3", reason="trained on leaked labels")
    assert out["aliases"] == ["champion"]
    event = reg.events("version.deleted")[-1]
    assert (event["version"], event["data"]["reason"]) == (3, "trained on leaked labels")
    with pytest.raises(NotFound, match="^fraud@3 was deleted$"):
        client.version("fraud@3")
    with pytest.raises(NotFound, match="fraud has no alias champion"):
        client.resolve("fraud@champion")
    assert client.resolve("fraud@latest")["version"] == 2
    assert [v["version"] for v in client.versions("fraud")["items"]] == [2, 1]
    assert client.model("fraud")["version_count"] == 2
    assert reg.add("fraud")["version"] == 4                       # the number is never reused

    forced = client.delete_version("fraud@2", reason="bad p99 in prod", force=True)
    assert forced["stage"] == "production" and forced["forced"] is True
    assert client.model("fraud")["production"] is None
    assert client.history("fraud")["items"][-1]["kind"] == "deleted"
    assert client.audit_verify()["ok"] is True


def test_gc_purges_what_only_deleted_versions_reference(client, reg, home) -> None:
    shared = b"tokenizer shared by both"
    reg.add("fraud", {"w.bin": b"only in one", "tok.json": shared})
    reg.add("fraud", {"w.bin": b"only in two", "tok.json": shared})
    files = {f["path"]: f["sha256"] for f in client.version("fraud@1")["files"]}
    blob = lambda sha: home / "blobs" / "sha256" / sha[:2] / sha[2:]  # noqa: E731
    assert blob(files["w.bin"]).is_file()
    client.delete_version("fraud@1", reason="duplicate")
    assert client.gc(dry_run=True)["versions"] == ["fraud@1"]
    report = client.gc(dry_run=False)
    assert report["versions"] == ["fraud@1"]
    assert not blob(files["w.bin"]).exists()
    assert blob(files["tok.json"]).is_file()                      # fraud@2 still needs it
    assert client.audit_verify()["ok"] is True


def test_delete_version_cli(modelreg, client, reg) -> None:
    reg.add("fraud")
    reg.add("fraud")
    client.transition("fraud@2", "production")
    refused = modelreg("delete", "fraud@2", "--reason", "x")
    assert refused.returncode == 1 and "in production" in refused.stderr
    assert modelreg("delete", "fraud@1").returncode == 2        # --reason is required
    ok = modelreg("delete", "fraud@1", "--reason", "bad data", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["version"] == 1
    gone = modelreg("show", "fraud@1")
    assert gone.returncode == 4 and "fraud@1 was deleted" in gone.stderr


# -- delete a model -----------------------------------------------------------------------------


def test_delete_model(client, reg, home) -> None:
    reg.add("fraud")
    reg.add("fraud")
    client.transition("fraud@2", "staging")
    client.resolve("fraud@1", path=True)                         # a materialised folder
    with pytest.raises(Conflict, match="v2 \\(staging\\)"):
        client.delete_model("fraud", reason="retired")
    out = client.delete_model("fraud", reason="retired", force=True)
    assert out["versions"] == [1, 2]
    assert [m["name"] for m in client.models()["items"]] == []
    with pytest.raises(NotFound):
        client.resolve("fraud@1")
    assert client.search()["total"] == 0
    assert not (home / "serving" / "fraud").exists() and not (home / "versions" / "fraud").exists()
    # The name is free: registering it starts a new model at 1; the old events stay in the chain.
    v = reg.add("fraud")
    assert v["version"] == 1
    assert [e["kind"] for e in reg.events("model.deleted")] == ["model.deleted"]
    assert client.audit_verify()["ok"] is True
    assert client.gc(dry_run=False)["versions"] == ["fraud~deleted-1@1", "fraud~deleted-1@2"]
    assert client.resolve("fraud@1")["version"] == 1


def test_delete_model_cli(modelreg, client, reg) -> None:
    reg.add("fraud")
    client.transition("fraud@1", "production")
    refused = modelreg("delete", "fraud", "--reason", "x")
    assert refused.returncode == 1 and "v1 (production)" in refused.stderr
    ok = modelreg("delete", "fraud", "--reason", "retired", "--force")
    assert ok.returncode == 0 and "the name is free again" in ok.stdout
    assert modelreg("delete", "fraud", "--reason", "again").returncode == 4


# -- item 11: what a missing ref says, gate warnings ----------------------------------------------


def test_missing_refs_say_what_is_missing(client, reg, modelreg) -> None:
    reg.add("ranker")
    with pytest.raises(NotFound, match="^ranker has no production version$"):
        client.resolve("ranker@production")
    with pytest.raises(NotFound, match="^ranker has no version in staging$"):
        client.resolve("ranker@staging")
    with pytest.raises(NotFound, match="^ranker has no alias champion$"):
        client.resolve("ranker@champion")
    r = modelreg("resolve", "ranker@production")
    assert r.returncode == 4 and "ranker has no production version" in r.stderr


def test_gate_add_warns_about_unknown_metrics(client, reg, modelreg) -> None:
    reg.add("fraud", metrics={"auc": 0.9, "f1": 0.5})
    r = modelreg("gate", "add", "fraud", "--stage", "production", "aucc >= 0.9", "auc >= 0.8")
    assert r.returncode == 0, r.stderr
    assert "aucc: no version of fraud records it; known: auc, f1" in r.stderr
    assert r.stderr.count("no version of fraud records") == 1
    assert [g["rule"] for g in client.gates(model="fraud")["items"]] == ["aucc >= 0.9", "auc >= 0.8"]
    g = client.add_gate("requires metric:recall", stage="staging", model="fraud")
    assert g["warnings"] == ["recall: no version of fraud records it; known: auc, f1"]
    assert client.add_gate("f1 ~ production ± 1%", stage="staging", model="fraud")["warnings"] == []


def test_rollback_never_restores_a_deleted_version(client, reg) -> None:
    """A force-deleted former production version is skipped by rollback, even before gc purges it."""
    for n in range(1, 4):
        reg.add("ranker", metrics={"auc": 0.8 + n / 100})
        client.transition(f"ranker@{n}", "production")
    client.delete_version("ranker@2", reason="leaked labels", force=True)
    out = client.rollback("ranker", reason="bad p99")
    assert (out["from"], out["to"]) == (3, 1)
    assert client.resolve("ranker@production")["version"] == 1
    with pytest.raises(NotFound):
        client.rollback("ranker", reason="again", to=2)


def test_deleted_versions_leave_status_and_lineage(client, reg) -> None:
    """Once deleted, a version is not counted by status nor listed as derived from its parent."""
    reg.add("base")
    reg.add("tuned", parent="base@1")
    reg.add("tuned", parent="base@1")
    before = client.status()
    client.delete_version("tuned@2", reason="bad run")
    assert client.status()["versions"] == before["versions"] - 1
    down = client.lineage("base@1", direction="down")
    assert "tuned@2" not in json.dumps(down) and "tuned@1" in json.dumps(down)
    client.delete_model("tuned", reason="retired")
    assert client.status()["models"] == before["models"] - 1
    assert "tuned@1" not in json.dumps(client.lineage("base@1", direction="down"))
