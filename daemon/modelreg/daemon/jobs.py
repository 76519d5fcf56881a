"""Long-running work the client can follow: hashing a large file, verifying the store.

Jobs live in memory only; what they produce (a ready version, a verify report) is durable
elsewhere, so a restart loses nothing but the progress figure. A cancellable job (storing a
registration's files) is cancelled through a flag its worker threads look at between chunks:
a thread cannot be interrupted, but it can be asked.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any

from modelreg.shared.errors import Conflict, ModelregError, NotFound

KEEP_FINISHED_S = 600


class Job:
    def __init__(self, kind: str, total: int = 0, cancellable: bool = False, subject: str | None = None) -> None:
        self.id = uuid.uuid4().hex[:16]
        self.kind = kind
        self.subject = subject  # what it works on, e.g. the version being registered
        self.cancellable = cancellable
        self.cancel_requested = threading.Event()  # set by cancel(); the workers stop at their next chunk
        self.state = "running"
        self.total = total
        self.done = 0
        self.result: Any = None
        self.error: dict[str, Any] | None = None  # the view's copy of ``exception`` (built once)
        self.exception: ModelregError | None = None  # what failed it, for a caller waiting on the job
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
        """The work failed: its error is kept as it is (the waiter raises it), the view shows it."""
        err = exc if isinstance(exc, ModelregError) else ModelregError(f"{type(exc).__name__}: {exc}")
        self.state, self.exception, self.finished = "failed", err, time.time()
        self.error = err.envelope()["error"]
        self._event.set()

    def cancelled(self) -> None:
        """The work stopped because cancel() asked it to."""
        self.state, self.finished = "cancelled", time.time()
        self._event.set()

    def cancel(self) -> None:
        """Ask the work to stop; a job that already ended keeps its outcome."""
        if not self.cancellable:
            raise Conflict(f"a {self.kind} job cannot be cancelled")
        if self.state == "running":
            self.cancel_requested.set()

    async def wait(self) -> None:
        await self._event.wait()

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "subject": self.subject, "state": self.state, "total": self.total,
                "done": self.done, "result": self.result, "error": self.error, "cancellable": self.cancellable,
                "cancel_requested": self.cancel_requested.is_set(),
                "elapsed_s": round((self.finished or time.time()) - self.started, 3)}


class Jobs:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}

    def create(self, kind: str, total: int = 0, cancellable: bool = False, subject: str | None = None) -> Job:
        self._prune()
        job = Job(kind, total, cancellable, subject)
        self._jobs[job.id] = job
        return job

    def get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r} (finished jobs are kept for {KEEP_FINISHED_S // 60} minutes)")
        return job

    def list(self, kind: str | None = None) -> list[Job]:
        """Running jobs first, then the finished ones still kept; newest first within each."""
        self._prune()
        jobs = [j for j in self._jobs.values() if kind is None or j.kind == kind]
        return sorted(jobs, key=lambda j: (j.state != "running", -j.started))

    def _prune(self) -> None:
        cutoff = time.time() - KEEP_FINISHED_S
        for job_id in [j.id for j in self._jobs.values() if j.finished and j.finished < cutoff]:
            del self._jobs[job_id]
