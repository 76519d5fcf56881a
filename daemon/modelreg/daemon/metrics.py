"""Recording metric values: every record is kept, the latest per key is indexed."""

from __future__ import annotations

from .db import Transaction
from .payloads import MetricRecord


async def record(tx: Transaction, version_id: int, records: list[MetricRecord]) -> None:
    if not records:
        return
    await tx.executemany(
        "INSERT INTO metrics (version_id, key, value, step, dataset, source, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(version_id, r.key, r.value, r.step, r.dataset, r.source, tx.now) for r in records])
    latest = {r.key: r.value for r in records}  # the last record of a key in one call wins
    await tx.executemany(
        "INSERT INTO metric_latest (version_id, key, value) VALUES (?, ?, ?) "
        "ON CONFLICT (version_id, key) DO UPDATE SET value = excluded.value",
        [(version_id, k, v) for k, v in latest.items()])
