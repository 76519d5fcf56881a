"""`h`: every stage change of a model, newest first, with actor, gate outcome and reason;
`enter` shows a change in full."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.widgets import DataTable, Footer, Static

from ..messages import HistoryLoaded
from ..widgets.formatting import plural
from ..widgets.header import StatusHeader
from ..widgets.record_table import RecordTable
from ..widgets.version_detail import history_cells
from .base import LoadingScreen
from .events import renamed
from .record import RecordModal

COLUMNS = [("when", 16), ("version", 7), ("from → to", 25), ("kind", 10), ("actor", 16), ("gates", 8)]


class HistoryScreen(LoadingScreen):

    def __init__(self, model: str) -> None:
        super().__init__()
        self.model = model

    def compose(self) -> ComposeResult:
        yield StatusHeader(f"{self.model} · history")
        yield Static(Text("loading…", style="italic"), id="history-summary")
        yield RecordTable(COLUMNS, "reason", id="history")
        yield Footer(compact=True)

    @work(exclusive=True, exit_on_error=False, group="history")
    async def load(self) -> None:
        self.post_message(HistoryLoaded(self.model, await self.client.history(self.model, limit=10000)))

    def apply_events(self, events: list[dict[str, Any]]) -> None:
        name = renamed(self.model, events)
        if name != self.model:
            self.model = name
            self.query_one(StatusHeader).set_title(f"{name} · history")
            self.load()
            return
        if any(e.get("kind", "").startswith("stage.changed") and (e.get("model") or "").lower() == self.model.lower()
               for e in events):
            self.load()

    def on_history_loaded(self, message: HistoryLoaded) -> None:
        self.loaded = True
        items = message.history.get("items") or []
        table = self.query_one("#history", RecordTable)
        table.clear_records()
        for i, h in reversed(list(enumerate(items))):
            *cells, reason, gate = history_cells(h, self.clock, self.palette, with_version=True)
            table.add_record(str(i), h, [*cells, gate], reason)
        stages: dict[int, str] = {}
        for h in items:
            stages[h["version"]] = h["to"]
        prod = next((n for n, s in stages.items() if s == "production"), None)
        rollbacks = sum(1 for h in items if h.get("kind") == "rollback" and h.get("to") == "production")
        forced = sum(1 for h in items if h.get("forced"))
        summary = Text.assemble(
            (plural(len(items), "stage change"), "bold"), "  production ",
            (f"v{prod}" if prod else "none", self.palette.production if prod else "dim"),
            f"  · {plural(rollbacks, 'rollback')} · {forced} forced")
        if not items:
            summary = Text("no stage changes yet: promote a version with s or p on the model screen", style="dim")
        self.query_one("#history-summary", Static).update(summary)

    @on(DataTable.RowSelected, "#history")
    def _selected(self, _event: DataTable.RowSelected) -> None:
        self.action_record()

    def action_record(self) -> None:
        if (record := self.query_one("#history", RecordTable).current_record()) is not None:
            self.app.push_screen(RecordModal(f"{self.model}@{record.get('version')} · stage change", record))
