"""Alias gates in the TUI (issue 10): the gates dialog shows a verdict for each guarded alias
next to staging and production, and a refused alias move appears in the recent activity.

The `live` registry (conftest): fraud v1 production (auc 0.90), v3 staging (0.93), v4 none (0.85).
"""

from __future__ import annotations

import pytest

from conftest import make_app, wait_for
from modelreg.shared.errors import GateFailed
from modelreg.tui.screens.gates import GatesModal
from test_activity import shows
from test_keys import SIZE, models_loaded, open_fraud


async def _guard_champion(live) -> None:
    """fraud@champion on v3, guarded by 'auc >= production' (there: the version it points at)."""
    async def go(c):
        await c.set_alias("fraud", "champion", 3)
        await c.add_gate("auc >= production", alias="champion", model="fraud")
    await live.call(go)


async def test_gates_dialog_shows_the_alias_gates_verdict(live):
    await _guard_champion(live)
    app = make_app(live, frozen=False)
    async with app.run_test(size=SIZE) as pilot:
        await open_fraud(pilot, 4)
        await pilot.press("g")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, GatesModal) and app.screen)
        await wait_for(pilot, lambda: len(modal.query("VerdictView")) == 3
                       and all(v.verdict for v in modal.query("VerdictView")), what="three verdicts")
        champion = str(modal.query_one("#verdict-alias-champion").render())
        assert "@champion gates: FAILED" in champion and "(vs @champion v3)" in champion, champion
        assert "✗ auc >= production" in champion and "observed 0.85" in champion
        # The alias's gate is not a production gate: production's verdict does not list it twice.
        production = str(modal.query_one("#verdict-production").render())
        assert production.count("auc >= production") == 1, production


async def test_a_refused_alias_move_appears_in_the_activity_panel(live):
    await _guard_champion(live)
    app = make_app(live, frozen=False)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await models_loaded(pilot)
        await wait_for(pilot, lambda: screen.activity_loaded, what="the recent events")
        with pytest.raises(GateFailed):
            await live.call(lambda c: c.set_alias("fraud", "champion", 4))
        await wait_for(pilot, lambda: shows(screen, "refused", "fraud@4", "→ @champion: auc >= production"),
                       timeout=10, what="the refused alias move in the activity panel")
