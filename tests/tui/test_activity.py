"""The models screen's recent-activity panel and per-model production age and metric trend:
what another process does (a registration through a client, a file dropped into a watched
folder, a promotion, a refused gate) appears below the model list without a keypress."""

from __future__ import annotations

import hashlib
from pathlib import Path

from conftest import make_app, wait_for
from modelreg.shared.errors import GateFailed
from modelreg.tui.screens.models import activity_line, short_age
from test_keys import models_loaded

WIDE = (160, 48)
NARROW = (80, 24)


def panel(screen) -> str:
    """What the activity panel shows, as plain text."""
    return str(screen.query_one("#activity").visual)


def lines(screen) -> list[str]:
    return panel(screen).splitlines()


def shows(screen, *words: str) -> bool:
    return any(all(w in line for w in words) for line in lines(screen))


async def test_registration_from_another_process_appears_live(live):
    app = make_app(live, frozen=False)
    async with app.run_test(size=NARROW) as pilot:
        screen = await models_loaded(pilot)
        await wait_for(pilot, lambda: screen.activity_loaded, what="the recent events")
        # The fixture's history is there from the start, newest first.
        assert shows(screen, "promoted", "fraud@3", "none → staging")
        assert not shows(screen, "churn@2")
        await live.call(lambda c: c.register("churn", files=[{"path": "model.bin", **_blob(live)}],
                                             metrics={"f1": 0.72}))
        await wait_for(pilot, lambda: shows(screen, "registered", "churn@2"), timeout=10,
                       what="the registration in the activity panel")
        assert lines(screen)[0].split()[1:3] == ["registered", "churn@2"]  # newest on top


async def test_drop_into_a_watched_folder_appears_live(live, tmp_path: Path):
    drop = tmp_path / "drop"
    drop.mkdir()
    await live.call(lambda c: c.add_watch(drop, model="fraud", mode="move", settle=0.5))
    app = make_app(live, frozen=False)
    async with app.run_test(size=WIDE) as pilot:
        screen = await models_loaded(pilot)
        await wait_for(pilot, lambda: screen.activity_loaded, what="the recent events")
        staged = tmp_path / "incoming.bin"
        staged.write_bytes(b"fresh weights from the nightly job\n")
        staged.rename(drop / "model.bin")  # an atomic rename-in is taken at once
        await wait_for(pilot, lambda: shows(screen, "dropped", "fraud@5", "drop", "model.bin"), timeout=15,
                       what="the drop in the activity panel")


async def test_promotion_and_refused_gate_appear_and_production_age_and_trend_follow(live):
    app = make_app(live)  # frozen clock: every timestamp two hours ago
    async with app.run_test(size=WIDE) as pilot:
        screen = await models_loaded(pilot)
        table = screen.query_one("#models")
        await wait_for(pilot, lambda: "fraud" in screen.stats and "churn" in screen.stats, what="the model stats")
        row = [str(c) for c in table.get_row("fraud")]
        assert row[2] == "v1 · 2h"  # production v1, production for two hours
        assert row[5] == "auc ▼ -0.05"  # latest v4 (0.85) against production v1 (0.90)
        assert [str(c) for c in table.get_row("churn")][2:6] == ["-", "-", "v1", "-"]  # no production
        try:
            await live.call(lambda c: c.transition("fraud@4", "production", reason="try it"))
        except GateFailed:
            pass
        await wait_for(pilot, lambda: shows(screen, "refused", "fraud@4", "→ production", "auc >= production"),
                       timeout=10, what="the refused gate")
        await live.call(lambda c: c.transition("fraud@3", "production", reason="from CI"))
        await wait_for(pilot, lambda: shows(screen, "promoted", "fraud@3", "cli@elsewhere", "staging → production",
                                            "from CI"), timeout=10, what="the promotion")
        # The other half of the promotion (v1 replaced) has no line of its own.
        assert not shows(screen, "fraud@1", "production → archived")
        await wait_for(pilot, lambda: str(table.get_row("fraud")[2]) == "v3 · 2h"
                       and str(table.get_row("fraud")[5]) == "auc ▼ -0.08", timeout=10, what="the new production")
        await live.call(lambda c: c.rollback("fraud", reason="bad night"))
        await wait_for(pilot, lambda: shows(screen, "rolled back", "fraud@1", "bad night"), timeout=10,
                       what="the rollback")


async def test_narrow_terminal_keeps_the_panel_small_and_leaves_out_the_trend(live):
    app = make_app(live)
    async with app.run_test(size=NARROW) as pilot:
        screen = await models_loaded(pilot)
        await wait_for(pilot, lambda: screen.activity_loaded and "fraud" in screen.stats, what="the panel")
        table = screen.query_one("#models")
        assert [c.label.plain for c in table.columns.values()] == [
            "model", "versions", "production", "staging", "latest", "updated", "description"]
        activity = screen.query_one("#activity")
        assert activity.size.height <= 5 and len(lines(screen)) >= 4
        assert activity.region.bottom <= NARROW[1] - 1  # above the footer


def test_activity_lines():
    ev = {"id": 1, "model": "m", "version": 2}
    assert activity_line({**ev, "kind": "stage.changed", "data": {"from": "production", "to": "archived",
                                                                  "kind": "replaced"}}) is None
    assert activity_line({**ev, "kind": "stage.changed", "data": {"from": "production", "to": "archived",
                                                                  "kind": "rollback"}}) is None
    assert activity_line({**ev, "kind": "stage.changed", "data": {"from": "archived", "to": "production",
                                                                  "kind": "rollback", "reason": "r"}}) == (
        "rolled back", "stage", "m@2", "to production · r")
    assert activity_line({**ev, "kind": "version.created", "data": {"source": "drop:/x/y"}}) is None
    assert activity_line({**ev, "kind": "metric.recorded", "data": {}}) is None
    assert activity_line({"id": 3, "model": None, "version": None, "kind": "drop.failed",
                          "data": {"entry": "bad.bin", "message": "not a model"}}) == (
        "drop failed", "bad", "bad.bin", "not a model")
    assert [short_age(s) for s in (4, 61, 7200, 3 * 86400 + 5)] == ["4s", "1m", "2h", "3d"]


def _blob(live) -> dict:
    """The fixture's model.bin, already in the registry's blob store."""
    data = (live.root / "blob.bin").read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
