"""The shared SQL (``store/sql``) as PostgreSQL reads it: a few mechanical rewrites.

The aggregates write one SQL in what both dialects share; where a construct exists in both
under another name, this rewrites it once per distinct statement (cached), so the shared
text stays readable and no aggregate spells anything twice:

- ``?`` placeholders become ``$1, $2 …`` (never inside a quoted string or identifier);
- SQLite's JSON builders become PostgreSQL's: ``json_group_object`` → ``json_object_agg``,
  ``json_group_array`` → ``json_agg`` (both ``'{}'`` / ``'[]'`` over no rows, as in SQLite),
  ``json_array`` → ``json_build_array``, and ``quote(x)`` (a REAL as exact text) → ``x::text``
  (PostgreSQL prints the shortest text that reads back the same double);
- a subquery in FROM gets the alias PostgreSQL 15 requires;
- ``CROSS JOIN t ON …`` (SQLite's way to fix the join order) is a plain ``JOIN``.

What differs in meaning rather than spelling is asked of the dialect (``postgres/dialect.py``).
"""

from __future__ import annotations

import functools
import re

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FUNCS = {
    "json_group_object": ("coalesce(json_object_agg(", "), '{}')"),
    "json_group_array": ("coalesce(json_agg(", "), '[]')"),
    "json_array": ("json_build_array(", ")"),
    "quote": ("coalesce(CAST((", ") AS text), 'NULL')"),
}
# What may follow a FROM subquery's ")" when it has no alias.
_NOT_ALIAS = {"where", "group", "order", "limit", "offset", "join", "left", "inner", "cross", "on", "union",
              "having", "window", "except", "intersect", "returning"}


_CROSS_ON = re.compile(r"\bCROSS JOIN(\s+\w+(?:\s+(?!ON\b)\w+)?\s+ON)\b", re.I)


@functools.lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    out: list[str] = []
    _rewrite(sql, 0, len(sql), out, [0], [0])
    return _CROSS_ON.sub(r"JOIN\1", "".join(out))


def _rewrite(sql: str, start: int, end: int, out: list[str], n: list[int], aliases: list[int]) -> None:
    """Copy ``sql[start:end]`` to ``out`` rewritten; ``n`` counts placeholders, ``aliases`` subqueries."""
    i = start
    while i < end:
        ch = sql[i]
        if ch in "'\"":  # a quoted string or identifier: copied as it is
            j = i + 1
            while j < end and not (sql[j] == ch and sql[j + 1:j + 2] != ch):
                j += 2 if sql[j] == ch else 1
            out.append(sql[i:j + 1])
            i = j + 1
        elif ch == "?":
            n[0] += 1
            out.append(f"${n[0]}")
            i += 1
        elif ch == "(" and _after_from(out):
            close = _matching(sql, i, end)
            out.append("(")
            _rewrite(sql, i + 1, close, out, n, aliases)
            out.append(")")
            i = close + 1
            word = _WORD.match(sql, _skip_space(sql, i, end))
            if word is None or word.group().lower() in _NOT_ALIAS:
                aliases[0] += 1
                out.append(f" AS _s{aliases[0]}")
        elif (word := _WORD.match(sql, i)) is not None:
            name = word.group()
            after = word.end()
            if name.lower() in _FUNCS and sql[after:after + 1] == "(" and not _qualified(sql, i):
                opening, closing = _FUNCS[name.lower()]
                close = _matching(sql, after, end)
                out.append(opening)
                _rewrite(sql, after + 1, close, out, n, aliases)
                out.append(closing)
                i = close + 1
            else:
                out.append(name)
                i = after
        else:
            out.append(ch)
            i += 1


def _after_from(out: list[str]) -> bool:
    """Whether the last word written (spaces and newlines are one item each) is FROM."""
    i = len(out) - 1
    while i >= 0 and out[i].isspace():
        i -= 1
    return i >= 0 and out[i].lower() == "from"


def _qualified(sql: str, i: int) -> bool:
    return i > 0 and sql[i - 1] == "."


def _skip_space(sql: str, i: int, end: int) -> int:
    while i < end and sql[i].isspace():
        i += 1
    return i


def _matching(sql: str, i: int, end: int) -> int:
    """The index of the ')' closing the '(' at ``i`` (quotes skipped)."""
    depth, j = 0, i
    while j < end:
        ch = sql[j]
        if ch in "'\"":
            j += 1
            while j < end and sql[j] != ch:
                j += 1
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return j
        j += 1
    raise ValueError(f"unbalanced parentheses in SQL: {sql!r}")
