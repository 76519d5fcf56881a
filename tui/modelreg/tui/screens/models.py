"""The first screen: every model with its versions, production (and how long it has been so),
staging, latest (and its primary metric against production's), updated; below the list, the
registry's recent activity (drops, registrations, stage changes, refused gates), live."""

from __future__ import annotations

import asyncio
import shlex
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Footer, Input, Static

from modelreg.shared.errors import ModelregError, NotFound
from modelreg.shared.names import metric_direction

from ..messages import ModelsLoaded
from ..widgets.formatting import Clock, Palette, delta, version_ref
from ..widgets.header import StatusHeader
from .base import RegistryScreen


def demo_commands(demo: Any) -> list[str]:
    """What to type in another shell to use the demo registry, one complete command a line."""
    return [f"export MODELREG_HOME={shlex.quote(str(demo.home))}", f"{shlex.quote(demo.command)} history fraud-detector"]


WIDE = 120  # from this width on the table also shows the latest version's metric trend
# (key, label) of the models table's columns; "trend" only from WIDE columns on.
COLUMNS = [("name", "model"), ("versions", "versions"), ("production", "production"), ("staging", "staging"),
           ("latest", "latest"), ("trend", "latest vs prod"), ("updated", "updated"), ("description", "description")]
ACTIVITY_KEEP = 100  # activity lines kept (the panel shows as many as fit, newest first)
ACTIVITY_BACKLOG = 500  # how far back in the event log the panel starts
STATS_CONCURRENCY = 8
STATS_FIRST = 50  # models whose stats are read before the list first shows


@dataclass
class ModelStats(Message):
    """Per model: production's ``stage_changed_at`` and metrics, the latest version's metrics."""

    stats: dict[str, dict[str, Any]]


@dataclass
class ActivityLoaded(Message):
    events: list[dict[str, Any]]


def cell_width(cell: Any) -> int:
    """Terminal cells a table cell takes (Text or str; wide characters count twice)."""
    return cell.cell_len if isinstance(cell, Text) else Text(str(cell)).cell_len


def short_age(seconds: float) -> str:
    """'3d', '5h', '12m', '40s': how long production has been production, in a narrow column."""
    for suffix, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length:
            return f"{int(seconds // length)}{suffix}"
    return f"{int(max(0.0, seconds))}s"


def primary_metric(latest: dict[str, Any], production: dict[str, Any]) -> str | None:
    """The metric the trend shows: the first (by name) numeric one both versions have."""
    shared = [k for k in sorted(latest) if k in production and _numeric(latest[k]) and _numeric(production[k])]
    return shared[0] if shared else None


def _numeric(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def activity_line(e: dict[str, Any]) -> tuple[str, str, str, str] | None:
    """(what, style key, model@version, detail) for an event the activity panel shows, else None.

    The style key is one of ``ok``, ``stage``, ``bad`` or ``""``.
    """
    kind, d = e.get("kind", ""), e.get("data") or {}
    ref = f"{e['model']}@{e['version']}" if e.get("model") and e.get("version") else (e.get("model") or "-")
    reason = str(d.get("reason") or "")
    if kind == "drop.registered":
        return "dropped", "ok", ref, str(d.get("entry") or "") + (" · unsafe to load" if d.get("unsafe") else "")
    if kind == "drop.failed":
        where = e.get("model") or str(d.get("entry") or "-")
        return "drop failed", "bad", where if ref == "-" else ref, \
            (f"{d['entry']}: " if d.get("entry") and where != d.get("entry") else "") + str(d.get("message") or "")
    if kind == "version.created" and not str(d.get("source") or "").startswith("drop:"):
        return "registered", "ok", ref, f"via {d.get('source') or 'api'}"
    if kind == "version.failed":
        return "failed", "bad", ref, str(d.get("message") or "")
    if kind == "stage.changed":
        if d.get("kind") == "replaced" or (d.get("kind") == "rollback" and d.get("to") == "archived"):
            return None  # the other half of a promotion or rollback, which has its own line
        forced = " FORCED" if d.get("forced") else ""
        if d.get("kind") == "rollback":
            return "rolled back", "stage", ref, f"to production{forced}" + (f" · {reason}" if reason else "")
        what = "promoted" if d.get("to") in ("production", "staging") else "archived" if d.get("to") == "archived" \
            else "moved"
        return what, "stage", ref, f"{d.get('from')} → {d.get('to')}{forced}" + (f" · {reason}" if reason else "")
    if kind in ("stage.refused", "alias.refused"):
        failed = [str(r.get("rule")) for r in (d.get("verdict") or {}).get("rules", []) if r.get("status") != "pass"]
        target = f"@{d.get('alias')}" if kind == "alias.refused" else d.get("to")
        return "refused", "bad", ref, f"→ {target}: " + (", ".join(failed) or reason or "gate failed")
    return None


def activity_time(clock: Clock, ts: Any) -> str:
    """HH:MM:SS today, 'MM-DD HH:MM' before."""
    full = clock.date(ts, seconds=True)
    if full == "-":
        return full
    return full[11:] if full[:10] == clock.date(clock.now())[:10] else full[5:16]


def render_activity(events: list[dict[str, Any]], clock: Clock, palette: Palette, wide: bool) -> Text:
    """One line an event, newest first, in aligned columns; wide terminals also show who did it."""
    styles = {"ok": palette.better, "stage": palette.staging, "bad": palette.worse, "": ""}
    rows = []
    for e in sorted(events, key=lambda e: e.get("id", 0), reverse=True):
        shown = activity_line(e)
        if shown is not None:
            rows.append((activity_time(clock, e.get("ts")), e.get("actor") or "-", *shown))
    if not rows:
        return Text("nothing yet: drops, registrations, promotions, rollbacks and refused gates appear here",
                    style=palette.muted)
    when_w = max(len(r[0]) for r in rows)
    what_w = max(len(r[2]) for r in rows)
    ref_w = min(max(len(r[4]) for r in rows), 32 if wide else 20)
    actor_w = min(max(len(r[1]) for r in rows), 20)
    lines = []
    for when, actor, what, style, ref, detail in rows:
        if len(ref) > ref_w:
            ref = ref[: ref_w - 1] + "…"
        if len(actor) > actor_w:
            actor = actor[: actor_w - 1] + "…"
        # Every styled piece starts with a visible character; the gaps belong to the piece before.
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f"{when:<{when_w}}  ", style=palette.muted)
        line.append(f"{what:<{what_w}}  ", style=styles.get(style, ""))
        line.append(f"{ref:<{ref_w}}  ", style="bold")
        if wide:
            line.append(f"{actor:<{actor_w}}  ", style=palette.muted)
        line.append(detail)
        lines.append(line)
    out = Text("\n").join(lines)
    out.no_wrap, out.overflow = True, "ellipsis"
    return out


class ModelsTable(DataTable):
    """The models list: DataTable's own enter (hidden), saying what it does for the help screen."""

    BINDINGS = [Binding("enter", "select_cursor", "open", show=False, tooltip="open the highlighted model")]


class ModelsScreen(RegistryScreen):
    CSS_PATH = "../styles/models.tcss"
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]  # the activity panel: a few lines, or the rest
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
        self.stats: dict[str, dict[str, Any]] = {}
        self.activity: dict[int, dict[str, Any]] = {}
        self.activity_loaded = False
        self._wide: bool | None = None
        self._widths: list[int] = []

    def compose(self) -> ComposeResult:
        yield StatusHeader("models")
        yield Input(placeholder="filter models by name…", id="filter")
        yield Static(id="banner")
        yield ModelsTable(id="models", cursor_type="row", cursor_foreground_priority="renderable")
        yield Static(id="empty")
        activity = Static(id="activity")
        activity.border_title = "recent activity"
        yield activity
        yield Footer(compact=True)

    def _columns(self, table: DataTable, wide: bool, widths: list[int] | None = None) -> None:
        """The same columns for every width class: the trend only from WIDE columns on.

        Widths are given, measured from the rows (``_fill``), not left to the table: an auto
        width changes on the table's idle pass after the rows arrive, and Textual may not paint
        again after that, leaving the header at its old widths above the new rows."""
        labels = [(k, label) for k, label in COLUMNS if wide or k != "trend"]
        widths = widths or [len(label) for _, label in labels]
        table.clear(columns=True)
        for (key, label), width in zip(labels, widths):
            table.add_column(label, key=key, width=width)
        self._wide = wide
        self._widths = widths

    def on_mount(self) -> None:
        self.query_one("#filter").display = False
        self.query_one("#models").focus()
        self._show_banner()
        self._columns(self.query_one("#models", DataTable), self.size.width >= WIDE)
        self._show_activity()
        if self.app.client is not None:
            self.load()

    def reconnected(self, first: bool) -> None:
        self._show_banner()
        if not self.loaded:
            self.load()
        elif not self.activity_loaded:
            self.load_activity()

    def on_resize(self, _event: Any) -> None:
        if self._wide is not None and (self.size.width >= WIDE) != self._wide:
            self._fill()
        self._show_activity()

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
                ("drop folder   ", "bold"), f"{demo.drop}  ", ("← copy a model file here", self.palette.muted), "\n",
                ("other shell   ", "bold"), ("run these two lines there (y copies them):", self.palette.muted)))
            # Each command on a line of its own, never wrapped: a wrapped line copies with a break in it.
            lines.extend(Text(f"  {command}", no_wrap=True, overflow="ellipsis") for command in demo_commands(demo))
        banner.update(Text("\n").join(lines) if lines else "")
        banner.display = bool(lines)

    # -- data --------------------------------------------------------------------------------

    @work(exclusive=True, exit_on_error=False, group="models")
    async def load(self) -> None:
        # Stats and activity are posted before the list, so the list never shows without them
        # (`loaded` then means all three are on screen; beyond STATS_FIRST models they follow).
        models = await self.client.all_models()
        names = [m["name"] for m in models]
        stats, events = await asyncio.gather(self._fetch_stats(names[:STATS_FIRST]), self._fetch_activity())
        self.post_message(ModelStats(stats))
        if events is not None:
            self.post_message(ActivityLoaded(events))
        self.post_message(ModelsLoaded(models))
        if len(names) > STATS_FIRST:
            self.post_message(ModelStats(await self._fetch_stats(names[STATS_FIRST:])))

    @work(exclusive=False, exit_on_error=False, group="models-refresh")
    async def refresh_models(self, names: list[str]) -> None:
        items, missing = [], []
        for name in names:
            try:
                items.append(await self.client.model(name))
            except NotFound:  # deleted, or renamed away
                missing.append(name)
        self.post_message(ModelStats(await self._fetch_stats([m["name"] for m in items])))
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
        if not self.activity_loaded:
            self.load_activity()

    async def _fetch_stats(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """Per model, its newest and its production version (age and metrics), a few at a time.
        What cannot be read is left out: the columns then show '-', the list is not held up."""
        client, gate = self.client, asyncio.Semaphore(STATS_CONCURRENCY)

        async def one(name: str) -> tuple[str, dict[str, Any]] | None:
            async with gate:
                try:
                    newest = (await client.versions(name, limit=1))["items"]
                    production = (await client.versions(name, stage="production", limit=1))["items"]
                except ModelregError:  # gone meanwhile, or a daemon that cannot say
                    return None
            return name, {"latest": newest[0] if newest else None, "production": production[0] if production else None}

        found = await asyncio.gather(*(one(n) for n in names))
        return dict(x for x in found if x is not None)

    def on_model_stats(self, message: ModelStats) -> None:
        self.stats.update(message.stats)
        if self.loaded:
            self._fill()

    async def _fetch_activity(self) -> list[dict[str, Any]] | None:
        """The last few hundred events of the log (None if unreadable); live ones are added as they arrive."""
        try:
            last = (await self.client.events(limit=1)).get("last_id") or 0
            page = await self.client.events(after=max(0, last - ACTIVITY_BACKLOG), limit=ACTIVITY_BACKLOG)
        except ModelregError:
            return None
        return page.get("items") or []

    @work(exclusive=True, exit_on_error=False, group="activity")
    async def load_activity(self) -> None:
        events = await self._fetch_activity()
        if events is not None:
            self.post_message(ActivityLoaded(events))

    def on_activity_loaded(self, message: ActivityLoaded) -> None:
        self.activity_loaded = True
        self._add_activity(message.events)
        self._show_activity()

    def _add_activity(self, events: list[dict[str, Any]]) -> None:
        fresh = {e["id"]: e for e in events if "id" in e and e["id"] not in self.activity and activity_line(e)}
        if not fresh:
            return
        self.activity.update(fresh)
        for old in sorted(self.activity)[:-ACTIVITY_KEEP]:
            del self.activity[old]
        self._show_activity()

    def _show_activity(self) -> None:
        panel = self.query_one("#activity", Static)
        if not self.activity_loaded and not self.activity:
            panel.update(Text("loading…", style="italic"))
            return
        panel.update(render_activity(list(self.activity.values()), self.clock, self.palette, self.size.width >= WIDE))

    def _forget(self, names: list[str]) -> bool:
        gone = {n.lower() for n in names}
        before = len(self.models)
        self.models = {k: m for k, m in self.models.items() if k.lower() not in gone}
        return len(self.models) != before

    def apply_events(self, events: list[dict[str, Any]]) -> None:
        self._add_activity(events)
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
        wide = self.size.width >= WIDE
        text = self.filter_text.lower()
        shown = [m for m in self.app.models_cache if text in m["name"].lower()]
        width = max(10, self.size.width - (100 if wide else 84))
        rows = [(m["name"], self._cells(m, width, wide)) for m in shown]
        labels = [label for k, label in COLUMNS if wide or k != "trend"]
        widths = [max([len(label)] + [cell_width(cells[i]) for _, cells in rows]) for i, label in enumerate(labels)]
        if wide != self._wide or widths != self._widths:
            self._columns(table, wide, widths)
        else:
            table.clear()
        for key, cells in rows:
            table.add_row(*cells, key=key)
        empty = self.query_one("#empty", Static)
        empty.display = not shown
        if not shown:
            empty.update("no models match the filter" if self.models else
                         "no models yet: `modelreg register FILE --name NAME`, or drop a file into a watched folder")
        if current and current in {m["name"] for m in shown}:
            table.move_cursor(row=table.get_row_index(current), animate=False)
        self.refresh_bindings()

    def _cells(self, m: dict[str, Any], width: int, wide: bool) -> list[Any]:
        p = self.palette
        description = (m.get("description") or "").splitlines()[0] if m.get("description") else ""
        if len(description) > width:
            description = description[: width - 1] + "…"
        cells = [Text(m["name"], style="bold"), str(m.get("version_count", 0)), self._production(m),
                 version_ref(m.get("staging"), "staging", p), version_ref(m.get("latest"), "", p)]
        if wide:
            cells.append(self._trend(m))
        return cells + [self.clock.ago(m.get("updated_at")), Text(description, style=p.muted)]

    def _stat(self, m: dict[str, Any], which: str) -> dict[str, Any] | None:
        """The version ``which`` (latest or production) of the last stats, if it is still that one."""
        v = (self.stats.get(m["name"]) or {}).get(which)
        return v if v and v.get("version") == m.get(which) else None

    def _production(self, m: dict[str, Any]) -> Text:
        """'v12 · 3d': the production version and how long it has been production."""
        out = version_ref(m.get("production"), "production", self.palette)
        prod = self._stat(m, "production")
        since = self.clock.ts(prod.get("stage_changed_at")) if prod else None
        if since is not None:
            # The space ends the version's own span: a styled piece never starts with one
            # (SVG renderers drop a leading space, and the words would run together).
            out.append(" ")
            out.append(f"· {short_age(self.clock.now() - since)}", style=self.palette.muted)
        return out

    def _trend(self, m: dict[str, Any]) -> Text:
        """'auc ▲ +0.004': the latest version's primary metric against production's."""
        latest, prod = self._stat(m, "latest"), self._stat(m, "production")
        out = Text()
        if not latest or not prod:
            out.append("-", style=self.palette.muted)
            return out
        if latest["version"] == prod["version"]:
            out.append("is production", style=self.palette.muted)
            return out
        key = primary_metric(latest.get("metrics") or {}, prod.get("metrics") or {})
        if key is None:
            out.append("-", style=self.palette.muted)
            return out
        d = float(latest["metrics"][key]) - float(prod["metrics"][key])
        out.append(f"{key if len(key) <= 14 else key[:13] + '…'} ")
        if d == 0:
            out.append("= ±0", style=self.palette.muted)
            return out
        higher = metric_direction(key, m.get("metric_directions") or None) == "higher"
        style = self.palette.better if (d > 0) == higher else self.palette.worse
        out.append(f"{'▲' if d > 0 else '▼'} {delta(d)}", style=style)
        return out

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

