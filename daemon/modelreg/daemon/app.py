"""The application factory: state under AppKeys, resources in cleanup contexts."""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import web

from modelreg.shared.config import TOKEN_FILE

from . import registration
from .api import admin, blobs as blobs_api, events as events_api, health, jobs as jobs_api, lineage as lineage_api
from .api import middleware, models, versions
from .blobs import BlobStore
from .config import DaemonConfig
from .db import Database
from .events import EventBus
from .jobs import Jobs
from .keys import BLOBS, BUS, CONFIG, DB, JOBS, POOL, REGISTRAR, STARTED, TOKEN
from .lock import HomeLock

log = logging.getLogger("modelreg.daemon")


def ensure_token(home: Path) -> str:
    """HOME/token, created 0600 on first start; local clients read it from there."""
    path = home / TOKEN_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        token = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        return token


def create_app(config: DaemonConfig) -> web.Application:
    app = web.Application(client_max_size=config.max_body, middlewares=[middleware.errors, middleware.auth])
    app[CONFIG] = config
    app[STARTED] = time.time()
    config.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    app[TOKEN] = ensure_token(config.home)
    app[BUS] = EventBus()
    app[JOBS] = Jobs()
    app[BLOBS] = BlobStore(config.home / "blobs")
    app.cleanup_ctx.extend([_home_lock, _pool, _database, _registrar])
    for module in (health, models, versions, blobs_api, lineage_api, events_api, jobs_api, admin):
        app.router.add_routes(module.routes)
    return app


async def _home_lock(app: web.Application) -> AsyncIterator[None]:
    lock = HomeLock(app[CONFIG].home)
    lock.acquire()
    removed = app[BLOBS].prepare()
    if removed:
        log.info("removed %d temp files left by an interrupted write", removed)
    yield
    lock.release()


async def _pool(app: web.Application) -> AsyncIterator[None]:
    workers = app[CONFIG].workers or max(2, os.cpu_count() or 2)
    app[POOL] = ThreadPoolExecutor(workers, thread_name_prefix="modelreg-io")
    yield
    app[POOL].shutdown(wait=False, cancel_futures=True)


async def _database(app: web.Application) -> AsyncIterator[None]:
    db = Database(app[CONFIG].db_path)
    await db.open()
    db.on_commit.append(app[BUS].publish)
    app[DB] = db
    failed = await registration.recover_interrupted(db)
    if failed:
        log.warning("marked %d interrupted registrations failed", failed)
    yield
    app[BUS].close()
    await db.close()


async def _registrar(app: web.Application) -> AsyncIterator[None]:
    app[REGISTRAR] = registration.Registrar(app[DB], app[BLOBS], app[POOL], app[JOBS])
    yield
    await app[REGISTRAR].close()
