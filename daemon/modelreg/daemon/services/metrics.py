"""Recording metrics on a version: the body checked, then one store transaction."""

from __future__ import annotations

from typing import Any

from modelreg.shared.names import parse_ref

from ..payloads import parse_record_metrics
from ..store import Store


async def record(store: Store, ref: str, data: Any, actor: str) -> dict[str, Any]:
    """Record the metrics a body holds on the version ``ref`` names; its view as committed.

    The body is checked before the ref (a bad body is reported first, as it always was). One
    transaction records them, bumps the version's updated_at and appends metric.recorded.
    """
    records = parse_record_metrics(data)
    return await store.metrics.record(parse_ref(ref), records, actor)
