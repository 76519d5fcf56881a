"""The one-line header: where you are, and the daemon's URL with the connection state."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from .formatting import joined


class StatusHeader(Horizontal):
    """``modelreg · fraud-detector            ● connected 127.0.0.1:7311``"""

    DEFAULT_CSS = """
    StatusHeader { height: 1; dock: top; }
    StatusHeader > #title { width: 1fr; }
    StatusHeader > #connection { width: auto; }
    """

    def __init__(self, title: str) -> None:
        super().__init__()
        self._title = title

    def compose(self) -> ComposeResult:
        yield Static(_title(self._title), id="title")
        yield Static(id="connection")

    def set_title(self, title: str) -> None:
        self._title = title
        self.query_one("#title", Static).update(_title(title))

    def on_mount(self) -> None:
        self.watch(self.app, "connection", self._show, init=False)
        self.watch(self.app, "url_label", self._show, init=False)
        self._show()

    def _show(self, _value: object = None) -> None:
        state = getattr(self.app, "connection", "connecting")
        label = getattr(self.app, "url_label", "")
        widget = self.query_one("#connection", Static)
        widget.set_class(state == "connected", "-connected")
        widget.set_class(state == "disconnected", "-disconnected")
        mark = {"connected": "●", "disconnected": "○"}.get(state, "◌")
        widget.update(f"{mark} {state} {label} ")


def _title(title: str) -> Text:
    return joined(("modelreg", "bold"), title or None)
