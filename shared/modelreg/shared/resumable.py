"""The client side of resumable uploads (``/v1/blobs/uploads``, docs/api.md), shared by both clients.

A file above ``RESUMABLE_ABOVE`` is hashed, announced (size + sha256), then sent in parts of
``PART_SIZE``, each at the offset the daemon reports as durable. A connection error is retried
with a growing pause, after asking the daemon where it got to, so the upload goes on from
there instead of from the start. ``Upload`` does the bookkeeping (progress, retries, what to
tell the user); each client does the transport beside its HTTP library.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from .calls import Call
from .config import API_PREFIX
from .errors import ModelregError
from .units import format_size

UPLOADS = f"{API_PREFIX}/blobs/uploads"
RESUMABLE_ABOVE = 64 * 1024 * 1024  # smaller files go in one POST /v1/blobs: a retry costs little
PART_SIZE = 64 * 1024 * 1024         # one PATCH; the daemon makes each durable before it answers
RETRIES = 8                          # failures in a row without the daemon's offset moving
FIRST_PAUSE, MAX_PAUSE = 0.25, 15.0  # seconds before a retry, doubling

Progress = Callable[[int], None]
Notify = Callable[[str], None]


def create_call(size: int, sha256: str) -> Call:
    return Call("POST", UPLOADS, body={"size": size, "sha256": sha256})


def status_call(upload_id: str) -> Call:
    return Call("GET", f"{UPLOADS}/{upload_id}")


def abort_call(upload_id: str) -> Call:
    return Call("DELETE", f"{UPLOADS}/{upload_id}")


def part_path(upload_id: str) -> str:
    return f"{UPLOADS}/{upload_id}"


def file_sha256(path: Path) -> str:
    """The digest the daemon checks at the end (blocking: one read of the file)."""
    with open(path, "rb", buffering=0) as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class Upload:
    """One file's resumable upload: where it is, what was reported, when to give up.

    ``progress(n)`` gets the bytes sent as they go; after a resume, a negative ``n`` takes
    back what was sent but not kept, so a bar shows what the daemon holds.
    """

    def __init__(self, path: Path, size: int, progress: Progress | None, notify: Notify | None) -> None:
        self.path, self.size = path, size
        self._progress, self._notify = progress, notify
        self.reported = 0  # bytes counted on the progress callback
        self._failures = 0
        self._held = 0     # the highest offset the daemon reported
        self._lost = False

    def sent(self, n: int) -> None:
        self.reported += n
        if self._progress:
            self._progress(n)

    def at(self, offset: int) -> None:
        """The daemon holds ``offset`` bytes: progress follows it; moving on resets the retry count."""
        if offset != self.reported:
            self.sent(offset - self.reported)
        if offset > self._held:
            self._held, self._failures = offset, 0
        if self._lost:
            self._lost = False
            self.tell(f"resuming {self.path.name} at {format_size(offset)} of {format_size(self.size)} "
                      f"(the daemon kept {offset:,} bytes)")

    def failed(self, exc: ModelregError) -> float:
        """A connection error: the pause before the next try, or ``exc`` raised after too many."""
        self._failures += 1
        if self._failures > RETRIES:
            exc.message = f"{exc.message} (upload of {self.path.name} gave up after {RETRIES} retries " \
                          f"at {format_size(self._held)} of {format_size(self.size)})"
            raise exc
        pause = min(MAX_PAUSE, FIRST_PAUSE * 2 ** (self._failures - 1))
        self._lost = True
        self.tell(f"upload of {self.path.name} interrupted at {format_size(self.reported)} of "
                  f"{format_size(self.size)} ({exc.message}); retrying in {pause:g} s "
                  f"({self._failures} of {RETRIES})")
        return pause

    def part(self, offset: int) -> int:
        """How many bytes the next PATCH carries from ``offset``."""
        return min(PART_SIZE, self.size - offset)

    def tell(self, text: str) -> None:
        if self._notify:
            self._notify(text)
