"""Approving or rejecting a pending approval request (issue 12): the request, a reason, the call.

The dialog shows who asked and why, the approvals and rejections so far and the gates'
verdict when the request was last looked at; a reason is required. With several pending
requests the highlighted version's comes first and up/down pick another. The modal makes
the call itself, so a refusal (the requester approving their own request, a token without
``promote`` on the model, a request closed meanwhile) is shown in place instead of closing.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from modelreg.shared.errors import ModelregError

from ..messages import VoteRecorded, VoteRefused
from ..widgets.formatting import Clock, Palette, anchored
from ..widgets.requests_panel import expiry, request_line, request_ref, requester
from ..widgets.verdict import verdict_text
from .base import RegistryModal

VERBS = {"approve": "Approve", "reject": "Reject"}


def votes_text(title: str, votes: list[dict[str, Any]], clock: Clock, palette: Palette, style: str) -> Text:
    out = Text()
    out.append(title, style="bold")
    if not votes:
        out.append("none yet", style=palette.muted)
    for vote in votes:
        who, actor = vote.get("identity") or "?", vote.get("actor") or ""
        out.append("\n  ")
        out.append(who if not actor or actor == who else f"{who} ({actor})", style=style)
        if vote.get("reason"):
            out.append(f" — {vote['reason']}")
        if vote.get("at"):
            out.append(f"  {clock.ago(vote['at'])}", style=palette.muted)
    return out


def request_details(req: dict[str, Any], clock: Clock, palette: Palette) -> Text:
    """Who asked and why, the votes so far and the verdict of the transition's gates."""
    out = Text()
    out.append("asked by ", style="bold")
    out.append(requester(req))
    if req.get("created_at"):
        out.append(f"  {clock.ago(req['created_at'])}", style=palette.muted)
    if when := expiry(req, clock):
        out.append(f"  ({when})", style=palette.muted)
    out.append("\nwhy ", style="bold")
    out.append(str(req.get("reason") or "no reason given"), style="" if req.get("reason") else palette.muted)
    approvals = req.get("approvals") or []
    out.append("\n")
    out.append_text(votes_text(f"approvals {len(approvals)} of {req.get('required', '?')}: ", approvals, clock,
                               palette, palette.better))
    if rejections := req.get("rejections") or []:
        out.append("\n")
        out.append_text(votes_text("rejections: ", rejections, clock, palette, palette.worse))
    if isinstance(req.get("verdict"), dict):
        out.append("\n\n")
        out.append_text(verdict_text(req["verdict"], palette, str(req.get("target") or "")))
    return anchored(out)


def outcome_note(decision: str, req: dict[str, Any]) -> tuple[str, str]:
    """What to tell the user after a vote, and how loudly: (message, severity)."""
    ref, target, status = request_ref(req), req.get("target"), req.get("status")
    head = f"#{req.get('id')} {ref} → {target}"
    outcome = f": {req['outcome']}" if req.get("outcome") else ""
    if status == "pending":
        have, need = len(req.get("approvals") or []), req.get("required", "?")
        return f"{head}: your {'approval' if decision == 'approve' else 'vote'} is in, {have} of {need} approvals", \
            "information"
    if status == "approved":
        moved = f"{target} now points at {ref}" if str(target).startswith("@") else f"{ref} is now {target}"
        return f"{head}: approved, {moved}", "information"
    if status == "rejected":
        return f"{head}: rejected{outcome}", "information"
    return f"{head}: {status}{outcome}", "warning"  # failed (a gate refused it on the re-run), expired…


class ApprovalModal(RegistryModal):
    """Dismisses with the request as the daemon returned it after the vote, or None."""

    DEFAULT_CSS = """
    ApprovalModal #requests {
        height: auto; max-height: 6; margin-bottom: 1; border: none; padding: 0; background: $surface;
        text-wrap: nowrap; text-overflow: ellipsis;
    }
    ApprovalModal #request-box { height: auto; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "cancel", show=True),
        Binding("up", "pick(-1)", "previous request", show=False),
        Binding("down", "pick(1)", "next request", show=False),
        Binding("pageup", "scroll_details(-1)", "scroll up", show=False),
        Binding("pagedown", "scroll_details(1)", "scroll down", show=False),
    ]
    # Rows of the dialog besides the request's details: border 2, title 2, reason 4, buttons 2, message 1.
    FIXED_ROWS = 11

    def __init__(self, decision: str, requests: list[dict[str, Any]]) -> None:
        super().__init__()
        self.decision = decision
        self.requests = requests  # in the order offered: the highlighted version's first
        self.chosen = 0
        self.busy = False

    @property
    def request(self) -> dict[str, Any]:
        return self.requests[self.chosen]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(id="dialog-title")
            choices = OptionList(*[Option(request_line(r, self.app.clock, self.app.palette), id=str(r.get("id")))
                                   for r in self.requests], id="requests")
            choices.display = len(self.requests) > 1
            yield choices
            with VerticalScroll(id="request-box"):
                yield Static(id="request-info")
            yield Input(placeholder=f"reason (required): why you {self.decision}", id="reason")
            with Horizontal(id="dialog-buttons"):
                yield Button(VERBS[self.decision], id="confirm", variant="primary" if self.decision == "approve"
                             else "error", disabled=True, compact=True)
                yield Button("Cancel", id="cancel", compact=True)
            yield Static(id="dialog-error")

    def on_mount(self) -> None:
        self.query_one("#requests", OptionList).highlighted = 0
        self._show_chosen()
        self._fit()
        self.query_one("#reason", Input).focus()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        """The details scroll (page up/down) so that the reason and the buttons stay on screen."""
        room = int(self.size.height * 0.9) - self.FIXED_ROWS
        choices = self.query_one("#requests", OptionList)
        listed = min(len(self.requests), max(2, room // 3)) if choices.display else 0
        choices.styles.max_height = listed
        box = self.query_one("#request-box", VerticalScroll)
        box.styles.max_height = max(3, room - (listed + 1 if listed else 0))

    def action_scroll_details(self, direction: int) -> None:
        box = self.query_one("#request-box", VerticalScroll)
        box.scroll_page_down() if direction > 0 else box.scroll_page_up()

    def _show_chosen(self) -> None:
        req = self.request
        self.query_one("#dialog-title", Label).update(anchored(Text.assemble(
            (VERBS[self.decision], "bold"), f"  request #{req.get('id')}  ", (request_ref(req), "bold"), " → ",
            (str(req.get("target")), "bold"))))
        self.query_one("#request-info", Static).update(request_details(req, self.app.clock, self.app.palette))
        self.query_one("#dialog-error", Static).update("")

    def action_pick(self, step: int) -> None:
        if len(self.requests) > 1 and not self.busy:
            self.query_one("#requests", OptionList).highlighted = (self.chosen + step) % len(self.requests)

    @on(OptionList.OptionHighlighted, "#requests")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_index != self.chosen and not self.busy:
            self.chosen = event.option_index
            self._show_chosen()

    @on(OptionList.OptionSelected, "#requests")
    def _selected(self) -> None:
        self.query_one("#reason", Input).focus()

    @on(Input.Changed, "#reason")
    def _changed(self, event: Input.Changed) -> None:
        self.query_one("#confirm", Button).disabled = self.busy or not event.value.strip()

    @on(Input.Submitted, "#reason")
    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        reason = self.query_one("#reason", Input).value.strip()
        if not reason:
            self.query_one("#dialog-error", Static).update(Text(f"a reason is required to {self.decision}",
                                                                style="italic"))
            return
        if not self.busy:
            self.busy = True
            self.query_one("#confirm", Button).disabled = True
            self.query_one("#dialog-error", Static).update(Text("sending…", style="italic"))
            self.vote(self.request, reason)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @work(exclusive=True, exit_on_error=False, group="vote")
    async def vote(self, req: dict[str, Any], reason: str) -> None:
        completes = self.decision == "approve" and len(req.get("approvals") or []) + 1 >= int(req.get("required") or 1)
        target = str(req.get("target") or "")
        if completes and not target.startswith("@"):
            self.app.expect_change(str(req.get("model")), int(req.get("version") or 0), target)  # toasted here
        try:
            call = self.client.approve if self.decision == "approve" else self.client.reject
            result = await call(int(req["id"]), reason)
        except ModelregError as exc:
            self.post_message(VoteRefused(exc.message))
            return
        view = result.get("request", result) if isinstance(result, dict) else {}
        self.post_message(VoteRecorded(self.decision, {**req, **view}))

    def on_vote_refused(self, message: VoteRefused) -> None:
        self.busy = False
        self.query_one("#confirm", Button).disabled = not self.query_one("#reason", Input).value.strip()
        self.query_one("#dialog-error", Static).update(Text(message.message, style=self.app.palette.error))

    def on_vote_recorded(self, message: VoteRecorded) -> None:
        note, severity = outcome_note(message.decision, message.request)
        self.app.notify(note, title="approval request", severity=severity, timeout=6)  # type: ignore[arg-type]
        self.dismiss(message.request)


__all__ = ["ApprovalModal", "request_details", "outcome_note"]
