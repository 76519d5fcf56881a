"""`modelreg card REF`: the version's README.md, rendered on a terminal, raw when piped."""

from __future__ import annotations

import json

from cli_helpers import run_on_terminal

CARD = """---
license: apache-2.0
---
# Fraud scorer

A **gradient-boosted** model.

- trained on November transactions
"""


def test_card_raw_rendered_json_and_missing(daemon, modelreg, tmp_path):
    folder = tmp_path / "fraud"
    folder.mkdir()
    (folder / "README.md").write_text(CARD)
    (folder / "weights.dat").write_bytes(b"w" * 100)
    modelreg("register", str(folder), "--name", "fraud", check=True)

    piped = modelreg("card", "fraud@1", check=True)
    assert piped.stdout == CARD
    assert modelreg("card", "fraud@1", "--raw", check=True).stdout == CARD
    assert json.loads(modelreg("card", "fraud@latest", "--json", check=True).stdout) == {
        "ref": "fraud@1", "path": "README.md", "text": CARD}

    rc, screen = run_on_terminal(daemon.home, "card", "fraud@1")
    assert rc == 0
    assert "gradient-boosted" in screen and "**gradient-boosted**" not in screen, "Markdown is rendered"
    assert "# Fraud scorer" not in screen and "Fraud scorer" in screen
    rc, screen = run_on_terminal(daemon.home, "card", "fraud@1", "--raw")
    assert rc == 0 and "**gradient-boosted**" in screen

    plain = tmp_path / "plain.dat"
    plain.write_bytes(b"p" * 100)
    modelreg("register", str(plain), "--name", "bare", check=True)
    missing = modelreg("card", "bare@1")
    assert missing.returncode == 4 and "bare@1 has no model card" in missing.stderr
