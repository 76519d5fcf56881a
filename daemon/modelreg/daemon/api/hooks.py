"""Hooks: list, add, remove, and each hook's delivery log."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from aiohttp import web

from modelreg.shared.errors import InvalidInput, NotFound
from modelreg.shared.names import validate_name
from modelreg.shared.timefmt import iso

from .. import events
from ..keys import DB, HOOKS
from .http import actor, body, query_int, reply

routes = web.RouteTableDef()


def _view(r) -> dict:
    return {"id": r["id"], "kind": r["kind"], "target": r["target"], "events": r["event_kinds"], "model": r["model"],
            "stage": r["stage"], "signed": bool(r["secret"]), "created_at": iso(r["created_at"])}


@routes.get("/v1/hooks")
async def list_hooks(request: web.Request) -> web.Response:
    rows = await request.app[DB].all("SELECT * FROM hooks ORDER BY id")
    return reply(request, {"items": [_view(r) for r in rows]})


@routes.post("/v1/hooks")
async def add_hook(request: web.Request) -> web.Response:
    data = await body(request)
    if not isinstance(data, dict):
        raise InvalidInput("body must be an object")
    kind, target = data.get("kind"), data.get("target")
    if kind not in ("webhook", "command"):
        raise InvalidInput("kind must be webhook or command")
    if not isinstance(target, str) or not target.strip() or len(target) > 4000 or "\x00" in target:
        raise InvalidInput("target must be a URL (webhook) or a shell command (command)")
    if kind == "webhook":
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(f"webhook target {target!r} must be an http(s) URL")
    kinds = data.get("events") or ""
    if not isinstance(kinds, str) or len(kinds) > 1000:
        raise InvalidInput("events must be a comma-separated list of kinds or globs, e.g. 'stage.*,drop.failed'")
    model = data.get("model")
    if model:
        validate_name(model)
        known = await request.app[DB].one("SELECT name FROM models WHERE name = ?", (model,))
        model = known["name"] if known else model  # the stored spelling when the model exists
    stage = data.get("stage")
    if stage and stage not in ("none", "staging", "production", "archived"):
        raise InvalidInput("stage must be none, staging, production or archived")
    secret = data.get("secret")
    if kind == "webhook" and not secret:
        secret = secrets.token_hex(24)
    if secret is not None and (not isinstance(secret, str) or len(secret) > 500):
        raise InvalidInput("secret must be text")
    db = request.app[DB]
    async with db.transaction() as tx:
        cur = await tx.execute(
            "INSERT INTO hooks (kind, target, secret, event_kinds, model, stage, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (kind, target.strip(), secret, kinds, model, stage, tx.now))
        hid = cur.lastrowid
        await events.append(tx, "hook.added", actor(request), model=model,
                            data={"id": hid, "kind": kind, "target": target.strip(), "events": kinds, "stage": stage})
    view = _view(await db.one("SELECT * FROM hooks WHERE id = ?", (hid,)))
    view["secret"] = secret  # shown once, at creation
    return reply(request, view, status=201)


@routes.delete("/v1/hooks/{id}")
async def remove_hook(request: web.Request) -> web.Response:
    hid = _id(request)
    db = request.app[DB]
    async with db.transaction() as tx:
        row = await tx.one("SELECT * FROM hooks WHERE id = ?", (hid,))
        if row is None:
            raise NotFound(f"no hook {hid}")
        await tx.execute("DELETE FROM hooks WHERE id = ?", (hid,))
        await events.append(tx, "hook.removed", actor(request), model=row["model"], data={"id": hid})
    return reply(request, _view(row))


@routes.get("/v1/hooks/{id}/deliveries")
async def deliveries(request: web.Request) -> web.Response:
    hid = _id(request)
    db = request.app[DB]
    if await db.one("SELECT 1 FROM hooks WHERE id = ?", (hid,)) is None:
        raise NotFound(f"no hook {hid}")
    limit = query_int(request, "limit", 100)
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit must be between 1 and 1000")
    rows = await db.all("SELECT d.*, e.kind AS event_kind, e.model, e.version FROM hook_deliveries d "
                        "JOIN events e ON e.id = d.event_id WHERE d.hook_id = ? ORDER BY d.id DESC LIMIT ?", (hid, limit))
    return reply(request, {"items": [
        {"id": r["id"], "event_id": r["event_id"], "event": r["event_kind"], "model": r["model"], "version": r["version"],
         "state": r["state"], "attempts": r["attempts"], "last_status": r["last_status"],
         "next_attempt_at": iso(r["next_at"]) if r["state"] == "pending" else None, "updated_at": iso(r["updated_at"])}
        for r in rows]})


def _id(request: web.Request) -> int:
    try:
        hid = int(request.match_info["id"])
        if not 0 <= hid < 2**63:  # SQLite integers are 64-bit: a bigger one is a 500, not a 404
            raise ValueError
        return hid
    except ValueError:
        raise InvalidInput("hook id must be a number") from None
