"""SVG snapshots of every screen at 80x24 and 160x48, on the demo registry.

Times are frozen by the app's clock (every timestamp renders as the same instant) and the
daemon's random port is shown as a fixed label, so the pictures only change when the UI
does. Update with `pytest tests/tui --snapshot-update`, after looking at the new SVGs.
"""

from __future__ import annotations

import pytest

from conftest import SIZES, demo_info, make_app, settled, wait_for
from modelreg.tui.screens.compare import CompareScreen
from modelreg.tui.screens.events import EventsScreen
from modelreg.tui.screens.gates import GatesModal
from modelreg.tui.screens.help import HelpScreen
from modelreg.tui.screens.history import HistoryScreen
from modelreg.tui.screens.lineage import LineageScreen
from modelreg.tui.screens.model import ModelScreen
from modelreg.tui.screens.record import RecordModal
from modelreg.tui.screens.transition import RollbackModal, TransitionModal

both_sizes = pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
wide_only = pytest.mark.parametrize("size", [SIZES[1]], ids=lambda s: f"{s[0]}x{s[1]}")


async def connected(pilot) -> None:
    await wait_for(pilot, lambda: pilot.app.connection == "connected" and getattr(pilot.app.screen, "loaded", False),
                   what="the models screen to load")


def laid_out(screen: ModelScreen) -> bool:
    """The versions table's columns were chosen for its real width (not an estimate)."""
    return screen.table.size.width > 0 and screen.table.layout_width == screen.table.size.width


async def open_model(pilot, name: str = "fraud-detector", row: int = 0) -> ModelScreen:
    await connected(pilot)
    pilot.app.open_model(name)
    screen = await wait_for(pilot, lambda: isinstance(pilot.app.screen, ModelScreen) and pilot.app.screen.loaded
                            and pilot.app.screen, what="the model screen")
    if row:
        screen.table.move_cursor(row=row, animate=False)
    n = screen.table.current_version()
    await wait_for(pilot, lambda: (screen.detail.detail or {}).get("version") == n and screen.history_loaded
                   and laid_out(screen), what="the detail pane")
    return screen


@both_sizes
def test_models_screen(snap_compare, demo_registry, size):
    assert snap_compare(make_app(demo_registry, demo=demo_info()), terminal_size=size, run_before=connected)


@both_sizes
def test_model_screen(snap_compare, demo_registry, size):
    async def run_before(pilot):
        await open_model(pilot, row=1)

    assert snap_compare(make_app(demo_registry), terminal_size=size, run_before=run_before)


@wide_only
def test_model_screen_metrics_tab(snap_compare, demo_registry, size):
    async def run_before(pilot):
        screen = await open_model(pilot, row=2)  # v12: monitoring history for auc and p99
        screen.query_one("#detail-tabs").active = "metrics"
        await wait_for(pilot, lambda: screen.query_one("#metrics-table").row_count > 0, what="the metrics tab")

    assert snap_compare(make_app(demo_registry), terminal_size=size, run_before=run_before)


@wide_only
def test_model_card_tab(snap_compare, demo_registry, size):
    async def run_before(pilot):
        screen = await open_model(pilot, row=1)
        screen.query_one("#detail-tabs").active = "card"
        await wait_for(pilot, lambda: screen.detail.card_ref == "fraud-detector@13", what="the model card")

    assert snap_compare(make_app(demo_registry), terminal_size=size, run_before=run_before)


@both_sizes
def test_compare_screen(snap_compare, demo_registry, size):
    async def run_before(pilot):
        await connected(pilot)
        pilot.app.push_screen(CompareScreen("fraud-detector", [11, 12, 13], {}))
        await wait_for(pilot, lambda: pilot.app.screen.details, what="the comparison")

    assert snap_compare(make_app(demo_registry), terminal_size=size, run_before=run_before)


@wide_only
def test_compare_tensors(snap_compare, demo_registry, size):
    async def run_before(pilot):
        await connected(pilot)
        pilot.app.push_screen(CompareScreen("llm-qlora", [2, 3], {}))
        await wait_for(pilot, lambda: pilot.app.screen.details, what="the comparison")
        pilot.app.screen.query_one("#compare").scroll_end(animate=False)

    assert snap_compare(make_app(demo_registry), terminal_size=size, run_before=run_before)


@both_sizes
def test_lineage_screen(snap_compare, demo_registry, size):
    async def run_before(pilot):
        await connected(pilot)
        pilot.app.push_screen(LineageScreen("llm-base@2"))
        await wait_for(pilot, lambda: pilot.app.screen.loaded, what="the lineage")

    assert snap_compare(make_app(demo_registry), terminal_size=size, run_before=run_before)


@both_sizes
def test_history_screen(snap_compare, demo_registry, size):
    async def run_before(pilot):
        await connected(pilot)
        pilot.app.push_screen(HistoryScreen("fraud-detector"))
        await wait_for(pilot, lambda: pilot.app.screen.loaded, what="the history")

    assert snap_compare(make_app(demo_registry), terminal_size=size, run_before=run_before)


@both_sizes
def test_events_screen(snap_compare, demo_registry, size):
    async def run_before(pilot):
        await connected(pilot)
        pilot.app.push_screen(EventsScreen("fraud-detector"))
        await wait_for(pilot, lambda: pilot.app.screen.loaded, what="the events")

    assert snap_compare(make_app(demo_registry), terminal_size=size, run_before=run_before)


@both_sizes
def test_help_screen(snap_compare, demo_registry, size):
    async def run_before(pilot):
        await connected(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), what="the help")

    assert snap_compare(make_app(demo_registry), terminal_size=size, run_before=run_before)


@both_sizes
def test_promote_dialog(snap_compare, demo_registry, size):
    async def run_before(pilot):
        await open_model(pilot, row=1)
        pilot.app.push_screen(TransitionModal("fraud-detector", 13, "production", "staging"))
        await wait_for(pilot, lambda: pilot.app.screen.verdict, what="the verdict")

    assert snap_compare(make_app(demo_registry), terminal_size=size, run_before=run_before)


@both_sizes
def test_failed_gate_dialog(snap_compare, demo_registry, size):
    async def run_before(pilot):
        await open_model(pilot)
        pilot.app.push_screen(GatesModal("fraud-detector", 14, "staging"))
        await wait_for(pilot, lambda: all(v.verdict for v in pilot.app.screen.query("VerdictView")),
                       what="both verdicts")

    assert snap_compare(make_app(demo_registry), terminal_size=size, run_before=run_before)


@both_sizes
def test_rollback_dialog(snap_compare, demo_registry, size):
    async def run_before(pilot):
        await open_model(pilot)
        pilot.app.push_screen(RollbackModal("fraud-detector", 12, 10))
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, RollbackModal)
                       and pilot.app.screen.query_one("#reason").has_focus, what="the rollback dialog")

    assert snap_compare(make_app(demo_registry), terminal_size=size, run_before=run_before)


@both_sizes
def test_history_record(snap_compare, demo_registry, size):
    async def run_before(pilot):
        await connected(pilot)
        pilot.app.push_screen(HistoryScreen("fraud-detector"))
        await wait_for(pilot, lambda: pilot.app.screen.loaded, what="the history")
        pilot.app.screen.query_one("#history").move_cursor(row=5, animate=False)  # the rollback, a long reason
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, RecordModal), what="the record")

    assert snap_compare(make_app(demo_registry), terminal_size=size, run_before=run_before)
