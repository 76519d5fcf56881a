"""The one ingest pipeline (PRODUCT.md §2): sniff → check → store → register.

Every way in — ``register PATH``, ``register --upload``, the API with a ``path`` or with
uploaded ``files``, and drop folders — reads its files here: the same sniffers, the same
unsafe-pickle flag, the same format-completeness check, and the same merge of what was
sniffed with what was said (what a person said wins). The version rows themselves are
written by ``registration.Registrar``; everything blocking runs in the pool.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
from concurrent.futures import Executor
from pathlib import Path

from modelreg.shared.errors import InvalidInput
from modelreg.shared.names import KEY_RE, NAME_RE

from ..blobs import BlobStore, Progress, StoreCancelled, StoredBlob
from ..payloads import MetricRecord, Registration
from ..sniff import SniffResult, sniff_drop


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

    async def sniff_path(self, root: Path, rels: list[str]) -> SniffResult:
        """Sniff files where they are: ``root`` is a file or a folder, ``rels`` its files."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, sniff_drop, root, rels)

    async def sniff_blobs(self, files: list[tuple[str, str]]) -> SniffResult:
        """Sniff stored blobs (an upload) under their manifest paths ``[(relpath, sha256)]``."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, self._sniff_blobs, files)

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
