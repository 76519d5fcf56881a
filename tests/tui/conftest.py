"""Fixtures for the TUI tests: real daemons on loopback, filled through the client.

``demo_registry`` (one per session, read-only) holds the `modelreg demo` registry and backs
the snapshot tests; ``live`` is a small fresh registry per test for the tests that change
things (promote, roll back, drop a file, stop the daemon).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
from textual.worker import WorkerState

from daemon_process import DaemonProcess, start_daemon
from modelreg.shared.client import Client
from modelreg.shared.config import Endpoint
from modelreg.tui.app import DemoInfo, ModelregApp
from modelreg.tui.demo import DemoBuilder
from modelreg.tui.widgets.formatting import FrozenClock

SIZES = [(80, 24), (160, 48)]


@dataclass
class Registry:
    daemon: DaemonProcess
    root: Path

    @property
    def home(self) -> Path:
        return self.daemon.home

    @property
    def url(self) -> str:
        return self.daemon.url

    def endpoint(self) -> Endpoint:
        return Endpoint(url=self.url, token=self.daemon.token, home=self.home, explicit_url=True)

    def client(self, actor: str = "cli@elsewhere") -> Client:
        return Client(self.endpoint(), actor=actor)

    async def call(self, fn: Callable[[Client], Any]) -> Any:
        """``await fn(client)`` with a client acting from elsewhere (another shell, CI)."""
        async with self.client() as c:
            return await fn(c)

    def run(self, fn: Callable[[Client], Any]) -> Any:
        """Run ``await fn(client)`` on a fresh loop (for sync tests and fixtures)."""

        async def go() -> Any:
            async with self.client() as c:
                return await fn(c)

        return asyncio.run(go())


def make_app(registry: Registry, *, frozen: bool = True, **kwargs: Any) -> ModelregApp:
    options: dict[str, Any] = dict(home=registry.home, url=registry.url, actor="tester@tui", keymap={},
                                   start_daemon=False, cursor_blink=False)
    if frozen:
        options.update(clock=FrozenClock(), url_label="127.0.0.1:7311")
    options.update(kwargs)
    return ModelregApp(**options)


def demo_info() -> DemoInfo:
    return DemoInfo(home=Path("/tmp/modelreg-demo-x/registry"), drop=Path("/tmp/modelreg-demo-x/drop"))


WAIT_S = 30.0  # generous: the suite must pass on a loaded 2-core machine (tests/stress.sh)
BACKGROUND_GROUPS = {"daemon"}  # the app's connection worker runs for as long as the app


def busy_workers(app) -> list[str]:
    """Workers still pending or running, other than the app's lifelong connection worker."""
    return [f"{w.group}:{w.name}" for w in app.workers
            if w.group not in BACKGROUND_GROUPS and w.state in (WorkerState.PENDING, WorkerState.RUNNING)]


def _check(predicate: Callable[[], Any]) -> Any:
    try:
        return predicate()
    except Exception:  # noqa: BLE001 - widgets may not be mounted yet
        return None


async def wait_for(pilot, predicate: Callable[[], Any], timeout: float = WAIT_S, what: str = "",
                   settle: bool = True) -> Any:
    """Until ``predicate()`` is truthy and (``settle``) the app is idle: no worker running,
    no queued registry event, animations done, the screen's messages processed. Returns
    the predicate's value; fails naming ``what`` (and what was still busy) after ``timeout``."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    while True:
        if _check(predicate) and (not settle or not (busy_workers(app) or app._pending)):
            await pilot.wait_for_scheduled_animations()
            value = _check(predicate)
            if value and (not settle or not (busy_workers(app) or app._pending)):
                return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or predicate}"
                                 f" (busy: {busy_workers(app) or 'nothing'})")
        await pilot.pause(0.05)


async def settled(pilot, timeout: float = WAIT_S) -> None:
    """Until every worker the last action started has finished and its result is shown: for
    negative checks ("the key did nothing") and before a snapshot."""
    await wait_for(pilot, lambda: True, timeout=timeout, what="the app to settle")


@pytest.fixture(scope="session")
def demo_registry(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("demo")
    daemon = start_daemon(root / "registry")
    registry = Registry(daemon, root)

    async def fill() -> None:
        async with Client(registry.endpoint(), actor="demo@modelreg") as c:
            notes = await DemoBuilder(c, root, log=lambda *_: None).build()
        assert not notes, notes

    asyncio.run(fill())
    yield registry
    daemon.stop()


LIVE_GATES = [("auc >= production - 0.002", "production"), ("requires dataset", "production")]


async def fill_live(c: Client, blob_path: Path) -> None:
    """fraud v1 production, v2 archived, v3 staging (passes the gates), v4 none (fails auc)."""
    blob_path.write_bytes(b"weights\n")
    blob = await c.upload_blob(blob_path)
    for i, auc in enumerate((0.90, 0.89, 0.93, 0.85)):
        other = blob_path.with_name(f"cfg{i}.json")
        other.write_text(f'{{"v": {i}}}\n')
        cfg = await c.upload_blob(other)
        files = [{"path": "model.bin", **{k: blob[k] for k in ("sha256", "size")}},
                 {"path": "config.json", **{k: cfg[k] for k in ("sha256", "size")}}]
        await c.register("fraud", files=files, metrics={"auc": auc, "latency_ms": 30 + i},
                         params={"depth": str(4 + i)}, datasets=[f"txns@2026-0{i + 1}"], run=f"r{i + 1}")
    await c.register("churn", files=[{"path": "model.bin", "sha256": blob["sha256"], "size": blob["size"]}],
                     metrics={"f1": 0.7}, datasets=["subs@1"])
    for rule, stage in LIVE_GATES:
        await c.add_gate(rule, stage=stage, model="fraud")
    await c.transition("fraud@1", "production", reason="launch")
    await c.transition("fraud@2", "archived", reason="old")
    await c.transition("fraud@3", "staging", reason="candidate")


@pytest.fixture
def live(tmp_path: Path):
    daemon = start_daemon(tmp_path / "registry")
    registry = Registry(daemon, tmp_path)
    registry.run(lambda c: fill_live(c, tmp_path / "blob.bin"))
    yield registry
    registry.daemon.stop()  # a test may have restarted it
