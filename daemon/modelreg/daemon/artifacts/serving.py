"""Materialised version folders and the serving handoff (PRODUCT.md §4).

``HOME/versions/<model>/<n>/`` holds a version's files as read-only hardlinks to its blobs
(no copy), built in a temp folder and renamed into place, so it is complete or absent.
``HOME/serving/<model>/<stage>`` is a symlink to one of them, replaced with rename(2): a
serving process following the link sees the old or the new version, never a mix.
Every function here blocks; the daemon calls them from its thread pool.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from modelreg.shared.trees import publish, remove_tree

from .blobs import BlobStore

__all__ = ["cleanup_temp", "linked_models", "materialise", "point_serving", "remove_tree", "version_dir"]


def version_dir(home: Path, model: str, number: int) -> Path:
    return home / "versions" / model / str(number)


def materialise(home: Path, blobs: BlobStore, model: str, number: int, files: list[tuple[str, str]]) -> Path:
    """Build (once) the read-only folder of a version from (relpath, sha256) pairs."""
    final = version_dir(home, model, number)
    if final.is_dir():
        return final
    staging = home / "versions" / f".tmp-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    try:
        for rel, sha in files:
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            src = blobs.path(sha)
            try:
                os.link(src, target)
            except OSError:
                shutil.copyfile(src, target)
                os.chmod(target, 0o444)
        publish(staging, final)
    except BaseException:
        remove_tree(staging)
        raise
    return final


def point_serving(home: Path, model: str, stage: str, target: Path | None) -> None:
    """Atomically point HOME/serving/<model>/<stage> at ``target`` (or remove it)."""
    link = home / "serving" / model / stage
    link.parent.mkdir(parents=True, exist_ok=True)
    if target is None:
        link.unlink(missing_ok=True)
        return
    tmp = link.with_name(f".{stage}.{uuid.uuid4().hex}")
    os.symlink(os.path.relpath(target, link.parent), tmp)
    os.replace(tmp, link)


def linked_models(home: Path) -> list[str]:
    """The models HOME/serving/ has a folder for (blocking): a link there may be stale."""
    serving = home / "serving"
    return sorted(p.name for p in serving.iterdir() if p.is_dir()) if serving.is_dir() else []


def cleanup_temp(home: Path) -> None:
    """Start-up: remove half-built version folders and stray link temp names."""
    versions = home / "versions"
    if versions.is_dir():
        for leftover in versions.glob(".tmp-*"):
            remove_tree(leftover)
    serving = home / "serving"
    if serving.is_dir():
        for leftover in serving.glob("*/.*.*"):
            if leftover.is_symlink():
                leftover.unlink(missing_ok=True)
