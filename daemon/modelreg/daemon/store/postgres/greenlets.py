"""Running the shared, synchronous aggregate functions over asyncpg, on the event loop.

The aggregates (``store/sql``) are plain functions that call ``tx.one(...)`` and get rows
back; asyncpg only offers coroutines. ``run(fn, arg)`` runs ``fn`` in a greenlet on the loop's
thread: each statement ``fn`` issues (``wait(coro)``) switches back to ``run``, which awaits
the coroutine on the loop, as any other task would, and switches into ``fn`` again with its
result. Other tasks run while a statement is in flight; no thread hop happens per statement
(one measured ~2 ms each on a loaded 2-core machine, most of a registration's time). This
is how SQLAlchemy's asyncio extension runs its synchronous core over asyncpg.

The functions' own work between statements is small (building SQL, reading rows), as it is
in any async handler; nothing in them blocks (their only I/O is the statements).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import greenlet

T = TypeVar("T")


class _Statement:
    """What ``fn``'s greenlet hands ``run``: a coroutine to await for it."""

    __slots__ = ("coro",)

    def __init__(self, coro: Awaitable[Any]) -> None:
        self.coro = coro


def wait(coro: Awaitable[T]) -> T:
    """Inside ``fn``: the coroutine's result, awaited by ``run`` on the loop."""
    current = greenlet.getcurrent()
    if current.parent is None or not getattr(current, "modelreg_statement_runner", False):
        raise RuntimeError("a statement outside engine.read/write (no transaction to run it in)")
    return current.parent.switch(_Statement(coro))


async def run(fn: Callable[[Any], T], arg: Any) -> T:
    """``fn(arg)``, its statements awaited here; its result, or its exception raised."""
    glet = greenlet.greenlet(fn)
    glet.modelreg_statement_runner = True
    value = glet.switch(arg)
    while not glet.dead:
        assert isinstance(value, _Statement)
        try:
            result = await value.coro
        except BaseException as exc:  # noqa: BLE001 - the statement's error is fn's to handle (or raise)
            value = glet.throw(exc)
        else:
            value = glet.switch(result)
    return value
