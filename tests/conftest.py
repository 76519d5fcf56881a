"""Fixtures for tests that drive a real daemon process and the real `modelreg` command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import team_backend
from daemon_process import daemon_env, start_daemon


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only(reason): looks inside SQLite itself; skipped on PostgreSQL")
    team_backend.start()  # MODELREG_TEST_BACKEND=postgres: real PostgreSQL and S3 for the run


def pytest_unconfigure(config: pytest.Config) -> None:
    team_backend.stop()


def pytest_report_header(config: pytest.Config) -> str:
    return f"modelreg backend: {team_backend.BACKEND}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not team_backend.team():
        return
    for item in items:
        if (mark := item.get_closest_marker("sqlite_only")) is not None:
            reason = mark.kwargs.get("reason") or (mark.args[0] if mark.args else "SQLite only")
            item.add_marker(pytest.mark.skip(reason=f"SQLite only: {reason}"))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def daemon(home: Path):
    d = start_daemon(home)
    yield d
    d.stop()


@pytest.fixture
def modelreg(home: Path):
    """Run the real `modelreg` command against the test home; returns the CompletedProcess."""

    def run(*args: str, check: bool = False, timeout: float = 120, env: dict[str, str] | None = None):
        full_env = {**daemon_env(home), **(env or {})}
        result = subprocess.run([sys.executable, "-m", "modelreg.tui.cli", *args], capture_output=True, text=True,
                                env=full_env, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"modelreg {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    return run


@pytest.fixture(scope="session")
def s3_server():
    """One real SeaweedFS S3 server for the run (tests/s3_server.py); each test takes its own bucket."""
    from s3_server import start_s3_server  # botocore is loaded only by the runs that need it

    server = start_s3_server()
    yield server
    server.stop()
