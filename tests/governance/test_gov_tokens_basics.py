"""Named tokens, the basics (issue 12): an identity per token, revoked and expired ones refused."""

from __future__ import annotations

import pytest

from modelreg.shared.errors import Forbidden, Unauthorized


def test_named_token_is_its_own_identity_whatever_its_client_claims(admin, token):
    ci = token("ci", "promote", models="fraud*")
    assert ci.whoami() == {"name": "ci", "scope": "promote", "models": "fraud*", "actor": "ci", "home_token": False}
    assert admin.whoami()["name"] == "admin" and admin.whoami()["actor"] == "owner@laptop"


def test_revoked_token_gets_401_and_the_revocation_is_audited(admin, token):
    ci = token("ci", "write")
    admin.revoke_token("ci")
    with pytest.raises(Unauthorized, match="revoked"):
        ci.whoami()
    kinds = [(e["kind"], e["actor"], e["data"].get("name")) for e in admin.events(kind="token.*")["items"]]
    assert kinds == [("token.created", "owner@laptop", "ci"), ("token.revoked", "owner@laptop", "ci")]


def test_a_name_is_never_reused_and_admin_is_reserved(admin, token):
    token("ci", "read")
    admin.revoke_token("ci")
    with pytest.raises(Exception, match="never reused"):
        admin.create_token("ci", "read")
    with pytest.raises(Exception, match="reserved"):
        admin.create_token("admin", "read")


def test_only_admin_manages_tokens(token):
    ci = token("ci", "promote")
    with pytest.raises(Forbidden, match="needs 'admin'"):
        ci.create_token("other", "admin")
