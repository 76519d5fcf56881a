"""MLflow's registry reads: a model or a version as MLflow shows it, each in one
statement, and the two searches (registered models, model versions) from the AST of
``services/mlflow/filters.py``.

MLflow on SQLite compares text case-sensitively (``=``, ``!=``, ``IN``, ``LIKE``) except for
``ILIKE``. Our model names are unique without regard to case (``COLLATE NOCASE``), so an
equality keeps the NOCASE test (it walks the unique index) and adds an exact BINARY one;
``LIKE`` becomes ``GLOB`` (always case-sensitive, whatever ``PRAGMA case_sensitive_like``
says), with ``%``/``_`` translated and GLOB's own ``* ? [`` made literal; ``ILIKE`` is
``lower(x) LIKE lower(?)`` (ASCII case folding, as SQLite's LIKE and MLflow on SQLite).
Every page is bounded (``LIMIT n+1 OFFSET o``, offsets from MLflow's page tokens).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from modelreg.shared.errors import NotFound

from ..records import MlflowModel, MlflowPage, MlflowVersion
from . import catalog
from .dialect import Dialect
from .tx import Sql, Engine

STAGES = ("none", "staging", "production", "archived")
PROMPT_TAG = "mlflow.prompt.is_prompt"  # MLflow's prompts are models tagged so

_RUN_ID = ("(SELECT r.run_id FROM lineage l JOIN runs r ON r.id = l.run_id "
           "WHERE l.version_id = v.id ORDER BY l.id LIMIT 1)")
_VERSION_COLUMNS = f"""v.*, m.name AS model_name,
    (SELECT json_group_object(key, value) FROM version_tags WHERE version_id = v.id) AS j_tags,
    (SELECT json_group_array(alias) FROM (SELECT alias FROM aliases a
        WHERE a.model_id = v.model_id AND a.version_id = v.id ORDER BY alias)) AS j_aliases,
    {_RUN_ID} AS mlflow_run_id"""
_VERSIONS = f"SELECT {_VERSION_COLUMNS} FROM versions v JOIN models m ON m.id = v.model_id"
_LIVE = "v.deleted_at IS NULL AND m.deleted_at IS NULL"

_MODEL_COLUMNS = """m.id, m.name, m.description, m.created_at, m.updated_at,
    (SELECT json_group_object(key, value) FROM model_tags WHERE model_id = m.id) AS j_tags,
    (SELECT json_group_object(a.alias, av.number) FROM aliases a JOIN versions av ON av.id = a.version_id
        WHERE a.model_id = m.id) AS j_aliases"""

# The newest live version in each stage of each model named by a list of model ids.
_LATEST = f"""SELECT {_VERSION_COLUMNS} FROM
    (SELECT mm.id AS mid, s.column1 AS stage FROM models mm,
        (VALUES ('none'), ('staging'), ('production'), ('archived')) s
     WHERE mm.id IN {{ids}}) x
    JOIN versions v ON v.id = (SELECT id FROM versions WHERE model_id = x.mid AND stage = x.stage
                               AND deleted_at IS NULL ORDER BY number DESC LIMIT 1)
    JOIN models m ON m.id = v.model_id
    ORDER BY v.number DESC"""


class Clause(Protocol):
    """One comparison of the filter AST (``services.mlflow.filters.Clause``)."""

    kind: str
    key: str
    op: str
    value: Any


class Order(Protocol):
    key: str
    ascending: bool


# -- records --------------------------------------------------------------------------------------


def _version(row: Any) -> MlflowVersion:
    return MlflowVersion(version=catalog.version_record(row), tags=json.loads(row["j_tags"]),
                         aliases=json.loads(row["j_aliases"]), run_id=row["mlflow_run_id"])


def _models(q: Sql, rows: Sequence[Any]) -> list[MlflowModel]:
    """Models with their latest version per stage: one more statement for the whole page."""
    latest: dict[int, list[MlflowVersion]] = {r["id"]: [] for r in rows}
    if rows:
        for vrow in _latest(q, list(latest)):
            latest[vrow["model_id"]].append(_version(vrow))
    return [MlflowModel(name=r["name"], description=r["description"], created_at=r["created_at"],
                        updated_at=r["updated_at"], tags=json.loads(r["j_tags"]),
                        aliases=json.loads(r["j_aliases"]), latest=latest[r["id"]]) for r in rows]


def model_missing(name: str) -> NotFound:
    return NotFound(f"Registered Model with name={name} not found", {"model": name})


def version_missing(name: str, version: Any) -> NotFound:
    return NotFound(f"Model Version (name={name}, version={version}) not found", {"model": name})


# -- reads ----------------------------------------------------------------------------------------


def get_model(q: Sql, name: str) -> MlflowModel:
    row = q.one(f"SELECT {_MODEL_COLUMNS} FROM models m WHERE m.name = ? AND m.deleted_at IS NULL", (name,))
    if row is None:
        raise model_missing(name)
    return _models(q, [row])[0]


def get_version(q: Sql, name: str, number: int) -> MlflowVersion:
    row = q.one(f"{_VERSIONS} WHERE m.name = ? AND v.number = ? AND {_LIVE}", (name, number))
    if row is None:
        raise version_missing(name, number)
    return _version(row)


def version_by_alias(q: Sql, name: str, alias: str) -> MlflowVersion:
    row = q.one(f"{_VERSIONS} JOIN aliases al ON al.version_id = v.id AND al.model_id = m.id "
                f"WHERE m.name = ? AND al.alias = ? AND {_LIVE}", (name, alias))
    if row is None:
        if q.one("SELECT 1 FROM models WHERE name = ? AND deleted_at IS NULL", (name,)) is None:
            raise model_missing(name)
        raise NotFound(f"Registered model alias {alias} not found.", {"model": name, "alias": alias})
    return _version(row)


def latest_versions(q: Sql, name: str, stages: Sequence[str]) -> list[MlflowVersion]:
    """The newest version in each of ``stages`` (ours: none, staging …); every stage when empty."""
    row = q.one("SELECT id FROM models WHERE name = ? AND deleted_at IS NULL", (name,))
    if row is None:
        raise model_missing(name)
    wanted = set(stages or STAGES)
    return [_version(r) for r in _latest(q, [row["id"]]) if r["stage"] in wanted]


def _latest(q: Sql, model_ids: list[int]) -> list[Any]:
    ids, params = q.dialect.values(model_ids, "int")
    return q.all(_LATEST.format(ids=ids), params)


def in_stage(q: Sql, name: str, stage: str, limit: int = 1000) -> list[int]:
    """The numbers of a model's live versions in ``stage`` (at most ``limit``), newest first."""
    return [r["number"] for r in q.all(
        "SELECT v.number FROM versions v JOIN models m ON m.id = v.model_id "
        f"WHERE m.name = ? AND v.stage = ? AND {_LIVE} ORDER BY v.number DESC LIMIT ?", (name, stage, limit))]


# -- search ---------------------------------------------------------------------------------------


def glob_of_like(pattern: str) -> str:
    """A LIKE pattern (``%`` any run, ``_`` one character, no escape) as the GLOB pattern that
    matches the same strings, case-sensitively."""
    out = []
    for ch in pattern:
        if ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        elif ch in "*?[":
            out.append(f"[{ch}]")
        else:
            out.append(ch)
    return "".join(out)


def _text(d: Dialect, column: str, op: str, value: Any, nocase: bool = False) -> tuple[str, list[Any]]:
    """A case-sensitive comparison of a text column (``nocase``: the column's collation is NOCASE)."""
    if op == "=":
        if nocase:  # the NOCASE test can use the column's index; the BINARY one makes it exact
            return f"({column} = ? AND {d.binary(column)} = ?)", [value, value]
        return f"{column} = ?", [value]
    if op == "!=":
        return f"{d.binary(column)} != ?", [value]
    if op == "LIKE":
        return d.glob(column, glob_of_like(value))
    if op == "ILIKE":
        return f"lower({column}) LIKE lower(?)", [value]
    if op in ("IN", "NOT IN"):
        values, params = d.values(list(value), "text")
        return f"{d.binary(column)} {op} {values}", params
    raise ValueError(f"comparator {op!r} on text")  # filters.py admits none other


def _tags(d: Dialect, table: str, owner: str, owner_column: str,
          clauses: Sequence[Clause]) -> tuple[list[str], list[Any]]:
    """One EXISTS per tag key; all conditions on a key apply to that one tag, as in MLflow."""
    by_key: dict[str, list[Clause]] = {}
    for c in clauses:
        by_key.setdefault(c.key, []).append(c)
    where, params = [], []
    for key, conds in by_key.items():
        parts, part_params = [f"t.{owner_column} = {owner}", "t.key = ?"], [key]
        for c in conds:
            sql, p = _text(d, "t.value", c.op, c.value)
            parts.append(sql)
            part_params += p
        where.append(f"EXISTS (SELECT 1 FROM {table} t WHERE {' AND '.join(parts)})")
        params += part_params
    return where, params


def _page(q: Sql, sql: str, params: list[Any], offset: int, limit: int) -> tuple[list[Any], int | None]:
    rows = q.all(sql + " LIMIT ? OFFSET ?", (*params, limit + 1, offset))
    more = len(rows) > limit
    return rows[:limit], (offset + limit if more else None)


_MODEL_ORDER = {"name": "m.name", "last_updated_timestamp": "m.updated_at", "creation_timestamp": "m.created_at"}
_VERSION_ORDER = {"name": "m.name", "version_number": "v.number", "last_updated_timestamp": "v.updated_at",
                  "creation_timestamp": "v.created_at"}


def _order(orders: Sequence[Order], columns: dict[str, str], tiebreak: str) -> str:
    parts = [f"{columns[o.key]} {'ASC' if o.ascending else 'DESC'}" for o in orders]
    return ", ".join([*parts, tiebreak])  # a total order: pages neither repeat nor skip


def _prompt_test(table: str, owner_column: str, owner: str, prompts: bool) -> str:
    """Prompts are the rows tagged ``mlflow.prompt.is_prompt = 'true'``; a search wants them or the rest."""
    test = (f"EXISTS (SELECT 1 FROM {table} p WHERE p.{owner_column} = {owner} "
            f"AND p.key = '{PROMPT_TAG}' AND p.value = 'true')")
    return test if prompts else f"NOT {test}"


def search_models(q: Sql, clauses: Sequence[Clause], orders: Sequence[Order], offset: int,
                  limit: int, prompts: bool = False) -> MlflowPage:
    where, params = ["m.deleted_at IS NULL", _prompt_test("model_tags", "model_id", "m.id", prompts)], []
    for c in clauses:
        if c.kind == "attribute":  # only name
            sql, p = _text(q.dialect, "m.name", c.op, c.value, nocase=True)
            where.append(sql)
            params += p
    tag_where, tag_params = _tags(q.dialect, "model_tags", "m.id", "model_id", [c for c in clauses if c.kind == "tag"])
    sql = (f"SELECT {_MODEL_COLUMNS} FROM models m WHERE {' AND '.join(where + tag_where)} "
           f"ORDER BY {_order(orders, _MODEL_ORDER, 'm.id')}")
    rows, next_offset = _page(q, sql, params + tag_params, offset, limit)
    return MlflowPage(items=_models(q, rows), next_offset=next_offset)


def _version_clause(d: Dialect, c: Clause) -> tuple[str, list[Any]]:
    if c.key == "name":
        return _text(d, "m.name", c.op, c.value, nocase=True)
    if c.key == "version_number":
        return f"v.number {c.op} ?", [int(c.value)]
    if c.key == "source_path":
        return _text(d, "v.source", c.op, c.value)
    # run_id: an equality or a list walks runs(run_id) and lineage_by_run; the rest test the run of each row
    if c.op in ("=", "IN"):
        values = [c.value] if c.op == "=" else list(c.value)
        ids, params = d.values(values, "text")
        return ("v.id IN (SELECT l.version_id FROM runs r JOIN lineage l ON l.run_id = r.id "
                f"WHERE r.run_id IN {ids})"), params
    return _text(d, _RUN_ID, c.op, c.value)


def search_versions(q: Sql, clauses: Sequence[Clause], orders: Sequence[Order], offset: int,
                    limit: int, prompts: bool = False) -> MlflowPage:
    where, params = [_LIVE, _prompt_test("version_tags", "version_id", "v.id", prompts)], []
    for c in clauses:
        if c.kind == "attribute":
            sql, p = _version_clause(q.dialect, c)
            where.append(sql)
            params += p
    tag_where, tag_params = _tags(q.dialect, "version_tags", "v.id", "version_id", [c for c in clauses if c.kind == "tag"])
    sql = f"{_VERSIONS} WHERE {' AND '.join(where + tag_where)} ORDER BY {_order(orders, _VERSION_ORDER, 'v.id')}"
    rows, next_offset = _page(q, sql, params + tag_params, offset, limit)
    return MlflowPage(items=[_version(r) for r in rows], next_offset=next_offset)


class MlflowSearchStore:
    """MLflow's registry reads: each method one read hop."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def get_model(self, name: str) -> MlflowModel:
        return await self.engine.read(lambda q: get_model(q, name))

    async def get_version(self, name: str, number: int) -> MlflowVersion:
        return await self.engine.read(lambda q: get_version(q, name, number))

    async def version_by_alias(self, name: str, alias: str) -> MlflowVersion:
        return await self.engine.read(lambda q: version_by_alias(q, name, alias))

    async def latest_versions(self, name: str, stages: Sequence[str]) -> list[MlflowVersion]:
        return await self.engine.read(lambda q: latest_versions(q, name, stages))

    async def in_stage(self, name: str, stage: str) -> list[int]:
        return await self.engine.read(lambda q: in_stage(q, name, stage))

    async def search_models(self, clauses: Sequence[Clause], orders: Sequence[Order], offset: int,
                            limit: int, prompts: bool = False) -> MlflowPage:
        return await self.engine.read(lambda q: search_models(q, clauses, orders, offset, limit, prompts))

    async def search_versions(self, clauses: Sequence[Clause], orders: Sequence[Order], offset: int,
                              limit: int, prompts: bool = False) -> MlflowPage:
        return await self.engine.read(lambda q: search_versions(q, clauses, orders, offset, limit, prompts))
