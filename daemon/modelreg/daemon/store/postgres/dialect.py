"""PostgreSQL's spellings of what the dialects write differently (``sql/dialect.py``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..sql.dialect import BARE, Kind

_CAST = {"int": "bigint", "text": "text"}
# A fact anywhere in the document: the object's members, recursively (SQLite's json_tree).
_FACTS = ("WITH RECURSIVE jt(key, value) AS (SELECT key, value FROM jsonb_each({column}) "
          "UNION ALL SELECT e.key, e.value FROM jt, jsonb_each(CASE WHEN jsonb_typeof(jt.value) = 'object' "
          "THEN jt.value ELSE '{{}}'::jsonb END) e) SELECT 1 FROM jt WHERE {cond}")


def glob_regex(pattern: str) -> str:
    """A GLOB pattern as an anchored POSIX regex: ``*``, ``?``, ``[…]`` (``[^…]`` negated)."""
    out, i = ["^"], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[" and (end := pattern.find("]", i + 2 if pattern[i + 1:i + 2] in ("]", "^") else i + 1)) > 0:
            body = pattern[i + 1:end]
            neg = body.startswith("^")
            body = body[1:] if neg else body
            out.append("[" + ("^" if neg else "") + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(ch if ch.isalnum() or ch == "_" else "\\" + ch)
        i += 1
    return "".join(out) + "$"


class PostgresDialect:
    name = "postgresql"
    row_lock = " FOR UPDATE"

    def glob(self, column: str, pattern: str) -> tuple[str, list[Any]]:
        return f"CAST({column} AS text) ~ ?", [glob_regex(pattern)]

    def binary(self, column: str) -> str:
        return f'CAST({column} AS text) COLLATE "C"'

    def values(self, items: Sequence[Any], kind: Kind) -> tuple[str, list[Any]]:
        return (f"(SELECT CAST(value AS {_CAST[kind]}) FROM json_array_elements_text(CAST(? AS json)) AS j(value))",
                [json.dumps(list(items))])

    def json_get(self, column: str, key: str) -> str:
        return f"(CAST({column} AS json) -> '{key}')"

    def ids_taken(self, table: str) -> str | None:
        return f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"

    def fact_matches(self, column: str, key: str, value: str | None) -> tuple[str, list[Any]]:
        cond, args = "jt.key = ?", [key]
        if value is not None:
            if value.lower() in BARE:
                kind = "null" if value.lower() == "null" else "boolean"
                cond += f" AND jsonb_typeof(jt.value) = '{kind}'"
                if kind == "boolean":
                    cond += f" AND jt.value = '{value.lower()}'::jsonb"
            else:
                cond += " AND jsonb_typeof(jt.value) IN ('string', 'number') AND lower(jt.value #>> '{}') = lower(?)"
                args.append(value)
        return "EXISTS (" + _FACTS.format(column=f"CAST({column} AS jsonb)", cond=cond) + ")", args


DIALECT = PostgresDialect()
