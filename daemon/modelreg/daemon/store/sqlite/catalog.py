"""Models and versions: lookups, ref resolution, listing with filters and paging."""

from __future__ import annotations

import json
import re
from typing import Any

from modelreg.shared.errors import InvalidInput, NotFound
from modelreg.shared.names import Ref, parse_ref, validate_key, validate_name, validate_stage
from modelreg.shared.timefmt import iso

from ..records import VersionRecord
from .engine import Sql, SqliteEngine

MAX_PAGE = 1000
DEFAULT_PAGE = 100
_METRIC_FILTER = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_.:/-]*)\s*(>=|<=|==|!=|>|<|=)\s*(-?[0-9.eE+-]+)$")

# Deleted versions (and models) keep their rows but leave every view: LIVE is the condition.
LIVE = "v.deleted_at IS NULL"

_MODEL_SUMMARY = f"""
    SELECT m.id, m.name, m.description, m.created_at, m.updated_at, m.directions,
      (SELECT count(*) FROM versions v WHERE v.model_id = m.id AND {LIVE}) AS version_count,
      (SELECT number FROM versions v WHERE v.model_id = m.id AND v.stage = 'production' AND {LIVE}) AS production,
      (SELECT max(number) FROM versions v WHERE v.model_id = m.id AND v.stage = 'staging' AND {LIVE}) AS staging,
      (SELECT max(number) FROM versions v WHERE v.model_id = m.id AND v.status = 'ready' AND {LIVE}) AS latest
    FROM models m
"""

_VERSION = "SELECT v.*, m.name AS model_name FROM versions v JOIN models m ON m.id = v.model_id"


def version_record(row: Any) -> VersionRecord:
    return VersionRecord(
        id=row["id"], model_id=row["model_id"], model_name=row["model_name"], number=row["number"],
        stage=row["stage"], status=row["status"], status_message=row["status_message"], source=row["source"],
        description=row["description"], content_digest=row["content_digest"], total_size=row["total_size"],
        file_count=row["file_count"], facts=json.loads(row["facts"]), created_at=row["created_at"],
        created_by=row["created_by"], updated_at=row["updated_at"], stage_changed_at=row["stage_changed_at"],
        purged_at=row["purged_at"], deleted_at=row["deleted_at"])


def version_by_id(q: Sql, version_id: int) -> VersionRecord:
    row = q.one(_VERSION + " WHERE v.id = ?", (version_id,))
    if row is None:
        raise NotFound(f"version {version_id} does not exist")
    return version_record(row)


def model_view(row: Any, tags: dict[str, str]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "description": row["description"],
        "tags": tags,
        "version_count": row["version_count"],
        "production": row["production"],
        "staging": row["staging"],
        "latest": row["latest"],
        "metric_directions": json.loads(row["directions"]),
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def model_id(q: Sql, name: str) -> int:
    validate_name(name)
    row = q.one("SELECT id FROM models WHERE name = ? AND deleted_at IS NULL", (name,))
    if row is None:
        raise NotFound(f"no model named {name!r}", {"model": name})
    return row["id"]


def get_model(q: Sql, name: str) -> dict[str, Any]:
    mid = model_id(q, name)
    row = q.one(_MODEL_SUMMARY + " WHERE m.id = ?", (mid,))
    tags = {r["key"]: r["value"] for r in q.all("SELECT key, value FROM model_tags WHERE model_id = ?", (mid,))}
    return model_view(row, tags)


def list_models(q: Sql, *, query: str | None, limit: int, cursor: str | None) -> dict[str, Any]:
    limit = page_size(limit)
    where, params = ["m.deleted_at IS NULL"], []
    if query:
        where.append("m.name LIKE ? ESCAPE '\\'")
        params.append("%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
    if cursor:
        where.append("m.name > ?")
        params.append(cursor)
    sql = _MODEL_SUMMARY + " WHERE " + " AND ".join(where) + " ORDER BY m.name LIMIT ?"
    rows = q.all(sql, (*params, limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    ids = [r["id"] for r in rows]
    tags: dict[int, dict[str, str]] = {i: {} for i in ids}
    if ids:
        marks = ",".join("?" * len(ids))
        for t in q.all(f"SELECT model_id, key, value FROM model_tags WHERE model_id IN ({marks})", ids):
            tags[t["model_id"]][t["key"]] = t["value"]
    return {
        "items": [model_view(r, tags[r["id"]]) for r in rows],
        "next": rows[-1]["name"] if more else None,
    }


def resolve(q: Sql, ref: Ref | str) -> VersionRecord:
    """The versions row a ref names (joined with its model's name), or NotFound."""
    if isinstance(ref, str):
        ref = parse_ref(ref)
    mid = model_id(q, ref.model)
    base = f"{_VERSION} WHERE {LIVE} AND v.model_id = ?"
    if ref.number is not None:
        row = q.one(base + " AND v.number = ?", (mid, ref.number))
        if row is None:
            _raise_if_deleted(q, mid, ref.number)
    elif ref.selector == "production":
        row = q.one(base + " AND v.stage = 'production'", (mid,))
    elif ref.selector == "staging":
        row = q.one(base + " AND v.stage = 'staging' ORDER BY v.number DESC LIMIT 1", (mid,))
    elif ref.selector == "latest":
        row = q.one(base + " AND v.status = 'ready' ORDER BY v.number DESC LIMIT 1", (mid,))
    else:
        row = _resolve_alias(q, mid, ref.selector or "", base)
    if row is None:
        raise NotFound(_missing(q, mid, ref), {"ref": str(ref)})
    return version_record(row)


def _raise_if_deleted(q: Sql, mid: int, number: int) -> None:
    row = q.one("SELECT v.number, m.name FROM versions v JOIN models m ON m.id = v.model_id "
                          "WHERE v.model_id = ? AND v.number = ? AND v.deleted_at IS NOT NULL", (mid, number))
    if row is not None:
        ref = f"{row['name']}@{row['number']}"
        raise NotFound(f"{ref} was deleted", {"ref": ref, "deleted": True})


def _missing(q: Sql, mid: int, ref: Ref) -> str:
    """Why a well-formed ref names nothing, in the words a person would use."""
    name = (q.one("SELECT name FROM models WHERE id = ?", (mid,)))["name"]
    if ref.selector == "production":
        return f"{name} has no production version"
    if ref.selector == "staging":
        return f"{name} has no version in staging"
    if ref.selector == "latest":
        return f"{name} has no ready version"
    if ref.selector is not None:
        return f"{name} has no alias {ref.selector}"
    return f"{name}@{ref.number} does not exist"


def _resolve_alias(q: Sql, mid: int, alias: str, base: str) -> Any:
    return q.one(
        base + " AND v.id = (SELECT version_id FROM aliases WHERE model_id = ? AND alias = ?)",
        (mid, mid, alias),
    )


def version_summary(row: VersionRecord, metrics: dict[str, float]) -> dict[str, Any]:
    return {
        "model": row.model_name,
        "version": row.number,
        "stage": row.stage,
        "status": row.status,
        "status_message": row.status_message,
        "source": row.source,
        "description": row.description,
        "content_digest": row.content_digest,
        "total_size": row.total_size,
        "file_count": row.file_count,
        "metrics": metrics,
        "created_at": iso(row.created_at),
        "created_by": row.created_by,
        "updated_at": iso(row.updated_at),
        "stage_changed_at": iso(row.stage_changed_at),
        "purged_at": iso(row.purged_at),  # files removed by gc after retention
    }


def version_detail(q: Sql, row: VersionRecord) -> dict[str, Any]:
    vid = row.id
    latest = q.all("SELECT key, value FROM metric_latest WHERE version_id = ? ORDER BY key", (vid,))
    view = version_summary(row, {r["key"]: r["value"] for r in latest})
    view["facts"] = row.facts
    view["params"] = {r["key"]: r["value"] for r in q.all(
        "SELECT key, value FROM params WHERE version_id = ? ORDER BY key", (vid,))}
    view["tags"] = {r["key"]: r["value"] for r in q.all(
        "SELECT key, value FROM version_tags WHERE version_id = ? ORDER BY key", (vid,))}
    records = q.all(
        "SELECT key, value, step, dataset, source, recorded_at FROM metrics WHERE version_id = ? "
        "ORDER BY id DESC LIMIT 2000", (vid,))
    view["metric_records"] = [
        {"key": r["key"], "value": r["value"], "step": r["step"], "dataset": r["dataset"],
         "source": r["source"], "recorded_at": iso(r["recorded_at"])} for r in reversed(records)]
    view["files"] = [dict(path=r["path"], sha256=r["sha256"], size=r["size"]) for r in q.all(
        "SELECT path, sha256, size FROM manifest WHERE version_id = ? ORDER BY path", (vid,))]
    from .lineage import upstream_edges  # lineage imports catalog too

    view["lineage"] = upstream_edges(q, vid)
    return view


def list_versions(q: Sql, model: str, *, stage: str | None = None, status: str | None = None,
                        tags: list[str] | None = None, metric_filters: list[str] | None = None,
                        order: str = "-number", limit: int = DEFAULT_PAGE,
                        cursor: str | None = None) -> dict[str, Any]:
    """A page of versions; keyset paging on number, offset paging when ordered by a metric."""
    mid = model_id(q, model)
    limit = page_size(limit)
    joins, where, params = version_filters(stage, status, metric_filters)
    where.insert(0, "v.model_id = ?")
    params.insert(0, mid)
    for i, tag in enumerate(tags or []):
        key, sep, value = tag.partition("=")
        validate_key(key, "tag key")
        alias = f"t{i}"
        joins.append((f"JOIN version_tags {alias} ON {alias}.version_id = v.id AND {alias}.key = ?"
                      + (f" AND {alias}.value = ?" if sep else ""), [key] + ([value] if sep else [])))
    join_sql = [sql for sql, _ in joins]
    join_params = [p for _, jp in joins for p in jp]

    filter_where, filter_params = list(where), list(params)  # before ordering joins and the cursor
    order_sql, keyset = order_by(order, join_sql, join_params)
    offset = 0
    if cursor:
        kind, _, value = cursor.partition(":")
        try:
            number = int(value)
            if not 0 <= number < 2**62:
                raise ValueError
            if kind == "n" and keyset:
                where.append("v.number < ?" if order.startswith("-") else "v.number > ?")
                params.append(number)
            elif kind == "o" and not keyset:
                offset = number
            else:
                raise ValueError
        except ValueError:
            raise InvalidInput(f"invalid cursor {cursor!r}; pass back the 'next' value of a page") from None
    sql = (f"{_VERSION} {' '.join(join_sql)} WHERE {' AND '.join(where)} ORDER BY {order_sql} LIMIT ? OFFSET ?")
    rows = [version_record(r) for r in q.all(sql, (*join_params, *params, limit + 1, offset))]
    more = len(rows) > limit
    rows = rows[:limit]
    metrics: dict[int, dict[str, float]] = {r.id: {} for r in rows}
    if rows:
        marks = ",".join("?" * len(rows))
        for r in q.all(f"SELECT version_id, key, value FROM metric_latest WHERE version_id IN ({marks})",
                              [r.id for r in rows]):
            metrics[r["version_id"]][r["key"]] = r["value"]
    nxt = None
    if more:
        nxt = f"n:{rows[-1].number}" if keyset else f"o:{offset + limit}"
    total = (q.one(f"SELECT count(*) FROM versions v {' '.join(sql for sql, _ in joins)} "
                          f"WHERE {' AND '.join(filter_where)}", (*[p for _, jp in joins for p in jp], *filter_params)))[0]
    return {"items": [version_summary(r, metrics[r.id]) for r in rows], "next": nxt, "total": total}


def version_filters(stage: str | None, status: str | None,
                    metric_filters: list[str] | None) -> tuple[list[tuple[str, list[Any]]], list[str], list[Any]]:
    """(joins, where, params) for the filters listing and search share; deleted versions never match."""
    joins: list[tuple[str, list[Any]]] = []
    where, params = [LIVE], []
    if stage:
        where.append("v.stage = ?")
        params.append(validate_stage(stage))
    if status:
        if status not in ("pending", "ready", "failed"):
            raise InvalidInput(f"unknown status {status!r}: expected pending, ready or failed")
        where.append("v.status = ?")
        params.append(status)
    for i, flt in enumerate(metric_filters or []):
        joins.append(metric_filter_join(flt, f"mf{i}"))
    return joins, where, params


def metric_filter_join(flt: str, alias: str) -> tuple[str, list[Any]]:
    """A metric filter such as ``auc>=0.9`` as a join on the latest values (one rule, every caller)."""
    m = _METRIC_FILTER.match(flt.strip()) if isinstance(flt, str) else None
    if not m:
        raise InvalidInput(f"invalid metric filter {str(flt)[:100]!r}: e.g. auc>=0.9 or loss<0.2")
    key, op, raw = m.groups()
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"invalid number in metric filter {flt!r}") from None
    op = "=" if op == "==" else op
    return (f"JOIN metric_latest {alias} ON {alias}.version_id = v.id AND {alias}.key = ? "
            f"AND {alias}.value {op} ?", [key, value])


def metric_keys(q: Sql, model_id: int | None) -> list[str]:
    """Every metric key some live version of the model (or of any model) records."""
    where = "v.model_id = ? AND " if model_id is not None else ""
    rows = q.all(f"SELECT DISTINCT ml.key FROM metric_latest ml JOIN versions v ON v.id = ml.version_id "
                           f"WHERE {where}{LIVE} ORDER BY ml.key", (model_id,) if model_id is not None else ())
    return [r["key"] for r in rows]


def order_by(order: str, join_sql: list[str], join_params: list[Any]) -> tuple[str, bool]:
    desc = order.startswith("-")
    field = order.lstrip("-+")
    direction = "DESC" if desc else "ASC"
    if field in ("number", "version"):
        return f"v.number {direction}", True
    if field in ("created", "created_at"):
        return f"v.created_at {direction}, v.number {direction}", False
    if field in ("size", "total_size"):
        return f"v.total_size {direction}, v.number {direction}", False
    if field.startswith("metric:"):
        key = validate_key(field[len("metric:"):], "metric key")
        join_sql.append("LEFT JOIN metric_latest ord ON ord.version_id = v.id AND ord.key = ?")
        join_params.append(key)
        # Versions without the metric sort last either way.
        return f"ord.value IS NULL, ord.value {direction}, v.number DESC", False
    raise InvalidInput(f"invalid order {order!r}: number, created, size or metric:KEY, '-' for descending")


def page_size(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_PAGE
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
    return limit


class CatalogStore:
    """The catalog aggregate (SQLite)."""

    def __init__(self, engine: SqliteEngine) -> None:
        self.engine = engine
