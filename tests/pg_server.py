"""A real PostgreSQL server for the tests: initdb into a temp dir, postgres on loopback.

PostgreSQL refuses to run as root, so when the tests run as root the server (and initdb) run
as the ``postgres`` user, in a temp dir that user owns. It listens on 127.0.0.1 on a free port
and on a unix socket in that dir, with ``trust`` auth for loopback only and fsync on (the
durability the store is tested for is the real one). One server per test session
(``pg_server``); each test gets its own database (``pg_dsn``), copied from template0, which
takes a fraction of a second.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from waiting import wait_until

START_TIMEOUT = 60  # a cold initdb + start on a loaded 2-core CI machine
STOP_TIMEOUT = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "TZ": "UTC"}


class PgServer:
    """One postgres process owned by this object: ``start()``, ``dsn(db)``, ``stop()``."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="modelreg-pg-"))  # /tmp: reachable by the postgres user
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        # As root, run as postgres (uid 101 here); as anyone else, as ourselves.
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    def _run_as(self) -> dict[str, Any]:
        return {"user": self.user, "group": pwd.getpwnam(self.user).pw_gid, "extra_groups": []} if self.user else {}

    def start(self) -> None:
        env = _server_env()
        init = subprocess.run(
            [str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--locale=C"],
            cwd=self.root, env=env, capture_output=True, text=True, timeout=START_TIMEOUT, **self._run_as())
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed ({init.returncode}):\n{init.stdout}\n{init.stderr}")
        self._launch(env)

    def halt(self) -> None:
        """Stop the server as an outage would (fast shutdown: sessions are cut), keeping its data."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        self.process.wait(STOP_TIMEOUT)

    def resume(self) -> None:
        """Start the halted server again: the same data dir and port."""
        self._launch(_server_env())

    def _launch(self, env: dict[str, str]) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
                 "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}",
                 "-c", "fsync=on", "-c", "synchronous_commit=on", "-c", "max_connections=100"],
                cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                **self._run_as())
        try:
            wait_until(self._accepts, START_TIMEOUT, f"PostgreSQL to accept connections on port {self.port}")
        except BaseException:
            self.stop()
            raise

    def _accepts(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"postgres exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
        ready = subprocess.run([str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port),
                                "-U", "postgres", "-d", "postgres", "-q"], capture_output=True, timeout=10)
        return ready.returncode == 0

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    async def create_database(self) -> str:
        """A new, empty database (from template0: nothing the server's defaults added); its DSN."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        conn = await asyncpg.connect(self.dsn(), timeout=10)
        try:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        finally:
            await conn.close()
        return self.dsn(name)

    def stop(self) -> None:
        """Immediate shutdown (SIGQUIT: no shutdown checkpoint, which would only fsync a data dir
        about to be deleted), SIGKILL if it hangs; then the temp dir goes."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
        shutil.rmtree(self.root, ignore_errors=True)


def find_bindir() -> Path | None:
    """The directory of the server's binaries: initdb's on PATH, else Debian's (the
    ``postgresql`` package keeps initdb and postgres in /usr/lib/postgresql/N/bin, off PATH)."""
    initdb = shutil.which("initdb")
    if initdb:
        return Path(os.path.realpath(initdb)).parent
    versions = [p for p in Path("/usr/lib/postgresql").glob("*/bin/initdb") if p.parts[-3].isdigit()]
    return max(versions, key=lambda p: int(p.parts[-3])).parent if versions else None


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (no initdb on PATH nor in /usr/lib/postgresql/*/bin): "
                    "apt-get install postgresql")
    server = PgServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
async def pg_dsn(pg_server: PgServer) -> AsyncIterator[str]:
    """A fresh database on the session's server, for one test."""
    yield await pg_server.create_database()
