"""Fixtures for daemon tests: a real app on a loopback port, a real SQLite file under tmp_path
(MODELREG_TEST_BACKEND=postgres: the home's own PostgreSQL database and S3 bucket).

``registry`` is one running daemon (``create_app`` + ``AppRunner`` + ``TCPSite`` on port 0)
on ``tmp_path/"home"``; ``start_registry`` starts more (or restarts one on the same home).
Every daemon started here is stopped at teardown, and the test fails if the daemon logged
an unhandled error: a 5xx the client might not even have looked at is still a bug.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import team_backend
from modelreg.daemon.app import create_app
from modelreg.daemon.config import DaemonConfig
from registry_harness import Registry, StartRegistry, write_safetensors


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
async def start_registry(caplog: pytest.LogCaptureFixture,
                         monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[StartRegistry]:
    """``await start_registry(home, **config_fields)`` → a running Registry on a free port."""
    caplog.set_level(logging.INFO)
    started: list[Registry] = []

    async def start(home: Path, **config: Any) -> Registry:
        cfg = replace(DaemonConfig(home=home, port=0, workers=4, **_team_config(home, monkeypatch)), **config)
        app = create_app(cfg)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)
        await runner.setup()  # the cleanup contexts' start-up: lock, recovery, database
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        reg = Registry(home, cfg, app, runner, f"http://127.0.0.1:{port}")
        started.append(reg)
        return reg

    yield start
    for reg in reversed(started):
        if reg.runner.server is not None:
            await reg.stop()
    crashes = [r for r in caplog.records if r.levelno >= logging.ERROR
               and (r.name.startswith("modelreg") or r.name.startswith("aiohttp"))]
    assert not crashes, "the daemon logged errors:\n" + "\n".join(
        f"{r.name}: {r.getMessage()}\n{r.exc_text or ''}" for r in crashes)


def _team_config(home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """MODELREG_TEST_BACKEND=postgres: the home's own database and bucket, as a daemon process
    gets them from ``daemon_env`` (the S3 credentials are read from this process's environment)."""
    env = team_backend.env_for(home)
    if not env:
        return {}
    for name, value in env.items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    return {"database": env["MODELREG_DATABASE"], "artifacts": env["MODELREG_ARTIFACTS"]}


@pytest.fixture
async def registry(start_registry: StartRegistry, home: Path) -> Registry:
    return await start_registry(home)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """A folder outside the home for files to register."""
    path = tmp_path / "src"
    path.mkdir()
    return path


@pytest.fixture
def model_file(src: Path) -> Path:
    path = src / "model.safetensors"
    write_safetensors(path)
    os.chmod(path, 0o644)
    return path
