"""The versions table says what matters: aliases beside the stage badge, a marker for versions
unsafe to load, failed and pending rows that say so; columns a function of data and width."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult

from conftest import make_app, wait_for
from modelreg.tui.widgets.formatting import FrozenClock
from modelreg.tui.widgets.versions_table import VersionsTable, alias_labels, alias_room, rank_metric_keys
from test_keys import SIZE, open_fraud


def summaries() -> list[dict[str, Any]]:
    rows = [(15, "none", "pending"), (14, "staging", "ready"), (13, "none", "failed"),
            (12, "production", "ready"), (11, "archived", "ready")]
    return [{"model": "fraud", "version": n, "stage": stage, "status": status, "source": "upload",
             "metrics": {"auc": 0.9 + n / 1000} if status == "ready" else {}, "total_size": 1000,
             "created_at": "2026-11-25T09:46:40Z", "status_message": "bad file" if status == "failed" else None}
            for n, stage, status in rows]


class Harness(App):
    """Only the table, no daemon (``app.client`` is absent, so nothing is asked for)."""

    _pending: list[dict[str, Any]] = []  # what conftest's wait_for reads of the real app

    def compose(self) -> ComposeResult:
        yield VersionsTable(id="t")

    def on_mount(self) -> None:
        table = self.query_one(VersionsTable)
        table.clock = FrozenClock()
        items = summaries()
        table.reset(rank_metric_keys(items))
        table.append_page(items)


def cell(table: VersionsTable, n: int, column: str) -> str:
    return table.get_cell(str(n), column).plain


def flag(table: VersionsTable, n: int) -> str:
    """The version's flags, "" when the table has no flags column (nothing is flagged)."""
    return cell(table, n, "flags").strip() if "flags" in table.columns else ""


def column_keys(table: VersionsTable) -> list[str]:
    return [c.key.value for c in table.columns.values()]


async def test_alias_shows_beside_its_versions_stage():
    app = Harness()
    async with app.run_test(size=(80, 12)) as pilot:
        table = app.query_one(VersionsTable)
        table.set_annotations({"champion": 12, "canary": 14})
        await wait_for(pilot, lambda: "@champion" in cell(table, 12, "stage"), what="the alias")
        assert cell(table, 12, "stage").split() == ["●", "production", "@champion"]
        assert cell(table, 14, "stage").split() == ["◆", "staging", "@canary"]
        assert "@" not in cell(table, 11, "stage")
        # The alias moves: the old version loses it, the new one has it.
        table.set_annotations({"champion": 14})
        await wait_for(pilot, lambda: "@" not in cell(table, 12, "stage"), what="the alias to move")
        assert cell(table, 14, "stage").split() == ["◆", "staging", "@champion"]


async def test_failed_and_pending_rows_say_so():
    app = Harness()
    async with app.run_test(size=(80, 12)) as pilot:
        table = app.query_one(VersionsTable)
        await wait_for(pilot, lambda: table.row_count == 5)
        assert "failed" in cell(table, 13, "stage")
        assert "pending" in cell(table, 15, "stage")
        assert cell(table, 12, "stage").split() == ["●", "production"]


async def test_unsafe_marker_from_the_search_and_from_a_details_facts():
    app = Harness()
    async with app.run_test(size=(80, 12)) as pilot:
        table = app.query_one(VersionsTable)
        await wait_for(pilot, lambda: table.row_count == 5)
        assert "flags" not in column_keys(table)  # nothing flagged: no column, its room goes to metrics
        assert all(flag(table, n) == "" for n in table.summaries)
        table.set_annotations(unsafe={14})
        assert column_keys(table)[:4] == ["mark", "v", "flags", "stage"]
        assert flag(table, 14) == "!"
        assert flag(table, 12) == ""
        # A version refreshed from its detail carries its facts: they decide.
        table.upsert({**table.summaries[12], "facts": {"unsafe": True}})
        assert flag(table, 12) == "!"
        table.upsert({**table.summaries[14], "facts": {"unsafe": False}})
        assert flag(table, 14) == ""
        assert table.get_row_index("15") == 0 and table.row_count == 5  # same rows, same order


async def test_columns_are_a_function_of_the_data_and_the_width():
    assert alias_labels({"b": 3, "a": 3, "c": 1}) == {3: "@a @b", 1: "@c"}
    assert alias_room({}) == 0 and alias_room({"champion": 1}) == 10
    assert alias_room({f"alias{i:02d}": 1 for i in range(9)}) == 20  # capped; cut with …
    layouts = []
    for order in (summaries(), summaries()[::-1]):
        app = Harness()
        async with app.run_test(size=(80, 12)) as pilot:
            table = app.query_one(VersionsTable)
            await wait_for(pilot, lambda: table.row_count == 5)
            table.set_annotations({"champion": 12})
            table.upsert(order[0])
            layouts.append([(c.key.value, c.width) for c in table.columns.values()])
    assert layouts[0] == layouts[1]


async def test_live_alias_and_unsafe_pickle_show_in_the_model_screen(live, tmp_path: Path):
    class Boom:
        def __reduce__(self):  # never loaded: the sniffer only reads the opcodes
            return (os.system, ("true",))

    bad = tmp_path / "model.pkl"
    bad.write_bytes(pickle.dumps(Boom()))

    async def fill(c) -> None:
        blob = await c.upload_blob(bad)
        await c.register("fraud", files=[{"path": "model.pkl", "sha256": blob["sha256"], "size": blob["size"]}])
        await c.set_alias("fraud", "champion", 1)

    await live.call(fill)
    app = make_app(live)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_fraud(pilot)
        table = screen.table
        await wait_for(pilot, lambda: "@champion" in cell(table, 1, "stage") and flag(table, 5) == "!",
                       what="the alias and the unsafe marker")
        assert cell(table, 1, "stage").split() == ["●", "production", "@champion"]
        assert all(flag(table, n) == "" for n in (1, 2, 3, 4))
        # Pointed elsewhere from another shell: the alias.set event moves it.
        await live.call(lambda c: c.set_alias("fraud", "champion", 3))
        await wait_for(pilot, lambda: "@champion" in cell(table, 3, "stage") and "@" not in cell(table, 1, "stage"),
                       timeout=10, what="the alias to move")
