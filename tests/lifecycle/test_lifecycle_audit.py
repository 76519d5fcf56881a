"""The hash-chained audit log (issue 3, acceptance 7): an edited or deleted row is found and named."""

from __future__ import annotations

import json

from lifecycle_support import Versions, connect_db


async def _some_history(client, versions: Versions) -> int:
    await versions.add(1)
    await versions.add(2)
    await client.promote("fraud@1", reason="first")
    await client.promote("fraud@2", reason="second")
    await client.rollback("fraud", reason="bad p99")
    return (await client.events(limit=1))["last_id"]


async def test_editing_an_event_row_breaks_the_chain_at_that_row(daemon, modelreg, client, versions: Versions):
    last = await _some_history(client, versions)
    assert last >= 6
    ok = modelreg("audit", "verify")
    assert ok.returncode == 0 and f"{last} events, chain intact" in ok.stdout

    with connect_db(daemon.home) as db:
        (actor,) = db.execute("SELECT actor FROM events WHERE id = 3").fetchone()
        db.execute("UPDATE events SET actor = 'mallory' WHERE id = 3")
    broken = modelreg("audit", "verify")
    assert broken.returncode == 1, broken
    assert "event 3 was changed" in broken.stdout and "first bad event: 3" in broken.stdout
    report = json.loads(modelreg("audit", "verify", "--json").stdout)
    assert (report["ok"], report["first_bad_id"], report["checked"]) == (False, 3, 2)

    # Put it back: the chain is whole again (the check looks at content, not at a flag).
    with connect_db(daemon.home) as db:
        db.execute("UPDATE events SET actor = ? WHERE id = 3", (actor,))
    assert modelreg("audit", "verify").returncode == 0

    # Editing the data of a stage change (say, hiding a forced override) is caught as well.
    with connect_db(daemon.home) as db:
        (event_id, data) = db.execute("SELECT id, data FROM events WHERE kind = 'stage.changed' "
                                      "ORDER BY id LIMIT 1").fetchone()
        db.execute("UPDATE events SET data = ? WHERE id = ?", (data.replace('"first"', '"routine"'), event_id))
    report = json.loads(modelreg("audit", "verify", "--json").stdout)
    assert (report["ok"], report["first_bad_id"]) == (False, event_id)


async def test_deleting_an_event_row_is_detected_and_named(daemon, modelreg, client, versions: Versions):
    await _some_history(client, versions)
    with connect_db(daemon.home) as db:
        db.execute("DELETE FROM events WHERE id = 4")
    broken = modelreg("audit", "verify")
    assert broken.returncode == 1, broken
    assert "event 4 is missing" in broken.stdout and "first bad event: 4" in broken.stdout
    assert json.loads(modelreg("audit", "verify", "--json").stdout)["first_bad_id"] == 4


async def test_deleting_the_newest_event_rows_is_detected(daemon, modelreg, client, versions: Versions):
    last = await _some_history(client, versions)
    with connect_db(daemon.home) as db:
        db.execute("DELETE FROM events WHERE id >= ?", (last - 1,))
    broken = modelreg("audit", "verify")
    assert broken.returncode == 1, broken
    assert f"event {last - 1} is missing" in broken.stdout
    # …and the next event written does not paper over the gap.
    await client.set_alias("fraud", "champion", 1)
    report = json.loads(modelreg("audit", "verify", "--json").stdout)
    assert (report["ok"], report["first_bad_id"]) == (False, last - 1)
