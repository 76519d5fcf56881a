"""Helpers for the resumable-upload tests: a TCP proxy that cuts the connection, files of
pseudo-random bytes, plain HTTP calls that show the status and the error envelope."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import os
import socket
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from modelreg.shared.calls import version_path
from waiting import wait_until as wait_for  # noqa: F401 (the tests here import it from this module)

MiB = 1024 * 1024


def write_pseudo_random(path: Path, size: int) -> str:
    """``size`` bytes that hash meaningfully (one random MiB repeated, each copy stamped with its
    index, so no two MiB are equal), written fast; returns their sha256, computed as written."""
    block = bytearray(os.urandom(MiB))
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for index in range(-(-size // MiB)):
            block[:8] = index.to_bytes(8, "little")
            piece = memoryview(block)[:min(MiB, size - index * MiB)]
            h.update(piece)
            f.write(piece)
    return h.hexdigest()


class Api:
    """Plain HTTP/1.1 calls to a daemon, answering (status, headers, decoded JSON body)."""

    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.token = parts.hostname or "127.0.0.1", parts.port or 80, token

    def call(self, method: str, path: str, *, body: Any = None, data: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        hdrs = {"Authorization": f"Bearer {self.token}", "Accept": "application/json", **(headers or {})}
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(raw) if raw else None
        finally:
            conn.close()

    def create(self, size: int, sha256: str) -> dict[str, Any]:
        status, _, session = self.call("POST", "/v1/blobs/uploads", body={"size": size, "sha256": sha256})
        assert status == 201, session
        return session

    def patch(self, upload_id: str, offset: int, data: bytes) -> tuple[int, dict[str, str], Any]:
        return self.call("PATCH", f"/v1/blobs/uploads/{upload_id}", data=data,
                         headers={"Upload-Offset": str(offset), "Content-Type": "application/octet-stream"})

    def status(self, upload_id: str) -> tuple[int, Any]:
        status, _, session = self.call("GET", f"/v1/blobs/uploads/{upload_id}")
        return status, session

    def open_part(self, upload_id: str, offset: int, announced: int, data: bytes) -> socket.socket:
        """A PATCH announcing ``announced`` bytes of which only ``data`` is sent; the socket is left open."""
        head = (f"PATCH /v1/blobs/uploads/{upload_id} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Authorization: Bearer {self.token}\r\nUpload-Offset: {offset}\r\n"
                f"Content-Type: application/octet-stream\r\nContent-Length: {announced}\r\n\r\n").encode()
        sock = socket.create_connection((self.host, self.port), timeout=30)
        sock.sendall(head + data)
        return sock

    def send_and_drop(self, upload_id: str, offset: int, announced: int, data: bytes) -> None:
        """A PATCH announcing ``announced`` bytes whose connection dies after ``data``: the dropped connection."""
        self.open_part(upload_id, offset, announced, data).close()

    def download_sha256(self, ref: str, relpath: str) -> str:
        """Download a version's file through the API, hashing it as it streams (nothing written)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        try:
            conn.request("GET", f"{version_path(ref)}/files/{quote(relpath)}",
                         headers={"Authorization": f"Bearer {self.token}"})
            resp = conn.getresponse()
            if resp.status == 307:  # artifacts in S3: the bytes come from the presigned URL, without our token
                import urllib.request

                resp.read()
                resp = urllib.request.urlopen(resp.getheader("Location"), timeout=120)  # noqa: S310 - our S3
            else:
                assert resp.status == 200, resp.read()[:500]
            h = hashlib.sha256()
            while chunk := resp.read(4 * MiB):
                h.update(chunk)
            return h.hexdigest()
        finally:
            conn.close()


class CuttingProxy:
    """A TCP proxy on loopback (asyncio, in its own thread) in front of a daemon.

    Once ``cut_after`` bytes in all have gone from clients to the daemon, it drops the
    connection carrying them, both ways at once (a dropped network, not a polite close); every
    other byte and connection passes through. ``upstream`` counts what reached the daemon.
    """

    def __init__(self, target_url: str, cut_after: int | None) -> None:
        parts = urlsplit(target_url)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.cut_after = cut_after
        self.upstream = 0
        self.cuts = 0
        self.connections = 0
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cutting-proxy", daemon=True)
        self._stop: asyncio.Event | None = None

    def __enter__(self) -> CuttingProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        self._ready.set()
        async with server:
            await self._stop.wait()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            daemon_r, daemon_w = await asyncio.open_connection(*self._target)
        except OSError:
            client_w.transport.abort()
            return
        writers = (client_w, daemon_w)
        pumps = [asyncio.create_task(self._pump(client_r, daemon_w, writers, upstream=True)),
                 asyncio.create_task(self._pump(daemon_r, client_w, writers, upstream=False))]
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        for w in writers:
            w.close()  # one side ended: the other follows (an already aborted transport ignores it)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                    writers: tuple[asyncio.StreamWriter, ...], upstream: bool) -> None:
        try:
            while data := await src.read(MiB):
                if upstream and self.cut_after is not None and not self.cuts \
                        and self.upstream + len(data) >= self.cut_after:
                    keep = data[:self.cut_after - self.upstream]
                    dst.write(keep)
                    await dst.drain()
                    self.upstream += len(keep)
                    self.cuts += 1
                    for w in writers:
                        w.transport.abort()
                    return
                dst.write(data)
                await dst.drain()
                if upstream:
                    self.upstream += len(data)
        except (ConnectionError, OSError):
            pass
