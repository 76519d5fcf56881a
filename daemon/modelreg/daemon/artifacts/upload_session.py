"""One resumable upload on disk: its part file and its state (blocking; run in the pool).

``blobs/uploads/<id>.part`` holds the bytes received so far, ``<id>.json`` the announced size
and sha256 and the durable offset: the number of bytes fsynced before the JSON recording them
was written (itself fsynced, renamed into place, the folder fsynced). Bytes past that offset
may be lost in a crash, so loading a session cuts its part file back to it; a client asks for
the offset and sends from there. Once every byte is in and the digest matches, the part file
is renamed into the content-addressed store and the JSON kept as a small record of the result
(``state: committed``), so a client whose connection dropped during the last part learns
that it succeeded. No database table: no schema change for something this transient.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .blobs import BlobStore, HashingFile, StoredBlob, _fsync_dir

OPEN, COMMITTED = "open", "committed"
_PART, _STATE = ".part", ".json"


@dataclass
class UploadSession:
    folder: Path
    id: str
    size: int
    sha256: str
    offset: int = 0                    # durable: fsynced and recorded in the JSON
    state: str = OPEN
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)  # last checkpoint: the idle timeout counts from here
    blob: dict[str, Any] | None = None  # {sha256, size, deduplicated} once committed
    _out: HashingFile | None = field(default=None, repr=False)

    @property
    def part(self) -> Path:
        return self.folder / f"{self.id}{_PART}"

    @property
    def state_file(self) -> Path:
        return self.folder / f"{self.id}{_STATE}"

    @property
    def received(self) -> int:
        """Bytes in the part file, recorded or not yet."""
        return self._out.size if self._out is not None else self.offset

    # -- lifecycle --------------------------------------------------------------------------------

    @classmethod
    def create(cls, folder: Path, upload_id: str, size: int, sha256: str) -> UploadSession:
        session = cls(folder, upload_id, size, sha256)
        session.part.touch(mode=0o600, exist_ok=False)
        session._save()
        return session

    @classmethod
    def load(cls, state_file: Path) -> UploadSession | None:
        """The session a previous run left, its part cut back to the durable offset; None if unusable."""
        try:
            raw = json.loads(state_file.read_text())
            session = cls(state_file.parent, str(raw["id"]), int(raw["size"]), str(raw["sha256"]),
                          int(raw["offset"]), str(raw["state"]), float(raw["created"]), float(raw["updated"]),
                          raw.get("blob"))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if session.state_file != state_file or session.state not in (OPEN, COMMITTED):
            return None
        if session.state == OPEN:
            try:
                if session.part.stat().st_size < session.offset:
                    return None  # bytes recorded as durable are missing: nothing to resume from
                os.truncate(session.part, session.offset)
            except FileNotFoundError:
                return None
        return session

    def write(self, data: bytes) -> None:
        """Append ``data`` after what was received (not durable until ``checkpoint``)."""
        if self._out is None:
            # After a restart or a rollback: re-hash the durable bytes once, then append.
            self._out = HashingFile(self.part, resume=True)
        try:
            self._out.write(data)
        except BaseException:
            self.rollback()  # its hash may hold bytes the file does not: start again from the checkpoint
            raise

    def checkpoint(self) -> int:
        """Make every byte received durable and record it; the new offset."""
        try:
            if self._out is not None and self._out.size != self.offset:
                self._out.sync()
                self.offset = self._out.size
            self.updated = time.time()
            self._save()
        except BaseException:
            self.rollback()  # e.g. a full disk: what is not recorded is not kept
            raise
        return self.offset

    def rollback(self) -> None:
        """Forget the bytes received since the last checkpoint."""
        out, self._out = self._out, None
        if out is not None:
            out.abandon()
        os.truncate(self.part, self.offset)

    def digest(self) -> str:
        """sha256 of the durable bytes (hashed as they came; re-read only after a restart)."""
        if self._out is None:
            self._out = HashingFile(self.part, resume=True)
        return self._out.digest

    def commit(self, blobs: BlobStore) -> StoredBlob:
        """Every byte is in and the digest checked: the part becomes the blob; the JSON records the result."""
        if self._out is not None:
            self._out.close()
            self._out = None
        if self.offset != self.size or self.part.stat().st_size != self.size:
            raise RuntimeError(f"upload {self.id} committed at {self.offset} of {self.size} bytes")
        stored = blobs.commit_file(self.part, self.sha256, self.size)
        self.settle({"sha256": stored.sha256, "size": stored.size, "deduplicated": stored.method == "dedup"})
        return stored

    def settle(self, blob: dict[str, Any]) -> None:
        """Record the upload as done with ``blob`` in the store; the part file is gone (renamed or removed)."""
        self.part.unlink(missing_ok=True)
        self.state, self.blob, self.offset = COMMITTED, blob, self.size
        self.updated = time.time()
        self._save()

    def discard(self) -> None:
        if self._out is not None:
            self._out.discard()
            self._out = None
        self.part.unlink(missing_ok=True)
        self.state_file.unlink(missing_ok=True)

    def _save(self) -> None:
        record = {"id": self.id, "size": self.size, "sha256": self.sha256, "offset": self.offset,
                  "state": self.state, "created": self.created, "updated": self.updated, "blob": self.blob}
        tmp = self.state_file.with_suffix(".json-new")
        with open(tmp, "w") as f:
            json.dump(record, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_file)
        _fsync_dir(self.folder)


def load_all(folder: Path) -> tuple[list[UploadSession], int]:
    """The sessions in ``folder`` that can go on, and how many leftovers were removed
    (unreadable state, parts without state, half-written state files)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    sessions, removed = [], 0
    for state_file in folder.glob(f"*{_STATE}"):
        session = UploadSession.load(state_file)
        if session is None:
            state_file.unlink(missing_ok=True)
            state_file.with_suffix(_PART).unlink(missing_ok=True)
            removed += 1
        else:
            sessions.append(session)
    known = {s.part for s in sessions if s.state == OPEN}
    for leftover in folder.iterdir():
        if leftover.suffix != _STATE and leftover not in known and not leftover.is_dir():
            leftover.unlink(missing_ok=True)
            removed += 1
    return sessions, removed
