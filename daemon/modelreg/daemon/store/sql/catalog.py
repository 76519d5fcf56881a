"""Models and versions: lookups, ref resolution, the API views, pages with filters,
search, and the catalog's own edits (create, update, rename, delete).

Reads are sync functions ``f(q: Sql, ...)`` (they run inside a write too); ``CatalogStore``'s
async methods are the interface: each one read hop or one write hop. A version's detail is
one SELECT: its metrics, params, tags, metric records, files and lineage come back as JSON
subqueries of the same row (REAL values travel as ``quote()`` text, which round-trips a
double exactly; SQLite's JSON would print 15 digits).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from modelreg.shared.errors import Conflict, InvalidInput, NotFound
from modelreg.shared.names import Ref, parse_ref, validate_key, validate_name, validate_stage
from modelreg.shared.filters import parse_metric_filter
from modelreg.shared.timefmt import iso

from ..records import DEFAULT_PAGE, MAX_PAGE, ModelRecord, SearchQuery, VersionRecord
from . import events
from .dialect import Dialect
from .tx import Sql, Engine, WriteTx

# Deleted versions (and models) keep their rows but leave every view: LIVE is the condition.
LIVE = "v.deleted_at IS NULL"
DELETED_MARK = "~deleted-"  # '~' is not allowed in a model name, so a tombstone never collides

# The model summary: counts come from the live_versions counter (triggers keep it, migration 6);
# each stage/latest lookup walks an index from the newest number and stops at the first match.
_MODEL_COLUMNS = f"""
    m.id, m.name, m.description, m.created_at, m.updated_at, m.directions, m.live_versions AS version_count,
    (SELECT number FROM versions v WHERE v.model_id = m.id AND v.stage = 'production' AND {LIVE}) AS production,
    (SELECT number FROM versions v WHERE v.model_id = m.id AND v.stage = 'staging' AND {LIVE}
        ORDER BY v.number DESC LIMIT 1) AS staging,
    (SELECT number FROM versions v WHERE v.model_id = m.id AND v.status = 'ready' AND {LIVE}
        ORDER BY v.number DESC LIMIT 1) AS latest,
    (SELECT json_group_object(key, value) FROM model_tags WHERE model_id = m.id) AS j_tags
"""
_MODEL_SUMMARY = f"SELECT {_MODEL_COLUMNS} FROM models m"

_VERSION_COLUMNS = "v.*, m.name AS model_name"
_VERSION = f"SELECT {_VERSION_COLUMNS} FROM versions v JOIN models m ON m.id = v.model_id"

# The latest value of each metric, for summaries (one subquery of the page's own SELECT).
_METRICS_COLUMN = ("(SELECT json_group_object(key, quote(value)) FROM metric_latest "
                   "WHERE version_id = v.id) AS j_metrics")

# Everything a version's detail shows beyond its row, as columns of that row.
_DETAIL_COLUMNS = """
    (SELECT json_group_object(key, quote(value)) FROM
        (SELECT key, value FROM metric_latest WHERE version_id = v.id ORDER BY key)) AS j_metrics,
    (SELECT json_group_object(key, value) FROM
        (SELECT key, value FROM params WHERE version_id = v.id ORDER BY key)) AS j_params,
    (SELECT json_group_object(key, value) FROM
        (SELECT key, value FROM version_tags WHERE version_id = v.id ORDER BY key)) AS j_tags,
    (SELECT json_group_array(json_array(key, quote(value), step, dataset, source, quote(recorded_at))) FROM
        (SELECT key, value, step, dataset, source, recorded_at FROM metrics WHERE version_id = v.id
         ORDER BY id DESC LIMIT 2000)) AS j_records,
    (SELECT json_group_array(json_array(path, sha256, size)) FROM
        (SELECT path, sha256, size FROM manifest WHERE version_id = v.id ORDER BY path)) AS j_files,
    (SELECT json_group_array(json_array(relation, ds_name, ds_version, ds_digest, ds_uri, run_id, experiment,
            started_at, ended_at, hardware, code_revision, hyperparameters, parent_model, parent_number,
            parent_stage, external)) FROM
        (SELECT l.relation, d.name AS ds_name, d.version AS ds_version, d.digest AS ds_digest, d.uri AS ds_uri,
                r.run_id, r.experiment, quote(r.started_at) AS started_at, quote(r.ended_at) AS ended_at,
                r.hardware, r.code_revision, r.hyperparameters, pm.name AS parent_model, pv.number AS parent_number,
                pv.stage AS parent_stage, l.external
         FROM lineage l LEFT JOIN datasets d ON d.id = l.dataset_id LEFT JOIN runs r ON r.id = l.run_id
         LEFT JOIN versions pv ON pv.id = l.parent_version_id LEFT JOIN models pm ON pm.id = pv.model_id
         WHERE l.version_id = v.id ORDER BY l.id)) AS j_lineage,
    (SELECT json_array(status, signer, message, quote(checked_at)) FROM version_signatures
        WHERE version_id = v.id) AS j_signature
"""
_FILES_COLUMN = ("(SELECT json_group_array(json_array(path, sha256, size)) FROM "
                 "(SELECT path, sha256, size FROM manifest WHERE version_id = v.id ORDER BY path)) AS j_files")


def _real(text: str | None) -> float | None:
    """A REAL sent through JSON as ``quote()`` text (exact), back to a float."""
    return None if text is None or text == "NULL" else float(text)


# -- records and views ------------------------------------------------------------------------


def version_record(row: Any) -> VersionRecord:
    return VersionRecord(
        id=row["id"], model_id=row["model_id"], model_name=row["model_name"], number=row["number"],
        stage=row["stage"], status=row["status"], status_message=row["status_message"], source=row["source"],
        description=row["description"], content_digest=row["content_digest"], total_size=row["total_size"],
        file_count=row["file_count"], facts=json.loads(row["facts"]), created_at=row["created_at"],
        created_by=row["created_by"], updated_at=row["updated_at"], stage_changed_at=row["stage_changed_at"],
        purged_at=row["purged_at"], deleted_at=row["deleted_at"])


def model_record(row: Any) -> ModelRecord:
    return ModelRecord(
        id=row["id"], name=row["name"], description=row["description"], directions=json.loads(row["directions"]),
        created_at=row["created_at"], updated_at=row["updated_at"], version_count=row["version_count"],
        production=row["production"], staging=row["staging"], latest=row["latest"],
        tags=json.loads(row["j_tags"]))


def model_view(rec: ModelRecord) -> dict[str, Any]:
    return {
        "name": rec.name,
        "description": rec.description,
        "tags": dict(rec.tags),
        "version_count": rec.version_count,
        "production": rec.production,
        "staging": rec.staging,
        "latest": rec.latest,
        "metric_directions": dict(rec.directions),
        "created_at": iso(rec.created_at),
        "updated_at": iso(rec.updated_at),
    }


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


def _metrics(text: str | None) -> dict[str, float]:
    return {k: float(v) for k, v in json.loads(text).items()} if text else {}


def _files(text: str) -> list[dict[str, Any]]:
    return [{"path": p, "sha256": s, "size": n} for p, s, n in json.loads(text)]


def _lineage(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {"datasets": [], "run": None, "parents": []}
    for (relation, ds_name, ds_version, ds_digest, ds_uri, run_id, experiment, started_at, ended_at, hardware,
         code_revision, hyperparameters, parent_model, parent_number, parent_stage, external) in json.loads(text):
        if ds_name is not None:
            out["datasets"].append({"dataset": f"{ds_name}@{ds_version}", "relation": relation,
                                    "digest": ds_digest, "uri": ds_uri})
        elif run_id is not None:
            started, ended = _real(started_at), _real(ended_at)
            duration = (ended - started) if ended and started else None
            out["run"] = {"id": run_id, "experiment": experiment, "started_at": iso(started),
                          "ended_at": iso(ended), "duration_s": duration, "hardware": hardware,
                          "code_revision": code_revision, "hyperparameters": json.loads(hyperparameters)}
        elif parent_model is not None:
            out["parents"].append({"ref": f"{parent_model}@{parent_number}", "stage": parent_stage})
        elif external:
            out["parents"].append({"ref": external, "external": True})
    return out


def _detail_view(row: Any) -> dict[str, Any]:
    """The API view of a version from a row holding its columns and the _DETAIL_COLUMNS."""
    rec = version_record(row)
    view = version_summary(rec, _metrics(row["j_metrics"]))
    view["facts"] = rec.facts
    view["params"] = json.loads(row["j_params"])
    view["tags"] = json.loads(row["j_tags"])
    view["metric_records"] = [
        {"key": k, "value": float(value), "step": step, "dataset": dataset, "source": source,
         "recorded_at": iso(float(recorded_at))}
        for k, value, step, dataset, source, recorded_at in reversed(json.loads(row["j_records"]))]
    view["files"] = _files(row["j_files"])
    view["lineage"] = _lineage(row["j_lineage"])
    view["signature"] = _signature(row["j_signature"])
    return view


def _signature(text: str | None) -> dict[str, Any] | None:
    """The outcome of checking the version's signature bundle (issue 12); None: none was given."""
    if text is None:
        return None
    status, signer, message, checked_at = json.loads(text)
    return {"status": status, "signer": signer, "message": message, "checked_at": iso(_real(checked_at))}


# -- lookups ------------------------------------------------------------------------------------


def model_id(q: Sql, name: str) -> int:
    validate_name(name)
    row = q.one("SELECT id FROM models WHERE name = ? AND deleted_at IS NULL", (name,))
    if row is None:
        raise NotFound(f"no model named {name!r}", {"model": name})
    return row["id"]


def model_by_name(q: Sql, name: str) -> ModelRecord:
    validate_name(name)
    row = q.one(_MODEL_SUMMARY + " WHERE m.name = ? AND m.deleted_at IS NULL", (name,))
    if row is None:
        raise NotFound(f"no model named {name!r}", {"model": name})
    return model_record(row)


def model_by_id(q: Sql, mid: int) -> ModelRecord:
    row = q.one(_MODEL_SUMMARY + " WHERE m.id = ?", (mid,))
    if row is None:
        raise NotFound(f"model {mid} does not exist")
    return model_record(row)


def get_model(q: Sql, name: str) -> dict[str, Any]:
    return model_view(model_by_name(q, name))


def list_models(q: Sql, *, query: str | None, limit: int | None, cursor: str | None) -> dict[str, Any]:
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
    return {
        "items": [model_view(model_record(r)) for r in rows],
        "next": rows[-1]["name"] if more else None,
    }


def version_by_id(q: Sql, version_id: int) -> VersionRecord:
    row = q.one(_VERSION + " WHERE v.id = ?", (version_id,))
    if row is None:
        raise NotFound(f"version {version_id} does not exist")
    return version_record(row)


def _resolve_row(q: Sql, ref: Ref | str, columns: str = _VERSION_COLUMNS) -> Any:
    """The row a ref names, with ``columns``, in one statement; NotFound in the words a person uses."""
    if isinstance(ref, str):
        ref = parse_ref(ref)
    validate_name(ref.model)
    base = (f"SELECT {columns} FROM versions v JOIN models m ON m.id = v.model_id "
            f"WHERE m.name = ? AND m.deleted_at IS NULL AND {LIVE}")
    if ref.number is not None:
        row = q.one(base + " AND v.number = ?", (ref.model, ref.number))
    elif ref.selector == "production":
        row = q.one(base + " AND v.stage = 'production'", (ref.model,))
    elif ref.selector == "staging":
        row = q.one(base + " AND v.stage = 'staging' ORDER BY v.number DESC LIMIT 1", (ref.model,))
    elif ref.selector == "latest":
        row = q.one(base + " AND v.status = 'ready' ORDER BY v.number DESC LIMIT 1", (ref.model,))
    else:
        row = q.one(base + " AND v.id = (SELECT version_id FROM aliases WHERE model_id = m.id AND alias = ?)",
                    (ref.model, ref.selector or ""))
    if row is None:  # the slow path only when there is nothing to show
        mid = model_id(q, ref.model)
        if ref.number is not None:
            _raise_if_deleted(q, mid, ref.number)
        raise NotFound(_missing(q, mid, ref), {"ref": str(ref)})
    return row


def resolve(q: Sql, ref: Ref | str) -> VersionRecord:
    """The version a ref names (with its model's name), or NotFound."""
    return version_record(_resolve_row(q, ref))


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


def version_detail(q: Sql, row: VersionRecord) -> dict[str, Any]:
    """The API view of a version known by id: one statement."""
    detail = q.one(f"SELECT {_VERSION_COLUMNS}, {_DETAIL_COLUMNS} FROM versions v "
                   "JOIN models m ON m.id = v.model_id WHERE v.id = ?", (row.id,))
    if detail is None:
        raise NotFound(f"version {row.id} does not exist")
    return _detail_view(detail)


def detail_by_ref(q: Sql, ref: Ref | str) -> dict[str, Any]:
    """The API view of the version a ref names: one statement when it exists."""
    return _detail_view(_resolve_row(q, ref, f"{_VERSION_COLUMNS}, {_DETAIL_COLUMNS}"))


def resolve_with_files(q: Sql, ref: Ref | str) -> tuple[VersionRecord, list[dict[str, Any]]]:
    """The version a ref names and its files (path order): one statement."""
    row = _resolve_row(q, ref, f"{_VERSION_COLUMNS}, {_FILES_COLUMN}")
    return version_record(row), _files(row["j_files"])


def file_entry(q: Sql, ref: Ref | str, path: str) -> tuple[VersionRecord, dict[str, Any] | None]:
    """The version a ref names and its manifest entry for ``path`` (None when it has no such file)."""
    rec = resolve(q, ref)
    entry = q.one("SELECT path, sha256, size FROM manifest WHERE version_id = ? AND path = ?", (rec.id, path))
    return rec, (dict(entry) if entry is not None else None)


def metric_keys(q: Sql, model_id: int | None) -> list[str]:
    """Every metric key some live version of the model (or of any model) records."""
    where = "v.model_id = ? AND " if model_id is not None else ""
    rows = q.all(f"SELECT DISTINCT ml.key FROM metric_latest ml JOIN versions v ON v.id = ml.version_id "
                 f"WHERE {where}{LIVE} ORDER BY ml.key", (model_id,) if model_id is not None else ())
    return [r["key"] for r in rows]


def model_directions(q: Sql, mid: int) -> dict[str, str]:
    row = q.one("SELECT directions FROM models WHERE id = ?", (mid,))
    return json.loads(row["directions"]) if row is not None else {}


# -- pages --------------------------------------------------------------------------------------


def list_versions(q: Sql, model: str, *, stage: str | None = None, status: str | None = None,
                  tags: list[str] | None = None, metric_filters: list[str] | None = None,
                  order: str = "-number", limit: int | None = DEFAULT_PAGE,
                  cursor: str | None = None) -> dict[str, Any]:
    """A page of versions; keyset paging on number, offset paging otherwise.

    ``total`` is the model's live-version counter when nothing filters the page (no count);
    a filtered page counts its matches (see ``_count``)."""
    validate_name(model)
    mrow = q.one("SELECT id, live_versions FROM models WHERE name = ? AND deleted_at IS NULL", (model,))
    if mrow is None:
        raise NotFound(f"no model named {model!r}", {"model": model})
    mid = mrow["id"]
    limit = page_size(limit)
    joins, where, params = version_filters(stage, status, metric_filters)
    filtered = bool(joins or len(where) > 1 or tags)
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

    filter_joins, filter_join_params = list(join_sql), list(join_params)
    filter_where, filter_params = list(where), list(params)  # before ordering joins and the cursor
    order_sql, keyset = order_by(order, join_sql, join_params, metric_filters=metric_filters)
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
    if _INDEX_ORDERS.match(order):
        # The order is an index of versions (number, created, size): walk it and probe each
        # filter's join, stopping at the page's end, rather than collect every match and sort.
        join_sql = [f"CROSS {j}" if j.startswith("JOIN ") else j for j in join_sql]
    sql = (f"SELECT {_VERSION_COLUMNS}, {_METRICS_COLUMN} FROM versions v CROSS JOIN models m ON m.id = v.model_id "
           f"{' '.join(join_sql)} WHERE {' AND '.join(where)} ORDER BY {order_sql} LIMIT ? OFFSET ?")
    rows = q.all(sql, (*join_params, *params, limit + 1, offset))
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = None
    if more:
        nxt = f"n:{rows[-1]['number']}" if keyset else f"o:{offset + limit}"
    exact = True
    if not filtered:
        total = mrow["live_versions"]
    elif not more and not cursor:
        total = len(rows)  # the whole answer is on this page
    else:
        total, exact = _count(q, "FROM versions v " + " ".join(filter_joins) + " WHERE " + " AND ".join(filter_where),
                              [*filter_join_params, *filter_params])
    return {"items": [version_summary(version_record(r), _metrics(r["j_metrics"])) for r in rows],
            "next": nxt, "total": total, "total_exact": exact}


_INDEX_ORDERS = re.compile(r"^[-+]?(number|version|created|created_at|size|total_size)$")
TOTAL_CAP = 1_000  # a filtered page counts at most this many matches


def _count(q: Sql, from_where: str, params: list[Any]) -> tuple[int, bool]:
    """How many versions a filtered page's condition matches, and whether that is exact: the
    count stops after TOTAL_CAP matches (a bounded cost per page, whatever the registry holds),
    and then ``total`` is a lower bound ("more than 1,000")."""
    n = q.one(f"SELECT count(*) FROM (SELECT 1 {from_where} LIMIT {TOTAL_CAP + 1})", params)[0]
    return (TOTAL_CAP, False) if n > TOTAL_CAP else (n, True)


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
    f = parse_metric_filter(flt)  # the grammar the CLI and TUI check with too (modelreg.shared.filters)
    return (f"JOIN metric_latest {alias} ON {alias}.version_id = v.id AND {alias}.key = ? "
            f"AND {alias}.value {f.op} ?", [f.key, f.value])


def order_by(order: str, join_sql: list[str], join_params: list[Any],
             metric_filters: list[str] | None = None) -> tuple[str, bool]:
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
        for i, flt in enumerate(metric_filters or []):
            if parse_metric_filter(flt).key == key:
                # Filtered on the same key: every row has the metric, so order by the filter's
                # own join (no second join, no "missing last" term: the index gives the order).
                return f"mf{i}.value {direction}, v.number DESC", False
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


# -- search -------------------------------------------------------------------------------------

def _search_where(d: Dialect, s: SearchQuery) -> tuple[list[tuple[str, list[Any]]], list[str], list[Any]]:
    joins, where, params = version_filters(s.stage, s.status, s.metrics)
    where.append("m.deleted_at IS NULL")
    if s.name:
        # Model names are case-insensitive everywhere, so the glob is too.
        sql, args = d.glob("lower(m.name)", s.name.lower())
        where.append(sql)
        params.extend(args)
    for key, value in s.tags:
        cond = "key = ?" + (" AND value = ?" if value is not None else "")
        args = [key] + ([value] if value is not None else [])
        where.append(f"(EXISTS (SELECT 1 FROM version_tags WHERE version_id = v.id AND {cond}) OR "
                     f"EXISTS (SELECT 1 FROM model_tags WHERE model_id = v.model_id AND {cond}))")
        params.extend(args + args)
    for key, value in s.facts:
        # Facts hold text, numbers and booleans; match them as a person writes them.
        sql, args = d.fact_matches("v.facts", key, value)
        where.append(sql)
        params.extend(args)
    for name, version in s.datasets:
        where.append("EXISTS (SELECT 1 FROM lineage l JOIN datasets d ON d.id = l.dataset_id WHERE l.version_id = v.id "
                     "AND d.name = ?" + (" AND d.version = ?" if version is not None else "") + ")")
        params.extend([name] + ([version] if version is not None else []))
    return joins, where, params


def _search_order(order: str, join_sql: list[str], join_params: list[Any], metric_filters: list[str]) -> str:
    field_ = order.lstrip("-+")
    if field_ in ("name", "model"):
        direction = "DESC" if order.startswith("-") else "ASC"
        return f"m.name {direction}, v.number {direction}"
    if field_ in ("number", "version"):
        raise InvalidInput("numbers are per model: order a search by name, created, size or metric:KEY")
    if field_ in ("created", "created_at"):
        direction = "DESC" if order.startswith("-") else "ASC"
        return f"v.created_at {direction}, v.number {direction}, v.id {direction}"  # versions_live_by_created_all
    sql, _keyset = order_by(order, join_sql, join_params, metric_filters=metric_filters)
    return sql + ", v.id DESC"


def search_versions(q: Sql, s: SearchQuery) -> dict[str, Any]:
    """A page of version summaries (each naming its model), with the total that match."""
    limit = page_size(s.limit)
    joins, where, params = _search_where(q.dialect, s)
    join_sql = [sql for sql, _ in joins]
    join_params = [p for _, jp in joins for p in jp]
    count_sql, count_params = list(join_sql), list(join_params)
    order_sql = _search_order(s.order, join_sql, join_params, s.metrics)
    offset = 0
    if s.cursor:
        kind, _, value = s.cursor.partition(":")
        if kind != "o" or not value.isdigit() or len(value) > 12:
            raise InvalidInput(f"invalid cursor {s.cursor[:50]!r}; pass back the 'next' value of a page")
        offset = int(value)
    where_sql = " AND ".join(where)  # may hold braces (a JSON path): never passed to str.format

    def base(joins: list[str]) -> str:
        return f"FROM versions v JOIN models m ON m.id = v.model_id {' '.join(joins)} WHERE {where_sql}"

    page_joins = join_sql
    if s.order.lstrip("-+") in ("created", "created_at"):
        # Walk versions_live_by_created_all and probe the filters' joins (see list_versions).
        page_joins = [f"CROSS {j}" if j.startswith("JOIN ") else j for j in join_sql]
    rows = q.all(f"SELECT {_VERSION_COLUMNS}, {_METRICS_COLUMN} {base(page_joins)} "
                 f"ORDER BY {order_sql} LIMIT ? OFFSET ?", (*join_params, *params, limit + 1, offset))
    more = len(rows) > limit
    rows = rows[:limit]
    filtered = bool(s.name or s.tags or s.metrics or s.facts or s.datasets or s.stage or s.status)
    exact = True
    if not filtered:  # every live version of every live model: the counters
        total = q.one("SELECT coalesce(sum(live_versions), 0) FROM models WHERE deleted_at IS NULL")[0]
    elif not more and offset == 0:
        total = len(rows)
    else:
        total, exact = _count(q, base(count_sql), [*count_params, *params])
    return {"items": [version_summary(version_record(r), _metrics(r["j_metrics"])) for r in rows],
            "next": f"o:{offset + limit}" if more else None, "total": total, "total_exact": exact}


def details_for_compare(q: Sql, refs: list[str]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Each ref's version detail, and the first one's model's metric directions: one read."""
    details, directions = [], None
    for ref in refs:
        row = _resolve_row(q, ref, f"{_VERSION_COLUMNS}, {_DETAIL_COLUMNS}")
        details.append(_detail_view(row))
        if directions is None:  # the baseline model's overrides judge every column
            directions = model_directions(q, row["model_id"])
    return details, directions or {}


# -- edits (write functions) ----------------------------------------------------------------------


def create_model(tx: WriteTx, name: str, description: str, tags: dict[str, str], directions: dict[str, str],
                 actor: str) -> ModelRecord:
    if tx.one("SELECT 1 FROM models WHERE name = ?", (name,)):
        raise Conflict(f"model {name!r} already exists", {"model": name})
    mid = tx.one(
        "INSERT INTO models (name, description, directions, created_at, updated_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
        (name, description, json.dumps(directions), tx.now, tx.now))["id"]
    tx.executemany("INSERT INTO model_tags VALUES (?, ?, ?)", [(mid, k, v) for k, v in tags.items()])
    events.append(tx, "model.created", actor, model=name)
    return model_by_id(tx, mid)


def _apply_tags(tx: WriteTx, table: str, column: str, owner: int, tags: dict[str, str], untag: list[str]) -> list[str]:
    tx.executemany(f"INSERT INTO {table} ({column}, key, value) VALUES (?, ?, ?) "
                   f"ON CONFLICT ({column}, key) DO UPDATE SET value = excluded.value", [(owner, k, v) for k, v in tags.items()])
    removed = []
    for key in untag:
        if tx.execute(f"DELETE FROM {table} WHERE {column} = ? AND key = ?", (owner, key)).rowcount:
            removed.append(key)
    return removed


def update_model(tx: WriteTx, name: str, *, description: str | None, directions: dict[str, str] | None,
                 tags: dict[str, str], untag: list[str],
                 event_data: Callable[[list[str]], dict[str, Any]], actor: str) -> ModelRecord:
    """Set what is given, merge tags, remove ``untag`` keys; ``event_data(removed)`` is the event's data."""
    mid = model_id(tx, name)
    if description is not None:
        tx.execute("UPDATE models SET description = ? WHERE id = ?", (description, mid))
    if directions is not None:
        tx.execute("UPDATE models SET directions = ? WHERE id = ?", (json.dumps(directions), mid))
    removed = _apply_tags(tx, "model_tags", "model_id", mid, tags, untag)
    tx.execute("UPDATE models SET updated_at = ? WHERE id = ?", (tx.now, mid))
    rec = model_by_id(tx, mid)
    events.append(tx, "model.updated", actor, model=rec.name, data=event_data(removed))
    return rec


def update_version(tx: WriteTx, ref: str, *, description: str | None, tags: dict[str, str], untag: list[str],
                   event_data: Callable[[list[str]], dict[str, Any]], actor: str) -> dict[str, Any]:
    """Set a version's description, merge its tags, remove ``untag`` keys; its detail after."""
    rec = resolve(tx, ref)
    if description is not None:
        tx.execute("UPDATE versions SET description = ? WHERE id = ?", (description, rec.id))
    removed = _apply_tags(tx, "version_tags", "version_id", rec.id, tags, untag)
    tx.execute("UPDATE versions SET updated_at = ? WHERE id = ?", (tx.now, rec.id))
    events.append(tx, "version.updated", actor, model=rec.model_name, version=rec.number, data=event_data(removed))
    return version_detail(tx, rec)


def rename_model(tx: WriteTx, name: str, new: str, reason: str, actor: str,
                 move: Callable[[str, str], None]) -> tuple[str, ModelRecord]:
    """Rename; ``move(old, new)`` runs last inside the write (a refused rename moves nothing)."""
    mid = model_id(tx, name)
    old = tx.one("SELECT name FROM models WHERE id = ?", (mid,))["name"]
    if old == new:
        raise InvalidInput(f"{old} is already called {new}")
    taken = tx.one("SELECT name FROM models WHERE name = ? AND id != ?", (new, mid))
    if taken is not None:
        raise Conflict(f"model {taken['name']!r} already exists", {"model": taken["name"]})
    tx.execute("UPDATE models SET name = ?, updated_at = ? WHERE id = ?", (new, tx.now, mid))
    events.append(tx, "model.renamed", actor, model=new,
                  data={"from": old, "to": new, **({"reason": reason} if reason else {})})
    move(old, new)
    return old, model_by_id(tx, mid)


def _retire(tx: WriteTx, rec: VersionRecord, actor: str, reason: str, event_id: int) -> None:
    """A forced delete of a production or staging version archives it first, in history too."""
    tx.execute("UPDATE versions SET stage = 'archived', stage_changed_at = ? WHERE id = ?", (tx.now, rec.id))
    tx.execute(
        "INSERT INTO stage_changes (model_id, version_id, number, from_stage, to_stage, kind, actor, reason, forced, "
        "verdict, event_id, ts) VALUES (?, ?, ?, ?, 'archived', 'deleted', ?, ?, 1, NULL, ?, ?)",
        (rec.model_id, rec.id, rec.number, rec.stage, actor, reason, event_id, tx.now))


def _mark_deleted(tx: WriteTx, version_ids: list[int]) -> None:
    # The content digest goes too: a new drop of the same bytes is a new version, not a
    # "duplicate" of one nobody can see (the digest stays in the version.ready event).
    tx.executemany("UPDATE versions SET deleted_at = ?, updated_at = ?, content_digest = NULL WHERE id = ?",
                   [(tx.now, tx.now, vid) for vid in version_ids])


def delete_version(tx: WriteTx, ref: str, reason: str, force: bool, actor: str, keep_former_production: int,
                   check: Callable[[VersionRecord, bool], None]) -> tuple[VersionRecord, dict[str, Any]]:
    """Delete one version; ``check(version, is_rollback_target)`` refuses on fresh state."""
    from .gc import rollback_targets  # gc imports catalog

    rec = resolve(tx, ref)
    check(rec, rec.id in rollback_targets(tx, keep_former_production, rec.model_id))
    aliases = [r["alias"] for r in tx.all("SELECT alias FROM aliases WHERE version_id = ? ORDER BY alias", (rec.id,))]
    tx.execute("DELETE FROM aliases WHERE version_id = ?", (rec.id,))
    data = {"reason": reason, "forced": force, "stage": rec.stage, "aliases": aliases}
    event = events.append(tx, "version.deleted", actor, model=rec.model_name, version=rec.number, data=data)
    if rec.stage in ("production", "staging"):
        _retire(tx, rec, actor, reason, event["id"])
    _mark_deleted(tx, [rec.id])
    return rec, data


def delete_model(tx: WriteTx, name: str, reason: str, force: bool, actor: str,
                 check: Callable[[str, list[VersionRecord]], list[VersionRecord]],
                 clear: Callable[[str], Any]) -> tuple[str, dict[str, Any], Any]:
    """Delete a model and its live versions. ``check(name, live)`` refuses on fresh state or
    returns the versions in use (retired first); ``clear(name)`` runs last inside the write.
    Returns (stored name, event data, what ``clear`` returned)."""
    mid = model_id(tx, name)
    stored = tx.one("SELECT name FROM models WHERE id = ?", (mid,))["name"]
    live = [version_record(r) for r in tx.all(
        f"{_VERSION} WHERE v.model_id = ? AND {LIVE} ORDER BY v.number", (mid,))]
    serving_now = check(stored, live)
    gates = tx.one("SELECT count(*) FROM gates WHERE model_id = ?", (mid,))[0]
    data = {"reason": reason, "forced": force, "versions": [r.number for r in live],
            "stages": {str(r.number): r.stage for r in serving_now}, "gates": gates}
    event = events.append(tx, "model.deleted", actor, model=stored, data=data)
    for r in serving_now:
        _retire(tx, r, actor, reason, event["id"])
    _mark_deleted(tx, [r.id for r in live])
    tx.execute("DELETE FROM aliases WHERE model_id = ?", (mid,))
    tx.execute("DELETE FROM gates WHERE model_id = ?", (mid,))
    tx.execute("UPDATE models SET name = ?, deleted_at = ?, updated_at = ? WHERE id = ?",
               (f"{stored}{DELETED_MARK}{mid}", tx.now, tx.now, mid))
    return stored, data, clear(stored)


class CatalogStore:
    """The catalog aggregate: each method one read hop or one write hop."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # reads

    async def get_model(self, name: str) -> dict[str, Any]:
        return await self.engine.read(lambda q: get_model(q, name))

    async def list_models(self, *, query: str | None, limit: int | None, cursor: str | None) -> dict[str, Any]:
        return await self.engine.read(lambda q: list_models(q, query=query, limit=limit, cursor=cursor))

    async def get_version(self, ref: Ref | str) -> dict[str, Any]:
        """A version's detail view, by ref: one hop, one statement."""
        return await self.engine.read(lambda q: detail_by_ref(q, ref))

    async def version_detail(self, version_id: int) -> dict[str, Any]:
        return await self.engine.read(lambda q: version_detail(q, version_by_id(q, version_id)))

    async def resolve(self, ref: Ref | str) -> VersionRecord:
        return await self.engine.read(lambda q: resolve(q, ref))

    async def resolve_with_files(self, ref: Ref | str) -> tuple[VersionRecord, list[dict[str, Any]]]:
        return await self.engine.read(lambda q: resolve_with_files(q, ref))

    async def file_entry(self, ref: Ref | str, path: str) -> tuple[VersionRecord, dict[str, Any] | None]:
        return await self.engine.read(lambda q: file_entry(q, ref, path))

    async def page_versions(self, model: str, *, stage: str | None = None, status: str | None = None,
                            tags: list[str] | None = None, metric_filters: list[str] | None = None,
                            order: str = "-number", limit: int | None = DEFAULT_PAGE,
                            cursor: str | None = None) -> dict[str, Any]:
        return await self.engine.read(lambda q: list_versions(
            q, model, stage=stage, status=status, tags=tags, metric_filters=metric_filters, order=order,
            limit=limit, cursor=cursor))

    async def search(self, query: SearchQuery) -> dict[str, Any]:
        return await self.engine.read(lambda q: search_versions(q, query))

    async def compare_details(self, refs: list[str]) -> tuple[list[dict[str, Any]], dict[str, str]]:
        return await self.engine.read(lambda q: details_for_compare(q, refs))

    async def metric_keys(self, model: str | None) -> list[str]:
        return await self.engine.read(lambda q: metric_keys(q, model_id(q, model) if model else None))

    # writes

    async def create_model(self, name: str, description: str, tags: dict[str, str], directions: dict[str, str],
                           actor: str) -> dict[str, Any]:
        rec = await self.engine.write(lambda tx: create_model(tx, name, description, tags, directions, actor))
        return model_view(rec)

    async def update_model(self, name: str, *, description: str | None, directions: dict[str, str] | None,
                           tags: dict[str, str], untag: list[str],
                           event_data: Callable[[list[str]], dict[str, Any]], actor: str) -> dict[str, Any]:
        rec = await self.engine.write(lambda tx: update_model(
            tx, name, description=description, directions=directions, tags=tags, untag=untag,
            event_data=event_data, actor=actor))
        return model_view(rec)

    async def update_version(self, ref: str, *, description: str | None, tags: dict[str, str], untag: list[str],
                             event_data: Callable[[list[str]], dict[str, Any]], actor: str) -> dict[str, Any]:
        return await self.engine.write(lambda tx: update_version(
            tx, ref, description=description, tags=tags, untag=untag, event_data=event_data, actor=actor))

    async def rename_model(self, name: str, new: str, reason: str, actor: str,
                           move: Callable[[str, str], None]) -> tuple[str, dict[str, Any]]:
        old, rec = await self.engine.write(lambda tx: rename_model(tx, name, new, reason, actor, move))
        return old, model_view(rec)

    async def delete_version(self, ref: str, reason: str, force: bool, actor: str, keep_former_production: int,
                             check: Callable[[VersionRecord, bool], None]) -> tuple[VersionRecord, dict[str, Any]]:
        return await self.engine.write(lambda tx: delete_version(
            tx, ref, reason, force, actor, keep_former_production, check))

    async def delete_model(self, name: str, reason: str, force: bool, actor: str,
                           check: Callable[[str, list[VersionRecord]], list[VersionRecord]],
                           clear: Callable[[str], Any]) -> tuple[str, dict[str, Any], Any]:
        return await self.engine.write(lambda tx: delete_model(tx, name, reason, force, actor, check, clear))
