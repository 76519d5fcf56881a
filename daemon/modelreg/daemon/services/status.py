"""What GET /v1/status reports: the process, the store's counts, the drop folders watched."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from modelreg.shared.timefmt import iso

from .. import __version__
from ..ingest.manager import WatchManager
from ..store import Store


async def status(store: Store, watches: WatchManager, *, home: Path, started: float) -> dict[str, Any]:
    counts = await store.stats.counts()
    return {"status": "ok", "version": __version__, "pid": os.getpid(), "home": str(home),
            "started_at": iso(started), "uptime_s": round(time.time() - started, 1),
            **counts, "store": {**store.commit_stats(), "durability": await store.durability()},
            "watches": await watches.list()}
