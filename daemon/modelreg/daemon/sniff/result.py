"""The sniff result type and the limits that keep its facts small and JSON-safe.

Everything a sniffer records comes from an untrusted file, so it passes through
:func:`bounded` before it lands in ``SniffResult.facts``: strings are cut at
``MAX_STR`` characters, lists and dicts at ``MAX_ITEMS`` entries, nesting at
``MAX_DEPTH`` levels, and a node budget stops alias bombs (a YAML anchor reused
a million times is one object in memory but a million when walked).
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field

MAX_STR = 4096
MAX_ITEMS = 1000
MAX_DEPTH = 12
MAX_NODES = 20_000


@dataclass
class SniffResult:
    """What reading a model file (or a whole drop) without running it told us."""

    format: str | None
    facts: dict
    complete: bool = True
    problems: list[str] = field(default_factory=list)
    unsafe: bool = False
    lineage: list[dict] = field(default_factory=list)
    metrics: list[dict] = field(default_factory=list)


def cap_str(text: str, limit: int = MAX_STR) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def bounded(value: object) -> object:
    """Return a JSON-serialisable copy of ``value`` within the size limits."""
    budget = [MAX_NODES]
    return _bounded(value, 0, budget)


def _bounded(value: object, depth: int, budget: list[int]) -> object:
    budget[0] -= 1
    if budget[0] < 0:
        return None
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return cap_str(value)
    if isinstance(value, bytes | bytearray):
        return f"<{len(value):,} bytes>"
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    if depth >= MAX_DEPTH:
        return "<nested too deeply>"
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for i, (key, item) in enumerate(value.items()):
            if i >= MAX_ITEMS or budget[0] <= 0:
                break
            out[cap_str(str(key), 256)] = _bounded(item, depth + 1, budget)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items = []
        for i, item in enumerate(value):
            if i >= MAX_ITEMS or budget[0] <= 0:
                break
            items.append(_bounded(item, depth + 1, budget))
        return items
    return cap_str(str(value))


def failed(fmt: str | None, problem: str, facts: dict | None = None) -> SniffResult:
    """A result for a file whose format check failed."""
    return SniffResult(format=fmt, facts=facts or {}, complete=False, problems=[problem])


def plural(n: int, word: str) -> str:
    """``"1 tensor"`` / ``"3 tensors"``, with thousands separators."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"
