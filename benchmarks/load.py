"""Load: 64 concurrent clients against a real daemon for a bounded time (issue 11 "Load", acceptance 6).

    .venv/bin/python -m benchmarks --only load            # small: 20 s of load, 100,000 versions stored
    .venv/bin/python -m benchmarks --only load --tiny     # 3 s; what tests/test_bench_load_smoke.py runs
    .venv/bin/python -m benchmarks --only load --large    # 60 s, 1,000,000 versions stored
    # options: --seconds S, --clients N, --seed N, --keep

One process, one event loop: ``clients`` aiohttp clients (one session and connection each, the
``Bare`` client of benchmarks/run.py) loop for ``seconds``, each picking its next operation at
random from a fixed mix: reads (get a version, resolve production, a page of versions, a
search), registrations (a small real safetensors file uploaded then registered, or registered
by path, copy or move), metric records, and stage transitions (to staging, to production,
archive, rollback) through gates on 16 live models. A few WebSocket subscribers follow the
event stream meanwhile and count what they receive. The same clients, the same mix and the
same requests are first sent to the no-op server of the other benchmarks (benchmarks/noop_server.py)
for as long: the floor of each operation, measured in the same run.

Transitions on one model are serialised by the load generator (a lock per model, as one
deployment pipeline per model would), so it knows every version's stage and can tell the
answer each transition must get: a promotion to production that the gates must refuse is
sent on purpose every third time (``auc >= production - 0.2`` fails), and its 422 is counted
apart, as expected. Any other non-2xx answer, or a 2xx where a refusal was due, is an error.

Then the invariants: 0 errors; at most one production version per model, the one the clients
put there; every acknowledged registration present, ready and with the content sent; every
acknowledged metric record present; every version in the stage its last transition left it;
the serving links at the production versions; each stream received every committed event once,
in order; ``audit verify`` and ``verify`` clean. The last line is a one-line JSON summary; the
exit status is 1 when an invariant is broken.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import os
import random
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.mlflow_compare import Server, start_python_server
from benchmarks.run import (MODEL as BENCH, PAGE_FILTER, PAGE_ORDER, ROOT, Bare, Report, _rounded, machine, pct,
                            safetensors_header, seed, tiny_blob)
from daemon_process import DaemonProcess, start_daemon  # benchmarks.run put tests/ on the path
from modelreg.daemon.store.sql.versions import content_digest
from modelreg.shared.codec import MSGPACK, decode, encode

PROFILES: dict[str, dict[str, Any]] = {
    # seconds: of load (and as long again of floor); versions: seeded into BENCH before the daemon starts.
    "tiny": dict(seconds=3.0, versions=1_000),
    "small": dict(seconds=20.0, versions=100_000),
    "large": dict(seconds=60.0, versions=1_000_000),
}
CLIENTS = 64
SUBSCRIBERS = 4
LIVE = [f"load-{k:02d}" for k in range(16)]  # the models registered into and transitioned under load
GATES = [("production", "auc >= 0.5"), ("production", "auc >= production - 0.2"), ("staging", "requires metric:auc")]
FLOOR_AUC, SLACK = 0.5, 0.2   # what the production gates above say, to predict their verdicts
SETUP_AUCS = (0.9, 0.8, 0.62, 0.45, 0.95)  # each live model's first versions (see setup)
FILE_BYTES = 4096
ONLINE = "online_ctr"         # the key metric records write; no gate reads it, so verdicts stay predictable
REFUSED = "production, refused (provoked)"
WEIGHTS = {"get version": 20, "resolve production": 14, "page versions": 8, "search": 6,
           "register (upload)": 12, "register (path)": 8, "record metric": 18, "transition": 14}
TRANSITIONS = {"to staging": 3, "to production": 4, "archive": 2, "rollback": 2}
OP_ORDER = ["get version", "resolve production", "page versions", "search", "register (upload)", "register (path)",
            "record metric", "to staging", "to production", REFUSED, "archive", "rollback"]


# -- what the clients know ------------------------------------------------------------------------


@dataclass
class Live:
    """One live model as the clients left it: exact, since only they change it and its transitions are serialised."""

    name: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    numbers: list[int] = field(default_factory=list)      # acknowledged versions, in acknowledgement order
    auc: dict[int, float] = field(default_factory=dict)
    digest: dict[int, str] = field(default_factory=dict)  # the content digest each registration must have
    stage: dict[int, str] = field(default_factory=dict)
    production: int | None = None
    entered: list[int] = field(default_factory=list)      # versions in the order they entered production
    metrics: Counter[int] = field(default_factory=Counter)  # acknowledged ONLINE records per version

    def registered(self, number: int, auc: float, digest: str) -> None:
        self.numbers.append(number)
        self.auc[number], self.digest[number], self.stage[number] = auc, digest, "none"

    def passes(self, number: int) -> bool:
        """What the production gates must say about ``number`` now."""
        auc = self.auc[number]
        return auc >= FLOOR_AUC and (self.production is None or auc >= self.auc[self.production] - SLACK)

    def rollback_target(self) -> int | None:
        """The daemon's rule: the version that entered production most recently, other than the current one."""
        return next((n for n in reversed(self.entered) if n != self.production), None)


@dataclass
class Phase:
    """Per-operation latencies (seconds) of one run, and what went wrong."""

    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    first_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)

    def error(self, op: str, why: str) -> None:
        self.errors[op] += 1
        if len(self.first_errors) < 5:
            self.first_errors.append(f"{op}: {why[:300]}")


Call = tuple[str, str, Any, Any, dict[str, str]]  # method, path, body, params, headers


class Load:
    """The operations of the mix. Against the floor (``floor=True``) the same requests are sent and the
    answers are not read, so the state stays as the setup left it."""

    def __init__(self, lives: list[Live], seeded: int, scratch: Path, floor: bool = False) -> None:
        self.lives, self.seeded, self.scratch, self.floor = lives, seeded, scratch, floor
        self.provoke = itertools.count()  # every third promotion to production is sent to be refused

    def as_floor(self) -> Load:
        """The same mix over the same (then frozen) state, for the no-op server."""
        return Load(self.lives, self.seeded, self.scratch, floor=True)

    async def request(self, phase: Phase, op: str, c: Bare, calls: list[Call], expect: int) -> list[bytes] | None:
        """Send ``calls`` in turn, timed as one operation: the bodies answered, or None (an error recorded)
        when the last status is not ``expect`` or an earlier one not 2xx. The floor answers any POST 201
        and any GET 200."""
        assert c.session is not None
        out = []
        t = time.perf_counter()
        try:
            for i, (method, path, body, params, headers) in enumerate(calls):
                async with c.session.request(method, c.url + path, data=body, params=params, headers=headers) as resp:
                    status, raw = resp.status, await resp.read()
                if self.floor:
                    ok = status == (201 if method == "POST" else 200)
                else:
                    ok = status == expect if i == len(calls) - 1 else 200 <= status < 300
                if not ok:
                    phase.error(op, f"{method} {path} answered {status}: {raw[:300]!r}")
                    return None
                out.append(raw)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            phase.error(op, f"{type(exc).__name__}: {exc}")
            return None
        phase.samples[op].append(time.perf_counter() - t)
        return out

    async def get(self, phase: Phase, op: str, c: Bare, path: str, params: Any = None) -> None:
        await self.request(phase, op, c, [("GET", path, None, params, {})], 200)

    async def post(self, phase: Phase, op: str, c: Bare, path: str, body: Any, expect: int,
                   params: Any = None) -> Any:
        """POST a msgpack body; the decoded answer (None on an error, and always against the floor)."""
        out = await self.request(phase, op, c, [("POST", path, encode(body, as_json=False), params,
                                                 {"Content-Type": MSGPACK})], expect)
        return None if out is None or self.floor else decode(out[-1], MSGPACK)

    async def run(self, phase: Phase, c: Bare, rng: random.Random, k: int) -> None:
        """One operation of the mix, picked at random."""
        op = rng.choices(list(WEIGHTS), list(WEIGHTS.values()))[0]
        live = rng.choice(self.lives)
        if op == "get version":
            await self.get(phase, op, c, f"/v1/models/{BENCH}/versions/{rng.randint(1, self.seeded)}" if rng.random() < 0.5
                           else f"/v1/models/{live.name}/versions/{rng.choice(live.numbers)}")
        elif op == "resolve production":
            await self.get(phase, op, c, f"/v1/resolve/{live.name if rng.random() < 0.8 else BENCH}@production")
        elif op == "page versions":
            if rng.random() < 0.5:  # benchmarks/run.py's page: filtered, ordered, a cursor anywhere in BENCH
                cursor = f"n:{self.seeded - rng.randrange(max(1, self.seeded - 200))}"
                await self.get(phase, op, c, f"/v1/models/{BENCH}/versions",
                               [("limit", "100"), ("order", PAGE_ORDER), ("metric", PAGE_FILTER), ("cursor", cursor)])
            else:
                await self.get(phase, op, c, f"/v1/models/{live.name}/versions", [("limit", "50")])
        elif op == "search":
            await self.get(phase, op, c, "/v1/search", [("name", "load-*"), ("limit", "20"),
                                                        ("metric", f"auc>={rng.choice((0.6, 0.8, 0.95))}")])
        elif op == "record metric":
            number = rng.choice(live.numbers)
            body = {"metrics": [{"key": ONLINE, "value": rng.random(), "source": "online"}]}
            if await self.post(phase, op, c, f"/v1/models/{live.name}/versions/{number}/metrics", body, 201):
                live.metrics[number] += 1
        elif op == "transition":
            async with live.lock:
                await self.transition(phase, c, rng, live)
        else:
            await self.register(phase, op, c, rng, live, f"c{k}-{rng.getrandbits(48):012x}")

    async def register(self, phase: Phase, op: str, c: Bare, rng: random.Random, live: Live, tag: str,
                       auc: float | None = None) -> None:
        """A unique small safetensors file, uploaded then registered by its digest, or registered by path."""
        data = safetensors_header(FILE_BYTES, tag) + rng.randbytes(FILE_BYTES)
        sha = hashlib.sha256(data).hexdigest()
        # On a grid of 0.001 plus a half step, so no value sits exactly on a gate's bound.
        auc = auc if auc is not None else round(rng.randrange(400, 1000) / 1000 + 0.0005, 4)
        meta = {"metrics": {"auc": auc}, "params": {"tag": tag}, "source": "api"}
        if op == "register (upload)":
            name = "model.safetensors"
            body = {"files": [{"path": name, "sha256": sha, "size": len(data)}], **meta}
            calls: list[Call] = [("POST", "/v1/blobs", data, None,
                                  {"Content-Type": "application/octet-stream", "X-Content-SHA256": sha})]
        else:
            name = f"{tag}.safetensors"
            src = self.scratch / name
            src.write_bytes(data)  # 8 KiB into the page cache, before the clock starts: cheap on the client's loop
            body = {"path": str(src), "mode": rng.choice(("copy", "move")), **meta}
            calls = []
        calls.append(("POST", f"/v1/models/{live.name}/versions", encode(body, as_json=False),
                      {"wait": "1"} if "path" in body else None, {"Content-Type": MSGPACK}))
        out = await self.request(phase, op, c, calls, 201)
        if out is None or self.floor:
            return
        v = decode(out[-1], MSGPACK)["version"]
        digest = content_digest([(name, sha, len(data))])
        if v["status"] != "ready" or v["content_digest"] != digest:
            phase.error(op, f"{live.name}@{v['version']} acknowledged {v['status']} with digest {v['content_digest']}, "
                            f"not ready with {digest}")
            return
        live.registered(v["version"], auc, digest)

    async def transition(self, phase: Phase, c: Bare, rng: random.Random, live: Live) -> None:
        """One transition of ``live`` (its lock held) whose answer is known from the state."""
        movable = [n for n in live.numbers if live.stage[n] in ("none", "staging")]
        fresh = [n for n in movable if live.stage[n] == "none"]
        pools = {"to staging": fresh, "to production": movable, "archive": movable,
                 "rollback": [live.rollback_target()] if live.rollback_target() else []}
        kinds = [k for k in TRANSITIONS if pools[k]]
        if not kinds:
            return
        kind = rng.choices(kinds, [TRANSITIONS[k] for k in kinds])[0]
        if kind == "rollback":
            await self.roll_back(phase, c, live)
        elif kind == "to production":
            passing = [n for n in movable if live.passes(n)]
            failing = [n for n in movable if not live.passes(n)]
            await self.move(phase, c, live, rng.choice(failing if failing and (next(self.provoke) % 3 == 0 or not passing)
                                                       else passing), "production")
        else:
            await self.move(phase, c, live, rng.choice(pools[kind]), "staging" if kind == "to staging" else "archived")

    async def move(self, phase: Phase, c: Bare, live: Live, number: int, to: str) -> None:
        """Transition ``live``@``number`` to ``to``; a promotion the gates must refuse is sent expecting the 422."""
        refused = to == "production" and not live.passes(number)
        op = REFUSED if refused else {"staging": "to staging", "production": "to production", "archived": "archive"}[to]
        got = await self.post(phase, op, c, f"/v1/models/{live.name}/versions/{number}/transition",
                              {"to": to, "reason": f"load: {op}"}, 422 if refused else 200)
        if got is None:
            return
        if refused:
            if got["error"]["code"] != "gate_failed":
                phase.error(op, f"{live.name}@{number} refused with {got['error']}, expected gate_failed")
            return
        replaced = [live.production] if to == "production" and live.production is not None else []
        if got["version"]["stage"] != to or got["archived"] != replaced:
            phase.error(op, f"{live.name}@{number} -> {to}: stage {got['version']['stage']}, archived {got['archived']}; "
                            f"expected {to}, {replaced}")
        for n in replaced:
            live.stage[n] = "archived"
        live.stage[number] = to
        if to == "production":
            live.production = number
            live.entered.append(number)

    async def roll_back(self, phase: Phase, c: Bare, live: Live) -> None:
        """Roll ``live`` back (no ``to``: the daemon picks the previous production version, as predicted)."""
        current, target = live.production, live.rollback_target()
        got = await self.post(phase, "rollback", c, f"/v1/models/{live.name}/rollback", {"reason": "load: roll back"}, 200)
        if got is None:
            return
        if (got["from"], got["to"]) != (current, target):
            phase.error("rollback", f"{live.name} rolled back {got['from']} -> {got['to']}; expected {current} -> {target}")
        live.stage[got["from"]], live.stage[got["to"]], live.production = "archived", "production", got["to"]
        live.entered.append(got["to"])


# -- the runs ---------------------------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of the processes (every thread), from /proc."""
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def fsync_seconds(folder: Path, n: int = 50) -> list[float]:
    """Seconds of n small write + fsync pairs in ``folder`` (beside the home, on its disk): what a durable
    commit costs on this disk right now."""
    out = []
    with open(folder / "fsync-probe", "wb") as f:
        for _ in range(n):
            t = time.perf_counter()
            f.write(b"x" * 4096)
            f.flush()
            os.fsync(f.fileno())
            out.append(time.perf_counter() - t)
    (folder / "fsync-probe").unlink()
    return out


async def drive(load: Load, url: str, token: str | None, clients: int, seconds: float, seed_: int,
                server_pids: list[int]) -> Phase:
    """``clients`` concurrent clients running the mix against ``url`` for ``seconds``."""
    phase = Phase()
    ready = asyncio.Event()
    deadline = 0.0

    async def client(k: int) -> None:
        rng = random.Random(seed_ * 1000 + k)
        async with Bare(url, token) as c:
            await c.get("/v1/health")  # opens the connection before the clock starts
            await ready.wait()
            while time.perf_counter() < deadline:
                await load.run(phase, c, rng, k)

    tasks = [asyncio.create_task(client(k)) for k in range(clients)]
    await asyncio.sleep(0.5)
    cpu0, mine0 = cpu_seconds(server_pids), time.process_time()
    start = time.perf_counter()
    deadline = start + seconds
    ready.set()
    await asyncio.gather(*tasks)
    phase.seconds = time.perf_counter() - start
    phase.cpu = {"server": (cpu_seconds(server_pids) - cpu0) / phase.seconds,
                 "client": (time.process_time() - mine0) / phase.seconds}
    return phase


@dataclass
class Stream:
    """What one WebSocket subscriber received."""

    after: int
    ids: list[int] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)  # receipt time minus the event's ts, seconds
    out_of_order: int = 0
    until: int | None = None                         # stop once this id has arrived
    error: str = ""
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def last(self) -> int:
        return self.ids[-1] if self.ids else self.after


async def subscribe(d: DaemonProcess, s: Stream) -> None:
    """Follow /v1/events/stream from ``s.after`` until ``s.until`` has arrived (the caller bounds the wait)."""
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {d.token}"}) as session:
            async with session.ws_connect(d.url + "/v1/events/stream", params={"after": str(s.after)}) as ws:
                s.connected.set()
                while s.until is None or s.last < s.until:
                    try:
                        msg = await ws.receive(timeout=0.5)
                    except asyncio.TimeoutError:
                        continue
                    if msg.type != aiohttp.WSMsgType.BINARY:
                        s.error = f"stream ended: {msg.type.name} {msg.data!r}"
                        return
                    event = decode(msg.data, MSGPACK)
                    s.lags.append(time.time() - datetime.fromisoformat(event["ts"].replace("Z", "+00:00")).timestamp())
                    s.out_of_order += event["id"] != s.last + 1
                    s.ids.append(event["id"])
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        s.error = f"{type(exc).__name__}: {exc}"
    finally:
        s.connected.set()


async def call(c: Bare, method: str, path: str, body: Any = None, params: Any = None, ok: int = 200) -> Any:
    """One setup or check request; anything but ``ok`` stops the benchmark with the daemon's answer."""
    status, raw = await (c.post(path, encode(body, as_json=False), params) if method == "POST" else c.get(path, params))
    if status != ok:
        raise RuntimeError(f"{method} {path} answered {status}: {decode(raw, MSGPACK)}")
    return decode(raw, MSGPACK)


async def setup(d: DaemonProcess, load: Load) -> None:
    """BENCH@5 in production; per live model its gates and first versions, every kind of transition once
    (v1 to production, v2 replaces it, a rollback brings v1 back, v3 to staging), leaving versions that the
    production gates pass (v5) and refuse (v3, v4), so the floor's frozen state has every operation too."""
    phase = Phase()

    async def one(c: Bare, live: Live) -> None:
        rng = random.Random(live.name)
        for i, auc in enumerate(SETUP_AUCS):
            await load.register(phase, "register (upload)", c, rng, live, f"{live.name}-setup-{i}", auc=auc)
        for stage, rule in GATES:
            await call(c, "POST", "/v1/gates", {"model": live.name, "stage": stage, "rule": rule}, ok=201)
        await load.move(phase, c, live, live.numbers[0], "production")
        await load.move(phase, c, live, live.numbers[1], "production")
        await load.roll_back(phase, c, live)
        await load.move(phase, c, live, live.numbers[2], "staging")

    async with Bare(d.url, d.token) as c:
        await call(c, "POST", f"/v1/models/{BENCH}/versions/5/transition", {"to": "production", "reason": "load setup"})
        await asyncio.gather(*(one(c, live) for live in load.lives))
    if phase.errors:
        raise RuntimeError(f"setup failed: {phase.first_errors}")


# -- the invariants ----------------------------------------------------------------------------------


class Invariants:
    """Each invariant with how many things it checked and the first few that broke it."""

    def __init__(self) -> None:
        self.checked: Counter[str] = Counter()
        self.broken: dict[str, list[str]] = defaultdict(list)

    def check(self, name: str, ok: bool, why: str) -> None:
        self.checked[name] += 1
        if not ok:
            self.broken[name].append(why)

    def summary(self) -> dict[str, Any]:
        return {name: {"checked": n, "broken": len(self.broken[name]), "first": self.broken[name][:5]}
                for name, n in self.checked.items()}


async def all_versions(c: Bare, name: str) -> dict[int, dict[str, Any]]:
    """Every version of ``name`` from the API, page by page."""
    out: dict[int, dict[str, Any]] = {}
    cursor = None
    while True:
        page = await call(c, "GET", f"/v1/models/{name}/versions", params=[("limit", "1000")] + (
            [("cursor", cursor)] if cursor else []))
        out.update((v["version"], v) for v in page["items"])
        if not (cursor := page["next"]):
            return out


async def check(d: DaemonProcess, load: Load, streams: list[Stream], last_event: int) -> Invariants:
    """Every invariant of the module docstring, through the API (and the serving links on disk)."""
    inv = Invariants()

    async def versions_of(c: Bare, live: Live) -> None:
        found = await all_versions(c, live.name)
        for n in live.numbers:
            v = found.get(n) or {}
            inv.check("acknowledged registrations present, ready, same content",
                      v.get("status") == "ready" and v.get("content_digest") == live.digest[n],
                      f"{live.name}@{n}: {v.get('status', 'missing')}, digest {v.get('content_digest')}")
            inv.check("every version in the stage its last transition left", v.get("stage") == live.stage[n],
                      f"{live.name}@{n} is {v.get('stage')}, expected {live.stage[n]}")
        for n, v in found.items():
            inv.check("no version pending or failed", v["status"] == "ready", f"{live.name}@{n} is {v['status']}")
        prod = sorted(n for n, v in found.items() if v["stage"] == "production")
        inv.check("at most one production version per model, the one put there",
                  prod == ([live.production] if live.production else []),
                  f"{live.name}: production {prod}, expected {live.production}")
        link = d.home / "serving" / live.name / "production"
        inv.check("serving links at the production versions",
                  os.path.realpath(link) == os.path.realpath(d.home / "versions" / live.name / str(live.production)),
                  f"{link} -> {os.path.realpath(link)}, expected version {live.production}")

    async with Bare(d.url, d.token) as c:
        await asyncio.gather(*(versions_of(c, live) for live in load.lives))
        bench = await call(c, "GET", f"/v1/models/{BENCH}/versions", params={"stage": "production"})
        inv.check("at most one production version per model, the one put there",
                  [v["version"] for v in bench["items"]] == [5], f"{BENCH}: production {bench['items']}")

        sem = asyncio.Semaphore(16)

        async def metrics_of(live: Live, n: int, acked: int) -> None:
            async with sem:
                v = await call(c, "GET", f"/v1/models/{live.name}/versions/{n}")
            kept = sum(r["key"] == ONLINE for r in v["metric_records"])
            # metric_records holds the 2000 newest records; past that only a lower bound can be checked.
            inv.check("acknowledged metric records present", kept == acked or kept >= 1999 and acked >= kept,
                      f"{live.name}@{n}: {kept} {ONLINE} records, {acked} acknowledged")

        await asyncio.gather(*(metrics_of(live, n, acked) for live in load.lives for n, acked in live.metrics.items()))
        for k, s in enumerate(streams):
            got = s.ids
            inv.check("each stream received every committed event once, in order",
                      not s.error and got == list(range(s.after + 1, last_event + 1)),
                      f"stream {k}: {len(got)} events ({s.out_of_order} out of order) of {last_event - s.after}"
                      f"{', ' + s.error if s.error else ''}")
        audit = await call(c, "POST", "/v1/audit/verify")
        inv.check("audit verify clean", audit["ok"] and audit["checked"] >= last_event, f"audit verify: {audit}")
        job = await call(c, "POST", "/v1/verify", {}, params={"wait": "1"})
        inv.check("verify clean", job["state"] == "done" and job["result"]["ok"],
                  f"verify: {job['state']}, {(job.get('result') or {}).get('problems')}")
    return inv


# -- the report ----------------------------------------------------------------------------------------


def figures(phase: Phase) -> dict[str, dict[str, float]]:
    out = {}
    for op in OP_ORDER:
        s = phase.samples.get(op, [])
        out[op] = {"count": len(s), "errors": phase.errors[op], "per_s": len(s) / phase.seconds,
                   "p50_ms": pct(s, .5) if s else None, "p99_ms": pct(s, .99) if s else None}
    return out


def _f(value: float | None, width: int, spec: str = ".2f", suffix: str = "") -> str:
    return f"{'-':>{width}}" if value is None else f"{format(value, spec) + suffix:>{width}}"


def report(r: Report, load_: Phase, floor: Phase, clients: int) -> dict[str, Any]:
    """The per-operation table: count, errors, p50, p99, rate, each next to the floor's and as ratios."""
    ours, base = figures(load_), figures(floor)
    r.line(f"{'operation':<32} {'count':>6} {'errors':>6} {'p50 ms':>7} {'p99 ms':>7} {'per s':>7} |"
           f" {'floor p50':>9} {'p99':>6} {'per s':>7} | {'p50/floor':>9} {'rate/floor':>10}")
    for op in OP_ORDER:
        o, b = ours[op], base[op]
        o["floor_p50_ms"], o["floor_p99_ms"], o["floor_per_s"] = b["p50_ms"], b["p99_ms"], b["per_s"]
        o["p50_ratio"] = o["p50_ms"] / b["p50_ms"] if b["count"] and o["count"] else None
        o["rate_ratio"] = o["per_s"] / b["per_s"] if b["count"] else None
        r.line(f"{op:<32} {o['count']:>6} {o['errors']:>6} {_f(o['p50_ms'], 7)} {_f(o['p99_ms'], 7)} {o['per_s']:>7.1f} |"
               f" {_f(b['p50_ms'], 9)} {_f(b['p99_ms'], 6)} {b['per_s']:>7.1f} |"
               f" {_f(o['p50_ratio'], 9, '.2f', 'x')} {_f(o['rate_ratio'], 10, '.1%')}")
    total = {"count": sum(o["count"] for o in ours.values()), "errors": sum(load_.errors.values()),
             "floor_count": sum(b["count"] for b in base.values()), "floor_errors": sum(floor.errors.values())}
    total["per_s"], total["floor_per_s"] = total["count"] / load_.seconds, total["floor_count"] / floor.seconds
    total["rate_ratio"] = total["per_s"] / total["floor_per_s"]
    r.line(f"{'all operations':<32} {total['count']:>6} {total['errors']:>6} {'':>7} {'':>7} {total['per_s']:>7.1f} |"
           f" {'':>9} {'':>6} {total['floor_per_s']:>7.1f} | {'':>9} {total['rate_ratio']:>9.1%}")
    r.line(f"CPU, cores busy: daemon {load_.cpu['server']:.2f} and load generator {load_.cpu['client']:.2f}; against "
           f"the floor: no-op server {floor.cpu['server']:.2f} and load generator {floor.cpu['client']:.2f}"
           f" ({clients} clients in one process)")
    for what, phase in (("the daemon", load_), ("the floor", floor)):
        if phase.cpu["client"] >= 0.85:  # one event loop is one core at most
            r.line(f"    the load generator was the bottleneck against {what}: {phase.cpu['client']:.2f} cores busy")
    for why in load_.first_errors:
        r.line(f"    error: {why}")
    for why in floor.first_errors:
        r.line(f"    error against the floor: {why}")
    return {"ops": ours, "total": total, "seconds": load_.seconds, "floor_seconds": floor.seconds,
            "cpu": load_.cpu, "floor_cpu": floor.cpu}


async def under_load(r: Report, d: DaemonProcess, noop: Server, load: Load, clients: int, seconds: float, seed_: int,
                     scratch: Path) -> tuple[dict[str, Any], list[Stream], int]:
    """The floor run, then the daemon's with the event streams following it: the figures printed, the
    streams, and the id of the last event committed."""
    floor = await drive(load.as_floor(), noop.url, None, clients, seconds, seed_, noop.pids())
    fsyncs = await asyncio.get_running_loop().run_in_executor(None, fsync_seconds, scratch)
    async with Bare(d.url, d.token) as c:
        before = await call(c, "GET", "/v1/status")
    streams = [Stream(after=before["last_event"]) for _ in range(SUBSCRIBERS)]
    followers = [asyncio.create_task(subscribe(d, s)) for s in streams]
    await asyncio.wait_for(asyncio.gather(*(s.connected.wait() for s in streams)), 30)
    phase = await drive(load, d.url, d.token, clients, seconds, seed_, [d.proc.pid])
    async with Bare(d.url, d.token) as c:
        after = await call(c, "GET", "/v1/status")
    last = after["last_event"]
    for s in streams:
        s.until = last
    drained = time.perf_counter()
    done, _ = await asyncio.wait(followers, timeout=60)  # a condition (every stream at `last`) with a deadline
    for task in followers:
        task.cancel()
    out = report(r, phase, floor, clients)
    writes, commits = (after["store"][k] - before["store"][k] for k in ("writes", "commits"))
    lags = sorted(lag for s in streams for lag in s.lags)
    out["events"] = {"committed": last - before["last_event"], "received": [len(s.ids) for s in streams],
                     "lag_p50_ms": pct(lags, .5) if lags else None, "lag_p99_ms": pct(lags, .99) if lags else None,
                     "drain_s": time.perf_counter() - drained if len(done) == len(streams) else None}
    out["store"] = {"writes": writes, "commits": commits, "writes_per_commit": writes / max(1, commits),
                    "fsync_p50_ms": pct(fsyncs, .5), "fsync_p99_ms": pct(fsyncs, .99)}
    out["versions_registered"] = sum(len(live.numbers) - len(SETUP_AUCS) for live in load.lives)
    r.line(f"event streams: {SUBSCRIBERS} subscribers received {out['events']['received']} of "
           f"{out['events']['committed']} events committed; delivery lag (receipt - event ts) p50 "
           f"{out['events']['lag_p50_ms'] or 0:.1f} ms, p99 {out['events']['lag_p99_ms'] or 0:.1f} ms (no floor: "
           f"the no-op server has no stream)")
    r.line(f"store: {writes:,} writes in {commits:,} commits ({out['store']['writes_per_commit']:.1f} per fsync); "
           f"{out['versions_registered']:,} versions registered under load; a 4 KiB write + fsync on this disk "
           f"just before: p50 {out['store']['fsync_p50_ms']:.2f} ms, p99 {out['store']['fsync_p99_ms']:.2f} ms")
    return out, streams, last


# -- the command ----------------------------------------------------------------------------------------


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="python -m benchmarks --only load", description=__doc__.split("\n\n")[0])
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--tiny", action="store_true", help="3 s of load: proves the benchmark works")
    size.add_argument("--large", action="store_true", help="60 s of load, 1,000,000 versions stored")
    ap.add_argument("--seconds", type=float, help="length of the load (and of the floor run)")
    ap.add_argument("--versions", type=int, help="versions seeded into the read-only model")
    ap.add_argument("--clients", type=int, default=CLIENTS, help=f"concurrent HTTP clients (default {CLIENTS})")
    ap.add_argument("--seed", type=int, help="seed of the clients' choices (printed; random if not given)")
    ap.add_argument("--keep", action="store_true", help="keep the registry home (printed)")
    args = ap.parse_args(argv)
    profile = "tiny" if args.tiny else "large" if args.large else "small"
    prof = dict(PROFILES[profile])
    prof.update({k: v for k, v in (("seconds", args.seconds), ("versions", args.versions)) if v is not None})
    seed_ = args.seed if args.seed is not None else random.randrange(10**6)
    r = Report()
    # The load average says how quiet the shared machine was: every figure is next to its floor anyway.
    summary: dict[str, Any] = {"profile": profile, "machine": {**machine(), "loadavg_1m": os.getloadavg()[0]}}
    r.line(f"modelreg load ({profile}, seed {seed_}): {args.clients} clients + {SUBSCRIBERS} event streams for "
           f"{prof['seconds']:g} s on {len(LIVE)} gated models and {BENCH} ({prof['versions']:,} versions); "
           f"{summary['machine']['nproc']} cores, {summary['machine']['cpu']}, load average "
           f"{summary['machine']['loadavg_1m']:.2f}")
    started = time.perf_counter()
    base = Path(tempfile.mkdtemp(prefix="modelreg-bench-load-"))
    home, scratch = base / "home", base / "scratch"
    scratch.mkdir(parents=True)
    noop = start_python_server("no-op server", [str(ROOT / "benchmarks" / "noop_server.py")], 60)
    d: DaemonProcess | None = None
    try:
        took = await seed(home, prof["versions"], 0, tiny_blob(home, scratch))
        r.line(f"(seeded {prof['versions']:,} versions of {BENCH} through store.bulk in {took:.1f} s)")
        d = start_daemon(home, timeout=60)
        load = Load([Live(name) for name in LIVE], prof["versions"], scratch)
        t = time.perf_counter()
        await setup(d, load)
        r.line(f"(set up {len(LIVE)} models: {len(SETUP_AUCS)} versions, {len(GATES)} gates, 4 transitions each, "
               f"in {time.perf_counter() - t:.1f} s)")
        out, streams, last = await under_load(r, d, noop, load, args.clients, prof["seconds"], seed_, scratch)
        t = time.perf_counter()
        inv = await check(d, load, streams, last)
        r.line(f"(invariants checked in {time.perf_counter() - t:.1f} s)")
        out["invariants"] = inv.summary()
        for name, fig in out["invariants"].items():
            r.line(f"invariant: {name}: {'held' if not fig['broken'] else 'BROKEN'} ({fig['checked']:,} checked"
                   + (f"; {fig['broken']} broken, e.g. {fig['first'][0]})" if fig["broken"] else ")"))
        summary["load"] = out
        r.target("load errors (any answer but 2xx and the provoked gate refusals)", out["total"]["errors"], "<=", 0)
        r.target("invariants broken", sum(f["broken"] for f in out["invariants"].values()), "<=", 0)
    finally:
        if d is not None:
            d.stop()
        noop.stop()
        if args.keep:
            r.line(f"(kept {base})")
        else:
            shutil.rmtree(base, ignore_errors=True)
    summary["seed"] = seed_
    summary["seconds"] = round(time.perf_counter() - started, 1)
    summary["targets"] = r.targets
    summary["targets_met"] = f"{sum(t['met'] for t in r.targets)}/{len(r.targets)}"
    r.line(f"targets met: {summary['targets_met']}, {summary['seconds']} s")
    print(json.dumps(_rounded(summary), separators=(",", ":")), flush=True)
    if not all(t["met"] for t in r.targets):
        raise SystemExit(1)  # errors or a broken invariant: a correctness failure, not a slow figure
    return summary


if __name__ == "__main__":
    asyncio.run(main())
