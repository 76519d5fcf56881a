"""modelreg against a stock MLflow server, through the stock MlflowClient (issue 10 acceptance 5).

    .venv/bin/python -m benchmarks --only mlflow          # 2,000 versions, ~1-2 minutes
    .venv/bin/python -m benchmarks --only mlflow --tiny   # 200 versions; what the smoke test runs
    .venv/bin/python -m benchmarks --only mlflow --large  # 10,000 versions
    .venv/bin/python -m benchmarks.mlflow_compare [--tiny|--large] [--versions N] [--gets N] [--searches N]

One run starts three servers on loopback and drives each with the same ``mlflow.MlflowClient``
code, the same workload and the same request headers:

- MLflow: ``mlflow server --workers 1 --backend-store-uri sqlite:///… --artifacts-destination …``
  (the reference setup of PRODUCT.md §11);
- modelreg: a real daemon process (tests/daemon_process.py), reached through
  MLFLOW_TRACKING_URI and MLFLOW_TRACKING_TOKEN as a user would;
- the client floor: this module run with ``--floor-server``, an aiohttp app answering every
  registry call the workload makes with a constant, pre-encoded reply of MLflow's shape (as
  many versions per search as the others return). What the client itself costs per call.

A plain ``requests`` GET to benchmarks/noop_server.py is printed as the HTTP floor too.

Each phase interleaves the servers call by call (call i goes to all three, the order rotating
with i), so a shared, noisy machine slows all three alike. The workload: ``create_registered_model`` once, then
``create_model_version(name, source="s3://bench-bucket/models/<i>", run_id=None)`` N times
(a reference version without artifacts: the metadata path both servers share); then
``get_model_version(name, str(k))`` for random k; then ``search_model_versions("name='…'")``
returning every stored version (following page tokens if a server pages). The last line
printed is a one-line JSON summary like benchmarks/run.py's.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODEL = "bench-mlflow"
SOURCE = "s3://bench-bucket/models/{}"
API = "/api/2.0/mlflow"
PROFILES: dict[str, dict[str, Any]] = {
    # versions: registered (and then stored for get/search); timeout: seconds before the servers are stopped.
    "tiny": dict(versions=200, gets=100, searches=4, timeout=240),
    "small": dict(versions=2_000, gets=1_000, searches=20, timeout=900),
    "large": dict(versions=10_000, gets=2_000, searches=20, timeout=2400),
}
TARGETS = {"register": 4.0, "get": 3.0}  # PRODUCT.md §11: modelreg ≥ 4× / ≥ 3× MLflow through the same client

# -- the client floor: constant replies of MLflow's shape ---------------------------------------


def _version_json(k: int) -> dict[str, Any]:
    """A model version as MLflow's server renders one (the fields of its reply, same lengths)."""
    now = 1_796_236_630_798
    return {"name": MODEL, "version": str(k), "creation_timestamp": now, "last_updated_timestamp": now,
            "current_stage": "None", "description": "", "source": SOURCE.format(k - 1), "run_id": "",
            "status": "READY", "run_link": ""}


def floor_server(versions: int) -> None:
    """Serve constant registry replies on a free loopback port (printed first), until SIGTERM."""
    import asyncio

    from aiohttp import web

    one = json.dumps({"model_version": _version_json(1)}).encode()
    replies = {
        f"{API}/registered-models/create": json.dumps({"registered_model": {
            "name": MODEL, "creation_timestamp": 1_796_236_517_007, "last_updated_timestamp": 1_796_236_517_007}}).encode(),
        f"{API}/model-versions/create": one,
        f"{API}/model-versions/get": one,
        f"{API}/model-versions/search": json.dumps(
            {"model_versions": [_version_json(k) for k in range(versions, 0, -1)]}).encode(),
    }

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        body = replies.get(request.path)
        if body is None:
            return web.json_response({"error_code": "ENDPOINT_NOT_FOUND", "message": request.path}, status=404)
        return web.Response(body=body, content_type="application/json")

    async def serve() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", answer)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock).start()
        print(sock.getsockname()[1], flush=True)
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(serve())


# -- the servers ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _group_pids(pgid: int) -> list[int]:
    """Every process of a process group (the MLflow CLI and the uvicorn worker it starts)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    out.append(int(entry))
            except OSError:
                pass
    return out


@dataclass
class Server:
    """One server under test: how the client reaches it, and how to stop it."""

    label: str
    url: str
    stop: Callable[[], None]
    pids: Callable[[], list[int]] = field(default=lambda: [])


def start_mlflow(root: Path) -> tuple[Server, Callable[[float], None]]:
    """A stock ``mlflow server --workers 1`` on SQLite with served artifacts, booting; (it, wait until /health answers)."""
    root.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
           "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts")]
    log_path = root / "mlflow-server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=root,
                                env=env, start_new_session=True)

    def stop() -> None:
        # Its whole group (the CLI, the uvicorn worker, the job runner and its huey consumers); the
        # database is thrown away, so a few seconds of grace, then SIGKILL (uvicorn lingers on SIGTERM).
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(3)
        except (OSError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait(10)

    def ready(timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"mlflow server did not answer within {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")

    return Server("MLflow", url, stop, lambda: _group_pids(proc.pid)), ready


def start_modelreg(home: Path) -> tuple[Server, str]:
    """A real daemon process on loopback; (the server, its token)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from daemon_process import start_daemon

    d = start_daemon(home, timeout=60)
    return Server("modelreg", d.url, d.stop, lambda: [d.proc.pid]), d.token


def start_python_server(label: str, args: list[str], timeout: float) -> Server:
    """A helper server of ours that prints its port on its first line."""
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
    finally:
        timer.cancel()
    if not port.isdigit():
        proc.kill()
        raise RuntimeError(f"{label} did not start (exit {proc.wait()})")

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    return Server(label, f"http://127.0.0.1:{port}", stop, lambda: [proc.pid])


# -- measuring --------------------------------------------------------------------------------------


@dataclass
class Samples:
    """Per-call seconds of one phase on one server, and what went wrong."""

    seconds: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""

    def call(self, fn: Callable[[], Any], check: Callable[[Any], str | None] = lambda _: None) -> Any:
        """Time ``fn()``; a raise or an answer ``check`` finds wrong is an error, not a sample. Its result."""
        t = time.perf_counter()
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - an error is a figure here; the first is printed
            self._failed(f"{type(exc).__name__}: {exc}")
            return None
        elapsed = time.perf_counter() - t
        wrong = check(result)
        if wrong:
            self._failed(wrong)
            return None
        self.seconds.append(elapsed)
        return result

    def _failed(self, why: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or why[:300]

    def p(self, q: float) -> float:
        """The q-quantile in milliseconds (nan with no sample)."""
        if not self.seconds:
            return float("nan")
        s = sorted(self.seconds)
        return s[min(len(s) - 1, int(len(s) * q))] * 1000

    def rate(self) -> float:
        """Calls per second, back to back."""
        return len(self.seconds) / sum(self.seconds) if self.seconds else 0.0


def interleaved(order: list[str], n: int) -> list[tuple[str, int]]:
    """Call i on every server, the order rotating with i: (server, i) for i in range(n)."""
    return [(order[(i + j) % len(order)], i) for i in range(n) for j in range(len(order))]


def _fmt(value: float, unit: str) -> str:
    return f"{value:8.2f} {unit}" if value == value else f"{'-':>8} {unit}"


def compare(r: Any, prof: dict[str, Any], base: Path) -> dict[str, Any]:
    """Start the servers, run the three phases interleaved, print and return the figures."""
    import mlflow
    import requests
    from mlflow.entities.model_registry import ModelVersion

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # one INFO line per create otherwise, on both
    os.environ.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
                      MLFLOW_HTTP_REQUEST_TIMEOUT="30")
    n, versions = prof["versions"], prof["versions"]
    servers: dict[str, Server] = {}
    watchdog = threading.Timer(prof["timeout"], lambda: [s.stop() for s in list(servers.values())])
    watchdog.daemon = True
    out: dict[str, Any] = {"versions": versions, "mlflow_version": mlflow.__version__,
                           "workload": "create_model_version(name, source='s3://bench-bucket/models/<i>', run_id=None):"
                                       " a reference version, no artifacts"}
    t0 = time.perf_counter()
    try:
        servers["MLflow"], mlflow_ready = start_mlflow(base / "mlflow")  # boots for 10-40 s meanwhile
        noop = start_python_server("no-op server", [str(ROOT / "benchmarks" / "noop_server.py")], 60)
        servers["noop"] = noop
        servers["floor"] = start_python_server("client floor", ["-m", "benchmarks.mlflow_compare", "--floor-server",
                                                                str(versions)], 60)
        servers["modelreg"], token = start_modelreg(base / "modelreg")
        mlflow_ready(180)
        r.line(f"(servers started in {time.perf_counter() - t0:.1f} s)")
        watchdog.start()
        # The token goes to all three alike (the same headers); MLflow's server ignores it.
        os.environ["MLFLOW_TRACKING_TOKEN"] = token
        order = ["floor", "MLflow", "modelreg"]
        clients = {k: mlflow.MlflowClient(tracking_uri=servers[k].url, registry_uri=servers[k].url) for k in order}

        http = Samples()
        with requests.Session() as s:
            for _ in range(50):
                s.get(noop.url + "/v1/ping").content
            for _ in range(prof["gets"]):
                http.call(lambda: s.get(noop.url + "/v1/ping").content)
        out["http_floor"] = {"p50_ms": http.p(.5), "p99_ms": http.p(.99)}
        r.line(f"requests GET, no-op server:  p50 {_fmt(http.p(.5), 'ms')}  p99 {_fmt(http.p(.99), 'ms')}  "
               f"(the HTTP floor: requests + aiohttp, no MLflow code)")

        for k in order:
            clients[k].create_registered_model(MODEL)

        def is_version(want: str) -> Callable[[Any], str | None]:
            return lambda mv: None if isinstance(mv, ModelVersion) and mv.version == want and mv.status == "READY" \
                else f"expected version {want} READY, got {getattr(mv, 'version', mv)!r} {getattr(mv, 'status', '')}"

        reg = {k: Samples() for k in order}
        for k, i in interleaved(order, n):
            c = clients[k]
            reg[k].call(lambda: c.create_model_version(MODEL, source=SOURCE.format(i), run_id=None),
                        is_version("1" if k == "floor" else str(i + 1)))
        out["register"] = _phase(r, "register (1 client)", reg, versions_per_s=True)
        rate = {k: reg[k].rate() for k in order}
        ratio = rate["modelreg"] / rate["MLflow"] if rate["MLflow"] else 0.0
        out["register"]["ratio"] = ratio
        r.line(f"    modelreg / MLflow: {ratio:.2f}x the versions/s")
        r.target("sequential registration: modelreg / MLflow versions/s (stock client)", ratio, ">=", TARGETS["register"])

        picks = random.Random(10).choices(range(1, versions + 1), k=prof["gets"])
        get = {k: Samples() for k in order}
        for k in order:  # warm-up, not counted
            for v in picks[:20]:
                clients[k].get_model_version(MODEL, "1" if k == "floor" else str(v))
        for k, j in interleaved(order, len(picks)):
            c = clients[k]
            want = "1" if k == "floor" else str(picks[j])
            get[k].call(lambda: c.get_model_version(MODEL, want), is_version(want))
        out["get"] = _phase(r, "get_model_version", get)
        ratio = get["MLflow"].p(.5) / get["modelreg"].p(.5) if get["modelreg"].seconds else 0.0
        out["get"]["ratio"] = ratio
        r.line(f"    MLflow p50 / modelreg p50: {ratio:.2f}x")
        r.target("get_model_version: MLflow p50 / modelreg p50 (stock client)", ratio, ">=", TARGETS["get"])

        def search_all(c: Any) -> tuple[int, int]:
            """(versions found, pages read) following page tokens, as a user listing them all would."""
            found, pages, page_token = 0, 0, None
            while pages <= versions:
                page = c.search_model_versions(f"name='{MODEL}'", max_results=versions, page_token=page_token)
                found, pages, page_token = found + len(page), pages + 1, page.token
                if not page_token:
                    break
            return found, pages

        def all_found(got: tuple[int, int]) -> str | None:
            return None if got[0] == versions else f"search returned {got[0]} versions, not {versions}"

        search = {k: Samples() for k in order}
        pages_by: dict[str, int] = {}
        for k in order:  # warm-up: not timed, but a wrong answer counts as an error
            got = search[k].call(lambda: search_all(clients[k]), all_found)
            search[k].seconds.clear()
            pages_by[k] = got[1] if got else 0
        for k, _ in interleaved(order, prof["searches"]):
            search[k].call(lambda: search_all(clients[k]), all_found)
        out["search"] = _phase(r, f"search one model's {versions:,} versions", search)
        for k in order:
            out["search"][k]["pages"] = pages_by[k]
        ratio = search["MLflow"].p(.5) / search["modelreg"].p(.5) if search["modelreg"].seconds else 0.0
        out["search"]["ratio"] = ratio
        r.line(f"    MLflow p50 / modelreg p50: {ratio:.2f}x  (pages per search: "
               + ", ".join(f"{k} {pages_by[k]}" for k in order) + ")")

        out["rss_mb"] = {k: _rss_mb(servers[k].pids()) for k in ("MLflow", "modelreg")}
        r.line(f"server RSS:  MLflow {out['rss_mb']['MLflow']:.0f} MB (all its processes)   "
               f"modelreg {out['rss_mb']['modelreg']:.0f} MB  ({versions:,} versions stored)")
        errors = sum(x.errors for phase in (reg, get, search) for k, x in phase.items() if k != "floor")
        out["errors"] = errors
        r.target("errors through the stock client (MLflow and modelreg)", errors, "<=", 0)
    finally:
        watchdog.cancel()
        os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
        for s in reversed(list(servers.values())):
            try:
                s.stop()
            except Exception as exc:  # noqa: BLE001 - stop the others regardless
                r.line(f"(stopping {s.label} failed: {exc})")
    return out


def _phase(r: Any, what: str, samples: dict[str, Samples], versions_per_s: bool = False) -> dict[str, Any]:
    """Print one phase's figures per server; return them."""
    out: dict[str, Any] = {}
    for k, s in samples.items():
        fig = {"p50_ms": s.p(.5), "p99_ms": s.p(.99), "calls": len(s.seconds), "errors": s.errors}
        line = f"{what + ', ' + k + ':':<44}"
        if versions_per_s:
            fig["per_s"] = s.rate()
            line += f"{s.rate():8.1f} versions/s  p50 {_fmt(s.p(.5), 'ms')}"
        else:
            line += f"p50 {_fmt(s.p(.5), 'ms')}  p99 {_fmt(s.p(.99), 'ms')}"
        if k == "floor":
            line += "  (the client floor: the stock client against constant replies)"
        else:
            floor = samples["floor"].p(.5)
            fig["above_floor_p50_ms"] = s.p(.5) - floor
            line += f"  {s.p(.5) - floor:+8.2f} ms over the floor"
        line += f"  ({len(s.seconds)} calls, {s.errors} errors)"
        r.line(line)
        if s.first_error:
            r.line(f"    (first error from {k}: {s.first_error})")
        out[k] = fig
    extra = {k: out[k].get("above_floor_p50_ms", 0.0) for k in ("MLflow", "modelreg")}
    if extra["modelreg"] > 0 and extra["MLflow"] > 0:  # informative: noise can put a p50 under the floor's
        out["server_ratio"] = extra["MLflow"] / extra["modelreg"]
        r.line(f"    what the server adds over the client floor (p50): MLflow / modelreg = {out['server_ratio']:.1f}x")
    return out


def run(prof: dict[str, Any], r: Any, keep: bool = False) -> dict[str, Any]:
    """The comparison in a fresh temporary directory (removed after unless ``keep``)."""
    base = Path(tempfile.mkdtemp(prefix="modelreg-bench-mlflow-"))
    r.line(f"MLflow comparison: {prof['versions']:,} sequential create_model_version(source=s3://…, run_id=None) "
           f"per server (reference versions, no artifacts: the metadata path both share), {prof['gets']:,} gets, "
           f"{prof['searches']} searches; the same stock MlflowClient; mlflow server --workers 1 on sqlite")
    try:
        return compare(r, prof, base)
    finally:
        if keep:
            r.line(f"(kept {base})")
        else:
            shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """``python -m benchmarks.mlflow_compare``: the comparison alone, with its JSON summary last."""
    from benchmarks.run import Report, _rounded, machine

    ap = argparse.ArgumentParser(prog="python -m benchmarks.mlflow_compare", description=__doc__.split("\n\n")[0])
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--tiny", action="store_true", help="200 versions: proves the comparison works")
    size.add_argument("--large", action="store_true", help="10,000 versions")
    ap.add_argument("--versions", type=int, help="versions registered per server (and then searched)")
    ap.add_argument("--gets", type=int, help="get_model_version calls per server")
    ap.add_argument("--searches", type=int, help="searches per server")
    ap.add_argument("--keep", action="store_true", help="keep the servers' directories (printed)")
    ap.add_argument("--floor-server", type=int, metavar="VERSIONS", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.floor_server is not None:
        floor_server(args.floor_server)
        return {}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the finally blocks stop the servers
    profile = "tiny" if args.tiny else "large" if args.large else "small"
    prof = profile_with(profile, versions=args.versions, gets=args.gets, searches=args.searches)
    r = Report()
    started = time.perf_counter()
    summary: dict[str, Any] = {"profile": profile, "machine": machine()}
    summary["mlflow"] = run(prof, r, keep=args.keep)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    summary["targets"] = r.targets
    judged = [t for t in r.targets if t["met"] is not None]
    summary["targets_met"] = f"{sum(t['met'] for t in judged)}/{len(judged)}"
    r.line(f"targets met: {summary['targets_met']}, {summary['seconds']} s")
    print(json.dumps(_rounded(summary), separators=(",", ":")), flush=True)
    return summary


def profile_with(profile: str, **overrides: int | None) -> dict[str, Any]:
    """The named profile's sizes with any given overrides."""
    prof = dict(PROFILES[profile])
    prof.update({k: v for k, v in overrides.items() if v is not None})
    prof["searches"] = max(1, prof["searches"])
    return prof


if __name__ == "__main__":
    main()
