"""Fixtures for compare, search and changing what exists: the real daemon process (``daemon``,
``home`` and ``modelreg`` come from tests/conftest.py), a synchronous client for it, and a
helper that registers versions from real folders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog_support import Registry
from modelreg.shared.sync_client import SyncClient


@pytest.fixture
def client(daemon) -> Iterator[SyncClient]:
    c = SyncClient(url=daemon.url, token=daemon.token, actor="tester@catalog")
    yield c
    c.close()


@pytest.fixture
def reg(client: SyncClient, home: Path, tmp_path: Path) -> Registry:
    return Registry(client, home, tmp_path / "src")
