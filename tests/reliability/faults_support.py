"""The fault-injection suite's parts: a ledger of acknowledged writes, the random traffic that
makes them, and the invariants checked after each restart (issue 11, PRODUCT.md §5, §6).

Everything talks to a real daemon process over its HTTP API, or reads what it left on disk
(files and registry.db, as a user's sqlite3 would). The drop and lifecycle helpers are
imported from their own test folders, not copied.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelreg.daemon.ingest.processor import FAILED_DIR
from modelreg.daemon.store.sql.versions import INTERRUPTED
from modelreg.shared.client import Client
from modelreg.shared.errors import ModelregError, Unavailable

_TESTS = Path(__file__).resolve().parents[1]
for _folder in ("drops", "lifecycle"):
    if str(_TESTS / _folder) not in sys.path:
        sys.path.insert(0, str(_TESTS / _folder))
from drops_support import blob_path, sha256_of, write_safetensors  # noqa: E402
from lifecycle_support import connect_db, wait_until  # noqa: E402

MODELS = ("alpha", "beta", "gamma")           # registered by path and by upload, promoted, rolled back
DROP_MODELS = {"move": "dropped-moved", "copy": "dropped-copied"}  # one watched folder each
ACTOR = "tester@faults"
# Refusals a random mix provokes on purpose (a stage a version is already in, a rollback with no
# target, deleting a production version): 4xx the API documents. Anything else is a finding.
EXPECTED_REFUSALS = {"conflict", "not_found"}

Key = tuple[str, int]  # (model, version number)


@dataclass
class Acked:
    """A version whose registration was acknowledged: 201 (ready) or 202 (pending, stored by a job)."""

    model: str
    number: int
    files: dict[str, str]           # manifest path → sha256
    params: dict[str, str]
    ready: bool                     # 201: ready when acknowledged; 202: ready or failed with a reason later


@dataclass
class Drop:
    mode: str                       # move | copy
    folder: Path
    entry: str
    files: dict[str, str]           # manifest path → sha256


@dataclass
class Ledger:
    """What the daemon acknowledged (and so must still hold), plus anything it answered wrongly."""

    versions: dict[Key, Acked] = field(default_factory=dict)
    fresh: set[Key] = field(default_factory=set)        # acknowledged in the current round
    deleting: set[Key] = field(default_factory=set)     # a delete was sent: the version may be gone
    metrics: list[tuple[Key, str, float]] = field(default_factory=list)
    stage_changes: Counter[tuple[str, int, str]] = field(default_factory=Counter)
    drops: list[Drop] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    acked: Counter[str] = field(default_factory=Counter)  # acknowledged operations, by kind
    next_metric: int = 0

    def live(self) -> list[Acked]:
        return [a for k, a in self.versions.items() if k not in self.deleting]


# -- traffic ----------------------------------------------------------------------------------------


class Traffic:
    """A few concurrent clients making a random mix of writes until the daemon goes away.

    Every reply is classified: an acknowledgement goes in the ledger; an expected refusal is
    fine; a 5xx, an unexpected 4xx, or a lost connection before the daemon was stopped is
    recorded as an error. Once ``stopped`` is set (the kill or SIGTERM was sent), losing the
    connection is what a client should see, and a client then ends.
    """

    OPS = (("register_upload", 5), ("register_path", 4), ("drop_move", 2), ("drop_copy", 1), ("metrics", 4),
           ("transition", 5), ("rollback", 2), ("delete", 1), ("gc", 1))

    def __init__(self, url: str, token: str, ledger: Ledger, work: Path, inboxes: dict[str, Path],
                 rng: random.Random) -> None:
        self.url, self.token, self.ledger, self.work, self.inboxes, self.rng = url, token, ledger, work, inboxes, rng
        self.stopped = asyncio.Event()
        self.sent = 0

    async def client(self, k: int) -> None:
        rng = random.Random(self.rng.getrandbits(64))
        names, weights = zip(*self.OPS)
        async with Client(url=self.url, token=self.token, actor=f"{ACTOR}-{k}", timeout=30) as c:
            while not self.stopped.is_set():
                op = rng.choices(names, weights)[0]
                try:
                    self.sent += 1
                    await getattr(self, op)(c, rng)
                except Unavailable as exc:
                    if not self.stopped.is_set():
                        self.ledger.errors.append(f"{op}: daemon unavailable before it was stopped: {exc.message}")
                    return
                except ModelregError as exc:
                    if exc.code not in EXPECTED_REFUSALS:
                        self.ledger.errors.append(f"{op}: HTTP {exc.status} {exc.code}: {exc.message}")
                except Exception as exc:  # noqa: BLE001 - aiohttp's own errors once the daemon is gone
                    if not self.stopped.is_set():
                        self.ledger.errors.append(f"{op}: {type(exc).__name__}: {exc}")
                    return

    # Each op below sends one write and records it only once acknowledged.

    async def _new_files(self, rng: random.Random, folder: Path, many: bool) -> dict[str, str]:
        """One or two fresh safetensors files (content no other version has) in ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        names = ["model.safetensors"] + (["head.safetensors"] if many else [])

        def write() -> dict[str, str]:
            out = {}
            for name in names:
                write_safetensors(folder / name, rng.getrandbits(63), {"w": (rng.randint(2, 16), 8)})
                out[name] = sha256_of(folder / name)
            return out

        return await asyncio.to_thread(write)

    def _scratch(self, rng: random.Random) -> Path:
        return self.work / f"src-{rng.getrandbits(64):016x}"

    async def register_upload(self, c: Client, rng: random.Random) -> None:
        folder = self._scratch(rng)
        files = await self._new_files(rng, folder, rng.random() < 0.3)
        model, params = rng.choice(MODELS), {"via": "upload", "n": str(rng.getrandbits(32))}
        refs = []
        for rel, sha in files.items():
            up = await c.upload_blob(folder / rel)
            assert up["sha256"] == sha, (up, sha)
            refs.append({"path": rel, "sha256": sha, "size": up["size"]})
        out = await c.register(model, files=refs, params=params)
        self._acked_version(out["version"], files, params, ready=True)

    async def register_path(self, c: Client, rng: random.Random) -> None:
        folder = self._scratch(rng)
        files = await self._new_files(rng, folder, rng.random() < 0.3)
        model, params = rng.choice(MODELS), {"via": "path", "n": str(rng.getrandbits(32))}
        wait = rng.random() < 0.7
        target = folder if len(files) > 1 else folder / next(iter(files))
        out = await c.register(model, path=target, wait=wait, params=params)
        self._acked_version(out["version"], files, params, ready=wait)

    def _acked_version(self, view: dict[str, Any], files: dict[str, str], params: dict[str, str], ready: bool) -> None:
        if ready and view["status"] != "ready":
            self.ledger.errors.append(f"{view['model']}@{view['version']} acknowledged with status {view['status']}")
        key = (view["model"], view["version"])
        self.ledger.versions[key] = Acked(*key, files, params, ready)
        self.ledger.fresh.add(key)
        self.ledger.acked["register"] += 1

    async def _drop(self, rng: random.Random, mode: str) -> None:
        """A drop renamed into the watched folder (atomic): a file, or a folder of two files."""
        many = rng.random() < 0.25
        staged = self._scratch(rng)
        files = await self._new_files(rng, staged, many)
        entry = f"drop-{rng.getrandbits(48):012x}" + ("" if many else ".safetensors")
        source = staged if many else staged / "model.safetensors"
        if not many:
            files = {entry: files["model.safetensors"]}
        self.ledger.drops.append(Drop(mode, self.inboxes[mode], entry, files))
        await asyncio.to_thread(os.rename, source, self.inboxes[mode] / entry)

    async def drop_move(self, c: Client, rng: random.Random) -> None:
        await self._drop(rng, "move")

    async def drop_copy(self, c: Client, rng: random.Random) -> None:
        await self._drop(rng, "copy")

    def _pick(self, rng: random.Random, model: str | None = None) -> Acked | None:
        live = [a for a in self.ledger.live() if model is None or a.model == model]
        return rng.choice(live) if live else None

    async def metrics(self, c: Client, rng: random.Random) -> None:
        a = self._pick(rng)
        if a is None:
            return
        self.ledger.next_metric += 1
        key, value = f"fault_{self.ledger.next_metric}", round(rng.random(), 6)  # one key per record
        await c.record_metrics(f"{a.model}@{a.number}", {key: value})
        self.ledger.metrics.append(((a.model, a.number), key, value))
        self.ledger.acked["metrics"] += 1

    async def transition(self, c: Client, rng: random.Random) -> None:
        a = self._pick(rng)
        if a is None:
            return
        to = rng.choices(("staging", "production", "archived"), (3, 4, 1))[0]
        out = await c.transition(f"{a.model}@{a.number}", to, reason="fault mix")
        self.ledger.stage_changes[(a.model, a.number, to)] += 1
        for number in out["archived"]:
            self.ledger.stage_changes[(a.model, number, "archived")] += 1
        self.ledger.acked["transition"] += 1

    async def rollback(self, c: Client, rng: random.Random) -> None:
        model = rng.choice(MODELS)
        out = await c.rollback(model, reason="fault mix")
        self.ledger.stage_changes[(model, out["to"], "production")] += 1
        self.ledger.stage_changes[(model, out["from"], "archived")] += 1
        self.ledger.acked["rollback"] += 1

    async def delete(self, c: Client, rng: random.Random) -> None:
        a = self._pick(rng)
        if a is None:
            return
        key = (a.model, a.number)
        self.ledger.deleting.add(key)  # from now on its absence is allowed, acknowledged or not
        try:
            await c.delete_version(f"{a.model}@{a.number}", reason="fault mix")
        except ModelregError as exc:
            if exc.code == "conflict":  # production or a rollback target: refused, so it stays
                self.ledger.deleting.discard(key)
            raise
        self.ledger.acked["delete"] += 1

    async def gc(self, c: Client, rng: random.Random) -> None:
        await c.gc(dry_run=False)
        self.ledger.acked["gc"] += 1


async def drive(daemon: Any, ledger: Ledger, work: Path, inboxes: dict[str, Path], rng: random.Random,
                seconds: float, clients: int, sig: int) -> int:
    """Run ``clients`` clients for ``seconds``, then send ``sig`` with requests in flight and wait
    for the clients to notice; returns how many requests were sent."""
    ledger.fresh.clear()
    traffic = Traffic(daemon.url, daemon.token, ledger, work, inboxes, rng)
    tasks = [asyncio.create_task(traffic.client(k)) for k in range(clients)]
    done, _ = await asyncio.wait(tasks, timeout=seconds)
    for t in done:  # a client only ends early on an error it has recorded
        t.result()
    traffic.stopped.set()
    if sig == signal.SIGKILL:
        await asyncio.to_thread(daemon.kill9)
    else:
        daemon.proc.send_signal(sig)
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
    except asyncio.TimeoutError:
        ledger.errors.append("a request hung after the daemon was stopped")
        for t in tasks:
            t.cancel()
    return traffic.sent


# -- invariants -------------------------------------------------------------------------------------


def temp_names(home: Path, inboxes: dict[str, Path]) -> set[str]:
    """Temp names the daemon writes (blob store, version staging, link swaps) that exist now, and
    anything in a watched folder that is neither a drop nor a pair in .failed/ (blocking)."""
    found = {str(p) for p in (home / "blobs" / "tmp").iterdir()}
    found |= {str(p) for p in (home / "versions").glob(".tmp-*")} if (home / "versions").is_dir() else set()
    found |= {str(p) for p in (home / "serving").glob("*/.*")} if (home / "serving").is_dir() else set()
    for inbox in inboxes.values():
        found |= {str(p) for p in inbox.iterdir() if p.name.startswith(".") and p.name != FAILED_DIR}
        failed = inbox / FAILED_DIR
        if failed.is_dir():
            names = {p.name for p in failed.iterdir()}
            found |= {str(failed / n) for n in names
                      if not (n.endswith(".error.txt") and n[: -len(".error.txt")] in names)
                      and f"{n}.error.txt" not in names}
    return found


class Invariants:
    """The checks after a restart; each failure message names what broke.

    The whole ledger is checked in registry.db (one query per kind, as a user's sqlite3 would
    read it); what this round acknowledged is also read back through the API.
    """

    def __init__(self, client: Client, home: Path, ledger: Ledger, inboxes: dict[str, Path]) -> None:
        self.c, self.home, self.ledger, self.inboxes = client, home, ledger, inboxes

    def _db(self, sql: str, args: tuple = ()) -> list[tuple]:
        db = connect_db(self.home)
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    async def db(self, sql: str, args: tuple = ()) -> list[tuple]:
        return await asyncio.to_thread(self._db, sql, args)

    async def after_restart(self, left_by_stop: set[str]) -> None:
        """Before anything new is written: nothing half done, nothing acknowledged lost, stages and
        links sound, no drop lost or doubled, the audit chain verifies."""
        still = await asyncio.to_thread(temp_names, self.home, self.inboxes)
        assert not still & left_by_stop, f"temp files the stop left are still there: {sorted(still & left_by_stop)}"
        pending = await self.db("SELECT m.name, v.number FROM versions v JOIN models m ON m.id = v.model_id "
                                "WHERE v.status = 'pending'")
        assert pending == [], f"versions left pending after recovery: {pending}"
        unexplained = await self.db("SELECT m.name, v.number FROM versions v JOIN models m ON m.id = v.model_id "
                                    "WHERE v.status = 'failed' AND trim(coalesce(v.status_message, '')) = ''")
        assert unexplained == [], f"failed versions without a reason: {unexplained}"
        await self.acknowledged_versions()
        await self.acknowledged_metrics()
        await self.stages()
        await self.ready_blobs_on_disk()
        await self.serving_links()
        await self.drops_sound()
        audit = await self.c.audit_verify()
        assert audit["ok"] is True, f"audit verify: {audit}"

    async def store_verifies(self) -> None:
        """``verify`` (the API's job) re-hashes every stored blob: all there, all intact. Blobs never
        change once stored, so damage from any earlier round is still found here."""
        job = await self.c.verify(wait=True)
        assert job["state"] == "done" and job["result"]["ok"], f"verify: {job}"

    async def acknowledged_versions(self) -> None:
        rows = await self.db("SELECT m.name, v.number, v.status, v.status_message, v.deleted_at FROM versions v "
                             "JOIN models m ON m.id = v.model_id")
        stored = {(name, number): (status, message, deleted) for name, number, status, message, deleted in rows}
        files: dict[Key, dict[str, str]] = {}
        for name, number, path, sha in await self.db(
                "SELECT m.name, v.number, mf.path, mf.sha256 FROM manifest mf JOIN versions v ON v.id = mf.version_id "
                "JOIN models m ON m.id = v.model_id"):
            files.setdefault((name, number), {})[path] = sha
        params: dict[Key, dict[str, str]] = {}
        for name, number, key, value in await self.db(
                "SELECT m.name, v.number, p.key, p.value FROM params p JOIN versions v ON v.id = p.version_id "
                "JOIN models m ON m.id = v.model_id"):
            params.setdefault((name, number), {})[key] = value
        for key, a in self.ledger.versions.items():
            ref = f"{key[0]}@{key[1]}"
            assert key in stored, f"acknowledged {ref} is not in the database"
            status, message, deleted = stored[key]
            if key in self.ledger.deleting:
                continue
            assert deleted is None, f"{ref} is deleted, but no delete was sent"
            if not a.ready and status == "failed":
                assert message, f"{ref} failed without a reason"
                continue
            assert status == "ready", f"acknowledged {ref} is {status}: {message}"
            assert files.get(key) == a.files, f"{ref} holds files {files.get(key)}, not {a.files}"
            assert params.get(key) == a.params, f"{ref} params {params.get(key)} != {a.params}"
        for key in self.ledger.fresh - self.ledger.deleting:  # this round's, through the API too
            v = await self.c.version(f"{key[0]}@{key[1]}")
            a = self.ledger.versions[key]
            assert v["status"] in ("ready",) + (() if a.ready else ("failed",)), f"{key}: {v['status']}"
            if v["status"] == "ready":
                assert {f["path"]: f["sha256"] for f in v["files"]} == a.files and v["params"] == a.params, v

    async def acknowledged_metrics(self) -> None:
        stored = set(await self.db("SELECT m.name, v.number, r.key, r.value FROM metrics r "
                                   "JOIN versions v ON v.id = r.version_id JOIN models m ON m.id = v.model_id "
                                   "WHERE r.key LIKE 'fault\\_%' ESCAPE '\\'"))
        for (model, number), key, value in self.ledger.metrics:
            if (model, number) not in self.ledger.deleting:
                assert (model, number, key, value) in stored, f"acknowledged metric {key}={value} of {model}@{number} is lost"

    async def stages(self) -> None:
        """Each acknowledged stage change is in the history (the API's); each version's stage is its
        history's last word; at most one production version per model."""
        for model in MODELS:
            try:
                history = (await self.c.history(model, limit=10000))["items"]
            except ModelregError as exc:
                if exc.code == "not_found":
                    continue
                raise
            seen = Counter((model, h["version"], h["to"]) for h in history)
            for change, n in self.ledger.stage_changes.items():
                if change[0] == model:
                    assert seen[change] >= n, f"acknowledged stage change {change} x{n} is in the history x{seen[change]}"
            last = {h["version"]: h["to"] for h in history}
            rows = await self.db("SELECT v.number, v.stage FROM versions v JOIN models m ON m.id = v.model_id "
                                 "WHERE m.name = ? AND v.deleted_at IS NULL", (model,))
            for number, stage in rows:
                assert stage == last.get(number, "none"), f"{model}@{number} is {stage}, its history says {last.get(number)}"
            prod = [n for n, s in rows if s == "production"]
            assert len(prod) <= 1, f"{model} has several production versions: {prod}"

    async def ready_blobs_on_disk(self) -> None:
        rows = await self.db("SELECT DISTINCT mf.sha256 FROM manifest mf JOIN versions v ON v.id = mf.version_id "
                             "WHERE v.status = 'ready' AND v.purged_at IS NULL")
        missing = [sha for sha, in rows if not blob_path(self.home, sha).is_file()]
        assert missing == [], f"ready versions reference blobs that are not on disk: {missing}"

    async def serving_links(self) -> None:
        """HOME/serving/<model>/<stage> is the production (newest staging) version's folder, or absent."""
        for model in MODELS + tuple(DROP_MODELS.values()):
            for stage in ("production", "staging"):
                rows = await self.db("SELECT v.id, v.number FROM versions v JOIN models m ON m.id = v.model_id "
                                     "WHERE m.name = ? AND v.stage = ? AND v.status = 'ready' "
                                     "ORDER BY v.number DESC LIMIT 1", (model, stage))
                link = self.home / "serving" / model / stage
                if not rows:
                    assert not link.is_symlink() and not link.exists(), \
                        f"{link} still points at {os.readlink(link) if link.is_symlink() else '?'}, nothing is in {stage}"
                    continue
                vid, number = rows[0]
                assert link.is_symlink(), f"{link} is missing; {model}@{number} is in {stage}"
                want = (self.home / "versions" / model / str(number)).resolve()
                assert link.resolve() == want, f"{link} → {link.resolve()}, expected {want}"
                files = await self.db("SELECT path, sha256 FROM manifest WHERE version_id = ?", (vid,))
                got = await asyncio.to_thread(lambda: {p: sha256_of(link / p) for p, _ in files})
                assert got == dict(files), f"{link} holds other bytes than {model}@{number}"

    async def drops_sound(self) -> None:
        """No drop registered twice, none in .failed/ (all are valid models), and a move-mode drop
        gone from its folder is in a ready version (folders are looked at first: the daemon may
        be taking a drop meanwhile, and it removes one only after its commit)."""
        gone = [(d, (d.folder / FAILED_DIR / f"{d.entry}.error.txt").exists()) for d in self.ledger.drops
                if not (d.folder / d.entry).exists()]
        registered = await self._drop_versions()
        for d in self.ledger.drops:
            n = registered[DROP_MODELS[d.mode]].count(frozenset(d.files.items()))
            assert n <= 1, f"drop {d.entry} ({d.mode}) registered {n} times"
        for d, failed in gone:
            if failed:
                reason = (d.folder / FAILED_DIR / f"{d.entry}.error.txt").read_text()
                raise AssertionError(f"drop {d.entry} ({d.mode}) went to .failed/, though it is a valid model: {reason}")
            n = registered[DROP_MODELS[d.mode]].count(frozenset(d.files.items()))
            assert n == 1, f"drop {d.entry} ({d.mode}) left its folder but is in no ready version: lost"
        expected = Counter(frozenset(d.files.items()) for d in self.ledger.drops)
        for model, contents in registered.items():
            extra = Counter(contents) - expected
            assert not extra, f"{model} holds versions no drop made: {list(extra)[:3]}"

    async def drops_settled(self, timeout: float) -> None:
        """Wait until every drop is registered (a move-mode one gone from its folder); then each is
        registered exactly once, and a copy-mode drop is still in its folder, unchanged."""
        waiting: list[str] = []

        async def settled() -> bool:
            in_folder = {id(d): (d.folder / d.entry).exists() for d in self.ledger.drops}
            registered = await self._drop_versions()
            waiting[:] = [f"{d.mode}:{d.entry} ({_whereabouts(d)})"
                          for d in self.ledger.drops
                          if not registered[DROP_MODELS[d.mode]].count(frozenset(d.files.items()))
                          or (d.mode == "move" and in_folder[id(d)])]
            return not waiting

        try:
            await wait_until(settled, timeout, "every drop registered", step=0.1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; still waiting for {waiting[:5]}") from None
        await self.drops_sound()
        for d in self.ledger.drops:
            if d.mode == "copy":
                got = await asyncio.to_thread(_hashes, d.folder / d.entry, list(d.files))
                assert got == d.files, f"copy-mode drop {d.entry} changed in its folder"

    async def _drop_versions(self) -> dict[str, list[frozenset]]:
        """The content of every ready version of the drop models, per model."""
        out: dict[str, list[frozenset]] = {m: [] for m in DROP_MODELS.values()}
        by_version: dict[tuple[str, int], set] = {}
        for name, vid, path, sha in await self.db(
                "SELECT m.name, v.id, mf.path, mf.sha256 FROM versions v JOIN models m ON m.id = v.model_id "
                "JOIN manifest mf ON mf.version_id = v.id WHERE v.status = 'ready' AND m.name IN (?, ?)",
                tuple(DROP_MODELS.values())):
            by_version.setdefault((name, vid), set()).add((path, sha))
        for (name, _), content in by_version.items():
            out[name].append(frozenset(content))
        return out

    async def no_temp_files(self) -> None:
        """Once nothing is in flight (the drops settled): no temp name at all."""
        left = await asyncio.to_thread(temp_names, self.home, self.inboxes)
        assert not left, f"temp files left behind: {sorted(left)}"


def _whereabouts(d: Drop) -> str:
    """Where a drop is, for a failure message: a file with several links shares its inode with a
    blob (move mode hardlinks the drop into the store before registering it)."""
    try:
        st = (d.folder / d.entry).stat()
    except FileNotFoundError:
        return "gone from its folder"
    return f"in its folder, {st.st_nlink} links, mtime_ns {st.st_mtime_ns}"


def _hashes(where: Path, rels: list[str]) -> dict[str, str]:
    if where.is_file():
        return {rels[0]: sha256_of(where)}
    return {rel: sha256_of(where / rel) for rel in rels}


def unfinished_after_exit(home: Path) -> list[str]:
    """After a graceful exit, before any restart: versions the daemon left pending (it should have
    finished or failed them itself; start-up recovery is for crashes)."""
    db = connect_db(home)
    try:
        rows = db.execute("SELECT m.name || '@' || v.number FROM versions v JOIN models m ON m.id = v.model_id "
                          "WHERE v.status = 'pending'").fetchall()
    finally:
        db.close()
    return [ref for ref, in rows]


def interrupted_registrations(home: Path) -> int:
    """Versions start-up recovery marked failed: registrations a kill cut short (reported, to show
    the kills landed mid-write)."""
    db = connect_db(home)
    try:
        return db.execute("SELECT count(*) FROM versions WHERE status = 'failed' AND status_message = ?",
                          (INTERRUPTED,)).fetchone()[0]
    finally:
        db.close()
