"""One model: its versions (paged on demand) over a detail pane, and the lifecycle keys."""

from __future__ import annotations

import asyncio
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Input, OptionList, Static, TabbedContent
from textual.widgets.option_list import Option

from modelreg.shared.errors import InvalidInput, ModelregError, NotFound
from modelreg.shared.filters import parse_metric_filter

from ..messages import (HistoryLoaded, ModelCardLoaded, ModelInfoLoaded, ModelsChanged, RequestsLoaded,
                        VersionDetailLoaded, VersionsChanged, VersionsPage)
from ..widgets.formatting import GAP, joined, labelled, plural, version_ref
from ..widgets.header import StatusHeader
from ..widgets.requests_panel import RequestsPanel, order_for
from ..widgets.version_detail import VersionDetail
from ..widgets.versions_table import PAGE, VersionsTable, rank_metric_keys
from .base import RegistryScreen

DETAIL_DEBOUNCE_S = 0.12
REQUESTS_REDRAW_S = 30.0  # the pending requests' "expires in" counts down


def parse_filter(text: str) -> dict[str, Any]:
    """``production``, ``staging``…, ``ready|pending|failed``, ``auc>=0.9``, ``tag:team=risk``."""
    out: dict[str, Any] = {"stage": None, "status": None, "metrics": [], "tags": []}
    for token in text.split():
        low = token.lower()
        if low in ("production", "staging", "archived", "none"):
            out["stage"] = low
        elif low in ("ready", "pending", "failed"):
            out["status"] = low
        elif low.startswith("tag:") and len(token) > 4:
            out["tags"].append(token[4:])
        elif _is_metric_filter(token):
            out["metrics"].append(token)
        else:
            raise InvalidInput(f"filter {token!r}: use a stage (production, staging, archived, none), a status "
                               "(ready, pending, failed), a metric test such as auc>=0.9, or tag:key=value")
    return out


def _is_metric_filter(token: str) -> bool:
    """The daemon's own grammar (modelreg.shared.filters): what the TUI sends, the daemon takes."""
    try:
        parse_metric_filter(token)
    except InvalidInput:
        return False
    return True


class ModelScreen(RegistryScreen):
    AUTO_FOCUS = "#versions"
    # The tooltips are the help screen's text for each key (screens/help.py reads them here).
    BINDINGS = [
        Binding("s", "stage", "stage", id="stage", tooltip="move the version to staging"),
        Binding("p", "promote", "promote", id="promote", tooltip="promote the version to production"),
        Binding("a", "archive", "archive", id="archive", tooltip="archive the version"),
        Binding("r", "rollback", "rollback", id="rollback", tooltip="roll production back to the previous version"),
        Binding("g", "gates", "gates", id="gates", tooltip="dry-run the gates (staging and production)"),
        Binding("A", "approve", "approve", id="approve",
                tooltip="approve a pending approval request, with a reason"),
        Binding("X", "reject", "reject", id="reject",
                tooltip="reject a pending approval request, with a reason"),
        Binding("space", "mark", "mark", id="mark", key_display="␣",
                tooltip="mark / unmark the version for comparison"),
        Binding("c", "compare", "compare", id="compare", tooltip="compare the marked versions"),
        Binding("l", "lineage", "lineage", id="lineage", tooltip="lineage tree, upstream and downstream"),
        Binding("h", "history", "history", id="history", tooltip="stage history of the model"),
        Binding("e", "events", "events", id="events", tooltip="the live event log"),
        Binding("slash", "filter", "filter", id="filter",
                tooltip="filter (models by name; versions by stage, metric, tag)"),
        Binding("q,escape", "back", "back", id="back", tooltip="back (quit on the models screen)"),
    ]

    def __init__(self, name: str, focus_version: int | None = None) -> None:
        super().__init__()
        self.model_name = name
        self.focus_version = focus_version
        self.info: dict[str, Any] = {"name": name}
        self.history: list[dict[str, Any]] = []
        self.history_loaded = False
        self.production: dict[str, Any] | None = None
        self.filters: dict[str, Any] = parse_filter("")
        self.filter_text = ""
        self.generation = 0
        self.loaded = False
        self.detail_version: int | None = None
        self.deleted = False
        self.requests: list[dict[str, Any]] = []  # pending approval requests of the model
        self._binding_signature: Any = ()

    def compose(self) -> ComposeResult:
        yield StatusHeader(self.model_name)
        with Horizontal(id="body"):
            yield OptionList(id="sidebar")
            with Vertical(id="main"):
                yield Static(id="vinfo")
                yield RequestsPanel(id="requests")
                yield Input(placeholder="production · staging · auc>=0.9 · tag:team=risk · failed", id="vfilter")
                yield VersionsTable(id="versions")
                yield VersionDetail(id="detail")
        yield Footer(compact=True)

    @property
    def table(self) -> VersionsTable:
        return self.query_one("#versions", VersionsTable)

    @property
    def detail(self) -> VersionDetail:
        return self.query_one("#detail", VersionDetail)

    def on_mount(self) -> None:
        self.query_one("#vfilter").display = False
        self.table.palette, self.table.clock = self.palette, self.clock
        self.detail.clear_detail("loading…")
        self._fill_sidebar()
        self.table.focus()
        self.set_interval(REQUESTS_REDRAW_S, self._tick_requests)
        if self.app.client is not None:
            self.reload()

    def reconnected(self, first: bool) -> None:
        if not self.loaded:
            self.reload()

    def reload(self) -> None:
        self.load_model()
        self.load_page(reset=True)
        self.load_requests()

    def _fill_sidebar(self) -> None:
        sidebar = self.query_one("#sidebar", OptionList)
        names = [m["name"] for m in self.app.models_cache] or [self.model_name]
        if [str(o.id) for o in sidebar.options] == names:
            return
        # Keep the highlight where the user had it (they may be moving through the list).
        keep = sidebar.highlighted_option.id if sidebar.has_focus and sidebar.highlighted_option else self.model_name
        sidebar.clear_options()
        sidebar.add_options([Option(name, id=name) for name in names])
        if keep in names:
            sidebar.highlighted = names.index(str(keep))
        elif self.model_name in names:
            sidebar.highlighted = names.index(self.model_name)

    def on_models_changed(self, _message: ModelsChanged) -> None:
        self._fill_sidebar()

    @on(OptionList.OptionSelected, "#sidebar")
    def _switch_model(self, event: OptionList.OptionSelected) -> None:
        name = str(event.option.id)
        if name != self.model_name:
            self.app.switch_screen(ModelScreen(name))

    # -- loading -------------------------------------------------------------------------------

    @work(exclusive=True, exit_on_error=False, group="model-info")
    async def load_model(self) -> None:
        info = await self.client.model(self.model_name)
        self.post_message(ModelInfoLoaded(info))
        try:
            history = await self.client.history(info["name"], limit=10000)
        except NotFound:
            history = {"items": []}
        self.post_message(HistoryLoaded(info["name"], history))

    @work(exclusive=True, exit_on_error=False, group="requests")
    async def load_requests(self) -> None:
        name = self.model_name
        try:
            page = await self.client.requests(model=name, status="pending")
        except NotFound:  # a daemon from before approval requests: nothing can be pending
            page = {"items": []}
        items = page.get("items", []) if isinstance(page, dict) else list(page or [])
        self.post_message(RequestsLoaded(name, items))

    def on_requests_loaded(self, message: RequestsLoaded) -> None:
        if message.model.lower() != self.model_name.lower():
            return
        self.requests = [r for r in message.requests if r.get("status", "pending") == "pending"]
        self.query_one("#requests", RequestsPanel).show_requests(self.requests, self.table.current_version(),
                                                                  self.clock, self.palette)
        self._bindings_changed()

    def _tick_requests(self) -> None:
        if not self.requests:
            return
        if any((self.clock.ts(r.get("expires_at")) or float("inf")) <= self.clock.now() for r in self.requests):
            self.load_requests()  # the daemon says what became of it
        self.query_one("#requests", RequestsPanel).redraw(self.clock, self.palette)

    @work(exclusive=True, exit_on_error=False, group="versions-page")
    async def load_page(self, reset: bool = False) -> None:
        table = self.table
        generation = self.generation
        cursor = None if reset else table.next_cursor
        if not reset and not cursor:
            return
        table.loading = True
        try:
            f = self.filters
            page = await self.client.versions(self.model_name, stage=f["stage"], status=f["status"], tags=f["tags"],
                                              metrics=f["metrics"], limit=PAGE, cursor=cursor)
        finally:
            table.loading = False
        self.post_message(VersionsPage(self.model_name, page["items"], page.get("next"), page.get("total", 0), reset,
                                       generation))

    def on_versions_page(self, message: VersionsPage) -> None:
        if message.generation != self.generation:
            return
        table = self.table
        if message.reset:
            table.reset(rank_metric_keys(message.items))
        table.next_cursor, table.total = message.next, message.total
        table.append_page(message.items)
        self.loaded = True
        if message.reset:
            if self.focus_version is not None and str(self.focus_version) in {str(k) for k in table.summaries}:
                table.move_cursor(row=table.get_row_index(str(self.focus_version)), animate=False)
            if table.row_count == 0:
                self.detail.clear_detail("no versions match the filter" if self.filter_text else "no versions yet")
            else:
                self._detail_for_cursor(debounce=False)
        self._show_info()
        self._bindings_changed()
        if table.needs_more():
            self.load_page()

    def on_model_info_loaded(self, message: ModelInfoLoaded) -> None:
        self.info = message.model
        self.query_one(StatusHeader).set_title(self.info["name"])
        self._show_info()
        self._bindings_changed()

    def on_history_loaded(self, message: HistoryLoaded) -> None:
        self.history = message.history.get("items", [])
        self.history_loaded = True
        self.detail.show_history(self.history, self.clock, self.palette)
        self._bindings_changed()

    def _show_info(self) -> None:
        info, table, p = self.info, self.table, self.palette
        loaded = len(table.summaries)
        facts = joined(
            plural(info.get("version_count", table.total), "version"),
            labelled("production", version_ref(info.get("production"), "production", p)),
            labelled("staging", version_ref(info.get("staging"), "staging", p)),
            (f"{loaded:,} loaded", p.muted) if table.next_cursor or loaded < table.total else None,
            (f"{len(table.marked)} marked", p.accent) if table.marked else None,
            (f"filter: {self.filter_text}", p.accent) if self.filter_text else None)
        text = joined((info["name"], "bold"), facts, sep=GAP)
        self.query_one("#vinfo", Static).update(text)

    def _bindings_changed(self) -> None:
        """Refresh the footer only when the set of keys that apply changed (it re-lays out)."""
        v = self.table.current()
        signature = (v.get("stage"), v.get("status")) if v else None, len(self.table.marked) >= 2, \
            self._rollback_target(), bool(self.requests)
        if signature != self._binding_signature:
            self._binding_signature = signature
            self.refresh_bindings()

    @on(DataTable.RowHighlighted, "#versions")
    def _row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._bindings_changed()
        panel = self.query_one("#requests", RequestsPanel)
        if panel.requests and panel.version != self.table.current_version():
            panel.version = self.table.current_version()  # its requests go first
            panel.redraw(self.clock, self.palette)
        if self.table.needs_more():
            self.load_page()
        self._detail_for_cursor()

    def on_versions_table_need_more(self, _message: VersionsTable.NeedMore) -> None:
        if self.table.next_cursor and not self.table.loading:
            self.load_page()

    def _detail_for_cursor(self, debounce: bool = True) -> None:
        n = self.table.current_version()
        if n is not None and n != self.detail_version:
            self.detail_version = n
            self.load_detail(n, debounce)

    @work(exclusive=True, exit_on_error=False, group="detail")
    async def load_detail(self, n: int, debounce: bool = True) -> None:
        if debounce:
            await asyncio.sleep(DETAIL_DEBOUNCE_S)  # holding a key down must not fire one request per row
        detail = await self.client.version(f"{self.model_name}@{n}")
        production = None
        prod_number = self.info.get("production")
        if prod_number is not None:
            if self.production and self.production.get("version") == prod_number:
                production = self.production
            elif prod_number == n:
                production = detail
            else:
                try:
                    production = await self.client.version(f"{self.model_name}@{prod_number}")
                except NotFound:
                    production = None
        self.post_message(VersionDetailLoaded(detail, production))

    def on_version_detail_loaded(self, message: VersionDetailLoaded) -> None:
        d = message.detail
        if d["version"] != self.table.current_version():
            return
        self.production = message.production
        self.detail.show(d, message.production, self.history, self.info.get("metric_directions") or {},
                         self.clock, self.palette)
        if self.detail.active == "card":
            self._load_card_for(d)

    @on(TabbedContent.TabActivated, "#detail-tabs")
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.detail.draw(str(event.pane.id))
        if event.pane.id == "card" and self.detail.detail is not None:
            self._load_card_for(self.detail.detail)

    def _load_card_for(self, d: dict[str, Any]) -> None:
        ref = f"{self.model_name}@{d['version']}"
        if self.detail.card_ref != ref:
            self.load_card(ref)

    @work(exclusive=True, exit_on_error=False, group="card")
    async def load_card(self, ref: str) -> None:
        """The daemon decides what the card is (its README.md); none is not an error."""
        try:
            card = await self.client.card(ref)
        except NotFound:
            self.post_message(ModelCardLoaded(ref, None))
            return
        except ModelregError as exc:  # too large to show inline, files purged by gc…
            self.post_message(ModelCardLoaded(ref, None, exc.message))
            return
        self.post_message(ModelCardLoaded(ref, card.get("text") if isinstance(card, dict) else card))

    def on_model_card_loaded(self, message: ModelCardLoaded) -> None:
        if message.ref == f"{self.model_name}@{self.table.current_version()}":
            self.detail.show_card(message.ref, message.text, message.error)

    # -- live updates -------------------------------------------------------------------------

    def apply_events(self, events: list[dict[str, Any]]) -> None:
        if self.deleted:
            return
        for e in events:
            kind, data = e.get("kind", ""), e.get("data") or {}
            if kind == "model.renamed" and str(data.get("from") or "").lower() == self.model_name.lower():
                self._renamed(str(data.get("to") or e.get("model")), e)
            elif kind == "model.deleted" and (e.get("model") or "").lower() == self.model_name.lower():
                self._deleted(e)
                return
        mine = [e for e in events if (e.get("model") or "").lower() == self.model_name.lower()]
        if not mine or not self.loaded:
            return
        numbers = sorted({int(e["version"]) for e in mine if e.get("version")})
        if numbers:
            self.refresh_versions(numbers)
        if any(e["kind"].startswith(("stage.", "version.", "drop.registered", "model.")) for e in mine):
            self.load_model()
        if any(e["kind"].startswith("alias.") for e in mine):  # alias.removed names no version
            self.table.refresh_annotations()
        if any(e["kind"].startswith(("approval.", "stage.")) for e in mine):
            self.load_requests()

    def _renamed(self, new: str, event: dict[str, Any]) -> None:
        """Follow the model to its new name: same versions, new refs."""
        old, self.model_name = self.model_name, new
        self.info = {**self.info, "name": new}
        self.query_one(StatusHeader).set_title(new)
        self.detail.card_ref = None
        self.notify(f"{old} was renamed {new} by {event.get('actor')}", title="model renamed", timeout=6)
        self._fill_sidebar()
        self.generation += 1
        self.detail_version = None
        self.reload()

    def _deleted(self, event: dict[str, Any]) -> None:
        """The model is gone: say so, and go back to the models list."""
        self.deleted = True
        reason = (event.get("data") or {}).get("reason")
        self.notify(f"{self.model_name} was deleted by {event.get('actor')}" + (f" — {reason}" if reason else ""),
                    title="model deleted", severity="warning", timeout=8)
        self.query_one("#vinfo", Static).update(Text(f"{self.model_name} was deleted", style=self.palette.worse))
        self.detail.clear_detail(f"{self.model_name} was deleted")
        if self.app.screen is self:
            self.app.pop_screen()

    def on_screen_resume(self) -> None:
        if self.deleted:  # deleted while a dialog or another screen was on top
            self.app.pop_screen()

    @work(exclusive=False, exit_on_error=False, group="versions-refresh")
    async def refresh_versions(self, numbers: list[int]) -> None:
        items, missing = [], []
        for n in numbers[-100:]:
            try:
                items.append(await self.client.version(f"{self.model_name}@{n}"))
            except NotFound:
                missing.append(n)
        self.post_message(VersionsChanged(self.model_name, items, missing))

    def on_versions_changed(self, message: VersionsChanged) -> None:
        if message.model.lower() != self.model_name.lower():
            return
        table = self.table
        removed = [n for n in message.missing if table.remove_version(n)]
        if removed and table.row_count == 0:
            self.detail.clear_detail("no versions left")
        elif removed:
            self._detail_for_cursor(debounce=False)
        for item in message.items:
            if not self._matches_filter(item) and item["version"] not in table.summaries:
                continue
            table.upsert(item)
        current = table.current_version()
        if current in {i["version"] for i in message.items}:
            self.load_detail(current, debounce=False)
        if table.row_count and self.detail.detail is None:
            self._detail_for_cursor()
        self._show_info()
        self._bindings_changed()

    def _matches_filter(self, item: dict[str, Any]) -> bool:
        f = self.filters
        return (f["stage"] in (None, item.get("stage")) and f["status"] in (None, item.get("status"))
                and not f["metrics"] and not f["tags"])

    def apply_transition(self, result: dict[str, Any]) -> None:
        """Show a transition's outcome at once, without waiting for its events."""
        version = result.get("version")
        if version:
            self.table.upsert(version)
            for n in result.get("archived") or []:
                if n in self.table.summaries:
                    self.table.upsert({**self.table.summaries[n], "stage": "archived"})
        elif result.get("to"):  # a rollback: {model, from, to}
            for n, stage in ((result["from"], "archived"), (result["to"], "production")):
                if n in self.table.summaries:
                    self.table.upsert({**self.table.summaries[n], "stage": stage})
        self.production = None
        self.detail_version = None
        self.load_model()
        self._detail_for_cursor()
        self._bindings_changed()

    # -- actions -------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if not self.is_mounted:
            return True
        v = self.table.current()
        ready = bool(v) and v.get("status") == "ready"
        stage = v.get("stage") if v else None
        if action == "stage":
            return ready and stage in ("none", "archived")
        if action == "promote":
            return ready and stage != "production"
        if action == "archive":
            return ready and stage != "archived"
        if action == "rollback":
            return self._rollback_target() is not None
        if action in ("gates", "mark", "lineage"):
            return v is not None
        if action in ("approve", "reject"):
            return bool(self.requests)
        if action == "compare":
            return len(self.table.marked) >= 2
        return True

    def _rollback_target(self) -> int | None:
        current = self.info.get("production")
        if current is None:
            return None
        for h in reversed(self.history):
            if h.get("to") == "production" and h.get("version") != current:
                return int(h["version"])
        return None

    def _transition(self, target: str) -> None:
        v = self.table.current()
        if not v:
            return
        from .transition import TransitionModal

        self.app.push_screen(TransitionModal(self.info.get("name", self.model_name), v["version"], target,
                                             v.get("stage", "none")), self._transition_done)

    def _transition_done(self, result: dict[str, Any] | None) -> None:
        if result and result.get("request"):  # held for approval: nothing moved, a request is pending
            self.load_requests()
        elif result:
            self.apply_transition(result)

    def action_stage(self) -> None:
        self._transition("staging")

    def action_promote(self) -> None:
        self._transition("production")

    def action_archive(self) -> None:
        self._transition("archived")

    def action_rollback(self) -> None:
        current = self.info.get("production")
        if current is None:
            self.notify(f"{self.model_name} has nothing in production to roll back", severity="warning")
            return
        from .transition import RollbackModal

        self.app.push_screen(RollbackModal(self.info.get("name", self.model_name), current, self._rollback_target()),
                             self._transition_done)

    def action_approve(self) -> None:
        self._vote("approve")

    def action_reject(self) -> None:
        self._vote("reject")

    def _vote(self, decision: str) -> None:
        if not self.requests:
            self.notify(f"{self.model_name} has no pending approval requests", severity="warning")
            return
        from .approval import ApprovalModal

        self.app.push_screen(ApprovalModal(decision, order_for(self.requests, self.table.current_version())),
                             lambda _result: self.load_requests())

    def action_gates(self) -> None:
        if v := self.table.current():
            from .gates import GatesModal

            self.app.push_screen(GatesModal(self.model_name, v["version"], v.get("stage", "none")))

    def action_mark(self) -> None:
        n = self.table.current_version()
        if n is None:
            return
        # In place: moving on after marking made people mark the row they had not meant to.
        self.table.toggle_mark(n)
        self._show_info()
        self._bindings_changed()

    def action_compare(self) -> None:
        if len(self.table.marked) < 2:
            self.notify("mark two or more versions with space first", severity="warning")
            return
        from .compare import CompareScreen

        self.app.push_screen(CompareScreen(self.info.get("name", self.model_name), sorted(self.table.marked),
                                           self.info.get("metric_directions") or {}))

    def action_lineage(self) -> None:
        if (n := self.table.current_version()) is not None:
            from .lineage import LineageScreen

            self.app.push_screen(LineageScreen(f"{self.model_name}@{n}"))

    def action_history(self) -> None:
        from .history import HistoryScreen

        self.app.push_screen(HistoryScreen(self.info.get("name", self.model_name)))

    def action_events(self) -> None:
        self.app.open_events(self.info.get("name", self.model_name))

    def action_filter(self) -> None:
        box = self.query_one("#vfilter", Input)
        box.display = True
        box.value = self.filter_text
        box.focus()

    @on(Input.Submitted, "#vfilter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        try:
            filters = parse_filter(event.value)
        except ModelregError as exc:
            self.notify(exc.message, title="filter", severity="error")
            return
        self.filters, self.filter_text = filters, event.value.strip()
        self.query_one("#vfilter").display = False
        self.generation += 1
        self.detail_version = None
        self.table.focus()
        self.load_page(reset=True)

    def action_back(self) -> None:
        box = self.query_one("#vfilter", Input)
        if box.display:
            box.display = False
            self.table.focus()
            return
        self.app.pop_screen()

    def palette_commands(self):  # noqa: ANN201
        v = self.table.current() if self.is_mounted else None
        actions = [("stage", "Move to staging", "Move the highlighted version to staging (gated)"),
                   ("promote", "Promote to production", "Promote the highlighted version (gated, archives the old one)"),
                   ("archive", "Archive version", "Archive the highlighted version"),
                   ("rollback", "Roll back production", "Make the previous production version production again"),
                   ("gates", "Dry-run gates", "What the staging and production gates say about this version"),
                   ("approve", "Approve a request", "Approve a pending approval request of this model, with a reason"),
                   ("reject", "Reject a request", "Reject a pending approval request of this model, with a reason"),
                   ("compare", "Compare marked versions", "Metrics, params and artifacts side by side"),
                   ("lineage", "Lineage", "Datasets, runs and parents upstream; derived versions downstream"),
                   ("history", "Stage history", "Every stage change of this model"),
                   ("events", "Model events", "The event log of this model"),
                   ("filter", "Filter versions", "By stage, status, metric (auc>=0.9) or tag")]
        ref = f"{self.model_name}@{v['version']}" if v else self.model_name
        for action, title, help_text in actions:
            if self.check_action(action, ()):
                yield SystemCommand(f"{title} ({ref})" if action in ("stage", "promote", "archive", "gates", "lineage")
                                    else title, help_text, getattr(self, f"action_{action}"))


__all__ = ["ModelScreen", "parse_filter"]
