"""The event chain's pure rules, one definition for every backend (PRODUCT.md §5).

A row's hash covers its own fields and the previous row's hash, so editing or deleting any
row breaks the chain at that row. SQLite and PostgreSQL store the same columns and hash
them here, so a log copied from one to the other verifies unchanged.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

GENESIS = "0" * 64
HEAD_KEY = "events.head"  # the chain head, "id:hash", kept in meta beside the log


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def row_hash(prev_hash: str, event_id: int, ts: float, kind: str, actor: str,
             model: str | None, version: int | None, data: str) -> str:
    payload = canonical([prev_hash, event_id, repr(ts), kind, actor, model, version, data])
    return hashlib.sha256(payload.encode()).hexdigest()


def parse_head(value: str) -> tuple[int, str]:
    head_id, _, head_hash = value.partition(":")
    return int(head_id), head_hash


def check_rows(rows: Iterable[Any], head: tuple[int, str] | None, prev: str, expected_id: int,
               checked: int) -> tuple[dict[str, Any] | None, str, int, int]:
    """Check consecutive rows (id order, from ``expected_id``); (verdict or None to go on,
    prev hash, next id, checked). A row is anything indexable by column name."""
    for row in rows:
        problem = None
        if row["id"] != expected_id:
            problem = f"event {expected_id} is missing (next row is {row['id']})"
        elif head is not None and row["id"] == head[0] and row["hash"] != head[1]:
            problem = f"event {row['id']} is not the event that was written last with that id"
        elif row["prev_hash"] != prev:
            problem = f"event {row['id']} does not link to the event before it"
        elif row_hash(prev, row["id"], row["ts"], row["kind"], row["actor"], row["model"],
                      row["version"], row["data"]) != row["hash"]:
            problem = f"event {row['id']} was changed after it was written"
        if problem:
            bad = row["id"] if row["id"] == expected_id else expected_id
            return {"ok": False, "checked": checked, "first_bad_id": bad, "message": problem}, prev, expected_id, checked
        prev, expected_id, checked = row["hash"], row["id"] + 1, checked + 1
    return None, prev, expected_id, checked


def end_of_log(head: tuple[int, str] | None, prev: str, expected_id: int,
               checked: int) -> tuple[dict[str, Any], str, int, int]:
    """The verdict when no row is left at ``expected_id``: fine unless the head says more were written."""
    if head is not None and head[0] >= expected_id:
        return ({"ok": False, "checked": checked, "first_bad_id": expected_id,
                 "message": f"event {expected_id} is missing (the log ends at {expected_id - 1}, "
                            f"but {head[0]} events were written)"}, prev, expected_id, checked)
    return {"ok": True, "checked": checked}, prev, expected_id, checked
