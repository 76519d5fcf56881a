"""Search versions across every model: name glob, tags, metric thresholds, stage, status,
dataset and format facts, ordered and paged.

The stage, status and metric filters are the version listing's own (``catalog.version_filters``);
the others are what only a registry-wide search needs. Deleted versions never match.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelreg.shared.errors import InvalidInput
from modelreg.shared.names import DATASET_VERSION_RE, validate_key, validate_name

from . import catalog
from .db import Database

MAX_TERMS = 50
_BARE = ("true", "false", "null")


@dataclass
class Query:
    name: str | None = None            # glob, case-insensitive: fraud*, *-small
    tags: list[str] = field(default_factory=list)        # k or k=v, on the version or its model
    metrics: list[str] = field(default_factory=list)     # auc>=0.9
    facts: list[str] = field(default_factory=list)       # k or k=v, anywhere in the version's facts
    datasets: list[str] = field(default_factory=list)    # txns@2026-11, or txns for any version of it
    stage: str | None = None
    status: str | None = None
    order: str = "-created"
    limit: int = catalog.DEFAULT_PAGE
    cursor: str | None = None


def _pair(term: str, what: str) -> tuple[str, str | None]:
    if not isinstance(term, str) or not term:
        raise InvalidInput(f"empty {what} filter: use KEY or KEY=VALUE")
    key, sep, value = term.partition("=")
    return validate_key(key, f"{what} key"), value if sep else None


def _where(q: Query) -> tuple[list[tuple[str, list[Any]]], list[str], list[Any]]:
    if sum(len(x) for x in (q.tags, q.metrics, q.facts, q.datasets)) > MAX_TERMS:
        raise InvalidInput(f"at most {MAX_TERMS} filters in one search")
    joins, where, params = catalog.version_filters(q.stage, q.status, q.metrics)
    where.append("m.deleted_at IS NULL")
    if q.name:
        if len(q.name) > 300 or "\x00" in q.name:
            raise InvalidInput("name glob is too long")
        # Model names are case-insensitive everywhere, so the glob is too.
        where.append("lower(m.name) GLOB lower(?)")
        params.append(q.name)
    for tag in q.tags:
        key, value = _pair(tag, "tag")
        cond = "key = ?" + (" AND value = ?" if value is not None else "")
        args = [key] + ([value] if value is not None else [])
        where.append(f"(EXISTS (SELECT 1 FROM version_tags WHERE version_id = v.id AND {cond}) OR "
                     f"EXISTS (SELECT 1 FROM model_tags WHERE model_id = v.model_id AND {cond}))")
        params.extend(args + args)
    for fact in q.facts:
        key, value = _pair(fact, "fact")
        sql, args = "jt.key = ?", [key]
        if value is not None:
            # Facts hold text, numbers and booleans; match them as a person writes them.
            if value.lower() in _BARE:
                sql += " AND jt.type = ?"
                args.append(value.lower())
            else:
                sql += " AND jt.type IN ('text', 'integer', 'real') AND lower(CAST(jt.atom AS TEXT)) = lower(?)"
                args.append(value)
        where.append(f"EXISTS (SELECT 1 FROM json_tree(v.facts) jt WHERE {sql})")
        params.extend(args)
    for ds in q.datasets:
        name, sep, version = ds.partition("@") if isinstance(ds, str) else ("", "", "")
        validate_name(name, "dataset name")
        if sep and not DATASET_VERSION_RE.match(version):
            raise InvalidInput(f"invalid dataset {ds!r}: expected NAME or NAME@VERSION, e.g. txns@2026-11")
        where.append("EXISTS (SELECT 1 FROM lineage l JOIN datasets d ON d.id = l.dataset_id WHERE l.version_id = v.id "
                     "AND d.name = ?" + (" AND d.version = ?" if sep else "") + ")")
        params.extend([name] + ([version] if sep else []))
    return joins, where, params


def _order(order: str, join_sql: list[str], join_params: list[Any]) -> str:
    field_ = order.lstrip("-+")
    if field_ in ("name", "model"):
        direction = "DESC" if order.startswith("-") else "ASC"
        return f"m.name {direction}, v.number {direction}"
    if field_ in ("number", "version"):
        raise InvalidInput("numbers are per model: order a search by name, created, size or metric:KEY")
    sql, _keyset = catalog.order_by(order, join_sql, join_params)
    return sql + ", v.id DESC"


async def search(db: Database, q: Query) -> dict[str, Any]:
    """A page of version summaries (each naming its model), with the total that match."""
    limit = catalog.page_size(q.limit)
    joins, where, params = _where(q)
    join_sql = [sql for sql, _ in joins]
    join_params = [p for _, jp in joins for p in jp]
    count_sql, count_params = list(join_sql), list(join_params)
    order_sql = _order(q.order, join_sql, join_params)
    offset = 0
    if q.cursor:
        kind, _, value = q.cursor.partition(":")
        if kind != "o" or not value.isdigit() or len(value) > 12:
            raise InvalidInput(f"invalid cursor {q.cursor[:50]!r}; pass back the 'next' value of a page")
        offset = int(value)
    base = f"FROM versions v JOIN models m ON m.id = v.model_id {{joins}} WHERE {' AND '.join(where)}"
    rows = await db.all(f"SELECT v.*, m.name AS model_name {base.format(joins=' '.join(join_sql))} "
                        f"ORDER BY {order_sql} LIMIT ? OFFSET ?", (*join_params, *params, limit + 1, offset))
    more = len(rows) > limit
    rows = rows[:limit]
    metrics: dict[int, dict[str, float]] = {r["id"]: {} for r in rows}
    if rows:
        marks = ",".join("?" * len(rows))
        for r in await db.all(f"SELECT version_id, key, value FROM metric_latest WHERE version_id IN ({marks})",
                              [r["id"] for r in rows]):
            metrics[r["version_id"]][r["key"]] = r["value"]
    total = (await db.one(f"SELECT count(*) {base.format(joins=' '.join(count_sql))}", (*count_params, *params)))[0]
    return {"items": [catalog.version_summary(r, metrics[r["id"]]) for r in rows],
            "next": f"o:{offset + limit}" if more else None, "total": total}
