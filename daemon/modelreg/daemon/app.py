"""The application factory: state under AppKeys, resources in cleanup contexts."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import web

from modelreg.shared.config import TOKEN_FILE

from .artifacts import remote, serving
from .api import admin, audit, blobs as blobs_api, cards, events as events_api, gates as gates_api, health
from .api import hooks as hooks_api, jobs as jobs_api, lifecycle as lifecycle_api, lineage as lineage_api
from .api import middleware, models, stream, versions, watches as watches_api
from .api import catalog_changes, compare, registration as registration_api, search, tokens as tokens_api
from .api import signatures as signatures_api
from .api import watchdogs as watchdogs_api
from .api import approvals as approvals_api
from .api.mlflow import artifacts as mlflow_artifacts, registry as mlflow_registry, tracking as mlflow_tracking
from .artifacts.blobs import BlobStore
from .config import DaemonConfig
from .services.bus import EventBus
from .jobs import Jobs
from .services.hooks import HookDispatcher
from .ingest.manager import WatchManager
from .ingest.processor import DropProcessor
from .keys import MLFLOW_ARTIFACTS, MLFLOW_REGISTRY, MLFLOW_TRACKING
from .keys import SIGNING
from .keys import BLOBS, BUS, CONFIG, GATES, STORE, HOOKS, JOBS, LIFECYCLE, POOL, REGISTRAR, SOCKETS, STARTED, TASKS, TOKEN, WATCHES
from .keys import TOKENS, UPLOADS, WATCHDOGS
from .keys import APPROVALS
from .services.approvals import ApprovalService
from .services.gates import GateService
from .services.lifecycle import Lifecycle
from .services.mlflow.artifacts import Artifacts as MlflowArtifacts
from .services.mlflow.registry import MlflowRegistry
from .services.mlflow.tracking import Tracking
from .lock import HomeLock
from .services.registry import Registrar
from .services.tokens import TokenService
from .services.uploads import Uploads
from .services.watchdogs import Watchdogs
from .store import open_store

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
    app = web.Application(client_max_size=config.max_body, middlewares=[middleware.guard])
    app[CONFIG] = config
    app[STARTED] = time.time()
    config.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    app[TOKEN] = ensure_token(config.home)
    app[BUS] = EventBus()
    app[JOBS] = Jobs()
    app[BLOBS] = BlobStore(config.home / "blobs")
    app[SOCKETS] = set()
    app[TASKS] = set()
    app.cleanup_ctx.extend([_home_lock, _pool, _artifacts, _uploads, _database, _registrar, _mlflow, _lifecycle, _watchdogs, _mlflow_registry, _hooks, _watches])
    app.on_shutdown.append(_close_sockets)
    for module in (health, models, versions, cards, blobs_api, lineage_api, events_api, jobs_api, admin, lifecycle_api,
                   gates_api, hooks_api, stream, audit, watches_api, catalog_changes, compare, search, registration_api,
                   mlflow_registry, mlflow_tracking, mlflow_artifacts, tokens_api, watchdogs_api, approvals_api, signatures_api):
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


async def _artifacts(app: web.Application) -> AsyncIterator[None]:
    """MODELREG_ARTIFACTS=s3://…: S3 is the artifacts' source of truth behind the local store."""
    blobs = app[BLOBS]
    if app[CONFIG].artifacts:
        blobs.remote = await remote.open_remote(app[CONFIG].artifacts, blobs, app[POOL])
        log.info("artifacts in %s at %s", blobs.remote.describe()["url"], blobs.remote.describe()["endpoint"])
    yield
    if blobs.remote is not None:
        await blobs.remote.s3.close()


async def _uploads(app: web.Application) -> AsyncIterator[None]:
    """Resumable uploads: sessions a previous run left resume; idle ones are reaped in the background."""
    cfg = app[CONFIG]
    app[UPLOADS] = Uploads(app[BLOBS], app[POOL], cfg.max_upload, cfg.upload_ttl)
    await app[UPLOADS].start()
    yield
    await app[UPLOADS].close()


async def _database(app: web.Application) -> AsyncIterator[None]:
    store = open_store(app[CONFIG].database, app[CONFIG].home)
    await store.open()  # migrates
    store.on_commit.append(app[BUS].publish)
    app[STORE] = store
    app[TOKENS] = TokenService(store)
    failed = await store.versions.recover_interrupted()
    if failed:
        log.warning("marked %d interrupted registrations failed", failed)
    yield
    app[BUS].close()
    await store.close()


async def _registrar(app: web.Application) -> AsyncIterator[None]:
    app[REGISTRAR] = Registrar(app[STORE], app[BLOBS], app[POOL], app[JOBS], app[CONFIG].home)
    app[SIGNING] = app[REGISTRAR].signing  # trusted keys and signature bundles (issue 12)
    yield
    await app[REGISTRAR].close()


async def _mlflow(app: web.Application) -> AsyncIterator[None]:
    """MLflow's tracking subset and mlflow-artifacts (issue 10); multipart parts left by a
    previous run are removed at start and at shutdown."""
    app[MLFLOW_TRACKING] = Tracking(app[STORE])
    app[MLFLOW_ARTIFACTS] = MlflowArtifacts(app[STORE], app[BLOBS], app[POOL], app[CONFIG].home, app[CONFIG].max_upload)
    await app[MLFLOW_ARTIFACTS].start()
    yield
    await app[MLFLOW_ARTIFACTS].close()


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    cfg = app[CONFIG]
    lifecycle = Lifecycle(app[STORE], app[BLOBS], app[POOL], cfg.home, f"http://{cfg.host}:{cfg.port}",
                          cfg.approval_ttl)
    app[LIFECYCLE] = lifecycle
    app[APPROVALS] = ApprovalService(app[STORE], lifecycle)
    app[GATES] = GateService(app[STORE])
    await asyncio.get_running_loop().run_in_executor(app[POOL], serving.cleanup_temp, cfg.home)
    # A crash between a commit and its symlink swap is repaired here.
    await app[LIFECYCLE].refresh_all_serving()
    yield
    for task in list(app[TASKS]):
        task.cancel()
    await asyncio.gather(*app[TASKS], return_exceptions=True)
    await lifecycle.close()


async def _watchdogs(app: web.Application) -> AsyncIterator[None]:
    """Watchdogs on production monitoring metrics (issue 12): evaluated after commit, they roll back
    through the lifecycle."""
    app[WATCHDOGS] = Watchdogs(app[STORE], app[LIFECYCLE])
    await app[WATCHDOGS].start()
    yield
    await app[WATCHDOGS].close()


async def _mlflow_registry(app: web.Application) -> AsyncIterator[None]:
    """MLflow's model registry over our services (issue 10): it needs the lifecycle for its gates."""
    cfg = app[CONFIG]
    app[MLFLOW_REGISTRY] = MlflowRegistry(app[STORE], app[REGISTRAR], app[LIFECYCLE], app[POOL], cfg.home,
                                          cfg.mlflow_roots, app[MLFLOW_TRACKING])
    yield


async def _hooks(app: web.Application) -> AsyncIterator[None]:
    app[HOOKS] = HookDispatcher(app[STORE], app[BUS], backoff_base=app[CONFIG].hook_backoff)
    await app[HOOKS].start()
    yield
    await app[HOOKS].close()


async def _close_sockets(app: web.Application) -> None:
    for ws in list(app[SOCKETS]):
        await ws.close(code=1001, message=b"daemon shutting down")


async def _watches(app: web.Application) -> AsyncIterator[None]:
    processor = DropProcessor(app[STORE], app[BLOBS], app[POOL], app[REGISTRAR], app[LIFECYCLE])
    app[WATCHES] = WatchManager(app[STORE], processor, app[POOL], app[CONFIG].home)
    await app[WATCHES].start()
    yield
    await app[WATCHES].close()
