"""Approval requests (issue 12): the votes on a move an ``approvals >= N`` gate held back.

A request is opened by the lifecycle, in the write of the move it holds back. Here it is
listed, read and voted on. Voting needs ``promote`` on the model and is open to every
identity but the requester, one vote each, with a reason. A rejection closes the request; the
approval that makes the count runs the move at once, in the vote's own write, through the
other gates again on fresh state and as the requester (``by`` rules look at who asked), with
the approving identities as its ``approvals``. The command gates run before that write, when
this vote may be the one that completes the request.

A request nobody decides on expires (``MODELREG_APPROVAL_TTL``, a week by default); it is
closed ``expired`` when it is next read or voted on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from modelreg.shared.errors import Conflict, Forbidden, InvalidInput, ModelregError
from modelreg.shared.names import validate_name

from ..store import Store
from ..store.records import GateDecision, GateFacts
from .identity import Identity
from .lifecycle import CommandsNotRun, Lifecycle

STATUSES = ("pending", "approved", "rejected", "expired", "failed", "cancelled")
MAX_LIST = 1000

log = logging.getLogger("modelreg.approvals")

Decide = Callable[[GateFacts, tuple[str, ...]], GateDecision]  # on the vote's fresh state, with the approvals so far


class ApprovalService:
    def __init__(self, store: Store, lifecycle: Lifecycle) -> None:
        self.store, self.lifecycle = store, lifecycle

    async def list(self, who: Identity, model: str | None = None, status: str | None = None, mine: bool = False,
                   limit: int = 100) -> dict[str, Any]:
        """Requests newest first; ``mine``: the ones the caller's identity asked for. A token
        limited to some models sees only theirs."""
        if model:
            validate_name(model)
            who.require("read", model)
        if status and status not in STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES)}, not {status[:50]!r}")
        if not 1 <= limit <= MAX_LIST:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIST}")
        await self.store.approvals.expire_due(time.time())
        items = await self.store.approvals.list(model or None, status or None, who.name if mine else None, limit)
        return {"items": [r for r in items if who.covers(r["model"])]}

    async def get(self, request_id: int, who: Identity) -> dict[str, Any]:
        await self.store.approvals.expire_due(time.time())
        request = await self.store.approvals.get(request_id)
        who.require("read", request["model"])
        return request

    async def approve(self, request_id: int, who: Identity, reason: str) -> dict[str, Any]:
        """Approve; the approval that completes the request runs its move (``change``: the move's
        result, as a transition or alias move answers; None while pending or when it failed)."""
        return await self._vote(request_id, who, reason, "approve")

    async def reject(self, request_id: int, who: Identity, reason: str) -> dict[str, Any]:
        return await self._vote(request_id, who, reason, "reject")

    async def _vote(self, request_id: int, who: Identity, reason: str, kind: str) -> dict[str, Any]:
        request = await self.store.approvals.get(request_id)
        verb = "approve" if kind == "approve" else "reject"
        who.require("promote", request["model"], doing=f"voting on approval request #{request_id}")
        if who.name == request["requested_by"]:
            raise Forbidden(f"{who.name} asked for approval request #{request_id} and cannot {verb} it: "
                            "approvals come from other identities", {"request": request_id, "identity": who.name})
        completes = kind == "approve" and len(request["approvals"]) + 1 >= request["required"]
        for run_commands in (completes, True):
            decide = await self._decider(request, kind, run_commands)
            try:
                after, change = await self.store.approvals.vote(request_id, who.name, who.actor, kind, reason, decide)
                break
            except CommandsNotRun:  # another vote came in meanwhile and this one completes it
                log.info("approval request #%d: a concurrent vote made this one complete it; running its "
                         "command gates first", request_id)
        if after["status"] == "expired":
            raise Conflict(f"approval request #{request_id} expired at {after['expires_at']}; the vote was not "
                           "recorded (ask again: modelreg promote …)", {"request": request_id, "status": "expired"})
        if change is not None:
            await self.lifecycle.approved(after)
        return {"request": after, "change": change}

    async def _decider(self, request: dict[str, Any], kind: str, run_commands: bool) -> Decide:
        """The decide callable for the vote's write: the request's gates read afresh (not needed
        for a rejection or a request already closed, which the write refuses)."""
        if kind != "approve" or request["status"] != "pending":
            return _never
        try:
            return await self.lifecycle.request_decider(request, run_commands)
        except ModelregError as exc:  # e.g. the version was deleted: the write closes it failed
            error = exc  # ``exc`` is unbound once the except block ends; the closure runs later

            def failing(fresh: GateFacts, approvals: tuple[str, ...]) -> GateDecision:
                raise error
            return failing


def _never(fresh: GateFacts, approvals: tuple[str, ...]) -> GateDecision:
    raise Conflict("this vote cannot move anything")
