"""Content-addressed blob store (PRODUCT.md §5).

Layout: ``blobs/sha256/ab/cdef…`` (read-only files) and ``blobs/tmp/`` for writes in
progress. A blob is written to a temp file, fsynced, renamed into place and the directory
fsynced, so a crash leaves either the whole blob or a temp file that start-up removes.
Every method here blocks; the daemon calls them from a thread pool.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CHUNK = 4 * 1024 * 1024
_FICLONE = 0x40049409  # linux/fs.h: share extents (reflink) on btrfs, xfs, bcachefs…

Progress = Callable[[int], None]


class StoreCancelled(Exception):
    """A store was asked to stop (its job was cancelled); its temp file is already gone."""


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size: int
    method: str  # how the bytes got here: rename | hardlink | reflink | copy | dedup


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.objects = root / "sha256"

    def prepare(self) -> int:
        """Create the layout and remove temp files (and sniffing trees) a crash left behind; returns how many."""
        self.objects.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        removed = 0
        for leftover in self.tmp.iterdir():
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
            removed += 1
        return removed

    def path(self, sha256: str) -> Path:
        return self.objects / sha256[:2] / sha256[2:]

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def _temp_path(self) -> Path:
        return self.tmp / uuid.uuid4().hex

    # -- storing ---------------------------------------------------------------------------

    def store_file(self, src: Path, *, move: bool = False, progress: Progress | None = None,
                   cancel: threading.Event | None = None) -> StoredBlob:
        """Store the bytes of ``src``, copying them at most once.

        ``move`` (the caller deletes ``src`` afterwards) hardlinks when ``src`` is on the same
        filesystem: no byte is copied. Otherwise a reflink is tried, then a single pass that
        hashes while it copies. ``cancel`` is looked at between chunks: once it is set the
        temp file is removed and StoreCancelled raised, so a cancelled job leaves nothing.
        """
        tmp = self._temp_path()
        try:
            if move and self._try_hardlink(src, tmp):
                digest, size = hash_file(tmp, progress, cancel)
                return self._commit(tmp, digest, size, "hardlink")
            with open(src, "rb") as fin, open(tmp, "wb") as fout:
                if _try_reflink(fin, fout):
                    fout.flush()
                    os.fsync(fout.fileno())
                    digest, size = hash_file(tmp, progress, cancel)
                    return self._commit(tmp, digest, size, "reflink")
                digest, size = _copy_hashing(fin, fout, progress, cancel)
                os.fsync(fout.fileno())
            _check(cancel)  # the fsync of a big file takes a while: a cancel may have come meanwhile
            return self._commit(tmp, digest, size, "copy")
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    @contextmanager
    def linked_tree(self, files: list[tuple[str, str]]) -> Iterator[Path]:
        """A temporary folder holding stored blobs under their manifest paths (hardlinks, no copy).

        ``files`` is ``[(relpath, sha256)]``. Sniffers read files on disk by path; this lets
        them read an uploaded version exactly as they read a drop. Removed on exit (and by
        ``prepare`` after a crash).
        """
        root = self._temp_path()
        root.mkdir()
        try:
            for rel, sha in files:
                target = root / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(self.path(sha), target)
                except OSError as exc:
                    if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                        raise
                    shutil.copyfile(self.path(sha), target)
            yield root
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def open_writer(self) -> BlobWriter:
        """A writer for streamed uploads: write() chunks, then commit() or abort()."""
        return BlobWriter(self, self._temp_path())

    def _try_hardlink(self, src: Path, tmp: Path) -> bool:
        try:
            os.link(src, tmp, follow_symlinks=False)
            return True
        except OSError as exc:
            if exc.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                return False
            raise

    def _commit(self, tmp: Path, digest: str, size: int, method: str) -> StoredBlob:
        final = self.path(digest)
        if final.exists():
            tmp.unlink(missing_ok=True)
            os.utime(final)  # freshly referenced: gc's grace period for unknown blobs starts now
            return StoredBlob(digest, size, "dedup")
        final.parent.mkdir(parents=True, exist_ok=True)
        if method == "hardlink":
            # The inode is shared with a drop that is about to be removed; make it durable.
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.chmod(tmp, 0o444)
        os.replace(tmp, final)
        _fsync_dir(final.parent)
        return StoredBlob(digest, size, "rename" if method == "hardlink" else method)

    # -- reading and checking ----------------------------------------------------------------

    def verify(self, sha256: str, progress: Progress | None = None) -> str:
        """'ok', 'missing' or 'corrupt' for one blob, by re-hashing its bytes."""
        path = self.path(sha256)
        try:
            digest, _ = hash_file(path, progress)
        except FileNotFoundError:
            return "missing"
        return "ok" if digest == sha256 else "corrupt"

    def iter_digests(self) -> Iterator[str]:
        for sub in sorted(self.objects.iterdir()):
            if sub.is_dir():
                for blob in sorted(sub.iterdir()):
                    yield sub.name + blob.name

    def remove(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)


class BlobWriter:
    """Streams an upload into a temp file while hashing it (blocking calls)."""

    def __init__(self, store: BlobStore, tmp: Path) -> None:
        self.store = store
        self.tmp = tmp
        self._file = open(tmp, "wb")
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        self._file.write(data)
        self.size += len(data)

    @property
    def digest(self) -> str:
        return self._hash.hexdigest()

    def commit(self) -> StoredBlob:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return self.store._commit(self.tmp, self._hash.hexdigest(), self.size, "copy")

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.tmp.unlink(missing_ok=True)


def hash_file(path: Path, progress: Progress | None = None,
              cancel: threading.Event | None = None) -> tuple[str, int]:
    """sha256 and size of a file, read in large chunks (hashlib releases the GIL)."""
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    size = 0
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            _check(cancel)
            h.update(view[:n])
            size += n
            if progress:
                progress(n)
    return h.hexdigest(), size


def _copy_hashing(fin, fout, progress: Progress | None, cancel: threading.Event | None) -> tuple[str, int]:
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    size = 0
    while n := fin.readinto(buf):
        _check(cancel)
        h.update(view[:n])
        fout.write(view[:n])
        size += n
        if progress:
            progress(n)
    return h.hexdigest(), size


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise StoreCancelled()


def _try_reflink(fin, fout) -> bool:
    try:
        fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
        return True
    except OSError:
        return False


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
