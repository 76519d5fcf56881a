"""Gate rules: list, add, remove (per model and target stage, or registry-wide)."""

from __future__ import annotations

from aiohttp import web

from modelreg.shared.errors import InvalidInput, NotFound
from modelreg.shared.names import validate_name
from modelreg.shared.timefmt import iso

from .. import catalog, events
from ..gates import parse_rule, unknown_metric_warnings
from ..keys import DB
from .http import actor, body, reply

routes = web.RouteTableDef()


def _gate_view(r) -> dict:
    return {"id": r["id"], "model": r["model"], "stage": r["stage"], "rule": r["rule"], "timeout": r["timeout"],
            "created_at": iso(r["created_at"]), "created_by": r["created_by"]}


@routes.get("/v1/gates")
async def list_gates(request: web.Request) -> web.Response:
    where, params = [], []
    if model := request.query.get("model"):
        where.append("(m.name = ? OR g.model_id IS NULL)")
        params.append(validate_name(model))
    if stage := request.query.get("stage"):
        where.append("g.stage = ?")
        params.append(stage)
    rows = await request.app[DB].all(
        "SELECT g.*, m.name AS model FROM gates g LEFT JOIN models m ON m.id = g.model_id "
        + ("WHERE " + " AND ".join(where) if where else "") + " ORDER BY g.id", params)
    return reply(request, {"items": [_gate_view(r) for r in rows]})


@routes.post("/v1/gates")
async def add_gate(request: web.Request) -> web.Response:
    data = await body(request)
    if not isinstance(data, dict):
        raise InvalidInput("body must be an object")
    stage = data.get("stage")
    if stage not in ("staging", "production"):
        raise InvalidInput("stage must be staging or production: gates guard the way into them")
    rule = parse_rule(data.get("rule"))
    timeout = data.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 86400):
        raise InvalidInput("timeout must be a number of seconds between 0 and 86400")
    model = data.get("model")
    db = request.app[DB]
    async with db.transaction() as tx:
        mid = await catalog.model_id(tx, model) if model else None
        if mid is not None:  # the stored spelling, not the caller's
            model = (await tx.one("SELECT name FROM models WHERE id = ?", (mid,)))["name"]
        cur = await tx.execute("INSERT INTO gates (model_id, stage, rule, timeout, created_at, created_by) "
                               "VALUES (?, ?, ?, ?, ?, ?)", (mid, stage, rule.text, timeout, tx.now, actor(request)))
        gid = cur.lastrowid
        await events.append(tx, "gate.added", actor(request), model=model,
                            data={"id": gid, "stage": stage, "rule": rule.text})
        warnings = unknown_metric_warnings(rule, await catalog.metric_keys(tx, mid), model)
    row = await db.one("SELECT g.*, m.name AS model FROM gates g LEFT JOIN models m ON m.id = g.model_id WHERE g.id = ?",
                       (gid,))
    return reply(request, {**_gate_view(row), "warnings": warnings}, status=201)


@routes.delete("/v1/gates/{id}")
async def remove_gate(request: web.Request) -> web.Response:
    try:
        gid = int(request.match_info["id"])
        if not 0 <= gid < 2**63:  # SQLite integers are 64-bit: a bigger one is a 500, not a 404
            raise ValueError
    except ValueError:
        raise InvalidInput("gate id must be a number") from None
    db = request.app[DB]
    async with db.transaction() as tx:
        row = await tx.one("SELECT g.*, m.name AS model FROM gates g LEFT JOIN models m ON m.id = g.model_id "
                           "WHERE g.id = ?", (gid,))
        if row is None:
            raise NotFound(f"no gate {gid}")
        await tx.execute("DELETE FROM gates WHERE id = ?", (gid,))
        await events.append(tx, "gate.removed", actor(request), model=row["model"],
                            data={"id": gid, "stage": row["stage"], "rule": row["rule"]})
    return reply(request, _gate_view(row))
