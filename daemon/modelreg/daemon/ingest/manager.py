"""The set of watched folders: stored in the database, resumed when the daemon starts."""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from modelreg.shared.config import home_overlap_message, overlaps_home
from modelreg.shared.errors import InvalidInput, NotFound
from modelreg.shared.timefmt import iso

from ..store import Store
from ..store.records import WatchRecord
from ..payloads import parse_watch
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
    def __init__(self, store: Store, processor: DropProcessor, pool: Executor, home: Path) -> None:
        self.store, self.processor, self.pool, self.home = store, processor, pool, home.resolve()
        self._watchers: dict[int, tuple[DropWatcher, asyncio.Task]] = {}

    async def start(self) -> None:
        await self.processor.resume()
        for rec in await self.store.watches.all():
            self._start(_watch(rec))

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

    async def add(self, data: Any, actor: str) -> dict[str, Any]:
        """Watch a folder (``data``: the request body): created if missing, never inside the registry home."""
        if isinstance(data, dict):  # the glob lists are checked first, in their own words
            parse_globs(data.get("include"), "include")
            parse_globs(data.get("exclude"), "exclude")
        req = parse_watch(data)
        path, model, mode, settle, poll = req.path, req.model, req.mode, req.settle, req.poll
        loop = asyncio.get_running_loop()
        folder = Path(await loop.run_in_executor(self.pool, os.path.realpath, path))
        if overlaps_home(folder, self.home):
            raise InvalidInput(home_overlap_message(folder, self.home, "watch another folder"))
        try:
            await loop.run_in_executor(self.pool, _make_folder, folder)
        except OSError as exc:
            raise InvalidInput(f"cannot create or open {folder}: {exc.strerror}") from None
        if poll is None:
            poll = await loop.run_in_executor(self.pool, needs_polling, folder)
        rec = await self.store.watches.add(str(folder), model, mode, settle, bool(poll), req.include, req.exclude,
                                          actor)
        self._start(_watch(rec))
        return view(rec)

    async def remove(self, key: str, actor: str) -> dict[str, Any]:
        real = None
        if os.path.isabs(key) and "\x00" not in key:
            real = await asyncio.get_running_loop().run_in_executor(self.pool, os.path.realpath, key)
        rec = await self.store.watches.find(key, real)
        if rec is None:
            raise NotFound(f"{key} is not watched")
        pair = self._watchers.pop(rec.id, None)
        if pair:
            pair[0].stop()
            pair[1].cancel()
            await pair[0].drain()
        await self.store.watches.remove(rec, actor)
        return view(rec)

    async def list(self) -> list[dict[str, Any]]:
        out = []
        for rec, drops in await self.store.watches.with_counts():
            v = view(rec)
            watcher = self._watchers.get(rec.id)
            v["active"] = bool(watcher and not watcher[1].done())
            v["pending"] = len(watcher[0].tracked) if watcher else 0
            v["drops"] = drops
            out.append(v)
        return out


def _make_folder(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if not folder.is_dir():
        raise InvalidInput(f"{folder} is not a folder")


def _watch(rec: WatchRecord) -> Watch:
    return Watch(rec.id, Path(rec.path), rec.model, rec.mode, rec.settle, rec.poll,
                 DropFilter(tuple(rec.include), tuple(rec.exclude)))


def view(rec: WatchRecord) -> dict[str, Any]:
    return {"id": rec.id, "path": rec.path, "model": rec.model, "mode": rec.mode, "settle": rec.settle,
            "poll": rec.poll, "include": list(rec.include), "exclude": list(rec.exclude),
            "created_at": iso(rec.created_at)}


__all__ = ["DEFAULT_SETTLE", "WatchManager", "needs_polling"]
