"""Timestamps on the wire are ISO 8601 UTC strings; the database keeps epoch seconds."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

from .errors import InvalidInput


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str, now: float | None = None) -> float:
    """Epoch seconds from ISO 8601 (naive means UTC), epoch digits, or '2h ago' / '3d'."""
    text = text.strip()
    now = time.time() if now is None else now
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw])(?:\s+ago)?", text)
    if m:
        unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
        return now - float(m.group(1)) * unit
    if re.fullmatch(r"\d{9,}(?:\.\d+)?", text):
        return float(text)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"invalid time {text!r}: use ISO 8601 (2026-11-20T14:00Z), epoch seconds, or '2h ago'"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def parse_duration(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw]?)", text.strip())
    if not m:
        raise InvalidInput(f"invalid duration {text!r}: e.g. 30s, 15m, 24h, 7d")
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
    return float(m.group(1)) * unit


__all__ = ["iso", "parse_time", "parse_duration", "timedelta"]
