"""Fixtures for the governance tests (issue 12): the real daemon as its admin, and named tokens.

``home``, ``daemon`` and ``modelreg`` come from tests/conftest.py (a real daemon process on
loopback, the real CLI). ``admin`` is a client with the home's token; ``token`` makes a named
token through the API and returns a client acting as it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from gov_support import TokenClient, make_token
from modelreg.shared.sync_client import SyncClient


@pytest.fixture
def admin(daemon) -> SyncClient:
    return SyncClient(url=daemon.url, token=daemon.token, actor="owner@laptop")


@pytest.fixture
def token(daemon, admin) -> Iterator[Callable[..., TokenClient]]:
    """``token("ci", "promote", models="fraud*", expires="30d")`` → a client acting as that token."""

    def make(name: str, scope: str, models: str | None = None, expires: str | None = None) -> TokenClient:
        return make_token(admin, daemon.url, name, scope, models, expires)

    yield make
