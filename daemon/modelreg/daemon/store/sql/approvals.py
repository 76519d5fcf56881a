"""Approval requests and their votes (issue 12).

A move that an ``approvals >= N`` gate holds back opens a request inside the transition's own
write (``open_request``, called by stages.transition / stages.set_alias); a vote is one write
(``vote``): it re-reads the request, records the vote, and when the approvals are enough asks
the service's synchronous ``decide`` for the verdict on the state the write sees and commits
the stage change (or alias move) with it, so two votes arriving together cannot run the move
twice: the second finds the request closed. Expired requests are closed by the next read or
vote (``expire_due``); no background job is needed. Every step appends its event to the hash
chain in the same transaction: ``approval.requested``, ``approval.approved`` /
``approval.rejected`` (a vote), ``approval.closed`` (with its status).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from modelreg.shared.errors import Conflict, ModelregError, NotFound
from modelreg.shared.timefmt import iso

from ..records import GateDecision, GateFacts, VersionRecord
from . import catalog, events, stages
from .tx import Sql, Engine, WriteTx

# decide(facts, approving identities) -> the verdict of the move on fresh state.
DecideApproved = Callable[[GateFacts, tuple[str, ...]], GateDecision]

_REQUEST = ("SELECT r.*, m.name AS model_name, v.number AS number FROM approval_requests r "
            "JOIN models m ON m.id = r.model_id JOIN versions v ON v.id = r.version_id")


# -- reads -----------------------------------------------------------------------------------------


def _votes(q: Sql, request_ids: list[int]) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {i: [] for i in request_ids}
    if not request_ids:
        return out
    marks = ",".join("?" * len(request_ids))
    for row in q.all(f"SELECT * FROM approval_votes WHERE request_id IN ({marks}) ORDER BY at, identity",
                     request_ids):
        out[row["request_id"]].append(row)
    return out


def _vote_view(row: Any) -> dict[str, Any]:
    return {"identity": row["identity"], "actor": row["actor"], "reason": row["reason"], "at": iso(row["at"])}


def request_view(row: Any, votes: list[Any]) -> dict[str, Any]:
    """A request as the API shows it (RequestView, docs/api.md)."""
    return {
        "id": row["id"], "model": row["model_name"], "version": row["number"],
        "ref": f"{row['model_name']}@{row['number']}", "target": row["target"],
        "requested_by": row["requested_by"], "requested_actor": row["requested_actor"], "reason": row["reason"],
        "required": row["required"],
        "approvals": [_vote_view(v) for v in votes if v["vote"] == "approve"],
        "rejections": [_vote_view(v) for v in votes if v["vote"] == "reject"],
        "status": row["status"], "outcome": row["outcome"],
        "verdict": json.loads(row["verdict"]) if row["verdict"] else None,
        "created_at": iso(row["created_at"]), "expires_at": iso(row["expires_at"]),
        "closed_at": iso(row["closed_at"]) if row["closed_at"] is not None else None,
    }


def _row(q: Sql, request_id: int) -> Any:
    row = q.one(f"{_REQUEST} WHERE r.id = ?", (request_id,))
    if row is None:
        raise NotFound(f"there is no approval request #{request_id}", {"request": request_id})
    return row


def get(q: Sql, request_id: int) -> dict[str, Any]:
    row = _row(q, request_id)
    return request_view(row, _votes(q, [row["id"]])[row["id"]])


def list_requests(q: Sql, model: str | None, status: str | None, requested_by: str | None,
                  limit: int) -> list[dict[str, Any]]:
    """Newest first, filtered by model, status and requester."""
    where, params = [], []
    if model is not None:
        where.append("r.model_id = ?")
        params.append(catalog.model_id(q, model))
    if status is not None:
        where.append("r.status = ?")
        params.append(status)
    if requested_by is not None:
        where.append("r.requested_by = ?")
        params.append(requested_by)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = q.all(f"{_REQUEST}{clause} ORDER BY r.id DESC LIMIT ?", [*params, limit])
    votes = _votes(q, [r["id"] for r in rows])
    return [request_view(r, votes[r["id"]]) for r in rows]


def any_due(q: Sql, now: float) -> bool:
    return q.one("SELECT 1 FROM approval_requests WHERE status = 'pending' AND expires_at <= ? LIMIT 1",
                 (now,)) is not None


# -- writes ----------------------------------------------------------------------------------------


def close(tx: WriteTx, row: Any, status: str, outcome: str, verdict: dict[str, Any] | None = None) -> None:
    """Close a pending request (``approval.closed``); ``verdict`` replaces the stored one when given."""
    tx.execute("UPDATE approval_requests SET status = ?, outcome = ?, closed_at = ?, "
               "verdict = COALESCE(?, verdict) WHERE id = ?",
               (status, outcome, tx.now, json.dumps(verdict) if verdict is not None else None, row["id"]))
    events.append(tx, "approval.closed", row["requested_actor"], model=row["model_name"], version=row["number"],
                  data={"request": row["id"], "target": row["target"], "status": status, "outcome": outcome})


def supersede(tx: WriteTx, version_id: int, to_stage: str, how: str, keep: int | None = None) -> None:
    """A stage change makes the version's pending requests for that stage moot (it got there
    another way), and archiving makes all its stage requests moot: reviewers must not approve a
    move whose facts changed under them (a version a watchdog rolled away, say). They close
    ``cancelled`` in the same write; ``keep`` is the request whose approval is making this change."""
    rows = tx.all(f"{_REQUEST} WHERE r.version_id = ? AND r.status = 'pending' AND r.target NOT LIKE '@%' "
                  "AND (r.target = ? OR ? = 'archived') AND r.id IS DISTINCT FROM ?", (version_id, to_stage, to_stage, keep))
    for row in rows:
        moot = (f"{row['model_name']}@{row['number']} reached {to_stage} without it ({how})" if row["target"] == to_stage
                else f"{row['model_name']}@{row['number']} was archived ({how}); ask again if it should still move")
        close(tx, row, "cancelled", moot)


def expire_due(tx: WriteTx) -> int:
    """Close every pending request past its expiry as ``expired``; how many."""
    rows = tx.all(f"{_REQUEST} WHERE r.status = 'pending' AND r.expires_at <= ? ORDER BY r.id", (tx.now,))
    for row in rows:
        close(tx, row, "expired", f"expired at {iso(row['expires_at'])} with {_approvals(tx, row['id'])} "
                                  f"of {row['required']} approvals")
    return len(rows)


def _approvals(q: Sql, request_id: int) -> int:
    return q.one("SELECT count(*) FROM approval_votes WHERE request_id = ? AND vote = 'approve'", (request_id,))[0]


def open_request(tx: WriteTx, rec: VersionRecord, target: str, requested_by: str, requested_actor: str,
                 reason: str, required: int, verdict: dict[str, Any] | None, ttl: float) -> dict[str, Any]:
    """Open a request for moving ``rec`` to ``target``, or join the one already pending for it
    (its verdict refreshed); an expired one is closed first and a new one opened."""
    pending = tx.one(f"{_REQUEST} WHERE r.version_id = ? AND r.target = ? AND r.status = 'pending'", (rec.id, target))
    if pending is not None and pending["expires_at"] <= tx.now:
        expire_due(tx)
        pending = None
    joined = pending is not None
    if joined:
        request_id = pending["id"]
        tx.execute("UPDATE approval_requests SET verdict = ?, required = ? WHERE id = ?",
                   (json.dumps(verdict) if verdict else None, required, request_id))
    else:
        request_id = tx.one(
            "INSERT INTO approval_requests (model_id, version_id, target, requested_by, requested_actor, reason, "
            "required, verdict, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (rec.model_id, rec.id, target, requested_by, requested_actor, reason, required,
             json.dumps(verdict) if verdict else None, tx.now, tx.now + ttl))["id"]
    events.append(tx, "approval.requested", requested_actor, model=rec.model_name, version=rec.number, data={
        "request": request_id, "target": target, "required": required, "reason": reason, "joined": joined,
        "requested_by": requested_by, "verdict": verdict})
    return get(tx, request_id)


def vote(tx: WriteTx, request_id: int, identity: str, actor: str, kind: str, reason: str,
         decide: DecideApproved) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Record ``identity``'s vote (approve | reject) on a pending request and act on it.

    A rejection closes the request. An approval asks ``decide`` for the verdict with every
    approval so far, on the state this write sees: still short of approvals, the request stays
    pending; allowed, the move is committed as the requester and the request closes
    ``approved``; refused (or the version can no longer move), it closes ``failed``. Returns
    the request after the vote and the move's result (None unless it ran). A request past its
    expiry is closed ``expired`` instead and the vote is not recorded."""
    row = _row(tx, request_id)
    if row["status"] == "pending" and row["expires_at"] <= tx.now:
        expire_due(tx)
        return get(tx, request_id), None
    if row["status"] != "pending":
        raise Conflict(f"approval request #{request_id} is already {row['status']}"
                       + (f": {row['outcome']}" if row["outcome"] else ""), {"request": request_id,
                                                                             "status": row["status"]})
    if tx.one("SELECT 1 FROM approval_votes WHERE request_id = ? AND identity = ?", (request_id, identity)):
        raise Conflict(f"{identity} has already voted on approval request #{request_id}; one vote per identity",
                       {"request": request_id, "identity": identity})
    tx.execute("INSERT INTO approval_votes (request_id, identity, actor, vote, reason, at) VALUES (?, ?, ?, ?, ?, ?)",
               (request_id, identity, actor, kind, reason, tx.now))
    voters = tuple(r["identity"] for r in tx.all(
        "SELECT identity FROM approval_votes WHERE request_id = ? AND vote = 'approve' ORDER BY at, identity",
        (request_id,)))
    events.append(tx, "approval.approved" if kind == "approve" else "approval.rejected", actor,
                  model=row["model_name"], version=row["number"],
                  data={"request": request_id, "target": row["target"], "reason": reason, "identity": identity,
                        "approvals": len(voters), "required": row["required"]})
    if kind == "reject":
        close(tx, row, "rejected", f"rejected by {identity}: {reason}")
        return get(tx, request_id), None
    return _decide_and_move(tx, row, voters, decide)


def _decide_and_move(tx: WriteTx, row: Any, voters: tuple[str, ...],
                     decide: DecideApproved) -> tuple[dict[str, Any], dict[str, Any] | None]:
    target, request_id = row["target"], row["id"]
    alias = target[1:] if target.startswith("@") else None
    try:
        rec = stages.live_version(tx, row["version_id"])
        facts = stages.alias_gate_facts(tx, rec, alias) if alias else stages.gate_facts(tx, rec)
        decision = decide(facts, voters)
    except ModelregError as exc:  # the version moved, was deleted, or cannot be deployed any more
        close(tx, row, "failed", exc.message)
        return get(tx, request_id), None
    verdict = decision.verdict
    if decision.approvals_needed:  # still short (or the gate now asks for more): stays open
        tx.execute("UPDATE approval_requests SET verdict = ?, required = ? WHERE id = ?",
                   (json.dumps(verdict) if verdict else None, decision.approvals_needed, request_id))
        return get(tx, request_id), None
    if not decision.allowed:
        failed = [f"{r['rule']} → {r['message']}" for r in (verdict or {}).get("rules", []) if r["status"] != "pass"]
        close(tx, row, "failed", "the gates refused it: " + "; ".join(failed), verdict)
        return get(tx, request_id), None
    actor, reason = row["requested_actor"], row["reason"]
    if alias:
        outcome = stages.point_alias(tx, rec, alias, actor, decision, reason, voters)
        change: dict[str, Any] = {"model": rec.model_name, "aliases": outcome.aliases, "verdict": verdict}
        words = f"{rec.model_name}@{alias} → v{rec.number}"
    else:
        outcome = stages.apply_transition(tx, rec, target, actor, reason, decision, voters, request_id)
        change = {"version": outcome.view, "verdict": verdict, "archived": outcome.archived}
        words = f"{rec.ref} is now {target}"
    close(tx, row, "approved", f"{words}, approved by {', '.join(voters)}", verdict)
    return get(tx, request_id), change


class ApprovalStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def expire_due(self, now: float) -> int:
        """Close the requests past their expiry; a read first, so the usual case writes nothing."""
        if not await self.engine.read(lambda q: any_due(q, now)):
            return 0
        return await self.engine.write(expire_due)

    async def get(self, request_id: int) -> dict[str, Any]:
        return await self.engine.read(lambda q: get(q, request_id))

    async def list(self, model: str | None, status: str | None, requested_by: str | None,
                   limit: int) -> list[dict[str, Any]]:
        return await self.engine.read(lambda q: list_requests(q, model, status, requested_by, limit))

    async def vote(self, request_id: int, identity: str, actor: str, kind: str, reason: str,
                   decide: DecideApproved) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """One vote and what it sets off, in one write (see ``vote``)."""
        return await self.engine.write(lambda tx: vote(tx, request_id, identity, actor, kind, reason, decide))
