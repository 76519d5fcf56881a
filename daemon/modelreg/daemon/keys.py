"""Every piece of application state, under a typed AppKey."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from .blobs import BlobStore
from .config import DaemonConfig
from .db import Database
from .events import EventBus
from .jobs import Jobs
from .registration import Registrar

CONFIG = web.AppKey("config", DaemonConfig)
DB = web.AppKey("db", Database)
BLOBS = web.AppKey("blobs", BlobStore)
BUS = web.AppKey("bus", EventBus)
JOBS = web.AppKey("jobs", Jobs)
POOL = web.AppKey("pool", ThreadPoolExecutor)
REGISTRAR = web.AppKey("registrar", Registrar)
TOKEN = web.AppKey("token", str)
STARTED = web.AppKey("started", float)
