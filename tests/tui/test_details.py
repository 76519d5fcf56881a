"""Details a new user tripped on (issue 8, item 10), and the TUI following renames and
deletions made elsewhere. Each test fails without its fix."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from conftest import SIZES, make_app, settled, wait_for
from modelreg.tui.app import DemoInfo, ModelregApp
from modelreg.tui.screens.events import EventsScreen
from modelreg.tui.screens.help import HelpScreen
from modelreg.tui.screens.history import HistoryScreen
from modelreg.tui.screens.model import ModelScreen
from modelreg.tui.screens.models import ModelsScreen, demo_commands
from modelreg.tui.screens.record import RecordModal
from modelreg.tui.screens.transition import TransitionModal
from modelreg.tui.widgets.formatting import plural
from test_keys import SIZE, models_loaded, open_fraud

LONG_REASON = ("rolled out to 5% of traffic first; the fraud team signed off after a week of shadow scoring, "
               "see INC-4412 for the review notes and the latency dashboards linked from it — end of reason")
PARTIAL_BLOCKS = "▉▊▋▌▍▎▏"  # a horizontal scrollbar's thumb ends: read as a stray "▊"


def offline_app(**kwargs) -> ModelregApp:
    """An app whose daemon never answers: for what needs no registry."""
    return ModelregApp(home=Path("/nonexistent/modelreg-home"), url="http://127.0.0.1:9", keymap={},
                       start_daemon=False, cursor_blink=False, **kwargs)


def lines(widget) -> list[str]:
    """The widget's text as drawn on screen, one string per row."""
    strips = widget.render_lines(widget.region.reset_offset)
    return ["".join(segment.text for segment in strip) for strip in strips]


def screen_rows(app) -> list[str]:
    """The whole screen as text, one string per terminal row (from the SVG screenshot)."""
    rows: dict[int, list[tuple[float, str]]] = {}
    for m in re.finditer(r'<text [^>]*x="([\d.]+)"[^>]*clip-path="url\(#[^)]*-line-(\d+)\)">([^<]*)</text>',
                         app.export_screenshot()):
        rows.setdefault(int(m.group(2)), []).append((float(m.group(1)), html.unescape(m.group(3))))
    return ["".join(text for _, text in sorted(rows[n])) for n in sorted(rows)]


async def test_help_scrolls_at_80x24():
    app = offline_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        help_screen = await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen) and app.screen, what="help")
        dialog = help_screen.query_one("#dialog")
        assert dialog.max_scroll_y > 0  # it does not fit: it must scroll, not be cut off
        await pilot.press("end")
        await wait_for(pilot, lambda: dialog.scroll_y == dialog.max_scroll_y, what="End to scroll to the bottom")
        last = dialog.children[-1]  # "escape to close": the last line is reachable
        assert "escape to close" in str(last.render())
        assert last.region and dialog.region.contains_region(last.region)
        await pilot.press("home")
        await wait_for(pilot, lambda: dialog.scroll_y == 0, what="Home to scroll to the top")
        await pilot.press("down")
        await wait_for(pilot, lambda: dialog.scroll_y == 1, what="Down to scroll a line")
        await pilot.press("pagedown")
        await wait_for(pilot, lambda: dialog.scroll_y > 5, what="PgDn to scroll a page")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen), what="the help to close")


async def test_history_reason_is_cut_to_fit_and_enter_shows_the_full_record(live):
    await live.call(lambda c: c.transition("fraud@3", "production", reason=LONG_REASON))
    app = make_app(live, frozen=False)
    async with app.run_test(size=SIZE) as pilot:
        await open_fraud(pilot)
        await pilot.press("h")
        history = await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded
                                 and app.screen, what="the history")
        table = history.query_one("#history")
        shown = lines(table)
        assert any(line.rstrip().endswith("…") and "rolled out to 5%" in line for line in shown)
        assert not any("end of reason" in line for line in shown)
        assert table.virtual_size.width <= table.size.width  # nothing to scroll sideways
        await pilot.press("enter")  # the cursor is on the newest change: the long one
        modal = await wait_for(pilot, lambda: isinstance(app.screen, RecordModal) and app.screen, what="the record")
        text = str(modal.query_one("#record-text").render())
        assert LONG_REASON in text.replace("\n", " ") or LONG_REASON in text
        for field in ("version: 3", "from: staging", "to: production", "actor: cli@elsewhere"):
            assert field in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is history, what="the record to close")


async def test_events_enter_shows_the_full_event_and_o_opens_its_version(live):
    await live.call(lambda c: c.transition("fraud@3", "production", reason=LONG_REASON))
    app = make_app(live, frozen=False)
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(pilot)
        await pilot.press("e")
        events = await wait_for(pilot, lambda: isinstance(app.screen, EventsScreen) and app.screen.loaded
                                and app.screen, what="the events")
        table = events.query_one("#events")
        row = next(i for i, r in enumerate(table.ordered_rows)
                   if table.records[str(r.key.value)].get("kind") == "stage.changed"
                   and (table.records[str(r.key.value)].get("data") or {}).get("reason") == LONG_REASON)
        table.move_cursor(row=row, animate=False)
        await settled(pilot)
        shown = lines(table)
        assert any(line.rstrip().endswith("…") and "staging → production (tr" in line for line in shown), shown
        assert not any("end of reason" in line for line in shown)
        await pilot.press("enter")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, RecordModal) and app.screen, what="the event")
        text = str(modal.query_one("#record-text").render())
        assert "kind: stage.changed" in text and "model: fraud" in text and "reason: " in text
        assert "end of reason" in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is events, what="the event to close")
        await pilot.press("o")
        screen = await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen) and app.screen.loaded
                                and app.screen, what="the event's version")
        assert screen.model_name == "fraud" and screen.table.current_version() == 3


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_history_and_events_draw_no_stray_scrollbar_blocks(demo_registry, size):
    app = make_app(demo_registry)
    async with app.run_test(size=size) as pilot:
        await models_loaded(pilot)
        for screen in (HistoryScreen("fraud-detector"), EventsScreen("fraud-detector")):
            app.push_screen(screen)
            await wait_for(pilot, lambda: app.screen is screen and screen.loaded, what=type(screen).__name__)
            rows = screen_rows(app)[:-1]  # the footer draws a "▏" before ^p palette
            assert not [c for c in PARTIAL_BLOCKS if any(c in row for row in rows)], (type(screen).__name__, rows)
            table = screen.query_one("DataTable")
            assert table.region.bottom <= app.screen.region.bottom - 1  # above the footer, not scrolled past it
            assert app.screen.max_scroll_y == 0  # the screen itself does not scroll
            await pilot.press("q")
            await wait_for(pilot, lambda: isinstance(app.screen, ModelsScreen), what="back")


async def test_demo_banner_shows_each_command_whole_on_its_own_line():
    demo = DemoInfo(home=Path("/tmp/modelreg-demo-k2j4x9a1/registry"), drop=Path("/tmp/modelreg-demo-k2j4x9a1/drop"),
                    command="/home/someone/src/modelreg/.venv/bin/modelreg")
    app = offline_app(demo=demo)
    async with app.run_test(size=(80, 24)) as pilot:
        banner = await wait_for(pilot, lambda: app.screen.query_one("#banner"), what="the banner")
        commands = demo_commands(demo)
        assert commands == ["export MODELREG_HOME=/tmp/modelreg-demo-k2j4x9a1/registry",
                            "/home/someone/src/modelreg/.venv/bin/modelreg history fraud-detector"]
        shown = [line.strip(" █") for line in lines(banner)]
        for command in commands:
            assert command in shown  # whole, on a line of its own: it copies without a break
        await pilot.press("y")
        await wait_for(pilot, lambda: app.clipboard == "\n".join(commands) + "\n", what="y to copy the commands")


async def test_counts_are_pluralised(live):
    assert [plural(n, "version") for n in (0, 1, 2, 1204)] == ["0 versions", "1 version", "2 versions",
                                                               "1,204 versions"]
    app = make_app(live, frozen=False)
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(pilot)
        app.open_model("churn")  # one version
        screen = await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen) and app.screen.loaded
                                and app.screen.info.get("version_count") == 1 and app.screen, what="churn")
        info = str(screen.query_one("#vinfo").render())
        assert "1 version " in info and "1 versions" not in info
        titles = {c.title: c.help for c in app.get_system_commands(app.screen)}
        assert titles["Open model churn"] == "1 version"


async def test_force_checkbox_reads_without_colour(live):
    app = make_app(live, frozen=False)
    async with app.run_test(size=SIZE) as pilot:
        await open_fraud(pilot, 4)
        await pilot.press("p")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, TransitionModal) and app.screen.verdict
                               and app.screen, what="the failed verdict")
        force = modal.query_one("#force")
        assert str(force.render()).startswith("[ ] force")
        await pilot.click("#force")
        await wait_for(pilot, lambda: force.value, what="force ticked")
        assert str(force.render()).startswith("[x] force")


async def test_sidebar_follows_models_created_renamed_and_deleted_elsewhere(live):
    app = make_app(live, frozen=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_fraud(pilot)
        sidebar = screen.query_one("#sidebar")

        def names() -> list[str]:
            return [str(o.id) for o in sidebar.options]

        assert names() == ["churn", "fraud"]
        files = (await live.call(lambda c: c.version("churn@1")))["files"]
        await live.call(lambda c: c.register("newcomer", files=files))
        await wait_for(pilot, lambda: names() == ["churn", "fraud", "newcomer"], what="the new model in the sidebar")
        await live.call(lambda c: c.rename_model("churn", "attrition", reason="clearer"))
        await wait_for(pilot, lambda: names() == ["attrition", "fraud", "newcomer"], what="the rename in the sidebar")
        await live.call(lambda c: c.delete_model("newcomer", reason="a test"))
        await wait_for(pilot, lambda: names() == ["attrition", "fraud"], what="the deletion in the sidebar")
        assert screen.query_one("#sidebar").highlighted == names().index("fraud")
        models = next(s for s in app.screen_stack if isinstance(s, ModelsScreen))
        assert sorted(models.models) == ["attrition", "fraud"]


async def test_model_screen_follows_a_rename_and_version_changes(live):
    app = make_app(live, frozen=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_fraud(pilot, 3)
        await live.call(lambda c: c.rename_model("fraud", "fraud-v2", reason="naming scheme"))
        await wait_for(pilot, lambda: screen.model_name == "fraud-v2" and screen.info.get("name") == "fraud-v2"
                       and screen.loaded and len(screen.table.summaries) == 4, what="the screen to follow the rename")
        assert "fraud-v2" in str(screen.query_one("#title").render())
        assert any("fraud was renamed fraud-v2" in n.message for n in app._notifications)
        await live.call(lambda c: c.update_version("fraud-v2@3", description="now with a description"))
        await wait_for(pilot, lambda: screen.table.summaries[3].get("description") == "now with a description",
                       what="version.updated")
        await live.call(lambda c: c.delete_version("fraud-v2@4", reason="bad build"))
        await wait_for(pilot, lambda: 4 not in screen.table.summaries and screen.info.get("version_count") == 3,
                       what="version.deleted")
        assert screen.table.row_count == 3 and "3 versions" in str(screen.query_one("#vinfo").render())
        await live.call(lambda c: c.update_model("fraud-v2", description="renamed and described"))
        models = next(s for s in app.screen_stack if isinstance(s, ModelsScreen))
        await wait_for(pilot, lambda: (models.models.get("fraud-v2") or {}).get("description")
                       == "renamed and described", what="model.updated on the models list")
        assert "fraud" not in models.models


async def test_model_screen_of_a_deleted_model_says_so_and_goes_back(live):
    app = make_app(live, frozen=False)
    async with app.run_test(size=SIZE) as pilot:
        models = await models_loaded(pilot)
        app.open_model("churn")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen) and app.screen.loaded, what="churn")
        await live.call(lambda c: c.delete_model("churn", reason="retired"))
        await wait_for(pilot, lambda: app.screen is models, what="back on the models list")
        assert any(n.title == "model deleted" and "churn was deleted" in n.message and "retired" in n.message
                   for n in app._notifications)
        await wait_for(pilot, lambda: "churn" not in models.models
                       and models.query_one("#models").row_count == 1, what="churn gone from the list")
