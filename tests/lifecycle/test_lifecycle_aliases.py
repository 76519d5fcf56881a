"""Aliases (NAME@champion) and stage refs through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from lifecycle_support import Versions


async def test_alias_points_at_a_version_and_reserved_names_are_refused(daemon, modelreg, client, versions: Versions):
    for n in (1, 2, 3):
        await versions.add(n)
    await client.promote("fraud@2", reason="ship")

    shown = modelreg("alias", "set", "fraud", "champion", "3")
    assert shown.returncode == 0 and "fraud@champion → v3" in shown.stdout, shown
    assert modelreg("resolve", "fraud@champion", check=True).stdout.strip() == "fraud@3"
    assert modelreg("resolve", "fraud@production", check=True).stdout.strip() == "fraud@2"
    # The alias is not the stage: promoting another version leaves the alias where it was.
    await client.promote("fraud@1", reason="back")
    assert modelreg("resolve", "fraud@champion", check=True).stdout.strip() == "fraud@3"
    # --path gives a read-only folder with that version's files.
    folder = Path(modelreg("resolve", "fraud@champion", "--path", check=True).stdout.strip())
    assert (folder / "version.txt").read_text() == "3\n"

    modelreg("alias", "set", "fraud", "champion", "2", check=True)  # moving an alias
    assert modelreg("resolve", "fraud@champion", check=True).stdout.strip() == "fraud@2"
    assert json.loads(modelreg("alias", "list", "fraud", "--json", check=True).stdout)["aliases"] == {"champion": 2}

    for reserved in ("production", "staging", "latest", "v2"):
        refused = modelreg("alias", "set", "fraud", reserved, "3")
        assert refused.returncode == 2 and "reserved" in refused.stderr, (reserved, refused)
    assert modelreg("resolve", "fraud@latest", check=True).stdout.strip() == "fraud@3"
    assert modelreg("alias", "set", "fraud", "challenger", "9").returncode == 4

    modelreg("alias", "rm", "fraud", "champion", check=True)
    gone = modelreg("resolve", "fraud@champion")
    assert gone.returncode == 4, gone
    assert modelreg("alias", "rm", "fraud", "champion").returncode == 4
    kinds = [e["kind"] for e in (await client.events(kind="alias.*"))["items"]]
    assert kinds == ["alias.set", "alias.set", "alias.removed"]
