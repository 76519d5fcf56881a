"""Bulk seeding of large registries (benchmarks, load tests).

``await store.bulk.seed(model, versions)`` inserts ready versions with their files, params,
tags and metrics the way a registration leaves them, but one write (one transaction, one
hop to the writer) per batch of e.g. 10,000 versions instead of one per version: a million
versions take about a minute instead of hours. It goes through the engine like every other
write, so it may run beside a live daemon (another process's writer waits on the lock).

The event chain is extended only when asked (``events=True``: a ``version.created`` and a
``version.ready`` per version, correctly chained); seeded events are not published to
subscribers, since a seed is not news anyone is watching for.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

from modelreg.shared.names import validate_name

from ..records import SeedVersion
from . import events as chain
from .tx import Engine, WriteTx
from .versions import content_digest

BATCH = 10_000


def insert_batch(tx: WriteTx, model: str, batch: list[SeedVersion], *, actor: str, source: str,
                 events: bool) -> tuple[int, int]:
    """Insert ``batch`` as the model's next versions (creating the model); (first, last) number."""
    now = tx.now
    tx.execute("INSERT INTO models (name, created_at, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
               (model, now, now))
    m = tx.one("UPDATE models SET next_version = next_version + ?, updated_at = ? WHERE name = ? "
               "RETURNING id, name, next_version - ? AS first", (len(batch), now, model, len(batch)))
    mid, name, first = m["id"], m["name"], m["first"]
    base_id = tx.one("SELECT coalesce(max(id), 0) FROM versions")[0] + 1  # under the write lock: ours
    digests: dict[tuple[tuple[str, str, int], ...], tuple[str, int]] = {}
    blobs: dict[str, int] = {}
    rows = []
    for i, v in enumerate(batch):
        files = tuple(sorted((f.path, f.sha256, f.size) for f in v.files))
        if files not in digests:
            digests[files] = (content_digest(list(files)), sum(size for _, _, size in files))
            blobs.update((sha, size) for _, sha, size in files)
        digest, total = digests[files]
        rows.append((base_id + i, mid, first + i, source, v.description, digest, total, len(files),
                     now, actor, now))
    tx.executemany(
        "INSERT INTO versions (id, model_id, number, status, source, description, content_digest, total_size, "
        "file_count, facts, created_at, created_by, updated_at) VALUES (?, ?, ?, 'ready', ?, ?, ?, ?, ?, '{}', ?, ?, ?)",
        rows)
    if (sync := tx.dialect.ids_taken("versions")) is not None:
        tx.one(sync)
    tx.executemany("INSERT INTO blobs (sha256, size, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                   [(sha, size, now) for sha, size in blobs.items()])
    ids = range(base_id, base_id + len(batch))
    tx.executemany("INSERT INTO manifest (version_id, path, sha256, size) VALUES (?, ?, ?, ?)",
                   ((vid, f.path, f.sha256, f.size) for vid, v in zip(ids, batch) for f in v.files))
    tx.executemany("INSERT INTO params (version_id, key, value) VALUES (?, ?, ?)",
                   ((vid, k, val) for vid, v in zip(ids, batch) for k, val in v.params.items()))
    tx.executemany("INSERT INTO version_tags (version_id, key, value) VALUES (?, ?, ?)",
                   ((vid, k, val) for vid, v in zip(ids, batch) for k, val in v.tags.items()))
    tx.executemany("INSERT INTO metrics (version_id, key, value, step, dataset, source, recorded_at) "
                   "VALUES (?, ?, ?, NULL, NULL, 'offline', ?)",
                   ((vid, k, val, now) for vid, v in zip(ids, batch) for k, val in v.metrics.items()))
    tx.executemany("INSERT INTO metric_latest (version_id, key, value) VALUES (?, ?, ?)",
                   ((vid, k, val) for vid, v in zip(ids, batch) for k, val in v.metrics.items()))
    if events:
        _append_events(tx, name, first, [(row[5], row[6], row[7]) for row in rows], actor, source)
    return first, first + len(batch) - 1


def _append_events(tx: WriteTx, model: str, first: int, facts: list[tuple[str, int, int]],
                   actor: str, source: str) -> None:
    """version.created + version.ready per version, chained as ``events.append`` would, one head update."""
    head = chain.chain_head(tx)
    if head is None:
        last = tx.one("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1")
        head = (last["id"], last["hash"]) if last else (0, chain.GENESIS)
    event_id, prev = head
    rows: list[tuple[Any, ...]] = []
    created = chain.canonical({"source": source})
    for i, (digest, total, count) in enumerate(facts):
        for kind, body in (("version.created", created),
                           ("version.ready", chain.canonical({"files": count, "total_size": total,
                                                               "content_digest": digest}))):
            event_id += 1
            digest_ = chain.row_hash(prev, event_id, tx.now, kind, actor, model, first + i, body)
            rows.append((event_id, tx.now, kind, actor, model, first + i, body, prev, digest_))
            prev = digest_
    tx.executemany("INSERT INTO events (id, ts, kind, actor, model, version, data, prev_hash, hash) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    tx.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
               (chain.HEAD_KEY, f"{event_id}:{prev}"))


def _chunks(items: Iterable[SeedVersion], size: int) -> Iterator[list[SeedVersion]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


class BulkStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def seed(self, model: str, versions: Iterable[SeedVersion], *, actor: str = "seed",
                   source: str = "api", batch: int = BATCH, events: bool = False) -> int:
        """Add ``versions`` (an iterable, consumed lazily) to ``model`` as ready versions.

        One write per ``batch`` versions; returns how many were added. The blobs the files
        name are recorded in the catalog; their bytes are the caller's business (store them
        through the blob store first if anything will read them).
        """
        validate_name(model)
        added = 0
        for chunk in _chunks(versions, batch):
            await self.engine.write(lambda tx, c=chunk: insert_batch(tx, model, c, actor=actor, source=source,
                                                                     events=events))
            added += len(chunk)
        return added
