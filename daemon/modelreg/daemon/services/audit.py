"""The audit log: pages of events, the live stream's catch-up, and verifying the hash chain."""

from __future__ import annotations

from typing import Any

from modelreg.shared.errors import InvalidInput
from modelreg.shared.names import validate_name

from ..store import Store

VERIFY_BATCH = 5000


async def list_events(store: Store, *, model: str | None, kind: str | None, after: int | None,
                      limit: int) -> dict[str, Any]:
    """Events after ``after`` (oldest first), or the newest ``limit`` when no ``after`` is given."""
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit must be between 1 and 1000")
    items = await store.audit.list(model=validate_name(model) if model else None,
                                   kind=kind[:100] if kind else None, after=after, limit=limit)
    return {"items": items, "last_id": items[-1]["id"] if items else after}


async def verify_chain(store: Store, batch: int = VERIFY_BATCH) -> dict[str, Any]:
    """Walk the whole chain; report the first row whose link or content does not match."""
    # Read before the walk: every row up to the head had committed when it was written.
    head = await store.audit.chain_head()
    prev, next_id, checked = None, 1, 0  # None: the chain's genesis
    while True:
        verdict, prev, next_id, checked = await store.audit.verify_batch(head, prev, next_id, checked, batch)
        if verdict is not None:
            return verdict
