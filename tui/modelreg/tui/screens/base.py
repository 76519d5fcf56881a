"""What every screen shares: the app's client, worker error reporting, live-event hooks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.widgets import Input
from textual.worker import Worker, WorkerState

from ..messages import ConnectionChanged, RegistryEvents

if TYPE_CHECKING:
    from modelreg.shared.client import Client

    from ..app import ModelregApp


class WorkerErrors:
    """Shows a failed worker's error as a notification instead of crashing (harlequin's way)."""

    def on_mount(self) -> None:
        # Runs after the subclass's own on_mount (Textual calls the handler of every class in
        # the MRO); snapshot tests switch blinking off so screenshots are stable.
        for box in self.query(Input):  # type: ignore[attr-defined]
            box.cursor_blink = self.app.cursor_blink  # type: ignore[attr-defined]

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.app.report_error(event.worker.error, event.worker.name)  # type: ignore[attr-defined]


class RegistryScreen(WorkerErrors, Screen):
    """A full screen that reads the registry and follows its events."""

    app: ModelregApp

    @property
    def client(self) -> Client:
        return self.app.require_client()

    @property
    def clock(self):  # noqa: ANN201 - Clock
        return self.app.clock

    @property
    def palette(self):  # noqa: ANN201 - Palette
        return self.app.palette

    def on_registry_events(self, message: RegistryEvents) -> None:
        self.apply_events(message.events)

    def apply_events(self, events: list[dict[str, Any]]) -> None:
        """Refresh whatever these events changed (override)."""

    def on_connection_changed(self, message: ConnectionChanged) -> None:
        if message.connected:
            self.reconnected(message.first)

    def reconnected(self, first: bool) -> None:
        """The daemon answers (again): load what could not be loaded (override)."""

    def palette_commands(self):  # noqa: ANN201 - Iterable[SystemCommand]
        """Command-palette entries for this screen (override)."""
        return []


class LoadingScreen(RegistryScreen):
    """A screen that loads its data once: at mount when connected, else when the daemon answers.

    Subclasses implement ``load()`` (a worker) and set ``self.loaded`` when its result arrives.
    """

    BINDINGS = [Binding("q,escape", "back", "back", id="back")]
    loaded = False

    def on_mount(self) -> None:
        if self.app.client is not None:
            self.load()

    def reconnected(self, first: bool) -> None:
        if not self.loaded:
            self.load()

    def load(self) -> None:
        """Fetch the screen's data in a worker (override)."""

    def action_back(self) -> None:
        self.app.pop_screen()


class RegistryModal(WorkerErrors, ModalScreen):
    app: ModelregApp

    @property
    def client(self) -> Client:
        return self.app.require_client()
