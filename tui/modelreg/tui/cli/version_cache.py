"""`resolve --path` against a daemon on another machine: the version's files in a local cache folder.

The daemon's own folder (``HOME/versions/…``) is on its machine. A client given ``--url`` (or
``MODELREG_URL``) downloads the files instead (from S3's presigned URLs when the registry keeps
its artifacts there, else through the daemon), each checked against its digest, into
``CACHE/<model>/<version>-<content digest>/``: built in a temp folder, made read-only and renamed
into place, so the folder is complete or absent, and a second resolve finds it without a download.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from modelreg.shared.errors import Conflict
from modelreg.shared.names import validate_relpath
from modelreg.shared.trees import publish, remove_tree

CACHE_ENV = "MODELREG_CACHE_DIR"


def cache_root() -> Path:
    """MODELREG_CACHE_DIR, else the platform's user cache folder for modelreg, plus ``versions``."""
    configured = os.environ.get(CACHE_ENV, "").strip()
    if configured:
        return Path(configured).expanduser() / "versions"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("modelreg", appauthor=False)) / "versions"


def cached_version(client: Any, resolved: dict[str, Any]) -> Path:
    """The read-only local folder of the resolved version's files, downloaded once (``client``: a SyncClient)."""
    files, digest = resolved["files"], resolved.get("content_digest")
    if resolved["status"] != "ready" or not files or not digest:
        raise Conflict(f"{resolved['ref']} has no files to point at (status {resolved['status']})")
    root = cache_root()
    final = root / resolved["model"] / f"{resolved['version']}-{digest.split(':')[-1][:16]}"
    if final.is_dir():
        return final
    staging = root / f".tmp-{uuid.uuid4().hex}"
    try:
        for f in files:
            target = staging / validate_relpath(f["path"])  # never trust a manifest path with the filesystem
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download(resolved["ref"], f["path"], target)
            os.chmod(target, 0o444)
        publish(staging, final)
    finally:
        remove_tree(staging)  # left only by a failed download
    return final

