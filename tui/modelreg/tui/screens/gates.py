"""`g`: what the staging and production gates, and the gates of each guarded alias (@champion),
would say about a version now (a dry run)."""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Label, Static

from modelreg.shared.errors import ModelregError

from ..messages import VerdictLoaded
from ..widgets.verdict import VerdictView
from ..widgets.formatting import anchored
from .base import RegistryModal


class GatesModal(RegistryModal):
    BINDINGS = [Binding("escape,q,enter,g", "close", "close")]

    def __init__(self, model: str, version: int, stage: str) -> None:
        super().__init__()
        self.model, self.version, self.stage = model, version, stage

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(anchored(Text.assemble(("Gates", "bold"), f"  {self.model}@{self.version}  ", (self.stage, "dim"),
                                      ("   dry run: nothing changes", "italic"))), id="dialog-title")
            with VerticalScroll(id="verdict-box"):
                yield VerdictView("staging", self.app.palette, id="verdict-staging")
                yield Static("")
                yield VerdictView("production", self.app.palette, id="verdict-production")
            yield Static(Text("escape to close · s / p on the versions table to act on it", style="dim"))

    def on_mount(self) -> None:
        self.check()

    @work(exclusive=True, exit_on_error=False, group="check")
    async def check(self) -> None:
        ref = f"{self.model}@{self.version}"
        # The aliases guarded for this model get a verdict each, mounted before any verdict shows.
        try:
            gates = (await self.client.gates(model=self.model))["items"]
        except ModelregError:
            gates = []
        aliases = sorted({g["alias"] for g in gates if g.get("alias")})
        box = self.query_one("#verdict-box", VerticalScroll)
        for alias in aliases:
            await box.mount(Static(""), VerdictView(f"@{alias}", self.app.palette, id=_view_id(f"@{alias}")))

        async def one(target: str) -> VerdictLoaded:
            try:
                return VerdictLoaded(target, await self.client.check(ref, target))
            except ModelregError as exc:
                return VerdictLoaded(target, None, exc.message)

        targets = ["staging", "production", *(f"@{a}" for a in aliases)]
        for message in await asyncio.gather(*(one(t) for t in targets)):
            self.post_message(message)

    def on_verdict_loaded(self, message: VerdictLoaded) -> None:
        self.query_one(f"#{_view_id(message.target)}", VerdictView).show(message.verdict, message.error)

    def action_close(self) -> None:
        self.dismiss(None)


def _view_id(target: str) -> str:
    """The verdict view's id: ``verdict-production``, ``verdict-alias-champion``."""
    return f"verdict-alias-{target[1:]}" if target.startswith("@") else f"verdict-{target}"
