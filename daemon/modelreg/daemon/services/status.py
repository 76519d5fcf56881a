"""What GET /v1/status reports: the process, the store's counts, where artifacts live, the drop folders watched."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from modelreg.shared.timefmt import iso

from .. import __version__
from ..artifacts.blobs import BlobStore
from ..ingest.manager import WatchManager
from ..store import Store


async def status(store: Store, watches: WatchManager, blobs: BlobStore, *, home: Path,
                 started: float) -> dict[str, Any]:
    counts = await store.stats.counts()
    artifacts = blobs.remote.describe() if blobs.remote else {"backend": "local", "path": str(blobs.root)}
    return {"status": "ok", "version": __version__, "pid": os.getpid(), "home": str(home),
            "started_at": iso(started), "uptime_s": round(time.time() - started, 1),
            **counts, "store": {**store.commit_stats(), "durability": await store.durability()},
            "artifacts": artifacts, "watches": await watches.list()}
