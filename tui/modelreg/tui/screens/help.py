"""`?` / F1: every key, as remapped by the user's keymap, and where that keymap lives."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from ..keymap import KEYMAP_FILE, key_help, keymap_paths

_NAMES = {"slash": "/", "question_mark": "?", "space": "space", "escape": "esc"}


def pretty(keys: str | list[str]) -> str:
    return " ".join(_NAMES.get(k, k) for k in (keys.split(",") if isinstance(keys, str) else keys))


def _tilde(path: Path) -> str:
    home = str(Path.home())
    text = str(path)
    return "~" + text[len(home):] if text.startswith(home + "/") else text


class HelpScreen(ModalScreen[None]):
    AUTO_FOCUS = "#dialog"
    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "close")]

    def compose(self) -> ComposeResult:
        # Read from the app's own bindings, its keymap applied: what is listed is what is bound.
        rows = key_help(self.app)
        table = Table(box=None, show_header=False, pad_edge=False, expand=True)
        table.add_column(style="bold", no_wrap=True, min_width=10)
        table.add_column(ratio=1)
        for row in rows:
            table.add_row(pretty(row.keys), row.what)
        ids = [row.binding_id for row in rows if row.binding_id]
        where = getattr(self.app, "keymap_file", None)
        candidates = [f"$MODELREG_HOME/{KEYMAP_FILE}", _tilde(keymap_paths(None)[0])]
        note = Text.assemble(
            ("\nRemap keys ", "bold"), "in ", f"{where} (loaded)" if where else " or ".join(candidates),
            f"\none binding_id = \"key\" per line, e.g. promote = \"P\"  (ids: {', '.join(ids)})",
            style="dim")
        # The dialog itself scrolls (Down, PgDn, End…): at 80x24 the keys do not fit on screen.
        with VerticalScroll(id="dialog", classes="help"):
            yield Label(Text("Keys", style="bold"), id="dialog-title")
            yield Static(table)
            yield Static(Text.assemble(
                    ("\nStages ", "bold"), "none → staging → production → archived. Moving into staging or "
                    "production runs the model's gates; a failed gate blocks unless forced with a reason. "
                    "Promoting archives the previous production version in the same step.\n",
                    ("Version filter ", "bold"), "production · staging · archived · none · ready · failed · "
                "auc>=0.9 · tag:team=risk (space-separated, all must match)."))
            yield Static(note)
            yield Static(Text(f"\nescape to close · ↑ ↓ PgUp PgDn Home End scroll · {KEYMAP_FILE}", style="dim"))

    def action_close(self) -> None:
        self.dismiss(None)
