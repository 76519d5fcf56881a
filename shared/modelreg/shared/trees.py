"""Read-only folders published whole (the daemon's version folders, a client's cached versions).

A folder is built under a temp name, made read-only and renamed into place, so a reader sees it
complete or not at all; two builders racing both succeed with one folder. Every function blocks.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path


def publish(staging: Path, final: Path) -> None:
    """Make ``staging``'s folders read-only (0555) and rename it to ``final``; when another
    builder got there first, theirs is as good as ours and ``staging`` goes."""
    for dirpath, _dirs, _files in os.walk(staging, topdown=False):
        os.chmod(dirpath, 0o555)
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(staging, final)
    except OSError:
        if not final.is_dir():
            raise
        remove_tree(staging)


def remove_tree(path: Path) -> None:
    """Remove a read-only tree we built (its folders are 0555)."""
    if not path.exists():
        return
    for dirpath, _dirs, _files in os.walk(path):
        os.chmod(dirpath, stat.S_IRWXU)
    shutil.rmtree(path, ignore_errors=True)
