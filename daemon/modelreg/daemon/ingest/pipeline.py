"""The one ingest pipeline (PRODUCT.md §2): sniff → check → store → register.

Every way in — ``register PATH``, ``register --upload``, the API with a ``path`` or with
uploaded ``files``, and drop folders — reads its files here: the same sniffers, the same
unsafe-pickle flag, the same format-completeness check, and the same merge of what was
sniffed with what was said (what a person said wins). The version rows themselves are
written by ``services.registry.Registrar``; everything blocking runs in the pool.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import stat
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from modelreg.shared.config import home_overlap_message, overlaps_home
from modelreg.shared.errors import InvalidInput
from modelreg.shared.names import KEY_RE, NAME_RE

from ..artifacts.blobs import BlobStore, Progress, StoreCancelled, StoredBlob
from ..payloads import FileRef, MetricRecord, Registration
from ..sniff import SniffResult, sniff_drop


MAX_FILES = 100_000
SNIFF_CACHE = 256  # upload manifests whose sniff result is remembered


@dataclass
class SourceFile:
    relpath: str
    abspath: Path
    size: int


def collect_files(root: Path) -> list[SourceFile]:
    """Every regular file of a file or folder; symlinks may not lead outside it (blocking)."""
    try:
        st = root.lstat()
    except FileNotFoundError:
        raise InvalidInput(f"{root} does not exist on the daemon's machine") from None
    except PermissionError:
        raise InvalidInput(f"{root} cannot be read by the daemon (permission denied)") from None
    if stat.S_ISLNK(st.st_mode):
        root = _resolve(root)
        st = root.stat()
    if stat.S_ISREG(st.st_mode):
        return [SourceFile(_utf8_name(root.name), root, st.st_size)]
    if not stat.S_ISDIR(st.st_mode):
        raise InvalidInput(f"{root} is neither a regular file nor a folder")
    real_root = root.resolve()
    out: list[SourceFile] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames) + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            full = Path(dirpath) / name
            rel = _utf8_name(full.relative_to(root).as_posix())
            if full.is_symlink():
                target = _resolve(full, rel)
                if not target.is_relative_to(real_root):
                    raise InvalidInput(f"{rel} is a symlink to {target}, outside {root}; refusing to follow it")
                if target.is_dir():
                    continue  # its files are reached through the real folder
            try:
                fst = full.stat()
            except OSError as exc:
                raise InvalidInput(f"cannot read {rel}: {exc.strerror}") from None
            if not stat.S_ISREG(fst.st_mode):
                raise InvalidInput(f"{rel} is not a regular file")
            out.append(SourceFile(rel, full, fst.st_size))
            if len(out) > MAX_FILES:
                raise InvalidInput(f"{root} holds more than {MAX_FILES} files")
    if not out:
        raise InvalidInput(f"{root} holds no files")
    return out


def _resolve(path: Path, shown: str | None = None) -> Path:
    """Where a symlink leads; a broken link or a loop is the caller's mistake, not a crash."""
    try:
        return path.resolve(strict=True)
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop, before Python 3.13
        raise InvalidInput(f"{shown or path} is a symlink that leads nowhere (broken, or a loop)") from None


def _utf8_name(rel: str) -> str:
    """A manifest path must be text: a name in another encoding would fail in SQLite and on the wire."""
    try:
        rel.encode()
    except UnicodeEncodeError:
        shown = rel.encode(errors="surrogateescape").decode(errors="replace")
        raise InvalidInput(f"{shown!r} is not a UTF-8 file name; rename it before registering") from None
    return rel


def resolve_source(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        raise InvalidInput(f"{path} is a symlink loop") from None


def _read_source(path: Path, home: Path) -> tuple[list[SourceFile], Path | None, SniffResult]:
    real = resolve_source(path)
    if overlaps_home(real, home):
        raise InvalidInput(home_overlap_message(path, home, "register files from elsewhere"))
    sources = collect_files(path)
    folder = None if real.is_file() else path  # a folder registered: --move removes it once emptied
    return sources, folder, sniff_drop(folder or sources[0].abspath, [s.relpath for s in sources])


def remove_sources(sources: list[SourceFile], folder: Path | None) -> None:
    """After a --move: the files go, then the folders of ``folder``'s tree left empty (only those)."""
    for s in sources:
        s.abspath.unlink(missing_ok=True)
    if folder is None:
        return
    for dirpath, _, _ in os.walk(folder, topdown=False):  # children before their parent
        try:
            os.rmdir(dirpath)  # refuses a folder that still holds anything
        except OSError:
            pass


def incomplete_reason(sniffed: SniffResult) -> str:
    """Why a set of files is refused: the formats' own words, the same for every entry point."""
    return "the files are incomplete or broken: " + "; ".join(sniffed.problems[:5] or ["unreadable"])


def check(sniffed: SniffResult) -> None:
    """A file that fails its own format check (a truncated safetensors, a cut zip) is never registered."""
    if not sniffed.complete:
        raise InvalidInput(incomplete_reason(sniffed), {"problems": sniffed.problems[:20]})


def merge(reg: Registration, sniffed: SniffResult) -> Registration:
    """Add what the files say to a registration; what the request or sidecar said wins.

    Facts (format, parameter count, dtypes, the unsafe flag…) come only from the files. The
    card's datasets and base model add lineage; its run id stands in only when none was given;
    its metrics are recorded as ``model-card`` records *before* the explicit ones, so an
    explicit value of the same key is the latest, i.e. the value.
    """
    reg.facts = {**sniffed.facts, "complete": sniffed.complete, "unsafe": sniffed.unsafe,
                 **({"problems": sniffed.problems} if sniffed.problems else {})}
    known = {d["ref"] for d in reg.datasets}
    for edge in sniffed.lineage:
        if edge.get("relation") == "derived_from" and edge.get("model"):
            parent = str(edge["model"])[:300]
            if parent not in reg.external_parents:
                reg.external_parents.append(parent)
        elif edge.get("dataset") and edge.get("relation") in ("trained_on", "evaluated_on"):
            ds = dataset_from_card(str(edge["dataset"]))
            if ds and ds not in known:
                known.add(ds)
                reg.datasets.append({"ref": ds, "relation": edge["relation"], "digest": None, "uri": None})
        elif edge.get("relation") == "produced_by" and edge.get("run") and reg.run is None:
            reg.run = {"id": str(edge["run"])[:200], "experiment": None, "started_at": None, "ended_at": None,
                       "hardware": None, "code_revision": None, "hyperparameters": {}}
    card: list[MetricRecord] = []
    for m in sniffed.metrics:
        try:
            value = float(m["value"])
            ds = dataset_from_card(str(m["dataset"])) if m.get("dataset") else None
            card.append(MetricRecord(str(m["key"])[:200], value, "model-card", None, ds))
        except (KeyError, TypeError, ValueError):
            continue
    reg.metrics = [r for r in card if math.isfinite(r.value) and KEY_RE.match(r.key)] + reg.metrics
    return reg


def dataset_from_card(name: str) -> str | None:
    """A hub dataset id ('org/name') as a registry dataset ref ('org--name@hub')."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "--", name.strip()).strip("-.")[:120]
    return f"{clean}@hub" if clean and NAME_RE.match(clean) else None


class Ingest:
    """The blocking steps of the pipeline, each run in the pool."""

    def __init__(self, blobs: BlobStore, pool: Executor) -> None:
        self.blobs, self.pool = blobs, pool
        self._sniffed: OrderedDict[tuple[tuple[str, str], ...], SniffResult] = OrderedDict()
        self._sniffed_lock = threading.Lock()

    async def sniff_path(self, root: Path, rels: list[str]) -> SniffResult:
        """Sniff files where they are: ``root`` is a file or a folder, ``rels`` its files."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, sniff_drop, root, rels)

    async def sniff_blobs(self, files: list[tuple[str, str]]) -> SniffResult:
        """Sniff stored blobs (an upload) under their manifest paths ``[(relpath, sha256)]``."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, self._sniff_blobs, files)

    async def read_upload(self, files: Sequence[FileRef]) -> SniffResult:
        """An upload's blobs, checked (uploaded, the sizes said) and sniffed: one trip to the pool.

        Blobs are content-addressed and never change, so what a set of them says under the same
        manifest paths is remembered (the same weights registered again are not read again).
        """
        key = tuple((f.path, f.sha256) for f in files)
        return await asyncio.get_running_loop().run_in_executor(self.pool, self._read_upload, files, key)

    def _read_upload(self, files: Sequence[FileRef], key: tuple[tuple[str, str], ...]) -> SniffResult:
        for f in files:
            try:
                size = self.blobs.path(f.sha256).stat().st_size
            except FileNotFoundError:
                raise InvalidInput(f"blob {f.sha256} for {f.path} was never uploaded; POST it to /v1/blobs first") from None
            if size != f.size:
                raise InvalidInput(f"{f.path}: size {f.size} does not match the stored blob ({size} bytes)")
        with self._sniffed_lock:
            sniffed = self._sniffed.get(key)
            if sniffed is not None:
                self._sniffed.move_to_end(key)
                return sniffed
        sniffed = self._sniff_blobs(list(key))
        with self._sniffed_lock:
            self._sniffed[key] = sniffed
            while len(self._sniffed) > SNIFF_CACHE:
                self._sniffed.popitem(last=False)
        return sniffed

    async def read_source(self, path: Path, home: Path) -> tuple[list[SourceFile], Path | None, SniffResult]:
        """A file or folder on this machine: its files, the folder (None for one file), what they say.

        The registry's own files are never a source (``--move`` would delete them). One trip to the pool.
        """
        return await asyncio.get_running_loop().run_in_executor(self.pool, _read_source, path, home)

    def _sniff_blobs(self, files: list[tuple[str, str]]) -> SniffResult:
        with self.blobs.linked_tree(files) as tree:
            rels = [rel for rel, _ in files]
            # One top-level file is read as a file drop, anything else as a folder drop.
            single = len(rels) == 1 and "/" not in rels[0]
            return sniff_drop(tree / rels[0] if single else tree, rels)

    async def store(self, sources: list[tuple[str, Path]], *, move: bool, progress: Progress | None = None,
                    cancel: threading.Event | None = None) -> list[StoredBlob]:
        """Store every source file in parallel; all or nothing in flight.

        When one file fails, or ``cancel`` is set, or the caller is cancelled, the others are
        told to stop (between chunks) and awaited, so no temp file outlives this call.
        """
        if not sources:
            return []
        loop = asyncio.get_running_loop()
        stop = cancel or threading.Event()
        futures = [loop.run_in_executor(self.pool, lambda p=p: self.blobs.store_file(
            p, move=move, progress=progress, cancel=stop)) for _, p in sources]
        try:
            _, pending = await asyncio.wait(futures, return_when=asyncio.FIRST_EXCEPTION)
            if pending:  # one failed: the others stop at their next chunk
                stop.set()
                await asyncio.wait(pending)
        except asyncio.CancelledError:
            stop.set()
            await asyncio.wait(futures)
            raise
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            if cancel is not None and cancel.is_set():
                raise StoreCancelled()
            # The first real failure explains it better than the siblings it stopped.
            raise ([e for e in errors if not isinstance(e, StoreCancelled)] or errors)[0]
        return [f.result() for f in futures]
