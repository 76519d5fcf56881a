"""The set of watched folders: stored in the database, resumed when the daemon starts."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from modelreg.shared.errors import Conflict, InvalidInput, NotFound
from modelreg.shared.names import validate_name
from modelreg.shared.timefmt import iso

from .. import events
from ..db import Database
from .filters import DropFilter, parse_globs
from .processor import DropProcessor, Watch
from .watcher import DropWatcher

log = logging.getLogger("modelreg.daemon.ingest")
DEFAULT_SETTLE = 3.0
# Filesystems where inotify never hears about remote writers (PRODUCT.md §6): poll them.
_POLLED_FS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "drvfs", "fuse.sshfs", "fuse.rclone", "fuse.s3fs",
              "fuse.gcsfuse", "ceph", "glusterfs", "lustre"}


def needs_polling(path: Path) -> bool:
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return False
    best, fstype = "", ""
    target = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) >= 3:
            point = parts[1].replace("\\040", " ")
            if (target == point or target.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
                best, fstype = point, parts[2]
    return fstype in _POLLED_FS


class WatchManager:
    def __init__(self, db: Database, processor: DropProcessor, pool: Executor, home: Path) -> None:
        self.db, self.processor, self.pool, self.home = db, processor, pool, home.resolve()
        self._watchers: dict[int, tuple[DropWatcher, asyncio.Task]] = {}

    async def start(self) -> None:
        await self.processor.resume()
        for row in await self.db.all("SELECT * FROM watches ORDER BY id"):
            self._start(_watch(row))

    def _start(self, watch: Watch) -> None:
        watcher = DropWatcher(watch, self.processor, self.pool)
        task = asyncio.create_task(watcher.run(), name=f"watch {watch.path}")
        self._watchers[watch.id] = (watcher, task)
        log.info("watching %s (%s mode, settle %gs%s)", watch.path, watch.mode, watch.settle,
                 ", polling" if watch.poll else "")

    async def close(self) -> None:
        for watcher, task in self._watchers.values():
            watcher.stop()
            task.cancel()
            await watcher.drain()
        await asyncio.gather(*(t for _, t in self._watchers.values()), return_exceptions=True)
        self._watchers.clear()

    async def add(self, path: str, model: str | None, mode: str, settle: float, poll: bool | None,
                  actor: str, include: object = None, exclude: object = None) -> dict[str, Any]:
        include, exclude = parse_globs(include, "include"), parse_globs(exclude, "exclude")
        if not isinstance(path, str) or not os.path.isabs(path) or "\x00" in path:
            raise InvalidInput("path must be an absolute folder path")
        if model is not None:
            validate_name(model)
        if mode not in ("move", "copy"):
            raise InvalidInput("mode must be move or copy")
        if isinstance(settle, bool) or not isinstance(settle, (int, float)) or not 0 <= settle <= 3600:
            raise InvalidInput("settle must be between 0 and 3600 seconds")
        loop = asyncio.get_running_loop()
        folder = Path(await loop.run_in_executor(self.pool, os.path.realpath, path))
        if folder == self.home or folder.is_relative_to(self.home) or self.home.is_relative_to(folder):
            raise InvalidInput(f"{folder} is inside (or contains) the registry home {self.home}; watch another folder")
        try:
            await loop.run_in_executor(self.pool, lambda: folder.mkdir(parents=True, exist_ok=True))
        except OSError as exc:
            raise InvalidInput(f"cannot create or open {folder}: {exc.strerror}") from None
        if not folder.is_dir():
            raise InvalidInput(f"{folder} is not a folder")
        if poll is None:
            poll = await loop.run_in_executor(self.pool, needs_polling, folder)
        async with self.db.transaction() as tx:
            if await tx.one("SELECT 1 FROM watches WHERE path = ?", (str(folder),)):
                raise Conflict(f"{folder} is already watched")
            cur = await tx.execute(
                "INSERT INTO watches (path, model, mode, settle, poll, include, exclude, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (str(folder), model, mode, float(settle), int(bool(poll)), json.dumps(include), json.dumps(exclude),
                 tx.now))
            wid = cur.lastrowid
            await events.append(tx, "watch.added", actor, model=model,
                                data={"path": str(folder), "mode": mode, "settle": settle, "poll": bool(poll),
                                      "include": list(include), "exclude": list(exclude)})
        row = await self.db.one("SELECT * FROM watches WHERE id = ?", (wid,))
        self._start(_watch(row))
        return view(row)

    async def remove(self, key: str, actor: str) -> dict[str, Any]:
        row = None
        if key.isdigit():
            row = await self.db.one("SELECT * FROM watches WHERE id = ?", (int(key),))
        if row is None:
            real = os.path.realpath(key) if os.path.isabs(key) else key
            row = await self.db.one("SELECT * FROM watches WHERE path = ? OR path = ?", (key, real))
        if row is None:
            raise NotFound(f"{key} is not watched")
        pair = self._watchers.pop(row["id"], None)
        if pair:
            pair[0].stop()
            pair[1].cancel()
            await pair[0].drain()
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM ingest_journal WHERE watch_id = ?", (row["id"],))
            await tx.execute("DELETE FROM watches WHERE id = ?", (row["id"],))
            await events.append(tx, "watch.removed", actor, model=row["model"], data={"path": row["path"]})
        return view(row)

    async def list(self) -> list[dict[str, Any]]:
        rows = await self.db.all("SELECT * FROM watches ORDER BY path")
        out = []
        for r in rows:
            v = view(r)
            watcher = self._watchers.get(r["id"])
            v["active"] = bool(watcher and not watcher[1].done())
            v["pending"] = len(watcher[0].tracked) if watcher else 0
            stats = await self.db.all("SELECT state, count(*) AS n FROM ingest_journal WHERE watch_id = ? GROUP BY state",
                                      (r["id"],))
            v["drops"] = {s["state"]: s["n"] for s in stats}
            out.append(v)
        return out


def _watch(row: Any) -> Watch:
    return Watch(row["id"], Path(row["path"]), row["model"], row["mode"], row["settle"], bool(row["poll"]),
                 DropFilter(tuple(json.loads(row["include"])), tuple(json.loads(row["exclude"]))))


def view(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "path": row["path"], "model": row["model"], "mode": row["mode"], "settle": row["settle"],
            "poll": bool(row["poll"]), "include": json.loads(row["include"]), "exclude": json.loads(row["exclude"]),
            "created_at": iso(row["created_at"])}


__all__ = ["DEFAULT_SETTLE", "WatchManager", "needs_polling"]
