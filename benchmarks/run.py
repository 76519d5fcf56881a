"""The benchmark command (issue 9 item 6): every figure next to its floor, measured in one run.

    .venv/bin/python -m benchmarks            # small sizes, under 3 minutes on 2 cores
    .venv/bin/python -m benchmarks --large    # 100,000 and 1,000,000 versions, a 1 GiB file
    .venv/bin/python -m benchmarks --tiny     # seconds; proves the command works (the smoke test)
    .venv/bin/python -m benchmarks --backend postgres   # the same on PostgreSQL + S3 (issue 13)

``--backend postgres`` starts a real PostgreSQL and a real S3 server (SeaweedFS) for the run, as
the test suite's team configuration does (tests/team_backend.py), and every daemon measured
keeps its registry there; the floors stay the same, so the ratios compare the two backends.

Floors, measured in the same run on the same machine:
- a no-op aiohttp app (benchmarks/noop_server.py) in its own process, driven by the same bare
  aiohttp client code that drives the daemon: POSTs/s from 1 and 16 clients, GET latency;
- ``openssl dgst -sha256`` of the same file, ``cp`` + fsync of it, and openssl on 2 processes
  over the shards of a sharded model.

The registry is seeded through the store (``store.bulk.seed``: one write per 10,000 versions)
before the daemon starts, then everything is measured through HTTP against a real daemon
process on loopback (tests/daemon_process.py). The last line printed is a one-line JSON
summary of every figure, floor, ratio and target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import team_backend  # noqa: E402
from daemon_process import DaemonProcess, start_daemon  # noqa: E402

from modelreg.daemon.artifacts.blobs import BlobStore  # noqa: E402
from modelreg.daemon.store import open_store  # noqa: E402
from modelreg.daemon.store.records import FileRecord, SeedVersion  # noqa: E402
from modelreg.shared.codec import MSGPACK, decode, encode  # noqa: E402

MiB = 1024 * 1024
PROFILES: dict[str, dict[str, Any]] = {
    # versions: stored while get/resolve/page are measured; more: the second, larger registry
    # (page and RSS); file: bytes of the registered file; seconds: each throughput run.
    "tiny": dict(versions=2_000, more=None, file=8 * MiB, seconds=0.5, latency=100, pages=30, reps=1),
    "small": dict(versions=100_000, more=None, file=256 * MiB, seconds=4.0, latency=2000, pages=300, reps=3),
    "large": dict(versions=100_000, more=1_000_000, file=1024 * MiB, seconds=6.0, latency=3000, pages=500, reps=3),
}
MODEL = "bench"          # the seeded model every read is measured on
REG_MODEL = "bench-reg"  # registrations measured from 1 and 16 clients
PAGE_FILTER = "auc>=0.5"  # matches about half the versions
PAGE_ORDER = "-number"

# -- the bare client ----------------------------------------------------------------------------


class Bare:
    """The same few lines of aiohttp client code drive the daemon and the no-op floor."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url
        self.headers = {"Accept": MSGPACK, "X-Modelreg-Actor": "bench"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Bare:
        self.session = aiohttp.ClientSession(headers=self.headers, connector=aiohttp.TCPConnector(limit=64),
                                             timeout=aiohttp.ClientTimeout(total=600))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.session is not None
        await self.session.close()

    async def post(self, path: str, body: bytes, params: Any = None) -> tuple[int, bytes]:
        assert self.session is not None
        async with self.session.post(self.url + path, data=body, params=params,
                                     headers={"Content-Type": MSGPACK}) as resp:
            return resp.status, await resp.read()

    async def get(self, path: str, params: Any = None) -> tuple[int, bytes]:
        assert self.session is not None
        async with self.session.get(self.url + path, params=params) as resp:
            return resp.status, await resp.read()


async def throughput(url: str, token: str | None, path: str, bodies: list[bytes], clients: int,
                     seconds: float) -> tuple[float, int, int]:
    """(requests/s answered 2xx, errors, requests) from ``clients`` concurrent clients for ``seconds``."""
    done = errors = 0
    start = deadline = 0.0
    first_error: list[str] = []

    async def worker(k: int) -> None:
        nonlocal done, errors
        async with Bare(url, token) as c:
            await c.post(path, bodies[k % len(bodies)])  # warm the connection, not counted
            await ready.wait()
            i = k
            while time.perf_counter() < deadline:
                i += clients
                try:
                    status, raw = await c.post(path, bodies[i % len(bodies)])
                except aiohttp.ClientError as exc:
                    status, raw = 0, repr(exc).encode()
                if 200 <= status < 300:
                    done += 1
                else:
                    errors += 1
                    if not first_error:
                        first_error.append(f"{status}: {raw[:300]!r}")

    ready = asyncio.Event()
    tasks = [asyncio.create_task(worker(k)) for k in range(clients)]
    await asyncio.sleep(0.3)
    start = time.perf_counter()
    deadline = start + seconds
    ready.set()
    await asyncio.gather(*tasks)
    if first_error:
        print(f"    (first error: {first_error[0]})", flush=True)
    return done / (time.perf_counter() - start), errors, done + errors


async def latency(url: str, token: str | None, request: Callable[[Bare, int], Awaitable[tuple[int, bytes]]],
                  n: int) -> tuple[list[float], int]:
    """Sequential latencies (seconds) of ``n`` requests from one client, after a short warm-up."""
    out, errors = [], 0
    async with Bare(url, token) as c:
        for i in range(min(50, n)):
            await request(c, i)
        for i in range(n):
            t = time.perf_counter()
            status, _ = await request(c, i)
            out.append(time.perf_counter() - t)
            errors += not 200 <= status < 300
    return out, errors


def pct(samples: list[float], p: float) -> float:
    """The p-quantile in milliseconds."""
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * p))] * 1000


# -- files ----------------------------------------------------------------------------------------

_RANDOM = os.urandom(16 * MiB)


def safetensors_header(size: int, tag: str) -> bytes:
    """The header of a valid safetensors file holding one U8 tensor of ``size`` bytes; ``tag`` makes it unique."""
    header = json.dumps({"__metadata__": {"tag": tag}, "w": {"dtype": "U8", "shape": [size], "data_offsets": [0, size]}})
    raw = header.encode() + b" " * (-len(header) % 8)
    return struct.pack("<Q", len(raw)) + raw


def safetensors_file(path: Path, size: int, tag: str) -> Path:
    """A valid safetensors file of about ``size`` bytes, unique content (``tag``), fsynced and in the page cache."""
    with open(path, "wb") as f:
        f.write(safetensors_header(size, tag))
        left = size
        while left:
            chunk = _RANDOM[: min(left, len(_RANDOM))]
            f.write(chunk)
            left -= len(chunk)
        f.flush()
        os.fsync(f.fileno())
    return path


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def openssl(*paths: Path) -> None:
    subprocess.run(["openssl", "dgst", "-sha256", *map(str, paths)], check=True, stdout=subprocess.DEVNULL)


def openssl_parallel(groups: list[list[Path]]) -> None:
    procs = [subprocess.Popen(["openssl", "dgst", "-sha256", *map(str, g)], stdout=subprocess.DEVNULL) for g in groups]
    for p in procs:
        if p.wait() != 0:
            raise RuntimeError("openssl failed")


def durable_cp(src: Path, dst: Path) -> None:
    subprocess.run(["cp", str(src), str(dst)], check=True)
    fd = os.open(dst, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    dfd = os.open(dst.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


async def register_path(d: DaemonProcess, name: str, path: Path, move: bool) -> tuple[float, list[str]]:
    """Seconds for POST …/versions?wait=1 registering ``path`` (the daemon reads it), and the store methods."""
    body = encode({"path": str(path), "mode": "move" if move else "copy", "source": "cli"}, as_json=False)
    async with Bare(d.url, d.token) as c:
        t = time.perf_counter()
        status, raw = await c.post(f"/v1/models/{name}/versions", body, params={"wait": "1"})
        elapsed = time.perf_counter() - t
    reply = decode(raw, MSGPACK)
    if status != 201:
        raise RuntimeError(f"registering {path} answered {status}: {reply}")
    return elapsed, list(((reply.get("job") or {}).get("result") or {}).get("methods") or [])


# -- the run ------------------------------------------------------------------------------------------


class Report:
    def __init__(self) -> None:
        self.figures: dict[str, Any] = {}
        self.targets: list[dict[str, Any]] = []

    def line(self, text: str) -> None:
        print(text, flush=True)

    def target(self, name: str, value: float, op: str, limit: float, note: str = "", applies: bool = True) -> None:
        met = value <= limit if op == "<=" else value >= limit
        self.targets.append({"target": name, "value": round(value, 4), "op": op, "limit": limit,
                             "met": met if applies else None, **({"note": note} if note else {})})
        verdict = ("met" if met else "NOT met") if applies else f"not judged: {note}"
        self.line(f"    target {name} {op} {limit:g}: {value:.3g} -> {verdict}")


async def seed(home: Path, versions: int, start: int, blob: FileRecord) -> float:
    """Add ``versions`` to MODEL through the store (the daemon is not running); seconds taken.
    With S3 the seeded versions' blob goes to the bucket too, as a registration would put it."""
    env = team_backend.env_for(home)
    if "MODELREG_ARTIFACTS" in env:
        from modelreg.daemon.artifacts.s3 import S3BlobStore, parse_s3_config

        async with S3BlobStore(parse_s3_config(env["MODELREG_ARTIFACTS"], env)) as bucket:
            await bucket.put_file(BlobStore(home / "blobs").path(blob.sha256), blob.sha256)
    store = open_store(env.get("MODELREG_DATABASE"), home)
    await store.open()
    try:
        t = time.perf_counter()
        await store.bulk.seed(MODEL, (SeedVersion(files=[blob], params={"lr": "0.01", "seed": str(i % 10)},
                                                  metrics={"auc": ((i * 7919) % 10007) / 10007,
                                                           "loss": ((i * 104729) % 1009) / 1009})
                                      for i in range(start, start + versions)))
        return time.perf_counter() - t
    finally:
        await store.close()


def tiny_blob(home: Path, scratch: Path) -> FileRecord:
    src = safetensors_file(scratch / "tiny.safetensors", 1024, "tiny")
    blobs = BlobStore(home / "blobs")
    blobs.prepare()
    stored = blobs.store_file(src)
    return FileRecord("model.safetensors", stored.sha256, stored.size)


def rss_mb(pid: int) -> tuple[float, float]:
    status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


async def reads(r: Report, d: DaemonProcess, noop_url: str, total: int, prof: dict[str, Any], label: str,
                get_targets: bool) -> dict[str, Any]:
    n = prof["latency"]
    noop, _ = await latency(noop_url, None, lambda c, i: c.get(f"/v1/models/{MODEL}/versions/{i}"), n)
    get, e1 = await latency(d.url, d.token,
                            lambda c, i: c.get(f"/v1/models/{MODEL}/versions/{1 + (i * 7919) % total}"), n)
    res, e2 = await latency(d.url, d.token, lambda c, i: c.get(f"/v1/resolve/{MODEL}@production"), n)
    out = {"stored": total, "noop_get_p50_ms": pct(noop, .5), "noop_get_p99_ms": pct(noop, .99),
           "get_p50_ms": pct(get, .5), "get_p99_ms": pct(get, .99),
           "resolve_p50_ms": pct(res, .5), "resolve_p99_ms": pct(res, .99), "errors": e1 + e2}
    r.line(f"no-op GET ({label}):        p50 {out['noop_get_p50_ms']:6.3f} ms  p99 {out['noop_get_p99_ms']:6.3f} ms  (floor)")
    for what, key in (("get version", "get"), ("resolve production", "resolve")):
        ratio = out[f"{key}_p50_ms"] / out["noop_get_p50_ms"]
        out[f"{key}_p50_ratio"] = ratio
        r.line(f"{what + ':':<27} p50 {out[f'{key}_p50_ms']:6.3f} ms  p99 {out[f'{key}_p99_ms']:6.3f} ms  "
               f"= {ratio:.2f}x the no-op p50  ({total:,} versions stored, {out['errors']} errors)")
        if get_targets:
            r.target(f"{key} p50 / no-op GET p50", ratio, "<=", 1.5)
            r.target(f"{key} p99 ms at 100,000 versions", out[f"{key}_p99_ms"], "<=", 5.0,
                     note=f"{total:,} stored", applies=total >= 100_000)

    def page(c: Bare, i: int) -> Awaitable[tuple[int, bytes]]:
        cursor = f"n:{total - (i * 7919) % max(1, total - 200)}"
        return c.get(f"/v1/models/{MODEL}/versions",
                     params=[("limit", "100"), ("order", PAGE_ORDER), ("metric", PAGE_FILTER), ("cursor", cursor)])

    pages, e3 = await latency(d.url, d.token, page, prof["pages"])
    out.update(page_p50_ms=pct(pages, .5), page_p99_ms=pct(pages, .99), page_errors=e3)
    r.line(f"page of 100 ({PAGE_FILTER}, {PAGE_ORDER}): p50 {out['page_p50_ms']:6.2f} ms  p99 {out['page_p99_ms']:6.2f} ms"
           f"  = {out['page_p99_ms'] / out['noop_get_p99_ms']:.1f}x the no-op p99  ({total:,} versions stored, {e3} errors)")
    rss, hwm = rss_mb(d.proc.pid)
    out.update(rss_mb=rss, rss_peak_mb=hwm)
    r.line(f"daemon RSS:                 {rss:6.0f} MB (peak {hwm:.0f} MB)  ({total:,} versions stored)")
    return out


async def registrations(r: Report, d: DaemonProcess, noop_url: str, blob: dict[str, Any], seconds: float) -> dict[str, Any]:
    files = [{"path": "model.safetensors", "sha256": blob["sha256"], "size": blob["size"]}]
    bodies = [encode({"files": files, "metrics": {"auc": 0.9 + k / 1000}, "params": {"lr": "0.01"}, "source": "api"},
                     as_json=False) for k in range(16)]
    out: dict[str, Any] = {}
    for clients, floor_target in ((1, 0.35), (16, 0.50)):
        floor, ferr, _ = await throughput(noop_url, None, f"/v1/models/{REG_MODEL}/versions", bodies, clients, seconds)
        rate, errors, n = await throughput(d.url, d.token, f"/v1/models/{REG_MODEL}/versions", bodies, clients, seconds)
        ratio = rate / floor
        out[f"c{clients}"] = {"registrations_per_s": rate, "noop_posts_per_s": floor, "ratio": ratio,
                              "errors": errors, "requests": n}
        r.line(f"register, {clients:2d} client{'s' if clients > 1 else ' '}:       {rate:7.0f}/s  vs no-op POST "
               f"{floor:7.0f}/s = {ratio:6.1%}  ({errors} errors in {n} requests)")
        r.target(f"registrations/s from {clients} client(s) / no-op floor", ratio, ">=", floor_target)
        r.target(f"registration errors from {clients} client(s)", errors, "<=", 0)
    return out


async def files(r: Report, d: DaemonProcess, scratch: Path, size: int, reps: int, full_size: bool) -> dict[str, Any]:
    """register --move vs openssl; copying register vs max(openssl, cp+fsync); 4 shards vs openssl on 2 processes."""
    loop = asyncio.get_running_loop()
    run = lambda fn: loop.run_in_executor(None, timed, fn)  # noqa: E731
    note = "" if full_size else f"the target names 1 GiB (--large); this run used {size // MiB} MiB"
    judged = size >= 256 * MiB  # smaller files measure start-up costs, not streaming
    res: dict[str, list[float]] = {k: [] for k in ("openssl", "move", "cp", "copy", "openssl2", "shards")}
    methods: dict[str, set[str]] = {"move": set(), "copy": set(), "shards": set()}
    for rep in range(reps):
        src = safetensors_file(scratch / f"move-{rep}.safetensors", size, f"move-{rep}")
        res["openssl"].append(await run(lambda: openssl(src)))
        t, m = await register_path(d, "bench-move", src, move=True)
        res["move"].append(t)
        methods["move"].update(m)

        src = safetensors_file(scratch / f"copy-{rep}.safetensors", size, f"copy-{rep}")
        res["openssl"].append(await run(lambda: openssl(src)))
        dst = scratch / "cp-dst"
        res["cp"].append(await run(lambda: durable_cp(src, dst)))
        dst.unlink()
        t, m = await register_path(d, "bench-copy", src, move=False)
        res["copy"].append(t)
        methods["copy"].update(m)
        src.unlink()

        folder = scratch / f"shards-{rep}"
        folder.mkdir()
        shards = [safetensors_file(folder / f"model-{k + 1:05d}-of-00004.safetensors", size // 4, f"s{rep}-{k}")
                  for k in range(4)]
        res["openssl2"].append(await run(lambda: openssl_parallel([shards[0::2], shards[1::2]])))
        t, m = await register_path(d, "bench-shards", folder, move=True)
        res["shards"].append(t)
        methods["shards"].update(m)
        shutil.rmtree(folder, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in res.items()}
    mb = size / MiB
    copy_floor = max(med["openssl"], med["cp"])
    out = {"file_mib": mb, "reps": reps, **{f"{k}_s": v for k, v in med.items()},
           "move_ratio": med["move"] / med["openssl"], "copy_floor_s": copy_floor,
           "copy_ratio": med["copy"] / copy_floor, "shards_ratio": med["shards"] / med["openssl2"],
           "methods": {k: sorted(v) for k, v in methods.items()}}
    r.line(f"openssl dgst -sha256:       {med['openssl']:6.3f} s  ({mb / med['openssl']:6.0f} MiB/s, {mb:.0f} MiB, floor)")
    r.line(f"register --move:            {med['move']:6.3f} s  ({mb / med['move']:6.0f} MiB/s) = "
           f"{out['move_ratio']:.2f}x openssl  (stored by {', '.join(out['methods']['move'])})")
    r.target("register --move / openssl", out["move_ratio"], "<=", 1.18, note=note, applies=judged)
    r.line(f"cp + fsync:                 {med['cp']:6.3f} s  ({mb / med['cp']:6.0f} MiB/s, floor)")
    r.line(f"register (copying):         {med['copy']:6.3f} s  ({mb / med['copy']:6.0f} MiB/s) = "
           f"{out['copy_ratio']:.2f}x the slower of openssl and cp+fsync  (stored by {', '.join(out['methods']['copy'])})")
    r.target("copying register / max(openssl, cp+fsync)", out["copy_ratio"], "<=", 1.3, note=note, applies=judged)
    r.line(f"openssl, 2 processes:       {med['openssl2']:6.3f} s  ({mb / med['openssl2']:6.0f} MiB/s over 4 shards, floor)")
    r.line(f"register 4 shards --move:   {med['shards']:6.3f} s  ({mb / med['shards']:6.0f} MiB/s) = "
           f"{out['shards_ratio']:.2f}x openssl on 2 processes")
    r.target("4-shard register / openssl on 2 processes", out["shards_ratio"], "<=", 1.25, note=note, applies=judged)
    return out


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": sys.version.split()[0]}


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--large", action="store_true", help="100,000 and 1,000,000 versions, a 1 GiB file")
    size.add_argument("--tiny", action="store_true", help="a few seconds: proves the command works")
    ap.add_argument("--versions", type=int, help="versions stored for get/resolve/page")
    ap.add_argument("--file-mib", type=int, help="size of the registered file")
    ap.add_argument("--seconds", type=float, help="length of each throughput run")
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default=team_backend.BACKEND,
                    help="where the measured daemons keep the registry (postgres: PostgreSQL + S3, started here)")
    ap.add_argument("--only", choices=["http", "files", "mlflow", "load"],
                    help="run one half, the comparison with a stock MLflow server (benchmarks/mlflow_compare.py), "
                         "or 64 clients of mixed load (benchmarks/load.py)")
    ap.add_argument("--keep", action="store_true", help="keep the registry home (printed) for profiling")
    args = ap.parse_args(argv)
    if args.only == "mlflow":  # its own servers, profile and JSON summary; imports mlflow only when asked
        from benchmarks import mlflow_compare
        return mlflow_compare.main(["--large"] * args.large + ["--tiny"] * args.tiny + ["--keep"] * args.keep
                                   + (["--versions", str(args.versions)] if args.versions else []))
    if args.only == "load":  # its own profiles (seconds of load) and JSON summary
        from benchmarks import load
        return await load.main(["--large"] * args.large + ["--tiny"] * args.tiny + ["--keep"] * args.keep
                               + (["--versions", str(args.versions)] if args.versions else [])
                               + (["--seconds", str(args.seconds)] if args.seconds else []))
    profile = "large" if args.large else "tiny" if args.tiny else "small"
    prof = dict(PROFILES[profile])
    for key, value in (("versions", args.versions), ("seconds", args.seconds)):
        if value is not None:
            prof[key] = value
    if args.file_mib is not None:
        prof["file"] = args.file_mib * MiB
    r = Report()
    summary: dict[str, Any] = {"profile": profile, "backend": team_backend.BACKEND, "machine": machine()}
    where = "PostgreSQL + S3" if team_backend.team() else "SQLite + local blobs"
    r.line(f"modelreg benchmark ({profile}, {where}): {summary['machine']['nproc']} cores, "
           f"{summary['machine']['cpu']}")
    base = Path(tempfile.mkdtemp(prefix="modelreg-bench-"))
    home, scratch = base / "home", base / "scratch"
    scratch.mkdir(parents=True)
    noop = subprocess.Popen([sys.executable, str(Path(__file__).with_name("noop_server.py"))],
                            stdout=subprocess.PIPE, text=True)
    d: DaemonProcess | None = None
    started = time.perf_counter()
    try:
        assert noop.stdout is not None
        noop_url = f"http://127.0.0.1:{noop.stdout.readline().strip()}"
        blob = tiny_blob(home, scratch)
        if args.only != "files":
            took = await seed(home, prof["versions"], 0, blob)
            r.line(f"(seeded {prof['versions']:,} versions through store.bulk in {took:.1f} s)")
        d = start_daemon(home)
        if args.only != "files":
            async with Bare(d.url, d.token) as c:
                status, raw = await c.post(f"/v1/models/{MODEL}/versions/5/transition",
                                           encode({"to": "production", "reason": "bench"}, as_json=False))
                if status != 200:
                    raise RuntimeError(f"promoting {MODEL}@5 answered {status}: {decode(raw, MSGPACK)}")
            summary["reads"] = await reads(r, d, noop_url, prof["versions"], prof, "same run", get_targets=True)
            if prof["more"] is None:
                r.target("page of 100 p99 ms at 1,000,000 versions", summary["reads"]["page_p99_ms"], "<=", 10.0,
                         note=f"{prof['versions']:,} stored; --large stores 1,000,000", applies=False)
                r.target("daemon RSS MB at 1,000,000 versions", summary["reads"]["rss_mb"], "<=", 150,
                         note=f"{prof['versions']:,} stored; --large stores 1,000,000", applies=False)
            up = scratch / "upload.safetensors"
            safetensors_file(up, 1024, "upload")
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {d.token}", "Accept": MSGPACK}) as s:
                async with s.post(d.url + "/v1/blobs", data=up.read_bytes(),
                                  headers={"Content-Type": "application/octet-stream"}) as resp:
                    uploaded = decode(await resp.read(), MSGPACK)
                    if resp.status >= 300:
                        raise RuntimeError(f"uploading a blob answered {resp.status}: {uploaded}")
            summary["register"] = await registrations(r, d, noop_url, uploaded, prof["seconds"])
            if prof["more"] is not None:
                d.stop()
                d = None
                added = prof["more"] - prof["versions"]
                took = await seed(home, added, prof["versions"], blob)
                r.line(f"(seeded {added:,} more versions through store.bulk in {took:.1f} s)")
                d = start_daemon(home)
                big = await reads(r, d, noop_url, prof["more"], prof, "same run", get_targets=False)
                summary["reads_large"] = big
                r.target("page of 100 p99 ms at 1,000,000 versions", big["page_p99_ms"], "<=", 10.0,
                         note=f"{prof['more']:,} stored", applies=prof["more"] >= 1_000_000)
                r.target("daemon RSS MB at 1,000,000 versions", big["rss_mb"], "<=", 150,
                         note=f"{prof['more']:,} stored", applies=prof["more"] >= 1_000_000)
        if args.only != "http":
            summary["files"] = await files(r, d, scratch, prof["file"], prof["reps"],
                                           full_size=prof["file"] >= 1024 * MiB)
    finally:
        if d is not None:
            d.stop()
        noop.terminate()
        noop.wait(10)
        if args.keep:
            r.line(f"(kept {base})")
        else:
            shutil.rmtree(base, ignore_errors=True)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    summary["targets"] = r.targets
    judged = [t for t in r.targets if t["met"] is not None]
    summary["targets_met"] = f"{sum(t['met'] for t in judged)}/{len(judged)}"
    r.line(f"targets met: {summary['targets_met']} (of those this profile judges), {summary['seconds']} s")
    print(json.dumps(_rounded(summary), separators=(",", ":")), flush=True)
    return summary


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def cli() -> None:
    backend = sys.argv[sys.argv.index("--backend") + 1] if "--backend" in sys.argv[:-1] else team_backend.BACKEND
    team_backend.use(backend)
    team_backend.start()  # PostgreSQL + S3 for the run when asked; nothing for SQLite
    try:
        asyncio.run(main())
    finally:
        team_backend.stop()


if __name__ == "__main__":
    cli()
