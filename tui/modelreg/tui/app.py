"""The modelreg terminal UI (PRODUCT.md §7).

The app owns the one daemon connection: a worker connects (starting a local daemon when
none answers and no URL was given), then follows the event stream — the WebSocket, or
polling ``GET /v1/events`` every second when the stream is not there — and hands each
burst of events to every screen on the stack. When the daemon goes away the header says
so and the same worker reconnects by itself, resuming from the last event id it saw.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen

from modelreg.shared.client import Client
from modelreg.shared.config import resolve_endpoint, running_daemon_url
from modelreg.shared.errors import ModelregError, Unavailable
from modelreg.shared.launcher import ensure_daemon

from .keymap import keymap_paths, load_keymap
from .messages import ConnectionChanged, EventsPending, ModelsChanged, RegistryEvents
from .widgets.formatting import Clock, Palette, plural

STREAM_RETRY_S = 30.0  # after the stream failed on a live daemon, poll this long before trying it again
EXPECT_S = 30.0


@dataclass
class DemoInfo:
    """What `modelreg demo` tells the user on screen."""

    home: Path
    drop: Path
    command: str = "modelreg"  # how to run the CLI from another shell (a venv's is not on PATH)


class ModelregApp(App[None]):
    CSS_PATH = ["styles/app.tcss"]
    TITLE = "modelreg"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    BINDINGS = [
        Binding("question_mark,f1", "help", "help", id="help", tooltip="this help"),
    ]

    connection: reactive[str] = reactive("connecting")
    url_label: reactive[str] = reactive("")

    def __init__(self, home: Path | None = None, url: str | None = None, *, clock: Clock | None = None,
                 url_label: str | None = None, actor: str | None = None, keymap: dict[str, str] | None = None,
                 demo: DemoInfo | None = None, start_daemon: bool = True, poll_interval: float = 1.0,
                 use_stream: bool = True, cursor_blink: bool = True) -> None:
        super().__init__()
        # Textual binds the palette key itself; its tooltip is what the help screen says of it.
        for bindings in self._bindings.key_to_bindings.values():
            bindings[:] = [dataclasses.replace(b, tooltip="command palette: every action and every model by name")
                           if b.action == "command_palette" else b for b in bindings]
        self.cursor_blink = cursor_blink
        self.home = Path(home) if home else resolve_endpoint().home
        self.explicit_url = url
        self.clock = clock or Clock()
        self.palette = Palette()
        self.demo = demo
        self.actor = actor
        self.start_daemon = start_daemon
        self.poll_interval = poll_interval
        self.use_stream = use_stream
        self._fixed_label = url_label
        self._explicit_keymap = keymap
        self.keymap_file: Path | None = None
        self.client: Client | None = None
        self.connection_error = ""
        self.last_event_id: int | None = None
        self.models_cache: list[dict[str, Any]] = []
        self._pending: deque[dict[str, Any]] = deque()
        self._toasted: dict[str, float] = {}  # drop refs already announced, until when
        self._expected: dict[tuple[str, int, str], float] = {}
        self._recent_errors: dict[str, float] = {}
        self._stream_retry_at = 0.0
        self._start_tried = False

    # -- start-up ------------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.palette = Palette.from_theme(self.current_theme)
        self._apply_keymap()
        from .screens.models import ModelsScreen

        self.push_screen(ModelsScreen())
        self.follow_daemon()

    def watch_theme(self, _theme: str) -> None:
        self.palette = Palette.from_theme(self.current_theme)

    def _apply_keymap(self) -> None:
        if self._explicit_keymap is not None:
            self.set_keymap(self._explicit_keymap)
            return
        loaded = load_keymap(keymap_paths(self.home))
        self.keymap_file = loaded.path
        if loaded.keymap:
            self.set_keymap(loaded.keymap)
        for problem in loaded.problems:
            self.notify(problem, title="keymap", severity="warning", timeout=10)

    @property
    def keymap(self) -> dict[str, str]:
        return dict(self._keymap)

    def require_client(self) -> Client:
        if self.client is None:
            raise Unavailable(self.connection_error or "not connected to the modelreg daemon yet")
        return self.client

    # -- the daemon connection -------------------------------------------------------------------

    async def _connect(self, first: bool) -> Client:
        """A client whose daemon answers /v1/health; raises Unavailable otherwise."""
        if self.explicit_url:
            endpoint = resolve_endpoint(home=self.home, url=self.explicit_url)
        elif first and self.start_daemon and not self._start_tried:
            self._start_tried = True  # one attempt: a daemon that cannot start is reported, not respawned
            endpoint = await ensure_daemon(self.home)
        else:
            if self.client is not None and running_daemon_url(self.home) is None:
                # Stopped, not moved: keep showing where it was until a daemon writes its URL again.
                raise Unavailable(f"no daemon is running for {self.home}; start it with `modelreg daemon`")
            endpoint = resolve_endpoint(home=self.home)
        client = self.client
        if client is None or client.url != endpoint.url or client.token != endpoint.token:
            if client is not None:
                await client.close()
            client = Client(endpoint, actor=self.actor, timeout=30)
        self.url_label = self._fixed_label or _short(endpoint.url)
        try:
            await client.health()
        except ModelregError:
            self.client = client
            raise
        return client

    @work(exclusive=True, exit_on_error=False, group="daemon")
    async def follow_daemon(self) -> None:
        """Connect, follow the events, and reconnect with backoff when the daemon goes away."""
        first, backoff = True, 0.5
        while True:
            try:
                client = await self._connect(first)
            except ModelregError as exc:
                self.connection_error = exc.message
                if self.connection != "disconnected":
                    self.connection = "disconnected"
                    self._broadcast(lambda: ConnectionChanged(False, self.url_label, first))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            self.client, self.connection_error, backoff = client, "", 0.5
            self.connection = "connected"
            self._broadcast(lambda: ConnectionChanged(True, client.url, first))
            if not first:
                self.notify(f"reconnected to {self.url_label}", title="daemon", timeout=3)
            first = False
            try:
                await self._follow(client)
            except Unavailable:
                pass
            except ModelregError as exc:  # unexpected answer from the log: say so, then start over
                self.report_error(exc, "events")
                await asyncio.sleep(1)
            self.connection = "disconnected"
            self.connection_error = f"lost the daemon at {self.url_label}"
            self._broadcast(lambda: ConnectionChanged(False, self.url_label))
            self.notify(f"lost the daemon at {self.url_label}; reconnecting…", title="daemon",
                        severity="warning", timeout=4)

    async def _follow(self, client: Client) -> None:
        """Returns when the daemon stops answering."""
        if self.last_event_id is None:
            self.last_event_id = (await client.events(limit=1)).get("last_id") or 0
        while True:
            if self.use_stream and time.monotonic() >= self._stream_retry_at:
                try:
                    async for event in client.stream_events(after=self.last_event_id):
                        self._queue_event(event)
                except Unavailable:
                    pass
                # The stream ended or could not open: a dead daemon, or a daemon without it.
                if not await _alive(client):
                    return
                self._stream_retry_at = time.monotonic() + STREAM_RETRY_S
            page = await client.events(after=self.last_event_id, limit=1000)
            for event in page.get("items", []):
                self._queue_event(event)
            if len(page.get("items", [])) < 1000:
                await asyncio.sleep(self.poll_interval)

    def _queue_event(self, event: dict[str, Any]) -> None:
        if self.last_event_id is not None and event.get("id", 0) <= self.last_event_id:
            return
        self.last_event_id = event.get("id", self.last_event_id)
        self._pending.append(event)
        self.post_message(EventsPending())

    def on_events_pending(self, _message: EventsPending) -> None:
        events = list(self._pending)
        self._pending.clear()
        if not events:
            return
        try:
            self._toast(events)
        except Exception as exc:  # noqa: BLE001 - an odd event must never take the UI down
            self.report_error(exc, "events")
        self._broadcast(lambda: RegistryEvents(events))

    def set_models(self, models: list[dict[str, Any]]) -> None:
        """The models screen's list, sorted by name; every screen that shows models follows it."""
        self.models_cache = sorted(models, key=lambda m: m["name"].lower())
        self._broadcast(ModelsChanged)

    def _broadcast(self, make: Callable[[], Message]) -> None:
        """Deliver a fresh message to every registry screen on the stack, not only the top one."""
        for screen in self.screen_stack:
            if hasattr(screen, "apply_events"):
                screen.post_message(make())

    # -- notifications for changes made elsewhere ------------------------------------------------

    def expect_change(self, model: str, version: int, to: str) -> None:
        """This UI is about to make that change itself: no toast when its event arrives."""
        self._expected[(model.lower(), int(version), to)] = time.monotonic() + EXPECT_S

    def forget_change(self, model: str, version: int, to: str) -> None:
        """The expected change did not happen (held for approval): toast it when someone else makes it."""
        self._expected.pop((model.lower(), int(version), to), None)

    def _toast(self, events: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        self._expected = {k: t for k, t in self._expected.items() if t > now}
        drops: dict[str, None] = {}
        for ev in events:
            kind, data = ev.get("kind", ""), ev.get("data") or {}
            ref = f"{ev.get('model')}@{ev.get('version')}"
            if kind == "drop.registered" or (kind in ("version.created", "version.ready")
                                             and str(data.get("source", "")).startswith("drop:")):
                drops[ref] = None
            elif kind == "drop.failed":
                self.notify(f"{data.get('entry', 'a drop')}: {data.get('message', 'could not be registered')}",
                            title="drop failed", severity="error", timeout=8)
            elif kind == "stage.changed":
                key = ((ev.get("model") or "").lower(), int(ev.get("version") or 0), data.get("to", ""))
                if self._expected.pop(key, None) is not None:
                    continue
                if data.get("kind") == "replaced" or (data.get("kind") == "rollback" and data.get("to") == "archived"):
                    continue
                verb = "rolled back to" if data.get("kind") == "rollback" else "→"
                reason = f" — {data['reason']}" if data.get("reason") else ""
                self.notify(f"{ref} {data.get('from')} {verb} {data.get('to')} by {ev.get('actor')}{reason}"
                            if verb == "→" else f"{ev.get('model')} {verb} v{ev.get('version')} by {ev.get('actor')}{reason}",
                            title="stage changed", timeout=6)
        # A drop's events may arrive in two bursts (created/ready, then drop.registered): toast once.
        self._toasted = {k: t for k, t in self._toasted.items() if t > now}
        drops = {ref: None for ref in drops if ref not in self._toasted}
        self._toasted.update({ref: now + EXPECT_S for ref in drops})
        if drops:
            refs = list(drops)
            shown = ", ".join(refs[:3]) + (f" and {len(refs) - 3} more" if len(refs) > 3 else "")
            self.notify(f"registered {shown}", title="new drop", timeout=6)

    # -- errors -------------------------------------------------------------------------------

    def report_error(self, error: BaseException, what: str | None = None) -> None:
        """Every failed worker ends here: a notification, never a crash."""
        if isinstance(error, ModelregError):
            text, title = error.message, ("daemon unreachable" if isinstance(error, Unavailable) else error.code)
        else:
            text, title = f"{type(error).__name__}: {error}", "unexpected error"
        now = time.monotonic()
        if self._recent_errors.get(text, 0) > now:
            return
        self._recent_errors[text] = now + 5
        self.notify(text, title=title, severity="error", timeout=8)

    def on_worker_state_changed(self, event: Any) -> None:
        from textual.worker import WorkerState

        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.report_error(event.worker.error, event.worker.name)

    # -- actions and palette -----------------------------------------------------------------

    def action_help(self) -> None:
        from .screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def open_model(self, name: str, version: int | None = None) -> None:
        from .screens.model import ModelScreen

        self.push_screen(ModelScreen(name, focus_version=version))

    def open_events(self, model: str | None = None) -> None:
        from .screens.events import EventsScreen

        self.push_screen(EventsScreen(model))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        if hasattr(screen, "palette_commands"):
            yield from screen.palette_commands()
        yield SystemCommand("Events", "The live event log of the registry", lambda: self.open_events(None))
        yield SystemCommand("Help", "Keys and what they do", self.action_help)
        for model in self.models_cache:
            name = model["name"]
            yield SystemCommand(f"Open model {name}", plural(model.get("version_count", 0), "version"),
                                lambda name=name: self.open_model(name), discover=False)
        yield from super().get_system_commands(screen)

    async def on_unmount(self) -> None:
        if self.client is not None:
            await self.client.close()


async def _alive(client: Client) -> bool:
    try:
        await client.health()
        return True
    except ModelregError:
        return False


def _short(url: str) -> str:
    return url.removeprefix("http://").removeprefix("https://")


def run_app(home: Path, url: str | None, demo: DemoInfo | None = None) -> None:
    """Open the TUI on the registry of ``home`` (or the daemon at ``url``)."""
    ModelregApp(home=home, url=url, demo=demo).run()


__all__ = ["ModelregApp", "DemoInfo", "run_app"]
