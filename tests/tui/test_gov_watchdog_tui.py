"""The TUI shows each version's watchdog state (issue 12): ok with the last values on the
production version, then, live, the trip that rolled it back and the cooldown on the version
production went back to."""

from __future__ import annotations

import re

from conftest import make_app, wait_for
from test_keys import SIZE, open_fraud

RULE = "monitoring:auc < 0.85 for 2 records"


def watchdog_line(screen) -> str:
    return str(screen.detail.query_one("#watchdog-text").render())


async def test_the_version_detail_shows_the_watchdog_state_live(live):
    async def setup(c):
        await c.transition("fraud@3", "production", reason="better")  # v1, production before it, is archived
        await c.add_watchdog("fraud", RULE, rollback=True, cooldown="1h")
        await c.record_metrics("fraud@production", {"auc": 0.91}, source="monitoring")

    await live.call(setup)
    app = make_app(live, frozen=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_fraud(pilot, 3)
        line = await wait_for(pilot, lambda: "watchdog 1" in watchdog_line(screen) and watchdog_line(screen),
                              what="the watchdog line of the production version")
        assert line == f"watchdog 1 {RULE} · ok · last 0.91"

        async def breach(c):  # from elsewhere: the monitoring job
            for value in (0.80, 0.79):
                await c.record_metrics("fraud@production", {"auc": value}, source="monitoring")

        await live.call(breach)
        line = await wait_for(pilot, lambda: "rolled back to v1" in watchdog_line(screen) and watchdog_line(screen),
                              what="v3's trip, shown without a keypress")
        assert re.fullmatch(rf"watchdog 1 {re.escape(RULE)} · tripped (just now|.+ ago) \(observed 0\.8, 0\.79\) · "
                            r"rolled back to v1", line), line

        screen.table.move_cursor(row=screen.table.get_row_index("1"))
        line = await wait_for(pilot, lambda: (screen.detail.detail or {}).get("version") == 1
                              and "cooling down" in watchdog_line(screen) and watchdog_line(screen),
                              what="v1 cooling down")
        assert line.startswith(f"watchdog 1 {RULE} · cooling down until ")
        assert line.endswith(" · no monitoring records yet")

        screen.table.move_cursor(row=screen.table.get_row_index("4"))  # never production, never tripped: no line
        await wait_for(pilot, lambda: (screen.detail.detail or {}).get("version") == 4, what="v4's detail")
        assert watchdog_line(screen) == ""
