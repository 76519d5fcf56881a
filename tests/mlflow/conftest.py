"""Fixtures for the MLflow compatibility tests: the stock ``mlflow`` client pointed at a real
daemon process on loopback, and a stock ``mlflow server`` to import from.

The client is configured the way a user would do it: ``MLFLOW_TRACKING_URI`` and
``MLFLOW_TRACKING_TOKEN`` in the environment, nothing else.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from daemon_process import start_daemon

mlflow = pytest.importorskip("mlflow")

# Offline and quiet: no telemetry, no prompts, no background threads phoning anywhere.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")


@pytest.fixture
def mlflow_env(daemon, monkeypatch: pytest.MonkeyPatch):
    """The daemon fixture's URL and token as a training script would see them."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", daemon.url)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", daemon.url)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", daemon.token)
    mlflow.set_tracking_uri(daemon.url)
    mlflow.set_registry_uri(daemon.url)
    yield daemon
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


@pytest.fixture
def client(mlflow_env):
    """The stock MlflowClient against the daemon."""
    return mlflow.MlflowClient()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    """A stock ``mlflow server`` (SQLite backend, served artifacts, one worker) on loopback."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "mlflow-server.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> "MlflowServer":
        self.root.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
        env.pop("MLFLOW_TRACKING_URI", None)
        cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
               "--workers", "1", "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
               "--artifacts-destination", str(self.root / "artifacts")]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.root,
                                         env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"mlflow server did not answer within {timeout}s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(10)


@pytest.fixture
def mlflow_server(tmp_path: Path):
    """A running stock MLflow server to import from; stopped at teardown."""
    server = MlflowServer(tmp_path / "mlflow-server").start()
    yield server
    server.stop()


@pytest.fixture
def mlflow_root(tmp_path: Path) -> Path:
    """A folder the ``rooted_client``'s daemon may read MLflow sources from (MODELREG_MLFLOW_ROOTS)."""
    root = tmp_path / "mlflow-models"
    root.mkdir()
    return root


@pytest.fixture
def rooted_client(home: Path, mlflow_root: Path, monkeypatch: pytest.MonkeyPatch):
    """The stock MlflowClient against a daemon started with MODELREG_MLFLOW_ROOTS=mlflow_root
    (it shares ``home``, so the ``modelreg`` fixture talks to it)."""
    d = start_daemon(home, env={"MODELREG_MLFLOW_ROOTS": str(mlflow_root)})
    monkeypatch.setenv("MLFLOW_TRACKING_URI", d.url)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", d.url)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", d.token)
    mlflow.set_tracking_uri(d.url)
    mlflow.set_registry_uri(d.url)
    yield mlflow.MlflowClient()
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)
    d.stop()
