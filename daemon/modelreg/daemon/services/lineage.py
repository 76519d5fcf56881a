"""Lineage queries: upstream and downstream of a version, the users of a dataset."""

from __future__ import annotations

from typing import Any

from modelreg.shared.errors import InvalidInput

from ..store import Store

DIRECTIONS = ("up", "down", "both")


async def version_lineage(store: Store, ref: str, direction: str = "both") -> dict[str, Any]:
    """``upstream`` (where it came from, recursively) and/or ``downstream`` (what derives from it)."""
    if direction not in DIRECTIONS:
        raise InvalidInput("direction must be up, down or both")
    return await store.lineage.version_lineage(ref, up=direction in ("up", "both"),
                                               down=direction in ("down", "both"))


async def dataset_users(store: Store, dataset: str) -> dict[str, Any]:
    """Every version trained or evaluated on a dataset (``NAME@VER``, or ``NAME`` for all its versions)."""
    return await store.lineage.dataset_users(dataset)
