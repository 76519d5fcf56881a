"""Shared by tests/test_s3_daemon_*.py: a daemon keeping its artifacts in a fresh bucket of the
session's real SeaweedFS server, the `modelreg` command pointed at it, and looks into the bucket."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from daemon_process import DaemonProcess, daemon_env, start_daemon

PREFIX = "team/reg"


@dataclass
class S3Registry:
    home: Path
    bucket: str
    server: object  # tests/s3_server.S3Server
    daemon: DaemonProcess | None = None

    @property
    def env(self) -> dict[str, str]:
        return self.server.env(f"s3://{self.bucket}/{PREFIX}")

    def start(self) -> DaemonProcess:
        self.daemon = start_daemon(self.home, env=self.env)
        return self.daemon

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
            self.daemon = None

    def cli(self, *args: str, check: bool = True, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
        """The real `modelreg` command on this home (the CLI itself needs no S3 settings)."""
        result = subprocess.run([sys.executable, "-m", "modelreg.tui.cli", *args], capture_output=True, text=True,
                                env={**daemon_env(self.home), **(env or {})}, timeout=timeout,
                                stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"modelreg {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def json(self, *args: str) -> dict:
        return json.loads(self.cli(*args, "--json").stdout)

    def keys(self) -> list[str]:
        s3 = self.server.client()
        return sorted(o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
                      for o in page.get("Contents", []))

    def key(self, sha: str) -> str:
        return f"{PREFIX}/sha256/{sha[:2]}/{sha[2:]}"

    def local_blob(self, sha: str) -> Path:
        return self.home / "blobs" / "sha256" / sha[:2] / sha[2:]


def new_registry(s3_server, home: Path) -> S3Registry:
    bucket = f"d-{uuid.uuid4().hex[:16]}"
    s3_server.create_bucket(bucket)
    return S3Registry(home, bucket, s3_server)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def same_origin(url: str, other: str) -> bool:
    a, b = urlsplit(url), urlsplit(other)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


class RecordingProxy:
    """A real HTTP server in front of the S3 endpoint that forwards every request unchanged (the
    Host header too, so SigV4 signatures still verify) and keeps the headers each one carried:
    what reached "S3" can then be looked at. Runs its own event loop in a thread."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.seen: list[tuple[str, str, dict[str, str]]] = []  # (method, path and query, headers)
        self.url = ""
        self._loop = None
        self._thread = None

    def __enter__(self) -> RecordingProxy:
        import asyncio
        import threading

        started = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._start())
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the recording proxy did not start")
        return self

    async def _start(self) -> None:
        import aiohttp
        from aiohttp import web

        self._session = aiohttp.ClientSession(auto_decompress=False)

        async def forward(request: web.Request) -> web.StreamResponse:
            self.seen.append((request.method, request.path_qs, dict(request.headers)))
            body = await request.read()
            async with self._session.request(request.method, self.upstream + request.path_qs, data=body,
                                             headers=request.headers, allow_redirects=False) as up:
                out = web.StreamResponse(status=up.status, headers={k: v for k, v in up.headers.items()
                                                                    if k.lower() != "transfer-encoding"})
                await out.prepare(request)
                async for chunk in up.content.iter_chunked(1 << 20):
                    await out.write(chunk)
                await out.write_eof()
                return out

        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"

    async def _stop(self) -> None:
        await self._runner.cleanup()
        await self._session.close()

    def __exit__(self, *exc: object) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
