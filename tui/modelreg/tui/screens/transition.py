"""Confirming a stage change: the gate verdict first, then a reason, then the call.

A failed verdict blocks the confirmation unless "force" is ticked, and force, archiving and
rollback always need a reason (the daemon audits overrides). The modal makes the call
itself, so a refusal (say, production changed meanwhile and a gate now fails) shows the
new verdict in place instead of closing.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Checkbox, Input, Label, Static

from modelreg.shared.errors import GateFailed, ModelregError, NotFound

from ..messages import TransitionFinished, TransitionRefused, VerdictLoaded
from ..widgets.checkbox import TextCheckbox
from ..widgets.verdict import VerdictView
from ..widgets.formatting import anchored, plural
from .base import RegistryModal

VERBS = {"staging": "Move to staging", "production": "Promote to production", "archived": "Archive"}


def held_for_approval(verdict: dict[str, Any] | None) -> bool:
    """Only `approvals >= N` rules fail: confirming opens an approval request instead of moving."""
    failed = [r for r in (verdict or {}).get("rules") or [] if r.get("status") != "pass"]
    return bool(failed) and all(r.get("kind") == "approvals" for r in failed)


class TransitionModal(RegistryModal):
    """Dismisses with the daemon's answer ``{"version", "verdict", "archived"}`` (``{"request",
    "verdict"}`` when an approvals gate holds the move for approval), or None."""

    BINDINGS = [Binding("escape", "cancel", "cancel", show=True)]

    def __init__(self, model: str, version: int, target: str, stage: str) -> None:
        super().__init__()
        self.model, self.version, self.target, self.stage = model, version, target, stage
        self.gated = target in ("staging", "production")
        self.verdict: dict[str, Any] | None = None
        self.busy = False

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(anchored(Text.assemble((VERBS[self.target], "bold"), f"  {self.ref}  ", (self.stage, "dim"), " → ",
                                      (self.target, "bold"))), id="dialog-title")
            with VerticalScroll(id="verdict-box"):
                if self.gated:
                    yield VerdictView(self.target, self.app.palette, id="verdict")
                else:
                    yield Static(Text("archiving runs no gates; it needs a reason", style="dim"))
                if self.target == "production":
                    yield Static(id="replaces")
            yield Input(placeholder=self._placeholder(), id="reason")
            with Horizontal(id="dialog-buttons"):
                yield TextCheckbox("force past failed gates", id="force")
                yield Button(VERBS[self.target], id="confirm", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
            yield Static(id="dialog-error")

    def _placeholder(self) -> str:
        return "reason (required)" if self.target == "archived" else "reason (optional unless forced)"

    def on_mount(self) -> None:
        self.query_one("#force").display = False
        self.query_one("#reason", Input).focus()
        self._update_confirm()
        if self.gated:
            self.check()

    @work(exclusive=True, exit_on_error=False, group="check")
    async def check(self) -> None:
        try:
            verdict = await self.client.check(self.ref, self.target)
        except NotFound as exc:
            self.post_message(VerdictLoaded(self.target, None, f"cannot check the gates: {exc.message}"))
            return
        self.post_message(VerdictLoaded(self.target, verdict))

    def on_verdict_loaded(self, message: VerdictLoaded) -> None:
        self.verdict = message.verdict
        self.query_one("#verdict", VerdictView).show(message.verdict, message.error)
        if message.verdict and self.target == "production" and message.verdict.get("production"):
            prod = message.verdict["production"]
            if prod != self.version:
                self.query_one("#replaces", Static).update(
                    Text(f"\nv{prod} leaves production and is archived in the same step", style="italic"))
        self.query_one("#force").display = bool(message.verdict) and not message.verdict.get("passed", True) \
            and not held_for_approval(message.verdict)  # force never stands in for approvals
        self.query_one("#confirm", Button).label = "Request approval" if held_for_approval(message.verdict) \
            else VERBS[self.target]
        self._update_confirm()

    def _needs_reason(self) -> bool:
        return self.target == "archived" or self.query_one("#force", Checkbox).value

    def _update_confirm(self) -> None:
        reason = self.query_one("#reason", Input).value.strip()
        forced = self.query_one("#force", Checkbox).value
        approval = held_for_approval(self.verdict)
        blocked = self.gated and (self.verdict is None or (not self.verdict.get("passed") and not forced
                                                           and not approval))
        missing_reason = self._needs_reason() and not reason
        button = self.query_one("#confirm", Button)
        button.disabled = self.busy or blocked or missing_reason
        hint = ""
        if approval and not missing_reason:
            hint = "this move needs approval: confirming opens an approval request for others to approve"
        elif self.gated and self.verdict is not None and not self.verdict.get("passed") and not forced:
            hint = "the gates failed: tick force and give a reason to override (audited)"
        elif missing_reason:
            hint = "a reason is required"
        self.query_one("#dialog-error", Static).update(Text(hint, style="italic"))

    @on(Input.Changed, "#reason")
    @on(Checkbox.Changed, "#force")
    def _changed(self) -> None:
        self._update_confirm()

    @on(Input.Submitted, "#reason")
    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        if not self.query_one("#confirm", Button).disabled:
            self.busy = True
            self._update_confirm()
            self.run_transition(self.query_one("#reason", Input).value.strip(),
                                self.query_one("#force", Checkbox).value)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @work(exclusive=True, exit_on_error=False, group="transition")
    async def run_transition(self, reason: str, force: bool) -> None:
        self.app.expect_change(self.model, self.version, self.target)
        try:
            result = await self.client.transition(self.ref, self.target, reason=reason or None, force=force)
        except GateFailed as exc:
            self.post_message(TransitionRefused(exc.message, exc.details.get("verdict")))
            return
        except ModelregError as exc:
            self.post_message(TransitionRefused(exc.message))
            return
        self.post_message(TransitionFinished("transition", result))

    def on_transition_refused(self, message: TransitionRefused) -> None:
        self.busy = False
        if message.verdict is not None:
            self.on_verdict_loaded(VerdictLoaded(self.target, message.verdict))
        else:
            self._update_confirm()
        self.query_one("#dialog-error", Static).update(Text(message.message, style=self.app.palette.error))

    def on_transition_finished(self, message: TransitionFinished) -> None:
        if request := message.result.get("request"):
            self._held_for_approval(request)
            self.dismiss(message.result)
            return
        version = message.result.get("version") or {}
        archived = message.result.get("archived") or []
        note = f"{self.ref} → {version.get('stage', self.target)}"
        if archived:
            note += f"; archived v{', v'.join(map(str, archived))}"
        self.app.notify(note, title="stage changed", timeout=5)
        self.dismiss(message.result)

    def _held_for_approval(self, request: dict[str, Any]) -> None:
        """The daemon answered 202: an `approvals >= N` gate holds the move until others approve it."""
        self.app.forget_change(self.model, self.version, self.target)  # nothing moved
        have, need = len(request.get("approvals") or []), int(request.get("required") or 0)
        so_far = f", {have} so far" if have else ""
        self.app.notify(f"approval request #{request.get('id')} opened: {self.ref} → {self.target} needs "
                        f"{plural(need, 'approval')}{so_far}; {self.ref} has not moved",
                        title="approval requested", timeout=8)


class RollbackModal(RegistryModal):
    """Rolls production back to the previous production version (or ``target``); needs a reason."""

    BINDINGS = [Binding("escape", "cancel", "cancel", show=True)]

    def __init__(self, model: str, current: int, target: int | None = None) -> None:
        super().__init__()
        self.model, self.current, self.target = model, current, target
        self.busy = False

    def compose(self) -> ComposeResult:
        to = f"v{self.target}" if self.target else "the previous production version"
        with Vertical(id="dialog"):
            yield Label(anchored(Text.assemble(("Roll back", "bold"), f"  {self.model}")), id="dialog-title")
            yield Static(Text.assemble(
                "production ", (f"v{self.current}", self.app.palette.production), " is archived and ",
                (to, self.app.palette.production), " becomes production again, in one step,\n"
                "after its files are re-verified. A rollback always needs a reason."), id="rollback-text")
            yield Input(placeholder="reason (required)", id="reason")
            with Horizontal(id="dialog-buttons"):
                yield Button("Roll back", id="confirm", variant="error", disabled=True, compact=True)
                yield Button("Cancel", id="cancel", compact=True)
            yield Static(id="dialog-error")

    def on_mount(self) -> None:
        self.query_one("#reason", Input).focus()

    @on(Input.Changed, "#reason")
    def _changed(self, event: Input.Changed) -> None:
        self.query_one("#confirm", Button).disabled = self.busy or not event.value.strip()

    @on(Input.Submitted, "#reason")
    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        reason = self.query_one("#reason", Input).value.strip()
        if not reason:
            self.query_one("#dialog-error", Static).update(Text("a rollback needs a reason", style="italic"))
            return
        if not self.busy:
            self.busy = True
            self.query_one("#confirm", Button).disabled = True
            self.run_rollback(reason)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @work(exclusive=True, exit_on_error=False, group="rollback")
    async def run_rollback(self, reason: str) -> None:
        if self.target:
            self.app.expect_change(self.model, self.target, "production")
        self.app.expect_change(self.model, self.current, "archived")
        try:
            result = await self.client.rollback(self.model, reason=reason)
        except ModelregError as exc:
            self.post_message(TransitionRefused(exc.message))
            return
        self.post_message(TransitionFinished("rollback", result))

    def on_transition_refused(self, message: TransitionRefused) -> None:
        self.busy = False
        self.query_one("#confirm", Button).disabled = not self.query_one("#reason", Input).value.strip()
        self.query_one("#dialog-error", Static).update(Text(message.message, style=self.app.palette.error))

    def on_transition_finished(self, message: TransitionFinished) -> None:
        r = message.result
        self.app.expect_change(self.model, int(r.get("to", 0)), "production")
        self.app.notify(f"{self.model}: production v{r.get('from')} → v{r.get('to')}", title="rolled back", timeout=5)
        self.dismiss(r)
