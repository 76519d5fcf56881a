"""A daemon running in the test process, raw HTTP calls to it, and real files to register.

Imported by conftest.py (the fixtures) and by the tests (the helpers).
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
from aiohttp import web
from yarl import URL

import team_backend
from modelreg.daemon.config import DaemonConfig
from modelreg.shared.client import Client

_NO_BODY = object()


@dataclass
class Reply:
    """What a raw HTTP call got back, decoded by its Content-Type."""

    status: int
    content_type: str
    raw: bytes
    data: Any

    @property
    def error(self) -> dict[str, Any]:
        """The error envelope's inner object; fails the test when the body is not one."""
        assert isinstance(self.data, dict) and set(self.data) == {"error"}, f"not an error envelope: {self.raw[:300]!r}"
        err = self.data["error"]
        assert isinstance(err, dict) and set(err) == {"code", "message", "details"}, err
        assert isinstance(err["code"], str) and err["code"]
        assert isinstance(err["message"], str) and err["message"]
        assert isinstance(err["details"], dict)
        assert "Traceback" not in err["message"]
        return err


@dataclass
class Registry:
    """One daemon running in this process."""

    home: Path
    config: DaemonConfig
    app: web.Application
    runner: web.AppRunner
    url: str
    _clients: list[Client] = field(default_factory=list)
    _session: aiohttp.ClientSession | None = None

    @property
    def token(self) -> str:
        return (self.home / "token").read_text().strip()

    @property
    def db_path(self) -> Path:
        return self.home / "registry.db"

    def client(self, **kwargs: Any) -> Client:
        """A client of the real shared Client class, closed at teardown."""
        c = Client(url=self.url, token=self.token, home=self.home, **kwargs)
        self._clients.append(c)
        return c

    async def call(self, method: str, path: str, *, body: Any = _NO_BODY, json_body: Any = _NO_BODY,
                   data: bytes | None = None, headers: dict[str, str] | None = None, token: str | None = "valid",
                   accept_json: bool = False) -> Reply:
        """A raw request; ``path`` (with its query) is sent exactly as written, never normalised.

        ``body`` is sent as msgpack, ``json_body`` as JSON, ``data`` as given. ``token``
        is "valid" (the home's token), None (no header) or a literal wrong token.
        """
        hdrs: dict[str, str] = {}
        if token == "valid":
            hdrs["Authorization"] = f"Bearer {self.token}"
        elif token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        if accept_json:
            hdrs["Accept"] = "application/json"
        if body is not _NO_BODY:
            data = msgpack.packb(body, use_bin_type=True)
            hdrs["Content-Type"] = "application/msgpack"
        elif json_body is not _NO_BODY:
            data = json.dumps(json_body).encode()
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        if self._session is None:
            self._session = aiohttp.ClientSession(skip_auto_headers=("Content-Type",))
        async with self._session.request(method, URL(self.url + path, encoded=True), data=data,
                                         headers=hdrs) as resp:
            raw = await resp.read()
            ctype = resp.content_type
        decoded: Any = None
        if not raw:
            pass
        elif ctype == "application/json":
            decoded = json.loads(raw)
        elif ctype == "application/msgpack":
            decoded = msgpack.unpackb(raw, raw=False)
        return Reply(resp.status, ctype, raw, decoded)

    async def stop(self) -> None:
        for c in self._clients:
            await c.close()
        self._clients.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self.runner.cleanup()


StartRegistry = Callable[..., Awaitable[Registry]]


# -- real files --------------------------------------------------------------------------------


def write_safetensors(path: Path, seed: int = 0, floats: int = 64) -> bytes:
    """A small but real safetensors file (header length, JSON header, little-endian F32 data)."""
    values = [float(seed * 1000 + i) for i in range(floats)]
    header = json.dumps({"__metadata__": {"seed": str(seed)},
                         "weight": {"dtype": "F32", "shape": [floats], "data_offsets": [0, 4 * floats]}}).encode()
    header += b" " * (-len(header) % 8)
    payload = struct.pack("<Q", len(header)) + header + struct.pack(f"<{floats}f", *values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return payload


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def blob_files(home: Path) -> list[Path]:
    """Every stored blob file under HOME/blobs/sha256."""
    root = home / "blobs" / "sha256"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def blob_path(home: Path, sha: str) -> Path:
    return home / "blobs" / "sha256" / sha[:2] / sha[2:]


def lose_blob(home: Path, sha: str) -> None:
    """A stored blob's bytes gone: its file, and with artifacts in S3 (the source of truth, the
    file only its cache) its object in the home's bucket too."""
    blob_path(home, sha).unlink()
    env = team_backend.artifacts_env(home) if team_backend.team() else None
    if env:
        import botocore.config
        import botocore.session

        bucket, prefix = env["MODELREG_ARTIFACTS"].removeprefix("s3://").split("/", 1)
        s3 = botocore.session.get_session().create_client(
            "s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"], region_name=env["AWS_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            config=botocore.config.Config(s3={"addressing_style": "path"}))
        s3.delete_object(Bucket=bucket, Key=f"{prefix}/sha256/{sha[:2]}/{sha[2:]}")
