"""Changing what exists: update a model's or a version's description and tags, rename a
model, delete a version or a whole model (PRODUCT.md §3, §5).

Each change is one write transaction with its audit event. The policy lives here:

- a deleted version keeps its row, so its number is never reused and lineage and history
  still name it, but it leaves every listing, search and ref (``NAME@N`` answers "was
  deleted"); its aliases go with it, and gc purges its files at its next run;
- deleting the production version or a rollback target (one of the former production
  versions gc keeps) needs ``force``; a forced one is archived first, recorded in history;
- a deleted model keeps its row under a name no valid model name can take, so its name is
  free for a new model with fresh numbers, and its events stay in the chain;
- a rename moves the model's version folders and serving links to the new name; refs,
  aliases, gates and history follow because they hold the model's id, not its name.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path
from typing import Any

from modelreg.shared.errors import Conflict, InvalidInput
from modelreg.shared.names import validate_key, validate_name

from . import catalog, events, gc, serving
from .db import Database, Transaction
from .lifecycle import MAX_REASON, Lifecycle
from .payloads import parse_model

DELETED_MARK = "~deleted-"  # '~' is not allowed in a model name, so a tombstone never collides


# -- update -----------------------------------------------------------------------------------


def _untag(body: dict[str, Any], tags: dict[str, str]) -> list[str]:
    raw = body.get("untag")
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or len(raw) > 10_000:
        raise InvalidInput("untag must be a list of tag keys")
    keys = sorted({validate_key(k, "tag key") for k in raw})
    both = sorted(set(keys) & set(tags))
    if both:
        raise InvalidInput(f"tag {both[0]!r} is both set and removed in one update")
    return keys


def _update_body(body: Any) -> tuple[dict[str, Any], str, dict[str, str], dict[str, str], list[str]]:
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise InvalidInput("body must be an object")
    description, tags, directions = parse_model(body)
    return body, description, tags, directions, _untag(body, tags)


async def _apply_tags(tx: Transaction, table: str, column: str, owner: int, tags: dict[str, str],
                      untag: list[str]) -> list[str]:
    await tx.executemany(f"INSERT INTO {table} ({column}, key, value) VALUES (?, ?, ?) "
                         "ON CONFLICT DO UPDATE SET value = excluded.value", [(owner, k, v) for k, v in tags.items()])
    removed = []
    for key in untag:
        cur = await tx.execute(f"DELETE FROM {table} WHERE {column} = ? AND key = ?", (owner, key))
        if cur.rowcount:
            removed.append(key)
    return removed


def _change_data(body: dict[str, Any], description: str, tags: dict[str, str], removed: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {"fields": sorted(body)}
    if "description" in body:
        data["description"] = description
    if tags:
        data["tags"] = tags
    if "untag" in body:
        data["untagged"] = removed
    return data


async def update_model(db: Database, name: str, body: Any, actor: str) -> dict[str, Any]:
    """Set the description / metric directions, merge tags, remove ``untag`` keys; the model after."""
    async with db.transaction() as tx:
        stored = await _update_model(tx, name, body, actor)
    return await catalog.get_model(db, stored)


async def _update_model(tx: Transaction, name: str, body: Any, actor: str) -> str:
    body, description, tags, directions, untag = _update_body(body)
    mid = await catalog.model_id(tx, name)
    if "description" in body:
        await tx.execute("UPDATE models SET description = ? WHERE id = ?", (description, mid))
    if "metric_directions" in body:
        await tx.execute("UPDATE models SET directions = ? WHERE id = ?", (json.dumps(directions), mid))
    removed = await _apply_tags(tx, "model_tags", "model_id", mid, tags, untag)
    await tx.execute("UPDATE models SET updated_at = ? WHERE id = ?", (tx.now, mid))
    stored = (await tx.one("SELECT name FROM models WHERE id = ?", (mid,)))["name"]
    data = _change_data(body, description, tags, removed)
    if "metric_directions" in body:
        data["metric_directions"] = directions
    await events.append(tx, "model.updated", actor, model=stored, data=data)
    return stored


async def update_version(db: Database, ref: str, body: Any, actor: str) -> dict[str, Any]:
    """Set a version's description, merge its tags, remove ``untag`` keys; the version after."""
    body, description, tags, _directions, untag = _update_body(body)
    if "metric_directions" in body:
        raise InvalidInput("metric_directions belong to the model: update NAME, not NAME@N")
    async with db.transaction() as tx:
        row = await _update_version(tx, ref, body, description, tags, untag, actor)
    return await catalog.version_detail(db, row)


async def _update_version(tx: Transaction, ref: str, body: dict[str, Any], description: str, tags: dict[str, str],
                          untag: list[str], actor: str) -> Any:
    row = await catalog.resolve(tx, ref)
    if "description" in body:
        await tx.execute("UPDATE versions SET description = ? WHERE id = ?", (description, row["id"]))
    removed = await _apply_tags(tx, "version_tags", "version_id", row["id"], tags, untag)
    await tx.execute("UPDATE versions SET updated_at = ? WHERE id = ?", (tx.now, row["id"]))
    await events.append(tx, "version.updated", actor, model=row["model_name"], version=row["number"],
                        data=_change_data(body, description, tags, removed))
    return await catalog.resolve(tx, f"{row['model_name']}@{row['number']}")


# -- reasons ----------------------------------------------------------------------------------


def _options(body: Any, *, reason_required: bool) -> tuple[str, bool]:
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise InvalidInput("body must be an object")
    reason, force = body.get("reason"), body.get("force", False)
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON or "\x00" in reason):
        raise InvalidInput(f"reason must be text of at most {MAX_REASON} characters")
    if not isinstance(force, bool):
        raise InvalidInput("force must be true or false")
    reason = (reason or "").strip()
    if reason_required and not reason:
        raise InvalidInput("deleting needs a reason (recorded in the audit log)")
    return reason, force


# -- rename -----------------------------------------------------------------------------------


async def rename_model(lc: Lifecycle, name: str, body: Any, actor: str) -> dict[str, Any]:
    """Rename a model; its versions, refs, aliases, gates, history and serving links follow."""
    if not isinstance(body, dict):
        raise InvalidInput('body must be an object: {"name": "NEW"}')
    new = validate_name(body.get("name"), "new model name")
    reason, _force = _options({"reason": body.get("reason")}, reason_required=False)
    loop = asyncio.get_running_loop()
    async with lc.db.transaction() as tx:
        mid = await catalog.model_id(tx, name)
        old = (await tx.one("SELECT name FROM models WHERE id = ?", (mid,)))["name"]
        if old == new:
            raise InvalidInput(f"{old} is already called {new}")
        taken = await tx.one("SELECT name FROM models WHERE name = ? AND id != ?", (new, mid))
        if taken is not None:
            raise Conflict(f"model {taken['name']!r} already exists", {"model": taken["name"]})
        await tx.execute("UPDATE models SET name = ?, updated_at = ? WHERE id = ?", (new, tx.now, mid))
        await events.append(tx, "model.renamed", actor, model=new,
                            data={"from": old, "to": new, **({"reason": reason} if reason else {})})
        # Last, so a refused rename moves nothing; a crash before commit leaves the folders
        # under the new name, which materialise rebuilds under the old one on demand.
        await loop.run_in_executor(lc.pool, _move_versions, lc.home, old, new)
    await lc.refresh_serving(new)
    await loop.run_in_executor(lc.pool, _remove_serving, lc.home, old, new)
    return await catalog.get_model(lc.db, new)


def _move_versions(home: Path, old: str, new: str) -> None:
    src, dst = home / "versions" / old, home / "versions" / new
    if not src.is_dir():
        return
    same = dst.exists() and os.path.samefile(src, dst)  # a change of case on a case-insensitive disk
    if dst.exists() and not same:
        _stash(home, dst)  # left by a model deleted before a crash: never let it pass for ours
    os.rename(src, dst)


def _remove_serving(home: Path, old: str, keep: str | None) -> None:
    """Remove HOME/serving/<old>/ (links only), unless it is the folder of ``keep`` too."""
    folder = home / "serving" / old
    if not folder.is_dir():
        return
    other = home / "serving" / keep if keep else None
    if other is not None and other.exists() and os.path.samefile(folder, other):
        return
    serving.remove_tree(folder)


def _stash(home: Path, folder: Path) -> Path:
    """Move a version folder tree aside under a temp name (start-up removes leftovers)."""
    aside = home / "versions" / f".tmp-{uuid.uuid4().hex}"
    os.rename(folder, aside)
    return aside


# -- delete -----------------------------------------------------------------------------------


async def _retire(tx: Transaction, row: Any, actor: str, reason: str, event_id: int) -> None:
    """A forced delete of a production or staging version archives it first, in history too."""
    await tx.execute("UPDATE versions SET stage = 'archived', stage_changed_at = ? WHERE id = ?", (tx.now, row["id"]))
    await tx.execute(
        "INSERT INTO stage_changes (model_id, version_id, number, from_stage, to_stage, kind, actor, reason, forced, "
        "verdict, event_id, ts) VALUES (?, ?, ?, ?, 'archived', 'deleted', ?, ?, 1, NULL, ?, ?)",
        (row["model_id"], row["id"], row["number"], row["stage"], actor, reason, event_id, tx.now))


async def _mark_deleted(tx: Transaction, version_ids: list[int]) -> None:
    # The content digest goes too: a new drop of the same bytes is a new version, not a
    # "duplicate" of one nobody can see (the digest stays in the version.ready event).
    await tx.executemany("UPDATE versions SET deleted_at = ?, updated_at = ?, content_digest = NULL WHERE id = ?",
                         [(tx.now, tx.now, vid) for vid in version_ids])


async def delete_version(lc: Lifecycle, ref: str, body: Any, actor: str) -> dict[str, Any]:
    """Delete one version; refused for production or a rollback target unless forced."""
    reason, force = _options(body, reason_required=True)
    async with lc.db.transaction() as tx:
        row = await catalog.resolve(tx, ref)
        name = f"{row['model_name']}@{row['number']}"
        if row["status"] == "pending":
            raise Conflict(f"{name} is still being stored; delete it once it is ready or failed")
        if not force:
            if row["stage"] == "production":
                raise Conflict(f"{name} is in production; promote or roll back to another version first, "
                               "or pass force with a reason", {"ref": name, "stage": "production"})
            if row["id"] in await gc.rollback_targets(tx, row["model_id"]):
                raise Conflict(f"{name} is a rollback target (one of the last {gc.KEEP_FORMER_PRODUCTION} "
                               "versions that left production, which gc keeps); pass force with a reason",
                               {"ref": name, "rollback_target": True})
        aliases = [r["alias"] for r in await tx.all("SELECT alias FROM aliases WHERE version_id = ? ORDER BY alias",
                                                     (row["id"],))]
        await tx.execute("DELETE FROM aliases WHERE version_id = ?", (row["id"],))
        data = {"reason": reason, "forced": force, "stage": row["stage"], "aliases": aliases}
        event = await events.append(tx, "version.deleted", actor, model=row["model_name"], version=row["number"],
                                    data=data)
        if row["stage"] in ("production", "staging"):
            await _retire(tx, row, actor, reason, event["id"])
        await _mark_deleted(tx, [row["id"]])
    if row["stage"] in ("production", "staging"):
        await lc.refresh_serving(row["model_name"])
    return {"model": row["model_name"], "version": row["number"], "deleted": True, **data}


async def delete_model(lc: Lifecycle, name: str, body: Any, actor: str) -> dict[str, Any]:
    """Delete a model and its versions; refused while one is in production or staging unless forced."""
    reason, force = _options(body, reason_required=True)
    loop = asyncio.get_running_loop()
    async with lc.db.transaction() as tx:
        mid = await catalog.model_id(tx, name)
        stored = (await tx.one("SELECT name FROM models WHERE id = ?", (mid,)))["name"]
        live = await tx.all(f"SELECT v.* FROM versions v WHERE v.model_id = ? AND {catalog.LIVE} ORDER BY v.number",
                            (mid,))
        pending = [r["number"] for r in live if r["status"] == "pending"]
        if pending:
            raise Conflict(f"{stored}@{pending[0]} is still being stored; delete {stored} once it is ready or failed")
        serving_now = [r for r in live if r["stage"] in ("production", "staging")]
        if serving_now and not force:
            shown = ", ".join(f"v{r['number']} ({r['stage']})" for r in serving_now)
            raise Conflict(f"{stored} has versions in use: {shown}; archive them first, or pass force with a reason",
                           {"model": stored, "versions": [r["number"] for r in serving_now]})
        gates = (await tx.one("SELECT count(*) FROM gates WHERE model_id = ?", (mid,)))[0]
        data = {"reason": reason, "forced": force, "versions": [r["number"] for r in live],
                "stages": {str(r["number"]): r["stage"] for r in serving_now}, "gates": gates}
        event = await events.append(tx, "model.deleted", actor, model=stored, data=data)
        for r in serving_now:
            await _retire(tx, r, actor, reason, event["id"])
        await _mark_deleted(tx, [r["id"] for r in live])
        await tx.execute("DELETE FROM aliases WHERE model_id = ?", (mid,))
        await tx.execute("DELETE FROM gates WHERE model_id = ?", (mid,))
        await tx.execute("UPDATE models SET name = ?, deleted_at = ?, updated_at = ? WHERE id = ?",
                         (f"{stored}{DELETED_MARK}{mid}", tx.now, tx.now, mid))
        # The folders named after the model belong to whoever takes the name next: move them
        # out of the way before the commit (start-up removes anything left aside).
        aside = await loop.run_in_executor(lc.pool, _clear_folders, lc.home, stored)
    if aside is not None:
        await loop.run_in_executor(lc.pool, serving.remove_tree, aside)
    return {"model": stored, "deleted": True, **data}


def _clear_folders(home: Path, name: str) -> Path | None:
    _remove_serving(home, name, None)
    folder = home / "versions" / name
    return _stash(home, folder) if folder.is_dir() else None
