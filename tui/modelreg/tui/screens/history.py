"""`h`: every stage change of a model, newest first, with actor, reason and gate outcome."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.widgets import DataTable, Footer, Static

from ..messages import HistoryLoaded
from ..widgets.header import StatusHeader
from ..widgets.version_detail import history_cells
from .base import LoadingScreen


class HistoryScreen(LoadingScreen):

    def __init__(self, model: str) -> None:
        super().__init__()
        self.model = model

    def compose(self) -> ComposeResult:
        yield StatusHeader(f"{self.model} · history")
        yield Static(Text("loading…", style="italic"), id="history-summary")
        table: DataTable = DataTable(id="history", cursor_type="row", cursor_foreground_priority="renderable")
        for column in ("when", "version", "from → to", "kind", "actor", "reason", "gates"):
            table.add_column(column, key=column)
        yield table
        yield Footer(compact=True)

    @work(exclusive=True, exit_on_error=False, group="history")
    async def load(self) -> None:
        self.post_message(HistoryLoaded(self.model, await self.client.history(self.model, limit=10000)))

    def apply_events(self, events: list[dict[str, Any]]) -> None:
        if any(e.get("kind", "").startswith("stage.changed") and (e.get("model") or "").lower() == self.model.lower()
               for e in events):
            self.load()

    def on_history_loaded(self, message: HistoryLoaded) -> None:
        self.loaded = True
        items = message.history.get("items") or []
        table = self.query_one("#history", DataTable)
        table.clear()
        for h in reversed(items):
            table.add_row(*history_cells(h, self.clock, self.palette, with_version=True))
        stages: dict[int, str] = {}
        for h in items:
            stages[h["version"]] = h["to"]
        prod = next((n for n, s in stages.items() if s == "production"), None)
        rollbacks = sum(1 for h in items if h.get("kind") == "rollback" and h.get("to") == "production")
        forced = sum(1 for h in items if h.get("forced"))
        summary = Text.assemble(
            (f"{len(items)} stage changes", "bold"), "  production ",
            (f"v{prod}" if prod else "none", self.palette.production if prod else "dim"),
            f"  · {rollbacks} rollback{'s' if rollbacks != 1 else ''} · {forced} forced")
        if not items:
            summary = Text("no stage changes yet: promote a version with s or p on the model screen", style="dim")
        self.query_one("#history-summary", Static).update(summary)
