"""Protected aliases and alias moves held for approval (issue 12), against a real daemon.

A write token moves an unprotected alias, not a protected one (403, moving or removing); a
promote token may, through the alias's gates; an ``approvals`` gate on an alias makes its move
a request as it does a stage's.
"""

from __future__ import annotations

import pytest

from gov_support import register
from modelreg.shared.errors import Forbidden, GateFailed, NotFound

WAITING = 7


def test_a_protected_alias_moves_only_by_promote_through_its_gates(admin, token, tmp_path, modelreg):
    for n, auc in ((1, 0.91), (2, 0.93), (3, 0.80)):
        register(admin, tmp_path, n, auc=auc)
    writer = token("writer", "write", models="fraud*")
    release = token("release", "promote", models="fraud*")

    admin.set_alias("fraud", "champion", 1)
    assert writer.set_alias("fraud", "champion", 2)["aliases"] == {"champion": 2}  # unprotected: write is enough
    with pytest.raises(Forbidden, match="needs 'promote'"):
        writer.protect_alias("fraud", "champion")
    with pytest.raises(NotFound, match="has no alias 'runnerup'"):
        release.protect_alias("fraud", "runnerup")

    protected = modelreg("alias", "protect", "fraud", "champion", env={"MODELREG_TOKEN": release.secret})
    assert protected.returncode == 0 and "fraud@champion is protected" in protected.stdout, protected
    assert admin.aliases("fraud")["items"] == [{"alias": "champion", "version": 2, "protected": True}]
    assert "fraud@champion → v2 (protected)" in modelreg("alias", "list", "fraud").stdout

    with pytest.raises(Forbidden, match="protected alias fraud@champion needs 'promote'"):
        writer.set_alias("fraud", "champion", 1)
    with pytest.raises(Forbidden, match="protected alias"):
        writer.remove_alias("fraud", "champion")
    cli = modelreg("alias", "set", "fraud", "champion", "1", env={"MODELREG_TOKEN": writer.secret})
    assert cli.returncode == 6, cli
    assert admin.aliases("fraud")["aliases"] == {"champion": 2}

    # promote may move it, through the alias's gates: the worse version is refused.
    admin.add_gate("auc >= production", alias="champion", model="fraud")
    with pytest.raises(GateFailed, match="auc = 0.8 vs @champion v2"):
        release.set_alias("fraud", "champion", 3)
    assert admin.aliases("fraud")["aliases"] == {"champion": 2}
    register(admin, tmp_path, 4, auc=0.97)
    moved = release.set_alias("fraud", "champion", 4)
    assert moved["aliases"] == {"champion": 4} and moved["verdict"]["passed"]
    assert admin.aliases("fraud")["items"] == [{"alias": "champion", "version": 4, "protected": True}]
    # Lifting the protection gives the alias back to write tokens.
    release.protect_alias("fraud", "champion", False)
    assert writer.remove_alias("fraud", "champion")["aliases"] == {}
    kinds = [e["kind"] for e in admin.events(kind="alias.*", limit=100)["items"]]
    assert kinds.count("alias.protected") == 1 and kinds.count("alias.unprotected") == 1
    assert kinds.count("alias.refused") == 1 and kinds[-1] == "alias.removed"


def test_an_approvals_gate_on_an_alias_opens_a_request(admin, token, tmp_path, modelreg):
    register(admin, tmp_path, 1, auc=0.9)
    register(admin, tmp_path, 2, auc=0.95)
    admin.set_alias("fraud", "champion", 1)
    admin.add_gate("approvals >= 1", alias="champion", model="fraud")
    alice, bob = token("alice", "promote"), token("bob", "promote")
    cli = modelreg("alias", "set", "fraud", "champion", "2", env={"MODELREG_TOKEN": alice.secret})
    assert cli.returncode == WAITING and "fraud@2 → @champion needs 1 approval (0 so far)" in cli.stdout, cli
    assert admin.aliases("fraud")["aliases"] == {"champion": 1}
    request = alice.requests()[0]
    result = bob.approve(request["id"], "ok")
    assert result["request"]["status"] == "approved"
    assert result["change"]["aliases"] == {"champion": 2}
    assert admin.aliases("fraud")["aliases"] == {"champion": 2}
    moved = admin.events(kind="alias.set")["items"][-1]
    assert (moved["actor"], moved["version"], moved["data"]["approvals"]) == ("alice", 2, ["bob"])
