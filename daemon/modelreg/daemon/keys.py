"""Every piece of application state, under a typed AppKey."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from .artifacts.blobs import BlobStore
from .services.approvals import ApprovalService
from .config import DaemonConfig
from .services.bus import EventBus
from .services.hooks import HookDispatcher
from .ingest.manager import WatchManager
from .jobs import Jobs
from .services.gates import GateService
from .services.lifecycle import Lifecycle
from .services.mlflow.artifacts import Artifacts as MlflowArtifacts
from .services.mlflow.registry import MlflowRegistry
from .services.mlflow.tracking import Tracking
from .services.registry import Registrar
from .services.signing import Signing
from .services.tokens import TokenService
from .services.uploads import Uploads
from .services.watchdogs import Watchdogs
from .store import Store

CONFIG = web.AppKey("config", DaemonConfig)
STORE = web.AppKey("store", Store)
BLOBS = web.AppKey("blobs", BlobStore)
BUS = web.AppKey("bus", EventBus)
JOBS = web.AppKey("jobs", Jobs)
POOL = web.AppKey("pool", ThreadPoolExecutor)
REGISTRAR = web.AppKey("registrar", Registrar)
TOKEN = web.AppKey("token", str)
STARTED = web.AppKey("started", float)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
GATES = web.AppKey("gates", GateService)
HOOKS = web.AppKey("hooks", HookDispatcher)
SOCKETS = web.AppKey("sockets", set)
WATCHES = web.AppKey("watches", WatchManager)
TASKS = web.AppKey("tasks", set)  # background tasks started by requests (verify); cancelled on shutdown
MLFLOW_TRACKING = web.AppKey("mlflow_tracking", Tracking)  # MLflow's tracking subset (services/mlflow)
MLFLOW_ARTIFACTS = web.AppKey("mlflow_artifacts", MlflowArtifacts)  # mlflow-artifacts over our blobs
MLFLOW_REGISTRY = web.AppKey("mlflow_registry", MlflowRegistry)  # MLflow's model registry over ours
UPLOADS = web.AppKey("uploads", Uploads)  # resumable blob uploads (/v1/blobs/uploads)
TOKENS = web.AppKey("tokens", TokenService)  # named, scoped tokens (issue 12)
APPROVALS = web.AppKey("approvals", ApprovalService)  # approval requests and their votes (issue 12)
SIGNING = web.AppKey("signing", Signing)  # trusted keys and signature bundles (issue 12)
WATCHDOGS = web.AppKey("watchdogs", Watchdogs)  # rules on production monitoring metrics (issue 12)
