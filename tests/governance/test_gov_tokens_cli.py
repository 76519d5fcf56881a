"""`modelreg token …`, --token-file and MODELREG_TOKEN through the real command (issue 12)."""

from __future__ import annotations

import json

from gov_support import model_folder


def test_token_create_list_whoami_revoke(daemon, modelreg, tmp_path) -> None:
    made = modelreg("token", "create", "ci", "--scope", "promote", "--models", "fraud*", "--expires", "30d", check=True)
    secret = made.stdout.strip()
    assert secret.startswith("mr_") and len(secret.splitlines()) == 1, made.stdout  # only the secret on stdout
    assert "store it now" in made.stderr
    listed = modelreg("token", "list", check=True).stdout
    assert "ci" in listed and "promote" in listed and "fraud*" in listed and "active" in listed
    assert secret not in listed
    listed_json = json.loads(modelreg("token", "list", "--json", check=True).stdout)
    assert [(t["name"], t["state"], "token" in t) for t in listed_json] == [("ci", "active", False)]

    file = tmp_path / "ci.token"
    file.write_text(secret + "\n")
    me = modelreg("token", "whoami", "--token-file", str(file), check=True).stdout
    assert "token ci: promote on models matching 'fraud*'" in me
    mine = json.loads(modelreg("--token-file", str(file), "token", "whoami", "--json", check=True).stdout)
    assert mine["name"] == "ci" and mine["home_token"] is False
    env = json.loads(modelreg("token", "whoami", "--json", env={"MODELREG_TOKEN": secret}, check=True).stdout)
    assert env["name"] == "ci"
    assert "the home's token" in modelreg("token", "whoami", check=True).stdout

    revoked = modelreg("token", "revoke", "ci", check=True)
    assert "revoked ci" in revoked.stdout
    after = modelreg("token", "whoami", "--token-file", str(file))
    assert after.returncode != 0 and "revoked" in after.stderr
    assert "revoked" in modelreg("token", "list", check=True).stdout


def test_a_refusal_is_exit_6_and_a_bad_token_file_exit_2(daemon, modelreg, tmp_path) -> None:
    secret = json.loads(modelreg("token", "create", "viewer", "--scope", "read", "--json", check=True).stdout)["token"]
    refused = modelreg("token", "create", "mine", "--scope", "admin", env={"MODELREG_TOKEN": secret})
    assert refused.returncode == 6, (refused.stdout, refused.stderr)
    assert "needs 'admin'" in refused.stderr
    as_json = modelreg("alias", "set", "fraud", "champion", "1", "--json", env={"MODELREG_TOKEN": secret})
    assert as_json.returncode == 6 and json.loads(as_json.stdout)["error"]["code"] == "forbidden"
    for missing in ("--token-file", str(tmp_path / "nope")), ("--token-file", str(tmp_path)):
        bad = modelreg("token", "whoami", *missing)
        assert bad.returncode == 2 and "cannot read the token file" in bad.stderr, bad.stderr
    tui = modelreg("tui", "--token-file", str(tmp_path / "nope"))  # the TUI takes it too, checked before it opens
    assert tui.returncode == 2 and "cannot read the token file" in tui.stderr, tui.stderr
    empty = tmp_path / "empty.token"
    empty.write_text("\n")
    bad = modelreg("--token-file", str(empty), "models")
    assert bad.returncode == 2 and "must hold one token" in bad.stderr


def test_register_as_a_named_write_token_uploads_the_files(daemon, modelreg, tmp_path) -> None:
    secret = json.loads(modelreg("token", "create", "trainer", "--scope", "write", "--json", check=True).stdout)["token"]
    file = tmp_path / "trainer.token"
    file.write_text(secret)
    folder = model_folder(tmp_path, 1)
    out = modelreg("register", str(folder), "--name", "fraud", "--json", "--token-file", str(file), check=True)
    assert json.loads(out.stdout)["status"] == "ready"
    events = json.loads(modelreg("events", "--json", check=True).stdout)
    items = events["items"] if isinstance(events, dict) else events
    assert ("version.created", "trainer") in [(e["kind"], e["actor"]) for e in items]
    # The same token cannot move the files in (that reads a path on the daemon's machine).
    moved = modelreg("register", str(model_folder(tmp_path, 2)), "--name", "fraud", "--move", "--token-file", str(file))
    assert moved.returncode == 2 and "--move" in moved.stderr
