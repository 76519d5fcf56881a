"""`e`: the registry's event log, newest first, growing live as events arrive; `enter` shows
an event in full (every field of its data), `o` opens the version it names."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer

from ..messages import EventsLoaded
from ..widgets.formatting import Palette, number, plural, size, source_label
from ..widgets.header import StatusHeader
from ..widgets.record_table import RecordTable
from .base import LoadingScreen
from .record import RecordModal

KEEP = 2000
COLUMNS = [("id", 6), ("when", 19), ("kind", 16), ("ref", 24), ("actor", 16)]


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
        return f"{plural(d.get('files', 0), 'file')}, {size(d.get('total_size'))}"
    if kind == "version.failed":
        return str(d.get("message", ""))
    if kind.startswith("drop."):
        return f"{d.get('entry', '')}" + (f": {d['message']}" if d.get("message") else "")
    if kind == "alias.refused":
        failed = [r["rule"] for r in (d.get("verdict") or {}).get("rules", []) if r.get("status") != "pass"]
        return f"@{d.get('alias')} → v{d.get('to')} refused: {', '.join(failed)}"
    if kind.startswith("alias."):
        return f"alias {d.get('alias')}"
    if kind in ("model.updated", "version.updated"):
        return "changed " + ", ".join(d.get("fields") or [])
    if kind == "model.renamed":
        return f"{d.get('from')} → {d.get('to')}" + (f": {d['reason']}" if d.get("reason") else "")
    if kind in ("model.deleted", "version.deleted"):
        return ("deleted (forced)" if d.get("forced") else "deleted") + (f": {d['reason']}" if d.get("reason") else "")
    return ", ".join(f"{k}={v}" for k, v in list(d.items())[:3])


def renamed(model: str | None, events: list[dict[str, Any]]) -> str | None:
    """``model``'s name after these events (a screen about a model follows its renames)."""
    for e in events:
        data = e.get("data") or {}
        if model and e.get("kind") == "model.renamed" and str(data.get("from") or "").lower() == model.lower():
            model = str(data.get("to") or e.get("model"))
    return model


def event_ref(e: dict[str, Any]) -> str:
    return f"{e['model']}@{e['version']}" if e.get("model") and e.get("version") else (e.get("model") or "-")


def kind_style(kind: str, palette: Palette) -> str:
    if kind in ("stage.refused", "alias.refused", "version.failed", "drop.failed"):
        return palette.worse
    if kind.startswith("stage."):
        return palette.staging
    if kind.startswith("drop."):
        return palette.accent
    return ""


class EventsScreen(LoadingScreen):
    BINDINGS = [Binding("o", "open", "open version", tooltip="events: open the version the event names")]

    def __init__(self, model: str | None = None) -> None:
        super().__init__()
        self.model = model
        self.seen: set[int] = set()

    def compose(self) -> ComposeResult:
        yield StatusHeader(f"events · {self.model}" if self.model else "events")
        yield RecordTable(COLUMNS, "what", id="events")
        yield Footer(compact=True)

    @work(exclusive=True, exit_on_error=False, group="events")
    async def load(self) -> None:
        page = await self.client.events(limit=500, model=self.model)
        self.post_message(EventsLoaded(page.get("items") or []))

    def on_events_loaded(self, message: EventsLoaded) -> None:
        self.loaded = True
        self._add(message.events)

    def apply_events(self, events: list[dict[str, Any]]) -> None:
        self.model = renamed(self.model, events)
        if self.loaded:
            self._add([e for e in events if self.model is None
                       or (e.get("model") or "").lower() == self.model.lower()])

    def _add(self, events: list[dict[str, Any]]) -> None:
        table = self.query_one("#events", RecordTable)
        fresh = [e for e in events if e["id"] not in self.seen]
        if not fresh:
            return
        at_top = table.cursor_row == 0
        for e in fresh:
            self.seen.add(e["id"])
            table.add_record(str(e["id"]), e, [
                Text(str(e["id"]), justify="right"), self.clock.date(e.get("ts"), seconds=True),
                Text(e.get("kind", ""), style=kind_style(e.get("kind", ""), self.palette)), event_ref(e),
                e.get("actor") or "-"], summary(e))
        table.sort("id", key=lambda cell: int(cell.plain), reverse=True)
        while table.row_count > KEEP:
            oldest = min(self.seen)
            self.seen.discard(oldest)
            table.remove_record(str(oldest))
        if at_top:
            table.move_cursor(row=0, animate=False)

    @on(DataTable.RowSelected, "#events")
    def _selected(self, _event: DataTable.RowSelected) -> None:
        self.action_record()

    def action_record(self) -> None:
        if (e := self.query_one("#events", RecordTable).current_record()) is not None:
            self.app.push_screen(RecordModal(f"event {e['id']} · {e.get('kind', '')} · {event_ref(e)}", e))

    def action_open(self) -> None:
        e = self.query_one("#events", RecordTable).current_record()
        if e and e.get("model") and e.get("version"):
            self.app.open_model(e["model"], int(e["version"]))

    @on(DataTable.RowHighlighted, "#events")
    def _highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "open":
            e = self.query_one("#events", RecordTable).current_record() if self.is_mounted else None
            return bool(e and e.get("model") and e.get("version")) or None
        return True
