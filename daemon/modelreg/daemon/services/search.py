"""Search versions across every model: name glob, tags, metric thresholds, stage, status,
dataset and format facts, ordered and paged.

This module checks the terms and turns them into a ``SearchQuery``; the store builds the
query (the stage, status and metric filters are the version listing's own). Deleted
versions never match.
"""

from __future__ import annotations

from typing import Any

from modelreg.shared.errors import InvalidInput
from modelreg.shared.names import DATASET_VERSION_RE, validate_key, validate_name

from ..store import Store
from ..store.records import DEFAULT_PAGE, SearchQuery

MAX_TERMS = 50


def _pair(term: Any, what: str) -> tuple[str, str | None]:
    if not isinstance(term, str) or not term:
        raise InvalidInput(f"empty {what} filter: use KEY or KEY=VALUE")
    key, sep, value = term.partition("=")
    return validate_key(key, f"{what} key"), value if sep else None


def _dataset(ds: Any) -> tuple[str, str | None]:
    name, sep, version = ds.partition("@") if isinstance(ds, str) else ("", "", "")
    validate_name(name, "dataset name")
    if sep and not DATASET_VERSION_RE.match(version):
        raise InvalidInput(f"invalid dataset {ds!r}: expected NAME or NAME@VERSION, e.g. txns@2026-11")
    return name, version if sep else None


def query(*, name: str | None = None, tags: list[str] | None = None, metrics: list[str] | None = None,
          facts: list[str] | None = None, datasets: list[str] | None = None, stage: str | None = None,
          status: str | None = None, order: str = "-created", limit: int | None = DEFAULT_PAGE,
          cursor: str | None = None) -> SearchQuery:
    """The checked query for the given terms (InvalidInput names the first bad one)."""
    tags, metrics, facts, datasets = tags or [], metrics or [], facts or [], datasets or []
    if sum(len(x) for x in (tags, metrics, facts, datasets)) > MAX_TERMS:
        raise InvalidInput(f"at most {MAX_TERMS} filters in one search")
    if name and (len(name) > 300 or "\x00" in name):
        raise InvalidInput("name glob is too long")
    return SearchQuery(
        name=name or None, tags=[_pair(t, "tag") for t in tags], metrics=list(metrics),
        facts=[_pair(f, "fact") for f in facts], datasets=[_dataset(d) for d in datasets], stage=stage,
        status=status, order=order, limit=DEFAULT_PAGE if limit is None else limit, cursor=cursor)


async def search(store: Store, q: SearchQuery) -> dict[str, Any]:
    """A page of version summaries (each naming its model), with the total that match."""
    return await store.catalog.search(q)
