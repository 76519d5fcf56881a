"""Who runs each drop-folder watch: one daemon at a time, while its lease lasts (issue 13).

On PostgreSQL several daemons share the watches. Each keeps a row in ``daemons`` and a lease
per watch it runs, both renewed by one write every few seconds (``renew``); the same write
takes over a lease that expired (its daemon died) or that nobody holds, and a clean stop
hands its leases back (``release``). Each decision is made inside a write, and writes take
turns registry-wide, so two daemons never both hold a watch. Expiries are the database's
clock: the daemons' own clocks may disagree. A daemon that ran on this machine is also known
dead as soon as its process is gone (``alive_here``), without waiting for its expiry.

On SQLite one daemon owns the home: its leases are simply always held, nothing is written
here, and every version left pending belongs to a dead daemon.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from . import events
from .tx import Engine, Sql, WriteTx


@dataclass(frozen=True)
class Instance:
    """One daemon process: ``id`` (host:pid:random) names it in leases and pending versions."""

    id: str
    host: str
    pid: int
    proc: str | None  # where this machine can check it still runs (``_proc_token``)

    @classmethod
    def here(cls) -> Instance:
        host, pid = socket.gethostname(), os.getpid()
        return cls(f"{host}:{pid}:{secrets.token_hex(3)}", host, pid, _proc_token(pid))


def _scope() -> str | None:
    """This kernel boot and pid namespace: pids mean the same process only within one."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return f"{boot}/{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return None


def _started(pid: int) -> str | None:
    """The process's start time (clock ticks since boot), None once it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def _proc_token(pid: int) -> str | None:
    scope, started = _scope(), _started(pid)
    return f"{scope}/{pid}/{started}" if scope and started else None


def alive_here(proc: str) -> bool | None:
    """Whether the process a ``proc`` token names still runs; None when it ran elsewhere (or
    this machine cannot tell): then only its lease's expiry says it died."""
    parts = proc.split("/")  # boot id, pid namespace, pid, start time
    if len(parts) != 4 or not parts[2].isdigit() or f"{parts[0]}/{parts[1]}" != _scope():
        return None
    return _started(int(parts[2])) == parts[3]


def db_now(q: Sql) -> float:
    """The database's clock (SQLite's is this machine's)."""
    if q.dialect.name == "postgresql":
        return float(q.one("SELECT CAST(extract(epoch FROM clock_timestamp()) AS DOUBLE PRECISION) AS t")["t"])
    return time.time()


@dataclass(frozen=True)
class Held:
    """What a renewal found: the watches this daemon holds, and when to look again."""

    watches: frozenset[int]
    wait: float | None  # seconds until the soonest other daemon's lease on a visible watch expires
    dead: int           # daemons found dead (their rows removed: their pending versions can be recovered)


def live_instances(q: Sql) -> set[str]:
    """The daemons whose rows have not expired (recovery leaves their pending versions alone)."""
    return {r["instance"] for r in q.all("SELECT instance FROM daemons WHERE expires_at > ?", (db_now(q),))}


def renew(tx: WriteTx, me: Instance, visible: Collection[int], lease: float, started_at: float) -> Held:
    """Renew ``me`` and its leases; take every watch in ``visible`` (its folder exists here)
    that nobody holds, or whose holder died; a ``watch.taken_over`` event for each taken from one."""
    now = db_now(tx)
    until = now + lease
    tx.execute("INSERT INTO daemons (instance, host, pid, proc, started_at, expires_at) VALUES (?, ?, ?, ?, ?, ?) "
               "ON CONFLICT (instance) DO UPDATE SET expires_at = excluded.expires_at",
               (me.id, me.host, me.pid, me.proc, started_at, until))
    others = tx.all("SELECT instance, proc, expires_at FROM daemons WHERE instance <> ?", (me.id,))
    dead = [r["instance"] for r in others
            if r["expires_at"] <= now or (r["proc"] is not None and alive_here(r["proc"]) is False)]
    if dead:
        sub, args = tx.dialect.values(dead, "text")
        tx.execute(f"DELETE FROM daemons WHERE instance IN {sub}", args)
    live = {r["instance"] for r in others} - set(dead) | {me.id}
    tx.execute("UPDATE watch_leases SET expires_at = ? WHERE owner = ?", (until, me.id))
    held: set[int] = set()
    wait: float | None = None
    for r in tx.all("SELECT w.id, w.path, w.model, l.owner, l.expires_at FROM watches w "
                    "LEFT JOIN watch_leases l ON l.watch_id = w.id ORDER BY w.id"):
        if r["owner"] == me.id:
            held.add(r["id"])
        elif r["id"] not in visible:
            continue
        elif r["owner"] is None:
            tx.execute("INSERT INTO watch_leases (watch_id, owner, acquired_at, expires_at) VALUES (?, ?, ?, ?)",
                       (r["id"], me.id, now, until))
            held.add(r["id"])
        elif r["owner"] not in live or r["expires_at"] <= now:
            tx.execute("UPDATE watch_leases SET owner = ?, acquired_at = ?, expires_at = ? WHERE watch_id = ?",
                       (me.id, now, until, r["id"]))
            events.append(tx, "watch.taken_over", "daemon", model=r["model"],
                          data={"path": r["path"], "owner": me.id, "previous": r["owner"]})
            held.add(r["id"])
        else:
            left = r["expires_at"] - now
            wait = left if wait is None else min(wait, left)
    return Held(frozenset(held), wait, len(dead))


def release(tx: WriteTx, me: Instance) -> int:
    """A clean stop: hand every lease back at once (``watch.released`` each); how many.
    The daemon's own row stays until it expires: its pending versions are its own to fail."""
    rows = tx.all("SELECT w.path, w.model FROM watch_leases l JOIN watches w ON w.id = l.watch_id "
                  "WHERE l.owner = ? ORDER BY w.id", (me.id,))
    tx.execute("DELETE FROM watch_leases WHERE owner = ?", (me.id,))
    for r in rows:
        events.append(tx, "watch.released", "daemon", model=r["model"], data={"path": r["path"], "owner": me.id})
    return len(rows)


def leases(q: Sql) -> dict[int, tuple[str, float]]:
    """Each leased watch's (owner, expiry)."""
    return {r["watch_id"]: (r["owner"], r["expires_at"])
            for r in q.all("SELECT watch_id, owner, expires_at FROM watch_leases")}


class LeaseStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.me = Instance.here()
        self.started_at = time.time()

    async def renew(self, visible: Collection[int], lease: float) -> Held:
        """One write: renew this daemon and its leases, take the free and the dead ones' watches."""
        return await self.engine.write(lambda tx: renew(tx, self.me, visible, lease, self.started_at))

    async def release(self) -> int:
        """One write: every lease this daemon holds handed back."""
        return await self.engine.write(lambda tx: release(tx, self.me))

    async def all(self) -> dict[int, tuple[str, float]]:
        return await self.engine.read(leases)

    async def owners(self) -> set[str]:
        return await self.engine.read(live_instances)


__all__ = ["Held", "Instance", "LeaseStore", "alive_here", "live_instances"]
