"""MLflow artifacts routes (filled in by issue 10's work)."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
