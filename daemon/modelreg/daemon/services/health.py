"""What GET /v1/health says: whether this daemon can serve requests (issue 13).

SQLite lives inside the daemon: health is ``{"status": "ok", "version": …}`` as it always was.
PostgreSQL is a server of its own that can go away, so health asks it (a one-row read,
bounded in time) and answers 503 ``{"status": "degraded", "reason": "database: PostgreSQL: …"}``
while it does not answer, the error envelope alongside for modelreg's own clients. Nothing
restarts: the pool reconnects on the next request, so health turns ok again by itself.
"""

from __future__ import annotations

import asyncio
from typing import Any

from modelreg.shared.errors import Unavailable

from .. import __version__
from ..store import Store

TIMEOUT = 3.0  # a server that does not answer within this is as good as gone, to a load balancer


async def health(store: Store) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of GET /v1/health."""
    ok = {"status": "ok", "version": __version__}
    if store.backend == "sqlite":  # in-process: nothing to lose but the daemon itself
        return 200, ok
    try:
        await asyncio.wait_for(store.audit.last_id(), TIMEOUT)
    except asyncio.TimeoutError:
        problem = Unavailable(f"PostgreSQL: no answer from {store.where} within {TIMEOUT:g}s",
                              {"database": store.where})
    except Unavailable as exc:
        problem = exc
    else:
        return 200, ok
    problem.message = f"database: {problem.message}"
    return 503, {"status": "degraded", "reason": problem.message, "version": __version__, **problem.envelope()}


def fanout(store: Store) -> dict[str, Any] | None:
    """The cross-daemon event feed (GET /v1/status; PostgreSQL only): the newest event this
    daemon published to its subscribers, and whether it is LISTENing for the others' now."""
    feed = getattr(store.engine, "feed", None)
    return None if feed is None else {"published": feed.published, "listening": feed.listening}
