"""Pilot tests: every key of PRODUCT.md §7 against a real daemon on loopback.

The `live` registry (conftest): fraud v1 production, v2 archived, v3 staging and passing
the production gates, v4 registered and failing them (auc below production - 0.002).
"""

from __future__ import annotations

from conftest import make_app, settled, wait_for
from modelreg.tui.screens.compare import CompareScreen
from modelreg.tui.screens.events import EventsScreen
from modelreg.tui.screens.gates import GatesModal
from modelreg.tui.screens.help import HelpScreen
from modelreg.tui.screens.history import HistoryScreen
from modelreg.tui.screens.lineage import LineageScreen
from modelreg.tui.screens.model import ModelScreen
from modelreg.tui.screens.models import ModelsScreen
from modelreg.tui.screens.transition import RollbackModal, TransitionModal

SIZE = (120, 40)


async def models_loaded(pilot) -> ModelsScreen:
    return await wait_for(pilot, lambda: isinstance(pilot.app.screen, ModelsScreen) and pilot.app.screen.loaded
                          and pilot.app.screen, what="the models screen")


async def open_fraud(pilot, version: int | None = None) -> ModelScreen:
    """Open fraud from the models screen with the keyboard, then put the cursor on ``version``."""
    models = await models_loaded(pilot)
    table = models.query_one("#models")
    await wait_for(pilot, lambda: table.row_count == 2)
    table.move_cursor(row=table.get_row_index("fraud"))
    await pilot.press("enter")
    screen = await wait_for(pilot, lambda: isinstance(pilot.app.screen, ModelScreen) and pilot.app.screen.loaded
                            and pilot.app.screen, what="the model screen")
    if version is not None:
        screen.table.move_cursor(row=screen.table.get_row_index(str(version)))
        await wait_for(pilot, lambda: (screen.detail.detail or {}).get("version") == version, what="the detail")
    return screen


def stage_of(screen: ModelScreen, n: int) -> str:
    return screen.table.summaries[n]["stage"]


async def test_promote_staging_version_with_reason(live):
    app = make_app(live, frozen=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_fraud(pilot, 3)
        await pilot.press("p")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, TransitionModal) and app.screen.verdict
                               and app.screen, what="the verdict")
        verdict_text = str(modal.query_one("#verdict").render())
        assert "✓ auc >= production - 0.002" in verdict_text and "observed 0.93" in verdict_text
        await pilot.press(*"ok", "enter")
        await wait_for(pilot, lambda: app.screen is screen, what="the dialog to close")
        # No refresh key: the answer itself moves the badges.
        assert stage_of(screen, 3) == "production" and stage_of(screen, 1) == "archived"
        await wait_for(pilot, lambda: screen.info.get("production") == 3, what="the model info")
    history = (await live.call(lambda c: c.history("fraud")))["items"]
    assert (history[-1]["version"], history[-1]["to"], history[-1]["reason"], history[-1]["actor"]) == \
        (3, "production", "ok", "tester@tui")


async def test_stage_key_moves_to_staging(live):
    app = make_app(live, frozen=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_fraud(pilot, 4)
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, TransitionModal) and app.screen.verdict)
        assert app.screen.target == "staging"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is screen and stage_of(screen, 4) == "staging")


async def test_archive_needs_a_reason(live):
    app = make_app(live, frozen=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_fraud(pilot, 3)
        await pilot.press("a")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, TransitionModal) and app.screen)
        assert modal.query_one("#confirm").disabled
        assert "a reason is required" in str(modal.query_one("#dialog-error").render())
        await pilot.press("enter")
        await settled(pilot)
        assert app.screen is modal  # nothing happened without a reason
        assert stage_of(screen, 3) == "staging"
        await pilot.press("x", "enter")
        await wait_for(pilot, lambda: app.screen is screen and stage_of(screen, 3) == "archived")


async def test_failed_gate_blocks_until_forced_with_reason(live):
    app = make_app(live, frozen=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_fraud(pilot, 4)
        await pilot.press("p")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, TransitionModal) and app.screen.verdict
                               and app.screen)
        assert modal.verdict["passed"] is False
        assert "✗ auc >= production - 0.002" in str(modal.query_one("#verdict").render())
        assert modal.query_one("#confirm").disabled
        modal.query_one("#force").value = True
        await wait_for(pilot, lambda: "a reason is required" in str(modal.query_one("#dialog-error").render()),
                       what="the force checkbox to apply")
        assert modal.query_one("#confirm").disabled  # forcing needs a reason too
        modal.query_one("#reason").value = "hotfix, approved by bo"
        await wait_for(pilot, lambda: not modal.query_one("#confirm").disabled, what="the reason to apply")
        await pilot.click("#confirm")
        await wait_for(pilot, lambda: app.screen is screen and stage_of(screen, 4) == "production")
    last = (await live.call(lambda c: c.history("fraud")))["items"][-1]
    assert last["forced"] is True and last["reason"] == "hotfix, approved by bo"


async def test_rollback_key_restores_previous_production(live):
    await live.call(lambda c: c.transition("fraud@3", "production", reason="v3 out"))
    app = make_app(live, frozen=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_fraud(pilot, 3)
        await wait_for(pilot, lambda: screen.check_action("rollback", ()), what="rollback to apply")
        await pilot.press("r")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, RollbackModal) and app.screen)
        assert modal.target == 1
        await pilot.press("enter")
        await settled(pilot)
        assert app.screen is modal  # a rollback always needs a reason
        assert "needs a reason" in str(modal.query_one("#dialog-error").render())
        await pilot.press(*"p99", "enter")
        await wait_for(pilot, lambda: app.screen is screen and stage_of(screen, 1) == "production"
                       and stage_of(screen, 3) == "archived")
    assert (await live.call(lambda c: c.model("fraud")))["production"] == 1


async def test_gates_dry_run_shows_both_targets(live):
    app = make_app(live, frozen=False)
    async with app.run_test(size=SIZE) as pilot:
        await open_fraud(pilot, 4)
        await pilot.press("g")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, GatesModal) and app.screen)
        await wait_for(pilot, lambda: all(v.verdict for v in modal.query("VerdictView")))
        production = str(modal.query_one("#verdict-production").render())
        assert "FAILED" in production and "✗ auc >= production - 0.002" in production and "observed 0.85" in production
        assert "no gates for staging" in str(modal.query_one("#verdict-staging").render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen), what="the dialog to close")
    # a dry run changes nothing
    assert (await live.call(lambda c: c.version("fraud@4")))["stage"] == "none"


async def test_mark_and_compare(live):
    app = make_app(live, frozen=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_fraud(pilot, 3)
        assert not screen.check_action("compare", ())
        await pilot.press("space")  # marks v3 in place: the cursor stays on it
        await wait_for(pilot, lambda: screen.table.marked == {3}, what="v3 marked")
        assert screen.table.current_version() == 3
        await pilot.press("space")  # unmarks it
        await wait_for(pilot, lambda: not screen.table.marked, what="v3 unmarked")
        assert screen.table.current_version() == 3
        await pilot.press("space", "down", "space")  # marks v3, then v2
        await wait_for(pilot, lambda: screen.table.marked == {2, 3}, what="v2 and v3 marked")
        assert screen.table.current_version() == 2
        assert "2 marked" in str(screen.query_one("#vinfo").render())
        await pilot.press("c")
        cmp = await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.details
                             and app.screen)
        rows = [[str(c.plain if hasattr(c, "plain") else c) for c in cmp.query_one("#cmp-metrics").get_row_at(i)]
                for i in range(cmp.query_one("#cmp-metrics").row_count)]
        auc = next(r for r in rows if r[0] == "auc")
        assert auc[2:] == ["0.89", "0.93 +0.04"]
        latency = next(r for r in rows if r[0] == "latency_ms")
        assert latency[1] == "↓ lower" and latency[3] == "32 +1"
        files = cmp.query_one("#cmp-files")
        statuses = {files.get_row_at(i)[0]: files.get_row_at(i)[2].plain for i in range(files.row_count)}
        assert statuses["config.json"].startswith("changed") and statuses["model.bin"].startswith("=")
        params = cmp.query_one("#cmp-params")
        assert params.get_row_at(0)[0] == "depth"
        await pilot.press("q")
        await wait_for(pilot, lambda: app.screen is screen, what="back on the model screen")


async def test_lineage_history_events_help_and_back(live):
    app = make_app(live, frozen=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_fraud(pilot, 3)
        await pilot.press("l")
        lineage = await wait_for(pilot, lambda: isinstance(app.screen, LineageScreen) and app.screen.loaded
                                 and app.screen)
        labels = [str(node.label) for node in lineage.query_one("#lineage").root.children[0].children]
        assert any("txns@2026-03" in label for label in labels) and any("run r3" in label for label in labels)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, what="back from the lineage")
        await pilot.press("h")
        history = await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded
                                 and app.screen)
        assert history.query_one("#history").row_count == 3
        await pilot.press("q")
        await wait_for(pilot, lambda: app.screen is screen, what="back from the history")
        await pilot.press("e")
        events = await wait_for(pilot, lambda: isinstance(app.screen, EventsScreen) and app.screen.loaded
                                and app.screen)
        assert events.query_one("#events").row_count > 5
        await pilot.press("q")
        await wait_for(pilot, lambda: app.screen is screen, what="back from the events")
        for key in ("question_mark", "f1"):
            await pilot.press(key)
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is screen, what="the help to close")
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelsScreen), what="back on the models screen")


async def test_filters_models_and_versions(live):
    app = make_app(live, frozen=False)
    async with app.run_test(size=SIZE) as pilot:
        models = await models_loaded(pilot)
        table = models.query_one("#models")
        await pilot.press("slash", *"chu")
        await wait_for(pilot, lambda: table.row_count == 1)
        await pilot.press("escape")
        await wait_for(pilot, lambda: table.row_count == 2, what="the filter to clear")
        screen = await open_fraud(pilot)
        await pilot.press("slash")
        screen.query_one("#vfilter").value = "staging auc>=0.9"
        await pilot.press("enter")
        await wait_for(pilot, lambda: list(screen.table.summaries) == [3], what="the filtered versions")
        await pilot.press("slash")
        screen.query_one("#vfilter").value = "bogus!"
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("filter 'bogus!'" in n.message for n in app._notifications),
                       what="the filter error")
        assert list(screen.table.summaries) == [3]  # a bad filter is reported, not applied


async def test_keys_hidden_where_they_do_not_apply(live):
    app = make_app(live, frozen=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_fraud(pilot, 1)  # production
        shown = {b.binding.action for b in app.screen.active_bindings.values()}
        assert "promote" not in shown and "stage" not in shown and "archive" in shown
        screen.table.move_cursor(row=screen.table.get_row_index("2"))  # archived
        await wait_for(pilot, lambda: (screen.detail.detail or {}).get("version") == 2)
        shown = {b.binding.action for b in app.screen.active_bindings.values()}
        assert "archive" not in shown and "promote" in shown and "compare" not in shown
        await pilot.press("p")  # still works as a key where it applies
        await wait_for(pilot, lambda: isinstance(app.screen, TransitionModal))


async def test_keymap_remaps_binding_ids(live):
    app = make_app(live, frozen=False, keymap={"promote": "P", "history": "y"})
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_fraud(pilot, 3)
        await pilot.press("p")
        await settled(pilot)
        assert app.screen is screen
        await pilot.press("P")
        await wait_for(pilot, lambda: isinstance(app.screen, TransitionModal))
        await pilot.press("escape")
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))


async def test_command_palette_lists_the_main_actions(live):
    app = make_app(live, frozen=False)
    async with app.run_test(size=SIZE) as pilot:
        await open_fraud(pilot, 3)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert any(t.startswith("Promote to production (fraud@3)") for t in titles)
        assert "Roll back production" not in titles  # fraud has had no other production version
        assert any(t == "Open model churn" for t in titles)
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "CommandPalette")
