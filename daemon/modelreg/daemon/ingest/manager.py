"""The set of watched folders: stored in the database, run by the daemon that holds each one.

On SQLite the one daemon of the home runs every watch. On PostgreSQL a watch runs on the
daemon holding its lease (``store/sql/leases.py``): every ``renew`` seconds this daemon renews
its leases and takes the watches it can see whose holder died or let go; a watch it no longer
holds (removed, or its lease lost while the database was away) stops here at once. Taking a
watch first finishes what the journal says was interrupted, so a drop a dead daemon had half
ingested is redone, never registered twice.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import Executor
from dataclasses import dataclass
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


@dataclass(frozen=True)
class LeaseTiming:
    """How long a watch's lease lasts and how often its holder renews it (PostgreSQL only)."""

    lease: float = 15.0
    renew: float = 5.0

    @classmethod
    def from_env(cls) -> LeaseTiming:
        """MODELREG_WATCH_LEASE and MODELREG_WATCH_RENEW (seconds; renew defaults to a third of the lease)."""
        lease = _seconds("MODELREG_WATCH_LEASE", cls.lease)
        renew = _seconds("MODELREG_WATCH_RENEW", lease / 3)
        if renew >= lease:
            raise InvalidInput(f"MODELREG_WATCH_RENEW ({renew:g}s) must be shorter than MODELREG_WATCH_LEASE "
                               f"({lease:g}s): a lease must be renewed before it runs out")
        return cls(lease, renew)


def _seconds(variable: str, default: float) -> float:
    raw = os.environ.get(variable, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = -1.0
    if not 0 < value < 86400:
        raise InvalidInput(f"{variable} must be a number of seconds between 0 and 86400, not {raw[:40]!r}")
    return value


class WatchManager:
    def __init__(self, store: Store, processor: DropProcessor, pool: Executor, home: Path,
                 timing: LeaseTiming | None = None) -> None:
        self.store, self.processor, self.pool, self.home = store, processor, pool, home.resolve()
        self._watchers: dict[int, tuple[DropWatcher, asyncio.Task]] = {}
        self.shared = store.backend == "postgresql"  # several daemons: watches are leased
        self.timing = timing or LeaseTiming.from_env()
        self._sync = asyncio.Lock()         # one renewal (and its starts and stops) at a time
        self._wake = asyncio.Event()        # a peer added, removed or let go of a watch
        self._keeper: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._valid_until = 0.0             # monotonic: our leases hold at least until then

    async def start(self) -> None:
        if not self.shared:
            for rec in await self.store.watches.all():
                await self._run(rec)
            return
        await self.refresh()  # before the daemon answers: what it can hold, it runs
        self._loop = asyncio.get_running_loop()
        self.store.on_commit.append(self._heard)
        self._keeper = asyncio.create_task(self._keep(), name="watch leases")

    def _heard(self, events: list[dict[str, Any]]) -> None:
        """After a commit (ours, or a peer's fanned out): a watch added, removed or let go of is
        worth a renewal now rather than in ``renew`` seconds."""
        if self._loop is not None and any(e["kind"] in _PEER_KINDS for e in events):
            self._loop.call_soon_threadsafe(self._wake.set)

    async def refresh(self) -> Any:
        """One renewal: hold what this daemon can, run exactly the watches it holds; what the
        store's ``leases.renew`` found."""
        async with self._sync:
            recs = await self.store.watches.all()
            visible = await asyncio.get_running_loop().run_in_executor(self.pool, _visible, recs)
            sent = time.monotonic()
            # A renewal stuck behind the database must not outlast the leases it renews.
            left = self._lease_left() if self._watchers else None
            held = await asyncio.wait_for(self.store.leases.renew(visible, self.timing.lease),
                                          None if left is None else max(left, 0.05))
            self._valid_until = sent + self.timing.lease
            if held.dead:
                failed = await self.store.versions.recover_interrupted()
                if failed:
                    log.warning("marked %d registrations of a daemon that died failed (interrupted)", failed)
            for rec in recs:
                if rec.id in held.watches and rec.id not in self._watchers:
                    await self._run(rec)
            for watch_id in [w for w in self._watchers if w not in held.watches]:
                log.info("watch %d is no longer held here; stopping it", watch_id)
                await self._stop(watch_id)
            return held

    async def _keep(self) -> None:
        """Renew every ``renew`` seconds, or sooner: when a peer's lease on a watch we could run
        runs out, or a peer let one go. Without the database, stop every watch before our leases
        can have run out for the others."""
        failing = False
        while True:
            wait = self.timing.renew
            try:
                held = await self.refresh()
                if held.wait is not None:
                    wait = min(wait, held.wait + 0.05)
                if failing:
                    log.info("watch leases renewed again")
                failing = False
            except Exception as exc:  # noqa: BLE001 - the database away: keep trying
                # Once per outage, not once per try.
                log.log(logging.DEBUG if failing else logging.WARNING, "could not renew the watch leases: %s",
                        getattr(exc, "message", None) or str(exc) or type(exc).__name__)
                failing = True
                left = self._lease_left()
                if left <= 0 and self._watchers:
                    log.warning("watch leases lost; stopping %d watch(es) until they are held again",
                                len(self._watchers))
                    for watch_id in list(self._watchers):
                        await self._stop(watch_id)
                wait = min(wait, max(left, 0.05)) if self._watchers else wait
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except asyncio.TimeoutError:
                pass

    def _lease_left(self) -> float:
        """Seconds our leases surely hold for, less a margin to stop the watchers in."""
        return self._valid_until - min(1.0, self.timing.renew / 2) - time.monotonic()

    async def _run(self, rec: WatchRecord) -> None:
        await self.processor.resume(rec.id)
        self._start(_watch(rec))

    def _start(self, watch: Watch) -> None:
        watcher = DropWatcher(watch, self.processor, self.pool)
        task = asyncio.create_task(watcher.run(), name=f"watch {watch.path}")
        self._watchers[watch.id] = (watcher, task)
        log.info("watching %s (%s mode, settle %gs%s)", watch.path, watch.mode, watch.settle,
                 ", polling" if watch.poll else "")

    async def _stop(self, watch_id: int) -> None:
        pair = self._watchers.pop(watch_id, None)
        if pair:
            pair[0].stop()
            pair[1].cancel()
            await pair[0].drain()
            await asyncio.gather(pair[1], return_exceptions=True)

    async def close(self) -> None:
        """Stop every watcher; on PostgreSQL hand the leases back, so a peer takes them at once."""
        if self._keeper is not None:
            self.store.on_commit.remove(self._heard)
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
        for watch_id in list(self._watchers):
            await self._stop(watch_id)
        if self.shared:
            try:
                await self.store.leases.release()
            except Exception as exc:  # noqa: BLE001 - then the leases run out by themselves
                log.warning("could not hand the watch leases back: %s", getattr(exc, "message", None) or exc)

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
        if self.shared:
            await self.refresh()  # takes it, unless a peer that sees the folder was quicker
        else:
            self._start(_watch(rec))
        return view(rec)

    async def remove(self, key: str, actor: str) -> dict[str, Any]:
        real = None
        if os.path.isabs(key) and "\x00" not in key:
            real = await asyncio.get_running_loop().run_in_executor(self.pool, os.path.realpath, key)
        rec = await self.store.watches.find(key, real)
        if rec is None:
            raise NotFound(f"{key} is not watched")
        await self._stop(rec.id)
        await self.store.watches.remove(rec, actor)
        return view(rec)

    async def list(self) -> list[dict[str, Any]]:
        """Each watch with its state here, its drops, and the daemon holding it (``owner``: an
        instance id; ``lease_expires_at``: null on SQLite, where the one daemon always holds it)."""
        leases = await self.store.leases.all() if self.shared else {}
        out = []
        for rec, drops in await self.store.watches.with_counts():
            v = view(rec)
            watcher = self._watchers.get(rec.id)
            v["active"] = bool(watcher and not watcher[1].done())
            v["pending"] = len(watcher[0].tracked) if watcher else 0
            v["drops"] = drops
            owner, expires = leases.get(rec.id, (None, None)) if self.shared else (self.store.leases.me.id, None)
            v["owner"], v["lease_expires_at"] = owner, iso(expires) if expires is not None else None
            out.append(v)
        return out


_PEER_KINDS = {"watch.added", "watch.removed", "watch.released"}  # worth renewing at once for


def _visible(recs: list[WatchRecord]) -> set[int]:
    """The watches whose folder this machine sees: only those may be taken here."""
    return {r.id for r in recs if os.path.isdir(r.path)}


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


__all__ = ["DEFAULT_SETTLE", "LeaseTiming", "WatchManager", "needs_polling"]
