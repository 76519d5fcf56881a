"""SQLite's spellings of what the dialects write differently (``sql/dialect.py``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..sql.dialect import BARE, Kind


class SqliteDialect:
    name = "sqlite"
    row_lock = ""  # one writer at a time already

    def glob(self, column: str, pattern: str) -> tuple[str, list[Any]]:
        return f"{column} GLOB ?", [pattern]

    def binary(self, column: str) -> str:
        return f"{column} COLLATE BINARY"

    def values(self, items: Sequence[Any], kind: Kind) -> tuple[str, list[Any]]:
        return "(SELECT value FROM json_each(?))", [json.dumps(list(items))]

    def json_get(self, column: str, key: str) -> str:
        return f"json_extract({column}, '$.{key}')"

    def ids_taken(self, table: str) -> str | None:
        return None  # a rowid is always past the largest one

    def fact_matches(self, column: str, key: str, value: str | None) -> tuple[str, list[Any]]:
        sql, args = "jt.key = ?", [key]
        if value is not None:
            if value.lower() in BARE:
                sql += " AND jt.type = ?"
                args.append(value.lower())
            else:
                sql += " AND jt.type IN ('text', 'integer', 'real') AND lower(CAST(jt.atom AS TEXT)) = lower(?)"
                args.append(value)
        return f"EXISTS (SELECT 1 FROM json_tree({column}) jt WHERE {sql})", args


DIALECT = SqliteDialect()
