"""Sizes as people read them, the same text in the CLI and the TUI."""

from __future__ import annotations

_UNITS = ("B", "KB", "MB", "GB", "TB")


def format_size(n: int | None) -> str:
    """Decimal units, three significant digits: 603 B, 1.4 KB, 412 MB, 2.1 GB; None is '-'."""
    if n is None:
        return "-"
    value = float(n)
    for unit in _UNITS:
        # 999,960 B is '1.0 MB', not '1000 KB'.
        if value < (1000 if unit == "B" else 999.5) or unit == _UNITS[-1]:
            if unit == "B":
                return f"{int(value)} B"
            return f"{value:.1f} {unit}" if value < 9.95 else f"{value:.0f} {unit}"
        value /= 1000
    return f"{n} B"
