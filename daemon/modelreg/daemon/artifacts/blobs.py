"""Content-addressed blob store (PRODUCT.md §5).

Layout: ``blobs/sha256/ab/cdef…`` (read-only files), ``blobs/tmp/`` for writes in
progress and ``blobs/uploads/`` for resumable uploads (``artifacts/upload_session.py``: they
outlive a restart, so start-up leaves them to the upload service). A blob is written to a temp
file, fsynced, renamed into place and the directory fsynced, so a crash leaves either the whole
blob or a temp file that start-up removes.
Every method here blocks; the daemon calls them from a thread pool.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import queue
import shutil
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .remote import RemoteBlobs

CHUNK = 4 * 1024 * 1024       # hashing alone, and copies of files up to PIPE_CHUNK, read by CHUNK
PIPE_CHUNK = 1024 * 1024      # one step of the copy pipeline (stays in cache between read, hash, write)
PIPE_DEPTH = 8                # buffers in flight between the hasher and the writer
WRITEBACK_STEP = 32 * 1024 * 1024  # the writer starts writeback every this many bytes
COPY_CHUNK = 8 * 1024 * 1024  # one copy_file_range call, then hashed from the temp file
COPY_LEAD = 8                 # chunks the kernel copy may run ahead of the hashing
_FADVISE = hasattr(os, "posix_fadvise")
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
        self.uploads = root / "uploads"
        # With MODELREG_ARTIFACTS=s3://…, S3 is the source of truth and these files its staging
        # area and cache (artifacts/remote.py); None: these files are the artifacts.
        self.remote: RemoteBlobs | None = None

    def prepare(self) -> int:
        """Create the layout and remove temp files (and sniffing trees) a crash left behind; returns how many."""
        self.objects.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.uploads.mkdir(mode=0o700, exist_ok=True)
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

    def touch(self, sha256: str) -> int | None:
        """The blob's size if it is stored (its gc grace period for unreferenced blobs restarts now), else None."""
        try:
            os.utime(self.path(sha256))
            return self.path(sha256).stat().st_size
        except FileNotFoundError:
            return None

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

    def commit_file(self, tmp: Path, digest: str, size: int) -> StoredBlob:
        """Make a file already written and fsynced (its sha256 computed as written) the blob ``digest``.

        The file is renamed into place (or removed, when the store has those bytes already).
        """
        return self._commit(tmp, digest, size, "copy")

    def _commit(self, tmp: Path, digest: str, size: int, method: str) -> StoredBlob:
        final = self.path(digest)
        if final.exists():
            # A drop hard-linked in before a crash IS the blob: touching it would change the
            # drop's mtime, which the ingest reads as "still being written" (and retries for ever).
            same = tmp.exists() and os.path.samefile(tmp, final)
            tmp.unlink(missing_ok=True)
            if not same:
                os.utime(final)  # freshly referenced: gc's grace period for unknown blobs starts now
            return StoredBlob(digest, size, "dedup")
        if not final.parent.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            _fsync_dir(final.parent.parent)  # the new shard folder's own entry survives a power cut too
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


async def batched(chunks: AsyncIterator[bytes], size: int = CHUNK) -> AsyncIterator[bytes]:
    """A byte stream (a request body, an S3 object) regrouped into pieces of about ``size`` bytes:
    one pool hop each to hash or write them."""
    pending = bytearray()
    async for chunk in chunks:
        pending += chunk
        if len(pending) >= size:
            yield bytes(pending)
            pending.clear()
    if pending:
        yield bytes(pending)


class HashingFile:
    """A file being written and hashed as it is written (blocking calls, run off the loop).

    ``resume`` opens an existing file to append to it: its bytes are hashed first (one read),
    so the digest stays that of the whole file.
    """

    def __init__(self, path: Path, *, resume: bool = False) -> None:
        self.path = path
        self._hash = hashlib.sha256()
        self.size = 0
        if resume:
            self._file = open(path, "r+b")
            buf = bytearray(CHUNK)
            while n := self._file.readinto(buf):
                self._hash.update(memoryview(buf)[:n])
                self.size += n
        else:
            self._file = open(path, "wb")

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        self._file.write(data)
        self.size += len(data)

    @property
    def digest(self) -> str:
        return self._hash.hexdigest()

    def sync(self) -> None:
        """Every byte written so far is on disk (fsync); the file stays open."""
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Closed once its bytes are on disk (fsync)."""
        self.sync()
        self._file.close()

    def abandon(self) -> None:
        """Close without keeping what may still be buffered (the caller truncates or removes the file)."""
        try:
            self._file.close()
        except OSError:
            pass  # the flush failed (a full disk): the descriptor is closed all the same

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)


class BlobWriter(HashingFile):
    """Streams an upload into a temp file while hashing it, then commits it as a blob."""

    def __init__(self, store: BlobStore, tmp: Path) -> None:
        super().__init__(tmp)
        self.store = store

    def commit(self) -> StoredBlob:
        self.close()
        return self.store.commit_file(self.path, self.digest, self.size)

    def abort(self) -> None:
        self.discard()


def hash_file(path: Path, progress: Progress | None = None,
              cancel: threading.Event | None = None) -> tuple[str, int]:
    """sha256 and size of a file, read in large chunks (hashlib releases the GIL)."""
    with open(path, "rb", buffering=0) as f:
        _advise_sequential(f.fileno())
        return _small(f, None, progress, cancel)


class _Stage(threading.Thread):
    """The writing end of the copy pipeline: ``work`` runs until it returns; its exception is kept."""

    def __init__(self, name: str, work: Callable[[], None]) -> None:
        super().__init__(name=name, daemon=True)
        self.work = work
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.work()
        except BaseException as exc:  # noqa: BLE001 - handed to the thread that waits for it
            self.error = exc


def _copy_hashing(fin, fout, progress: Progress | None, cancel: threading.Event | None) -> tuple[str, int]:
    """Copy ``fin`` to ``fout`` reading the source once, hashing and writing pipelined (the caller fsyncs).

    The kernel copies (``copy_file_range``: no trip through our memory) while this thread
    hashes what has landed in the temp file, so the digest is of the bytes stored, whatever
    happens to the source meanwhile. Where the kernel cannot copy, ``_pipeline`` reads,
    hashes and writes the same buffers instead.
    """
    fout.flush()
    if os.fstat(fin.fileno()).st_size > PIPE_CHUNK and hasattr(os, "copy_file_range"):
        try:
            return _kernel_copy_hashing(fin.fileno(), fout, progress, cancel)
        except _NoKernelCopy:
            pass
    return _pipeline(fin, fout.fileno(), progress, cancel)


class _NoKernelCopy(Exception):
    """copy_file_range refused its first chunk (another filesystem, an old kernel): nothing was written."""


_NO_COPY_RANGE = {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM, errno.EBADF}


def _kernel_copy_hashing(src: int, fout, progress: Progress | None,
                         cancel: threading.Event | None) -> tuple[str, int]:
    dst = fout.fileno()
    _advise_sequential(src)
    try:
        first = os.copy_file_range(src, dst, COPY_CHUNK, 0, 0)
    except OSError as exc:
        if exc.errno in _NO_COPY_RANGE:
            raise _NoKernelCopy() from exc
        raise
    copied: queue.Queue[tuple[int, int] | None] = queue.Queue(maxsize=COPY_LEAD)
    stop = threading.Event()
    hashed = [0]  # bytes hashed so far: the copier starts writeback only behind it

    def copy() -> None:
        offset, started, n = 0, 0, first
        try:
            while n and not stop.is_set():
                copied.put((offset, n))
                offset += n
                if _FADVISE and hashed[0] - started >= WRITEBACK_STEP:
                    # Start writeback of what is copied and hashed, without waiting for it.
                    os.posix_fadvise(dst, started, hashed[0] - started, os.POSIX_FADV_DONTNEED)
                    started = hashed[0]
                n = os.copy_file_range(src, dst, COPY_CHUNK, offset, offset)
        finally:
            copied.put(None)

    copier = _Stage("blob-copy", copy)
    h = hashlib.sha256()
    buf = bytearray(COPY_CHUNK)
    view = memoryview(buf)
    rd = os.open(fout.name, os.O_RDONLY)
    copier.start()
    try:
        while (item := copied.get()) is not None:
            _check(cancel)
            offset, n = item
            got = 0
            while got < n:
                k = os.preadv(rd, [view[got:n]], offset + got)
                if not k:
                    raise OSError(errno.EIO, "the temp file is shorter than what was copied into it", fout.name)
                got += k
            h.update(view[:n])
            hashed[0] = offset + n
            if progress:
                progress(n)
    finally:
        stop.set()
        while copier.is_alive():  # let a copier blocked on the full queue see the stop
            try:
                copied.get(timeout=0.05)
            except queue.Empty:
                pass
        copier.join()
        os.close(rd)
    if copier.error is not None:
        raise copier.error
    return h.hexdigest(), hashed[0]


def _pipeline(fin, dst: int, progress: Progress | None, cancel: threading.Event | None) -> tuple[str, int]:
    """sha256 and size of ``fin``'s bytes, written to the file descriptor ``dst`` as they are hashed.

    This thread reads each chunk once and hashes it (hashlib releases the GIL on big chunks);
    a writer thread writes the same buffer meanwhile and asks the kernel to start writing back
    what it wrote, so the disk works while we hash and the one fsync at the end (the caller's)
    finds little left to do. The bytes written are exactly the bytes hashed. Buffers go round
    a bounded pool, so memory stays at PIPE_DEPTH chunks. ``cancel`` is looked at between
    chunks: the writer is stopped and joined, then StoreCancelled is raised.
    """
    if os.fstat(fin.fileno()).st_size <= PIPE_CHUNK:
        return _small(fin, dst, progress, cancel)  # not worth a thread
    _advise_sequential(fin.fileno())
    free: queue.Queue[bytearray | None] = queue.Queue()
    for _ in range(PIPE_DEPTH):
        free.put(bytearray(PIPE_CHUNK))
    to_write: queue.Queue[tuple[bytearray, int] | None] = queue.Queue()

    def write() -> None:
        offset = started = 0  # bytes written; bytes handed to writeback so far
        try:
            while (item := to_write.get()) is not None:
                buf, n = item
                view = memoryview(buf)[:n]
                while view:
                    view = view[os.write(dst, view):]
                offset += n
                free.put(buf)
                if _FADVISE and offset - started >= WRITEBACK_STEP:
                    # Start writeback of what is written, without waiting for it.
                    os.posix_fadvise(dst, started, offset - started, os.POSIX_FADV_DONTNEED)
                    started = offset
        finally:
            free.put(None)  # a hasher waiting for a buffer sees the writer has stopped

    writer = _Stage("blob-write", write)
    writer.start()
    h = hashlib.sha256()
    size = 0
    try:
        while True:
            buf = free.get()
            if buf is None:  # the writer stopped: its error is raised below
                break
            n = fin.readinto(buf)
            if not n:
                break
            _check(cancel)
            h.update(memoryview(buf)[:n])
            to_write.put((buf, n))
            size += n
            if progress:
                progress(n)
    finally:
        to_write.put(None)
        writer.join()
    if writer.error is not None:
        raise writer.error
    return h.hexdigest(), size


def _advise_sequential(fd: int) -> None:
    if _FADVISE:
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)  # a larger readahead window
        except OSError:
            pass


def _small(fin, dst: int | None, progress: Progress | None, cancel: threading.Event | None) -> tuple[str, int]:
    """Hash (and write to ``dst``, if given) in this thread: hashing alone, or a file of a chunk or so."""
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    size = 0
    while n := fin.readinto(buf):
        _check(cancel)
        view = memoryview(buf)[:n]
        h.update(view)
        while dst is not None and view:
            view = view[os.write(dst, view):]
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
