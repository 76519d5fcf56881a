"""`g`: what the staging and production gates would say about a version now (a dry run)."""

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

        async def one(target: str) -> VerdictLoaded:
            try:
                return VerdictLoaded(target, await self.client.check(ref, target))
            except ModelregError as exc:
                return VerdictLoaded(target, None, exc.message)

        for message in await asyncio.gather(one("staging"), one("production")):
            self.post_message(message)

    def on_verdict_loaded(self, message: VerdictLoaded) -> None:
        self.query_one(f"#verdict-{message.target}", VerdictView).show(message.verdict, message.error)

    def action_close(self) -> None:
        self.dismiss(None)
