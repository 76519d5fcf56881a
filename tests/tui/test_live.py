"""Changes made elsewhere show up without a keypress; a lost daemon is shown and recovered;
big models page on demand."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from conftest import make_app, settled, wait_for
from daemon_process import start_daemon
from modelreg.tui.screens.events import EventsScreen
from modelreg.tui.screens.gates import GatesModal
from modelreg.tui.screens.model import ModelScreen
from modelreg.tui.widgets.versions_table import PAGE
from test_keys import SIZE, models_loaded, open_fraud


def toasts(app) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications]


async def test_cli_promotion_and_new_versions_appear_with_a_toast(live):
    app = make_app(live, frozen=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_fraud(pilot, 3)
        blob = (await live.call(lambda c: c.version("fraud@1")))["files"]
        started = time.monotonic()
        await live.call(lambda c: c.transition("fraud@3", "production", reason="from CI"))
        await wait_for(pilot, lambda: screen.table.summaries[3]["stage"] == "production"
                       and screen.table.summaries[1]["stage"] == "archived", timeout=5, what="the CLI promotion")
        assert time.monotonic() - started < 2.5
        await wait_for(pilot, lambda: any("fraud@3 staging → production by cli@elsewhere — from CI" in t
                                          for t in toasts(app)), timeout=3, what="the toast")
        await live.call(lambda c: c.register("fraud", files=blob, metrics={"auc": 0.95}))
        await wait_for(pilot, lambda: 5 in screen.table.summaries, timeout=5, what="the new version")
        assert screen.table.get_row_index("5") == 0  # newest on top, cursor kept on its row
        assert screen.table.current_version() == 3


async def test_drop_folder_file_appears_with_a_notification(live, tmp_path: Path):
    drop = tmp_path / "drop"
    drop.mkdir()
    await live.call(lambda c: c.add_watch(drop, model="fraud", mode="move", settle=0.5))
    app = make_app(live, frozen=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_fraud(pilot)
        staged = tmp_path / "incoming.bin"
        staged.write_bytes(b"fresh weights from the nightly job\n")
        staged.rename(drop / "model.bin")  # an atomic rename-in is taken at once
        await wait_for(pilot, lambda: 5 in screen.table.summaries, timeout=10, what="the dropped version")
        await wait_for(pilot, lambda: any(t.startswith("new drop") and "fraud@5" in t for t in toasts(app)),
                       timeout=3, what="the drop notification")
        models = app.screen_stack[-2]  # refreshed by its own worker: wait for it, under load too
        await wait_for(pilot, lambda: models.models["fraud"]["version_count"] == 5, timeout=10,
                       what="the models screen's count")


async def test_daemon_stop_shows_disconnected_and_recovers(live, monkeypatch):
    # No explicit URL: the app finds the daemon through HOME/daemon.json, so it also follows
    # a restarted daemon to its new port.
    monkeypatch.delenv("MODELREG_URL", raising=False)
    app = make_app(live, frozen=False, url=None, poll_interval=0.2)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_fraud(pilot)
        live.daemon.stop()
        await wait_for(pilot, lambda: app.connection == "disconnected", timeout=5, what="disconnected")
        header = str(screen.query_one("#connection").render())
        assert header.startswith("○ disconnected")
        await pilot.press("g")  # keys still work; the failure is a notification, not a crash
        modal = await wait_for(pilot, lambda: isinstance(app.screen, GatesModal) and app.screen, what="the gates")
        verdict = lambda: str(modal.query_one("#verdict-production").render())  # noqa: E731
        await wait_for(pilot, lambda: not verdict().startswith("checking"), what="the dialog to give up")
        assert "gates:" not in verdict() and modal.query_one("#verdict-production").verdict is None
        assert app.is_running
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen and modal not in app.screen_stack)
        live.daemon = await asyncio.to_thread(start_daemon, live.home)
        await wait_for(pilot, lambda: app.connection == "connected", timeout=10, what="reconnected")
        assert str(screen.query_one("#connection").render()).startswith("● connected")
        # events from while it was down (and after) still arrive
        await live.call(lambda c: c.transition("fraud@3", "production", reason="after restart"))
        await wait_for(pilot, lambda: screen.table.summaries[3]["stage"] == "production", timeout=5)


async def test_unreachable_daemon_is_said_clearly(tmp_path: Path):
    from modelreg.tui.app import ModelregApp

    app = ModelregApp(home=tmp_path / "nowhere", url="http://127.0.0.1:9", keymap={}, start_daemon=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.connection == "disconnected")
        banner = str(app.screen.query_one("#banner").render())
        assert "cannot reach the daemon" in banner and "127.0.0.1:9" in banner
        await pilot.press("e")  # no crash without a daemon
        events = await wait_for(pilot, lambda: isinstance(app.screen, EventsScreen) and app.screen,
                                what="the events screen")
        await settled(pilot)
        assert app.is_running and not events.loaded


async def test_big_model_pages_on_demand(live, tmp_path: Path):
    n = 3 * PAGE + 50

    async def many(c):
        path = tmp_path / "w.bin"
        path.write_bytes(b"x")
        blob = await c.upload_blob(path)
        files = [{"path": "w.bin", "sha256": blob["sha256"], "size": blob["size"]}]
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> None:
            async with sem:
                await c.register("big", files=files, metrics={"auc": i / n})

        await asyncio.gather(*(one(i) for i in range(n)))

    await live.call(many)
    app = make_app(live, frozen=False)
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(pilot)
        app.open_model("big")
        screen = await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen) and app.screen.loaded
                                and app.screen)
        table = screen.table
        assert len(table.summaries) == PAGE and table.total == n
        await pilot.press("end")  # the cursor near the end of what is loaded fetches the next page
        await wait_for(pilot, lambda: len(table.summaries) == 2 * PAGE, what="the second page")
        for pages in (3, 4):
            await pilot.press("end")
            await wait_for(pilot, lambda: len(table.summaries) == min(n, pages * PAGE), what=f"page {pages}")
        assert len(table.summaries) == n
        assert table.next_cursor is None
        assert [int(k.value) for k in list(table.rows)[:3]] == [n, n - 1, n - 2]
