"""Long-running work the client can follow: hashing a large file, verifying the store.

Jobs live in memory only; what they produce (a ready version, a verify report) is durable
elsewhere, so a restart loses nothing but the progress figure.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any

from modelreg.shared.errors import ModelregError, NotFound

KEEP_FINISHED_S = 600


class Job:
    def __init__(self, kind: str, total: int = 0) -> None:
        self.id = uuid.uuid4().hex[:16]
        self.kind = kind
        self.state = "running"
        self.total = total
        self.done = 0
        self.result: Any = None
        self.error: dict[str, Any] | None = None
        self.started = time.time()
        self.finished: float | None = None
        self._lock = threading.Lock()
        self._event = asyncio.Event()

    def add(self, n: int) -> None:
        """Progress callback; called from worker threads."""
        with self._lock:
            self.done += n

    def succeed(self, result: Any) -> None:
        self.state, self.result, self.finished = "done", result, time.time()
        self._event.set()

    def fail(self, exc: BaseException) -> None:
        err = exc if isinstance(exc, ModelregError) else ModelregError(f"{type(exc).__name__}: {exc}")
        self.state, self.error, self.finished = "failed", err.envelope()["error"], time.time()
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "state": self.state, "total": self.total, "done": self.done,
                "result": self.result, "error": self.error, "elapsed_s": round((self.finished or time.time()) - self.started, 3)}


class Jobs:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}

    def create(self, kind: str, total: int = 0) -> Job:
        self._prune()
        job = Job(kind, total)
        self._jobs[job.id] = job
        return job

    def get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r} (finished jobs are kept for {KEEP_FINISHED_S // 60} minutes)")
        return job

    def _prune(self) -> None:
        cutoff = time.time() - KEEP_FINISHED_S
        for job_id in [j.id for j in self._jobs.values() if j.finished and j.finished < cutoff]:
            del self._jobs[job_id]
