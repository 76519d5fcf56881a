"""Fixtures for the lifecycle tests: a client for the real daemon process, and real version folders.

The ``home``, ``daemon`` and ``modelreg`` fixtures come from ``tests/conftest.py``: a real
``python -m modelreg.daemon`` on loopback over a real SQLite file, and the real CLI.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lifecycle_support import Versions
from modelreg.shared.client import Client


@pytest.fixture
async def client(daemon) -> AsyncIterator[Client]:
    c = Client(url=daemon.url, token=daemon.token, actor="tester@lifecycle")
    yield c
    await c.close()


@pytest.fixture
def versions(client: Client, tmp_path: Path) -> Versions:
    """``await versions.add(n, auc=…)`` registers fraud@n from a folder whose files say n."""
    return Versions(client, tmp_path / "src")
