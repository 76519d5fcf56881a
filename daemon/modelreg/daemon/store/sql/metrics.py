"""Metric records and latest values.

Every record is kept (``metrics``); the latest value per key is indexed (``metric_latest``)
so filters and orderings read one row per version and key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import msgspec

from modelreg.shared.names import Ref

from . import catalog, events
from .tx import Engine, WriteTx


class Metric(Protocol):
    """What a metric record carries (``payloads.MetricRecord`` is one)."""

    key: str
    value: float
    source: str
    step: int | None
    dataset: str | None


def record(tx: WriteTx, version_id: int, records: Sequence[Metric]) -> None:
    """Keep every record; the last record of a key in one call is its latest value."""
    if not records:
        return
    tx.executemany(
        "INSERT INTO metrics (version_id, key, value, step, dataset, source, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(version_id, r.key, r.value, r.step, r.dataset, r.source, tx.now) for r in records])
    latest = {r.key: r.value for r in records}
    tx.executemany(
        "INSERT INTO metric_latest (version_id, key, value) VALUES (?, ?, ?) "
        "ON CONFLICT (version_id, key) DO UPDATE SET value = excluded.value",
        [(version_id, k, v) for k, v in latest.items()])


def record_for(tx: WriteTx, ref: Ref | str, records: Sequence[Metric], actor: str) -> dict[str, Any]:
    """Record metrics on the version a ref names: records, latest values, updated_at, the event; its view."""
    rec = catalog.resolve(tx, ref)
    record(tx, rec.id, records)
    tx.execute("UPDATE versions SET updated_at = ? WHERE id = ?", (tx.now, rec.id))
    events.append(tx, "metric.recorded", actor, model=rec.model_name, version=rec.number,
                  data={"metrics": {r.key: r.value for r in records}, "source": sorted({r.source for r in records})})
    return catalog.version_detail(tx, msgspec.structs.replace(rec, updated_at=tx.now))


class MetricStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def record(self, ref: Ref | str, records: Sequence[Metric], actor: str) -> dict[str, Any]:
        """One transaction: record the metrics, bump the version's updated_at, append metric.recorded.

        Returns the version's view as committed.
        """
        return await self.engine.write(lambda tx: record_for(tx, ref, records, actor))
