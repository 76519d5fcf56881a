"""The model screen's band of pending approval requests (issue 12): one line each, hidden when none.

``#4 fraud@3 → production by ci, 1/2 approvals, expires in 6 days — "nightly retrain"``
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from .formatting import Clock, Palette, anchored, span

SHOWN = 3  # more than this many pending requests read as "and N more" (the dialog lists them all)


def request_ref(req: dict[str, Any]) -> str:
    return f"{req.get('model')}@{req.get('version')}"


def requester(req: dict[str, Any]) -> str:
    """The identity that asked, and the person behind it when they differ (the home token's user@host)."""
    name, actor = req.get("requested_by") or "?", req.get("requested_actor") or ""
    return name if not actor or actor == name else f"{name} ({actor})"


def expiry(req: dict[str, Any], clock: Clock) -> str:
    at = clock.ts(req.get("expires_at"))
    if at is None:
        return ""
    left = at - clock.now()
    return f"expires in {span(left)}" if left > 0 else "expiring now"


def request_line(req: dict[str, Any], clock: Clock, palette: Palette) -> Text:
    approvals, rejections = len(req.get("approvals") or []), len(req.get("rejections") or [])
    out = Text()
    out.append(f"#{req.get('id')} ", style="bold")
    out.append(request_ref(req), style="bold")
    out.append(" → ")
    target = str(req.get("target") or "?")
    out.append(target, style=palette.production if target == "production" else palette.accent)
    out.append(f" by {requester(req)}, ")
    out.append(f"{approvals}/{req.get('required', '?')} approvals", style=palette.accent)
    if rejections:
        out.append(f", {rejections} rejected", style=palette.worse)
    if when := expiry(req, clock):
        out.append(f", {when}", style=palette.muted)
    if req.get("reason"):
        out.append(f" — {req['reason']}", style=palette.muted)
    return anchored(out)


def order_for(requests: list[dict[str, Any]], version: int | None) -> list[dict[str, Any]]:
    """The highlighted version's requests first, then the oldest first (the one waiting longest)."""
    return sorted(requests, key=lambda r: (r.get("version") != version, int(r.get("id") or 0)))


class RequestsPanel(Static):
    """Pending approval requests of one model; ``display`` is off while there are none."""

    DEFAULT_CSS = """
    RequestsPanel {
        height: auto;
        max-height: 4;
        padding: 0 1;
        background: $warning 12%;
        text-wrap: nowrap;  /* one line each, cut to the width */
        text-overflow: ellipsis;
        display: none;
    }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.requests: list[dict[str, Any]] = []
        self.version: int | None = None

    def show_requests(self, requests: list[dict[str, Any]], version: int | None, clock: Clock,
                      palette: Palette) -> None:
        self.requests = [r for r in requests if r.get("status", "pending") == "pending"]
        self.version = version
        self.display = bool(self.requests)
        self.redraw(clock, palette)

    def redraw(self, clock: Clock, palette: Palette) -> None:
        """Draw again (the expiry counts down; the highlighted version's requests go first)."""
        if not self.requests:
            self.update("")
            return
        ordered = order_for(self.requests, self.version)
        lines = [request_line(r, clock, palette) for r in ordered[:SHOWN]]
        if len(ordered) > SHOWN:
            lines.append(Text(f"and {len(ordered) - SHOWN} more pending (approving or rejecting lists them all)",
                              style=palette.muted))
        self.update(Text("\n").join(lines))


__all__ = ["RequestsPanel", "request_line", "request_ref", "requester", "order_for", "expiry"]
