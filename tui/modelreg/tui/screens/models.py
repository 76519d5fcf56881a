"""The first screen: every model with its versions, production, staging, latest, updated."""

from __future__ import annotations

import shlex
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Input, Static

from modelreg.shared.errors import NotFound

from ..messages import ModelsLoaded
from ..widgets.formatting import version_ref
from ..widgets.header import StatusHeader
from .base import RegistryScreen


def demo_commands(demo: Any) -> list[str]:
    """What to type in another shell to use the demo registry, one complete command a line."""
    return [f"export MODELREG_HOME={shlex.quote(str(demo.home))}", f"{shlex.quote(demo.command)} history fraud-detector"]


class ModelsTable(DataTable):
    """The models list: DataTable's own enter (hidden), saying what it does for the help screen."""

    BINDINGS = [Binding("enter", "select_cursor", "open", show=False, tooltip="open the highlighted model")]


class ModelsScreen(RegistryScreen):
    AUTO_FOCUS = "#models"
    BINDINGS = [
        Binding("slash", "filter", "filter", id="filter"),
        Binding("y", "copy_commands", "copy", show=False,  # the demo banner names it
                tooltip="copy the demo's other-shell commands to the clipboard"),
        Binding("r", "rollback", "rollback", id="rollback"),
        Binding("l", "lineage", "lineage", id="lineage"),
        Binding("h", "history", "history", id="history"),
        Binding("e", "events", "events", id="events"),
        Binding("q,escape", "back", "quit", id="back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.models: dict[str, dict[str, Any]] = {}
        self.loaded = False
        self.filter_text = ""

    def compose(self) -> ComposeResult:
        yield StatusHeader("models")
        yield Input(placeholder="filter models by name…", id="filter")
        yield Static(id="banner")
        table: DataTable = ModelsTable(id="models", cursor_type="row", cursor_foreground_priority="renderable")
        table.add_column("model", key="name")
        table.add_column("versions", key="versions")
        table.add_column("production", key="production")
        table.add_column("staging", key="staging")
        table.add_column("latest", key="latest")
        table.add_column("updated", key="updated")
        table.add_column("description", key="description")
        yield table
        yield Static(id="empty")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#filter").display = False
        self.query_one("#models").focus()
        self._show_banner()
        if self.app.client is not None:
            self.load()

    def reconnected(self, first: bool) -> None:
        self._show_banner()
        if not self.loaded:
            self.load()

    def on_connection_changed(self, _message: Any) -> None:
        # The base class's handler runs too (Textual walks the MRO) and reloads if needed.
        self._show_banner()

    def _show_banner(self) -> None:
        banner = self.query_one("#banner", Static)
        lines = []
        if self.app.connection == "disconnected" and self.app.connection_error:
            lines.append(Text.assemble(("cannot reach the daemon: ", "bold"), self.app.connection_error,
                                       "\nretrying every few seconds; start it with `modelreg daemon`",
                                       style=self.palette.worse))
        elif self.app.connection == "connecting":
            lines.append(Text("connecting to the daemon…", style="italic"))
        if self.app.demo is not None:
            demo = self.app.demo
            lines.append(Text.assemble(
                ("demo registry ", "bold"), str(demo.home), "\n",
                ("drop folder   ", "bold"), str(demo.drop), ("  ← copy a model file here", self.palette.muted), "\n",
                ("other shell   ", "bold"), ("run these two lines there (y copies them):", self.palette.muted)))
            # Each command on a line of its own, never wrapped: a wrapped line copies with a break in it.
            lines.extend(Text(f"  {command}", no_wrap=True, overflow="ellipsis") for command in demo_commands(demo))
        banner.update(Text("\n").join(lines) if lines else "")
        banner.display = bool(lines)

    # -- data --------------------------------------------------------------------------------

    @work(exclusive=True, exit_on_error=False, group="models")
    async def load(self) -> None:
        self.post_message(ModelsLoaded(await self.client.all_models()))

    @work(exclusive=False, exit_on_error=False, group="models-refresh")
    async def refresh_models(self, names: list[str]) -> None:
        items, missing = [], []
        for name in names:
            try:
                items.append(await self.client.model(name))
            except NotFound:  # deleted, or renamed away
                missing.append(name)
        self.post_message(ModelsLoaded(items, replace=False, missing=missing))

    def on_models_loaded(self, message: ModelsLoaded) -> None:
        if message.replace:
            self.models = {m["name"]: m for m in message.models}
        else:
            self._forget(message.missing)
            self.models.update({m["name"]: m for m in message.models})
        self.loaded = True
        self.app.set_models(list(self.models.values()))
        self._fill()

    def _forget(self, names: list[str]) -> bool:
        gone = {n.lower() for n in names}
        before = len(self.models)
        self.models = {k: m for k, m in self.models.items() if k.lower() not in gone}
        return len(self.models) != before

    def apply_events(self, events: list[dict[str, Any]]) -> None:
        if not self.loaded:
            return
        names: set[str] = set()
        gone: list[str] = []
        for e in events:
            kind, data, model = e.get("kind", ""), e.get("data") or {}, e.get("model")
            if kind == "model.deleted" and model:
                gone.append(model)
                names.discard(model)
            elif kind == "model.renamed" and data.get("from"):
                gone.append(str(data["from"]))
                names.discard(str(data["from"]))
                names.add(str(data.get("to") or model))
            elif model:
                names.add(model)
        if gone and self._forget(gone):
            self.app.set_models(list(self.models.values()))
            self._fill()
        if names:
            self.refresh_models(sorted(names))

    # -- table -------------------------------------------------------------------------------

    def _fill(self) -> None:
        table = self.query_one("#models", DataTable)
        current = self._current_name()
        table.clear()
        text = self.filter_text.lower()
        shown = [m for m in self.app.models_cache if text in m["name"].lower()]
        width = max(10, self.size.width - 78)
        for m in shown:
            table.add_row(*self._cells(m, width), key=m["name"])
        empty = self.query_one("#empty", Static)
        empty.display = not shown
        if not shown:
            empty.update("no models match the filter" if self.models else
                         "no models yet: `modelreg register FILE --name NAME`, or drop a file into a watched folder")
        if current and current in {m["name"] for m in shown}:
            table.move_cursor(row=table.get_row_index(current), animate=False)
        self.refresh_bindings()

    def _cells(self, m: dict[str, Any], width: int) -> list[Any]:
        p = self.palette
        description = (m.get("description") or "").splitlines()[0] if m.get("description") else ""
        if len(description) > width:
            description = description[: width - 1] + "…"
        return [Text(m["name"], style="bold"), str(m.get("version_count", 0)),
                version_ref(m.get("production"), "production", p), version_ref(m.get("staging"), "staging", p),
                version_ref(m.get("latest"), "", p), self.clock.ago(m.get("updated_at")),
                Text(description, style=p.muted)]

    def _current_name(self) -> str | None:
        table = self.query_one("#models", DataTable)
        if table.row_count == 0:
            return None
        try:
            return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        except Exception:  # noqa: BLE001 - an empty or changing table has no cursor
            return None

    def _current(self) -> dict[str, Any] | None:
        name = self._current_name()
        return self.models.get(name) if name else None

    @on(DataTable.RowSelected, "#models")
    def _open(self, event: DataTable.RowSelected) -> None:
        self.app.open_model(str(event.row_key.value))

    @on(DataTable.RowHighlighted, "#models")
    def _highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self.refresh_bindings()

    # -- filter ------------------------------------------------------------------------------

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self._fill()

    @on(Input.Submitted, "#filter")
    def _filter_done(self, _event: Input.Submitted) -> None:
        self.query_one("#models", DataTable).focus()

    # -- actions -----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "copy_commands":
            return self.app.demo is not None
        model = self._current() if self.is_mounted else None
        if action == "rollback":
            return True if model and model.get("production") else None
        if action in ("lineage", "history"):
            return True if model and model.get("latest") else None
        return True

    def action_back(self) -> None:
        box = self.query_one("#filter", Input)
        if box.display and (box.has_focus or self.filter_text):
            box.value = ""
            box.display = False
            self.query_one("#models", DataTable).focus()
            return
        self.app.exit()

    def action_events(self) -> None:
        self.app.open_events(None)

    def action_copy_commands(self) -> None:
        if self.app.demo is not None:
            self.app.copy_to_clipboard("\n".join(demo_commands(self.app.demo)) + "\n")
            self.notify("the other-shell commands are on the clipboard", title="demo", timeout=3)

    def action_history(self) -> None:
        if model := self._current():
            from .history import HistoryScreen

            self.app.push_screen(HistoryScreen(model["name"]))

    def action_lineage(self) -> None:
        if (model := self._current()) and model.get("latest"):
            from .lineage import LineageScreen

            number = model.get("production") or model["latest"]
            self.app.push_screen(LineageScreen(f"{model['name']}@{number}"))

    def action_rollback(self) -> None:
        if (model := self._current()) and model.get("production"):
            from .transition import RollbackModal

            self.app.push_screen(RollbackModal(model["name"], model["production"]))

    def palette_commands(self):  # noqa: ANN201
        model = self._current()
        if model:
            yield SystemCommand(f"Open {model['name']}", "Versions, metrics and lineage of the highlighted model",
                                lambda: self.app.open_model(model["name"]))
            if model.get("production"):
                yield SystemCommand(f"Roll back {model['name']}", "Make the previous production version production again",
                                    self.action_rollback)
            yield SystemCommand(f"History of {model['name']}", "Every stage change of the model", self.action_history)
        yield SystemCommand("Filter models", "Show only models whose name contains some text", self.action_filter)

