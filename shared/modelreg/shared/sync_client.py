"""A thin synchronous wrapper over ``Client`` for scripts and the CLI.

>>> with SyncClient() as c:
...     print(c.resolve("fraud@production")["version"])
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from .client import Client


class SyncClient:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = Client(*args, **kwargs)

    @property
    def client(self) -> Client:
        return self._client

    def run(self, coro: Any) -> Any:
        return self._loop.run_until_complete(coro)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not asyncio.iscoroutinefunction(attr):
            return attr

        @functools.wraps(attr)
        def call(*args: Any, **kwargs: Any) -> Any:
            return self._loop.run_until_complete(attr(*args, **kwargs))

        return call

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._client.close())
            self._loop.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
