"""`e`: the registry's event log, newest first, growing live as events arrive."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.widgets import DataTable, Footer

from ..messages import EventsLoaded
from ..widgets.formatting import Palette, number, size, source_label
from ..widgets.header import StatusHeader
from .base import LoadingScreen

KEEP = 2000


def summary(e: dict[str, Any]) -> str:
    d = e.get("data") or {}
    kind = e.get("kind", "")
    if kind == "stage.changed":
        text = f"{d.get('from')} → {d.get('to')} ({d.get('kind')})"
        if d.get("forced"):
            text += " FORCED"
        return text + (f": {d['reason']}" if d.get("reason") else "")
    if kind == "stage.refused":
        failed = [r["rule"] for r in (d.get("verdict") or {}).get("rules", []) if r.get("status") != "pass"]
        return f"{d.get('from')} → {d.get('to')} refused: {', '.join(failed)}"
    if kind == "metric.recorded":
        metrics = d.get("metrics") or {}
        return ", ".join(f"{k}={number(v)}" for k, v in list(metrics.items())[:4]) + (
            f" ({', '.join(d['source'])})" if isinstance(d.get("source"), list) else "")
    if kind == "version.created":
        return f"source {source_label(d.get('source'))}"
    if kind == "version.ready":
        return f"{d.get('files', 0)} files, {size(d.get('total_size'))}"
    if kind == "version.failed":
        return str(d.get("message", ""))
    if kind.startswith("drop."):
        return f"{d.get('entry', '')}" + (f": {d['message']}" if d.get("message") else "")
    if kind.startswith("alias."):
        return f"alias {d.get('alias')}"
    if kind == "model.updated":
        return "changed " + ", ".join(d.get("fields") or [])
    return ", ".join(f"{k}={v}" for k, v in list(d.items())[:3])


def kind_style(kind: str, palette: Palette) -> str:
    if kind in ("stage.refused", "version.failed", "drop.failed"):
        return palette.worse
    if kind.startswith("stage."):
        return palette.staging
    if kind.startswith("drop."):
        return palette.accent
    return ""


class EventsScreen(LoadingScreen):

    def __init__(self, model: str | None = None) -> None:
        super().__init__()
        self.model = model
        self.seen: set[int] = set()

    def compose(self) -> ComposeResult:
        yield StatusHeader(f"events · {self.model}" if self.model else "events")
        table: DataTable = DataTable(id="events", cursor_type="row", cursor_foreground_priority="renderable")
        for column in ("id", "when", "kind", "ref", "actor", "what"):
            table.add_column(column, key=column)
        yield table
        yield Footer(compact=True)

    @work(exclusive=True, exit_on_error=False, group="events")
    async def load(self) -> None:
        page = await self.client.events(limit=500, model=self.model)
        self.post_message(EventsLoaded(page.get("items") or []))

    def on_events_loaded(self, message: EventsLoaded) -> None:
        self.loaded = True
        self._add(message.events)

    def apply_events(self, events: list[dict[str, Any]]) -> None:
        if self.loaded:
            self._add([e for e in events if self.model is None
                       or (e.get("model") or "").lower() == self.model.lower()])

    def _add(self, events: list[dict[str, Any]]) -> None:
        table = self.query_one("#events", DataTable)
        fresh = [e for e in events if e["id"] not in self.seen]
        if not fresh:
            return
        at_top = table.cursor_row == 0
        for e in fresh:
            self.seen.add(e["id"])
            ref = f"{e['model']}@{e['version']}" if e.get("model") and e.get("version") else (e.get("model") or "-")
            table.add_row(Text(str(e["id"]), justify="right"), self.clock.date(e.get("ts"), seconds=True),
                          Text(e.get("kind", ""), style=kind_style(e.get("kind", ""), self.palette)), ref,
                          e.get("actor") or "-", summary(e), key=str(e["id"]))
        table.sort("id", key=lambda cell: int(cell.plain), reverse=True)
        while table.row_count > KEEP:
            oldest = min(self.seen)
            self.seen.discard(oldest)
            table.remove_row(str(oldest))
        if at_top:
            table.move_cursor(row=0, animate=False)

    @on(DataTable.RowSelected, "#events")
    def _open(self, event: DataTable.RowSelected) -> None:
        ref = str(self.query_one("#events", DataTable).get_row(event.row_key)[3])
        if "@" in ref:
            name, _, n = ref.partition("@")
            self.app.open_model(name, int(n))
