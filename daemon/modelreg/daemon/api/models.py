"""Models: list, create, get, update (rename and delete: catalog_changes.py)."""

from __future__ import annotations

import json

from aiohttp import web

from modelreg.shared.errors import Conflict
from modelreg.shared.names import validate_name

from .. import catalog, changes, events
from ..keys import DB
from ..payloads import parse_model
from .http import actor, body, query_int, reply

routes = web.RouteTableDef()


@routes.get("/v1/models")
async def list_models(request: web.Request) -> web.Response:
    page = await catalog.list_models(request.app[DB], query=request.query.get("q"),
                                     limit=query_int(request, "limit", catalog.DEFAULT_PAGE),
                                     cursor=request.query.get("cursor"))
    return reply(request, page)


@routes.post("/v1/models")
async def create_model(request: web.Request) -> web.Response:
    data = await body(request)
    name = validate_name((data or {}).get("name") if isinstance(data, dict) else None)
    description, tags, directions = parse_model(data)
    db = request.app[DB]
    async with db.transaction() as tx:
        if await tx.one("SELECT 1 FROM models WHERE name = ?", (name,)):
            raise Conflict(f"model {name!r} already exists", {"model": name})
        cur = await tx.execute(
            "INSERT INTO models (name, description, directions, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            (name, description, json.dumps(directions), tx.now, tx.now))
        await tx.executemany("INSERT INTO model_tags VALUES (?, ?, ?)",
                             [(cur.lastrowid, k, v) for k, v in tags.items()])
        await events.append(tx, "model.created", actor(request), model=name)
    return reply(request, await catalog.get_model(db, name), status=201)


@routes.get("/v1/models/{name}")
async def get_model(request: web.Request) -> web.Response:
    return reply(request, await catalog.get_model(request.app[DB], request.match_info["name"]))


@routes.patch("/v1/models/{name}")
async def update_model(request: web.Request) -> web.Response:
    return reply(request, await changes.update_model(request.app[DB], request.match_info["name"], await body(request),
                                                     actor(request)))
