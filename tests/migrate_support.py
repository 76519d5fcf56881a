"""Helpers for the `modelreg migrate` tests: a source registry built through a real daemon, the
real command run against it, and looks at the PostgreSQL + S3 result from outside."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

from daemon_process import daemon_env, start_daemon
from modelreg.shared.client import Client
from modelreg.shared.config import Endpoint
from modelreg.tui.demo import DemoBuilder


def _filled(root: Path, fill: Callable[[Client], Awaitable[None]]) -> Path:
    """A home filled by ``await fill(client)`` through its real daemon, stopped afterwards."""
    home = root / "registry"
    daemon = start_daemon(home)
    try:
        async def run() -> None:
            endpoint = Endpoint(url=daemon.url, token=daemon.token, home=home, explicit_url=True)
            async with Client(endpoint, actor="ci@modelreg") as c:
                await fill(c)

        asyncio.run(run())
    finally:
        daemon.stop()
    return home


def build_demo(root: Path) -> Path:
    """The `modelreg demo` registry; its home."""
    async def fill(c: Client) -> None:
        notes = await DemoBuilder(c, root, log=lambda *_: None).build()
        assert not notes, notes

    return _filled(root, fill)


def build_registry(root: Path, versions: int, models: int = 1) -> Path:
    """A registry of ``versions`` versions spread over ``models`` models, each with its own small
    file, metrics and params, some promoted; its home."""
    async def fill(c: Client) -> None:
        for i in range(versions):
            name = f"model-{i % models}"
            f = root / f"w{i}.bin"
            f.write_bytes(f"weights {i}\n".encode() * (i + 1))
            blob = await c.upload_blob(f)
            await c.register(name, files=[{"path": "model.bin", "sha256": blob["sha256"], "size": blob["size"]}],
                             metrics={"auc": 0.8 + i / (10 * versions), "loss": 1 / (i + 1)},
                             params={"lr": str(0.001 * (i + 1))}, datasets=[f"txns@{i % 7}"])
            if i % 10 == 9:
                await c.promote(f"{name}@{i // models + 1}", "production", reason="nightly")

    return _filled(root, fill)


def run_migrate(home: Path, *args: str, env: dict[str, str] | None = None,
                timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`modelreg migrate ARGS…` on ``home`` (the real command, in its own process)."""
    return subprocess.run([sys.executable, "-m", "modelreg.tui.cli", "migrate", *args], capture_output=True,
                          text=True, env={**daemon_env(home), **(env or {})}, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def report(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The --json summary of a run that must have succeeded."""
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The error a failed run printed: one line, no traceback."""
    assert result.returncode != 0, result.stdout
    text = result.stderr.strip()
    assert "Traceback" not in result.stderr + result.stdout, text
    assert len(text.splitlines()) == 1, text
    return text


def sqlite_counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                            "AND name NOT LIKE 'sqlite_%' AND name != 'schema_migrations'")]
        return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
    finally:
        conn.close()


async def pg_fetch(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def pg_counts(dsn: str, tables: list[str]) -> dict[str, int]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return {t: await conn.fetchval(f'SELECT count(*) FROM "{t}"') for t in tables}
    finally:
        await conn.close()


def new_bucket(s3_server) -> str:  # noqa: ANN001 - tests/s3_server.S3Server
    name = f"mig-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(name)
    return name


def bucket_sizes(s3_server, bucket: str, prefix: str) -> dict[str, int]:  # noqa: ANN001
    """sha256 → size of every blob under ``prefix`` in the bucket, listed behind the store's back."""
    client, found, token = s3_server.client(), {}, None
    root = f"{prefix}/sha256/" if prefix else "sha256/"
    while True:
        page = client.list_objects_v2(Bucket=bucket, Prefix=root, **({"ContinuationToken": token} if token else {}))
        for obj in page.get("Contents", []):
            rest = obj["Key"][len(root):]
            found[rest.replace("/", "", 1)] = obj["Size"]
        if not page.get("IsTruncated"):
            return found
        token = page["NextContinuationToken"]
