"""`enter` on a history or event row: the whole record, every field, nothing cut off."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from ..widgets.formatting import Clock


def record_text(record: dict[str, Any], clock: Clock, muted: str = "dim") -> Text:
    """One ``key: value`` line per field, nested mappings and lists indented, times through the
    app's clock, long text wrapped by the widget (never truncated)."""
    out = Text()
    _add(out, record, 0, clock, muted)
    return out


def _add(out: Text, value: Any, depth: int, clock: Clock, muted: str) -> None:
    pad = "  " * depth
    if isinstance(value, dict):
        for key, item in value.items():
            out.append(f"\n{pad}" if out.plain else pad)
            out.append(f"{key}: ", style=f"bold {muted}" if depth else "bold")
            if isinstance(item, (dict, list)) and item:
                _add(out, item, depth + 1, clock, muted)
            elif (key == "ts" or str(key).endswith("_at")) and item:
                out.append(clock.date(item, seconds=True))
            else:
                out.append(_scalar(item))
    elif isinstance(value, list):
        for item in value:
            out.append(f"\n{pad}- ")
            if isinstance(item, dict) and item:
                _add(out, item, depth + 1, clock, muted)
            else:
                out.append(_scalar(item))
    else:
        out.append(_scalar(value))


def _scalar(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return "-" if isinstance(value, dict) else "none"  # a person reads "approvals: none", not "[]"
    return str(value)


class RecordModal(ModalScreen[None]):
    """A scrollable view of one record; escape (or enter, q) closes it."""

    AUTO_FOCUS = "#dialog"
    BINDINGS = [Binding("escape,q,enter", "close", "close")]

    def __init__(self, title: str, record: dict[str, Any]) -> None:
        super().__init__()
        self.title_text, self.record = title, record

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog", classes="record"):  # a long reason or verdict scrolls
            yield Label(Text(self.title_text, style="bold"), id="dialog-title")
            yield Static(record_text(self.record, self.app.clock, self.app.palette.muted), id="record-text")
            yield Static(Text("\nescape to close · ↑ ↓ PgUp PgDn Home End scroll", style="dim"))

    def action_close(self) -> None:
        self.dismiss(None)
