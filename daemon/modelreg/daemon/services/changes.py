"""Changing what exists: update a model's or a version's description and tags, rename a
model, delete a version or a whole model (PRODUCT.md §3, §5).

Each change is one store write (one transaction with its audit event). The policy lives here:

- a deleted version keeps its row, so its number is never reused and lineage and history
  still name it, but it leaves every listing, search and ref (``NAME@N`` answers "was
  deleted"); its aliases go with it, and gc purges its files at its next run;
- deleting the production version or a rollback target (one of the former production
  versions gc keeps) needs ``force``; a forced one is archived first, recorded in history;
- a deleted model keeps its row under a name no valid model name can take, so its name is
  free for a new model with fresh numbers, and its events stay in the chain;
- a rename moves the model's version folders and serving links to the new name; refs,
  aliases, gates and history follow because they hold the model's id, not its name.

The refusals are decided on the state the write reads under the lock (``check`` callables
the store calls inside its write). Folder moves that must happen before the commit run in
the write too (on the store's writer thread, never on the event loop); the serving links
follow after the commit, and a failure there is logged (the refresher retries), never an
error for the committed change.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from modelreg.shared.errors import Conflict

from ..artifacts import serving
from ..payloads import Change, parse_delete, parse_model_update, parse_rename, parse_version_update
from ..store import Store
from ..store.records import VersionRecord
from .gc import KEEP_FORMER_PRODUCTION

log = logging.getLogger("modelreg.changes")

RefreshServing = Callable[[str], Awaitable[Any]]


# -- update -----------------------------------------------------------------------------------


def _change_data(change: Change) -> Callable[[list[str]], dict[str, Any]]:
    """The event's data, once the write knows which ``untag`` keys were really there."""
    def data(removed: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"fields": change.fields}
        if change.gives("description"):
            out["description"] = change.description
        if change.tags:
            out["tags"] = change.tags
        if change.gives("untag"):
            out["untagged"] = removed
        if change.gives("metric_directions"):
            out["metric_directions"] = change.directions
        return out
    return data


async def update_model(store: Store, name: str, body: Any, actor: str) -> dict[str, Any]:
    """Set the description / metric directions, merge tags, remove ``untag`` keys; the model after."""
    change = parse_model_update(body)
    return await store.catalog.update_model(
        name, description=change.description if change.gives("description") else None,
        directions=change.directions if change.gives("metric_directions") else None, tags=change.tags,
        untag=change.untag, event_data=_change_data(change), actor=actor)


async def update_version(store: Store, ref: str, body: Any, actor: str) -> dict[str, Any]:
    """Set a version's description, merge its tags, remove ``untag`` keys; the version after."""
    change = parse_version_update(body)
    return await store.catalog.update_version(
        ref, description=change.description if change.gives("description") else None, tags=change.tags,
        untag=change.untag, event_data=_change_data(change), actor=actor)


async def _after_commit(what: str, step: Awaitable[Any]) -> None:
    """Serving work after a committed change: a failure is logged, never the change's error."""
    try:
        await step
    except Exception:  # noqa: BLE001 - the change is committed; start-up and the refresher repair
        log.exception("after %s: updating the serving folders failed", what)


# -- rename -----------------------------------------------------------------------------------


async def rename_model(store: Store, pool: Executor, home: Path, refresh_serving: RefreshServing, name: str,
                       body: Any, actor: str) -> dict[str, Any]:
    """Rename a model; its versions, refs, aliases, gates, history and serving links follow."""
    new, reason = parse_rename(body)
    # The folder move runs last inside the write, so a refused rename moves nothing; a crash
    # before commit leaves the folders under the new name, which materialise rebuilds under
    # the old one on demand.
    old, view = await store.catalog.rename_model(name, new, reason, actor,
                                                 move=lambda o, n: _move_versions(home, o, n))
    await _after_commit(f"renaming {old} to {new}", refresh_serving(new))
    loop = asyncio.get_running_loop()
    await _after_commit(f"renaming {old} to {new}", loop.run_in_executor(pool, _remove_serving, home, old, new))
    return view


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


async def delete_version(store: Store, refresh_serving: RefreshServing, ref: str, body: Any,
                         actor: str) -> dict[str, Any]:
    """Delete one version; refused for production or a rollback target unless forced."""
    reason, force = parse_delete(body)

    def check(rec: VersionRecord, rollback_target: bool) -> None:
        name = rec.ref
        if rec.status == "pending":
            raise Conflict(f"{name} is still being stored; delete it once it is ready or failed")
        if not force:
            if rec.stage == "production":
                raise Conflict(f"{name} is in production; promote or roll back to another version first, "
                               "or pass force with a reason", {"ref": name, "stage": "production"})
            if rollback_target:
                raise Conflict(f"{name} is a rollback target (one of the last {KEEP_FORMER_PRODUCTION} "
                               "versions that left production, which gc keeps); pass force with a reason",
                               {"ref": name, "rollback_target": True})

    rec, data = await store.catalog.delete_version(ref, reason, force, actor, KEEP_FORMER_PRODUCTION, check)
    if rec.stage in ("production", "staging"):
        await _after_commit(f"deleting {rec.ref}", refresh_serving(rec.model_name))
    return {"model": rec.model_name, "version": rec.number, "deleted": True, **data}


async def delete_model(store: Store, pool: Executor, home: Path, name: str, body: Any, actor: str) -> dict[str, Any]:
    """Delete a model and its versions; refused while one is in production or staging unless forced."""
    reason, force = parse_delete(body)

    def check(stored: str, live: list[VersionRecord]) -> list[VersionRecord]:
        pending = [r.number for r in live if r.status == "pending"]
        if pending:
            raise Conflict(f"{stored}@{pending[0]} is still being stored; delete {stored} once it is ready or failed")
        serving_now = [r for r in live if r.stage in ("production", "staging")]
        if serving_now and not force:
            shown = ", ".join(f"v{r.number} ({r.stage})" for r in serving_now)
            raise Conflict(f"{stored} has versions in use: {shown}; archive them first, or pass force with a reason",
                           {"model": stored, "versions": [r.number for r in serving_now]})
        return serving_now

    # The folders named after the model belong to whoever takes the name next: they move out
    # of the way inside the write, before the commit (start-up removes anything left aside).
    stored, data, aside = await store.catalog.delete_model(name, reason, force, actor, check,
                                                           clear=lambda n: _clear_folders(home, n))
    if aside is not None:
        await _after_commit(f"deleting {stored}",
                            asyncio.get_running_loop().run_in_executor(pool, serving.remove_tree, aside))
    return {"model": stored, "deleted": True, **data}


def _clear_folders(home: Path, name: str) -> Path | None:
    _remove_serving(home, name, None)
    folder = home / "versions" / name
    return _stash(home, folder) if folder.is_dir() else None
