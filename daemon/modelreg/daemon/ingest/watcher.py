"""One watched folder: watchfiles events as hints, folder scans as truth (PRODUCT.md §6).

A drop is taken when it is finished: a ``_SUCCESS`` marker, an atomic rename-in (a temp
name deleted in the same event batch, or a folder whose ctime is after all its content),
or no change to any file's size and mtime for the settle time; and, in every case, no
temporary names inside and the format's own completeness check passing. A full rescan runs
at start-up and periodically, so drops made while the daemon was down, or files the OS
watcher never reported, are found; a deleted and re-created folder is picked up again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

import watchfiles

from ..sniff import SniffResult, sniff_drop
from .pipeline import incomplete_reason
from .processor import DropProcessor, Watch
from .scan import EntryScan, is_temporary, list_entries, scan_entry, temp_base

log = logging.getLogger("modelreg.daemon.ingest")
TICK_MS = 250
QUICK_S = 0.2          # a renamed-in or marked drop must hold still this long
FULL_RESCAN_S = 10.0
GIVE_UP_FACTOR = 5     # a format-incomplete drop that stays unchanged settle × this long fails


@dataclass
class Tracked:
    fingerprint: str = ""
    changed_at: float = 0.0
    renamed_hint: bool = False
    handled: str = ""            # fingerprint already registered (copy mode keeps the drop)
    last_sniff: float = 0.0
    scan: EntryScan | None = None


@dataclass
class DropWatcher:
    watch: Watch
    processor: DropProcessor
    pool: Executor
    tracked: dict[str, Tracked] = field(default_factory=dict)
    in_flight: set[str] = field(default_factory=set)
    _tasks: set[asyncio.Task] = field(default_factory=set)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _dirty: set[str] = field(default_factory=set)   # entries an event or a full rescan touched

    async def run(self) -> None:
        folder = self.watch.path
        while not self._stop.is_set():
            if not await self._wait_for_folder():
                return
            identity = _identity(folder)
            restart = asyncio.Event()
            await self.rescan()
            # Scan again on the first batch: an entry that landed between this scan and the OS
            # watcher's start sends no event, and would otherwise wait for the periodic rescan.
            last_full = time.monotonic() - FULL_RESCAN_S
            try:
                async for changes in watchfiles.awatch(
                        folder, stop_event=restart, rust_timeout=TICK_MS, yield_on_timeout=True,
                        force_polling=self.watch.poll or None, poll_delay_ms=300, debounce=1600, step=50,
                        watch_filter=None, recursive=True, ignore_permission_denied=True):
                    if self._stop.is_set():
                        return
                    if _identity(folder) != identity:
                        log.warning("watched folder %s disappeared; waiting for it to come back", folder)
                        break
                    self._hints(changes)
                    if time.monotonic() - last_full >= FULL_RESCAN_S:
                        await self.rescan()
                        last_full = time.monotonic()
                    await self.evaluate()
            except (FileNotFoundError, RuntimeError, OSError) as exc:
                log.warning("watching %s stopped (%s); restarting", folder, exc)
                await asyncio.sleep(0.5)

    async def _wait_for_folder(self) -> bool:
        while not self._stop.is_set():
            if self.watch.path.is_dir():
                return True
            try:
                await asyncio.wait_for(self._stop.wait(), 1.0)
            except asyncio.TimeoutError:
                pass
        return False

    def stop(self) -> None:
        self._stop.set()

    async def drain(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _hints(self, changes: set[tuple[watchfiles.Change, str]]) -> None:
        """Which top-level entries an event batch touched, and which were renamed in."""
        root = str(self.watch.path)
        touched, added, deleted_temp = set(), set(), set()
        for change, path in changes:
            rel = os.path.relpath(path, root)
            if rel.startswith(".."):
                continue
            top = rel.split(os.sep, 1)[0]
            if top == ".":
                continue
            if is_temporary(top):
                if change == watchfiles.Change.deleted and os.sep not in rel:
                    deleted_temp.add(top)
                continue
            touched.add(top)
            if change == watchfiles.Change.added and os.sep not in rel:
                added.add(top)
        for name in touched:
            self.tracked.setdefault(name, Tracked())
        self._dirty.update(touched)
        # {added x.safetensors, deleted x.part}: an atomic rename of a finished file. Only the entry
        # the temporary name turned into counts: a slow writer's first bytes may share the batch.
        for name in added:
            if any(_renamed_from(temp, name) for temp in deleted_temp):
                self.tracked[name].renamed_hint = True

    async def rescan(self) -> None:
        loop = asyncio.get_running_loop()
        names = await loop.run_in_executor(self.pool, list_entries, self.watch.path)
        if names is None:
            return
        for name in names:
            self.tracked.setdefault(name, Tracked())
        self._dirty.update(names)
        for gone in set(self.tracked) - set(names) - self.in_flight:
            del self.tracked[gone]

    async def evaluate(self) -> None:
        # Drops already taken (copy mode keeps them) are rescanned only when an event or the
        # periodic full rescan marks them dirty: an idle folder of big models costs nothing.
        pending = [n for n, t in self.tracked.items()
                   if n not in self.in_flight and (n in self._dirty or not t.handled or t.handled != t.fingerprint)]
        self._dirty.clear()
        if not pending:
            return
        loop = asyncio.get_running_loop()
        scans = await loop.run_in_executor(self.pool, _scan_all, self.watch.path, pending)
        now = time.monotonic()
        for name, scan in zip(pending, scans):
            t = self.tracked.get(name)
            if t is None or name in self.in_flight:
                continue
            if scan is None:
                del self.tracked[name]
                continue
            fp = scan.fingerprint
            if fp != t.fingerprint:
                t.fingerprint, t.changed_at, t.scan = fp, now, scan
            if t.handled == fp:
                continue
            if await self.processor.already_handled(self.watch, name, fp):
                t.handled = fp
                continue
            await self._decide(name, t, scan, now - t.changed_at)

    async def _decide(self, name: str, t: Tracked, scan: EntryScan, stable: float) -> None:
        finished = (scan.has_marker or t.renamed_hint or scan.renamed_in) and stable >= QUICK_S
        settled = finished or stable >= self.watch.settle
        reason = self.watch.filter.ignored(scan)
        if reason is not None:
            # Reported once it holds still: a folder's first file (a README) does not decide for it.
            if settled and not scan.has_temporary:
                self._ignore(name, t, scan, reason)
            return
        problem = None
        if scan.escapes:
            problem = (f"{'; '.join(scan.escapes)} is a symlink to a place outside the drop; modelreg never follows "
                       "those (copy the file in instead)")
        elif scan.error:
            problem = scan.error
        if problem:
            if stable >= QUICK_S:
                self._take(name, t, scan, None, problem)
            return
        if scan.has_temporary or not scan.files or not settled:
            return
        if time.monotonic() - t.last_sniff < 0.5:
            return
        t.last_sniff = time.monotonic()
        loop = asyncio.get_running_loop()
        sniffed: SniffResult = await loop.run_in_executor(self.pool, sniff_drop, self.watch.path / name, scan.payload)
        if sniffed.complete:
            self._take(name, t, scan, sniffed, None)
        elif stable >= max(self.watch.settle, 1.0) * GIVE_UP_FACTOR:
            self._take(name, t, scan, sniffed, incomplete_reason(sniffed))

    def _ignore(self, name: str, t: Tracked, scan: EntryScan, reason: str) -> None:
        self.in_flight.add(name)

        async def run() -> None:
            try:
                await self.processor.ignore(self.watch, scan, reason)
                t.handled = scan.fingerprint
            finally:
                self.in_flight.discard(name)

        self._spawn(run())

    def _take(self, name: str, t: Tracked, scan: EntryScan, sniffed: SniffResult | None, problem: str | None) -> None:
        self.in_flight.add(name)

        async def run() -> None:
            try:
                outcome = await self.processor.take(self.watch, scan, sniffed, problem)
                if outcome == "changed":
                    t.fingerprint = ""  # it changed while we read it: start the clock again
                else:
                    t.handled = scan.fingerprint
            finally:
                self.in_flight.discard(name)

        self._spawn(run())

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _renamed_from(temp: str, name: str) -> bool:
    """Whether temporary name ``temp`` was plausibly renamed to ``name``.

    ``x.part`` → ``x`` or ``x.safetensors``; ``x.safetensors.partial`` → ``x.safetensors``;
    rsync's ``.x.safetensors.Ab12Cd`` → ``x.safetensors``.
    """
    base = temp_base(temp)
    return bool(base) and (name == base or name.startswith(base + ".") or base.startswith(name + "."))


def _scan_all(folder: Path, names: list[str]) -> list[EntryScan | None]:
    return [scan_entry(folder, n) for n in names]


def _identity(folder: Path) -> tuple[int, int] | None:
    try:
        st = folder.stat()
        return st.st_dev, st.st_ino
    except OSError:
        return None
