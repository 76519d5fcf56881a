"""How the CLI prints: rich tables for people, JSON for machines, progress on a terminal."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Iterator

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

# Piped output is not wrapped at 80 columns: scripts and logs get whole lines.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 1000)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 1000)

STAGE_STYLE = {"production": "bold green", "staging": "yellow", "archived": "dim", "none": ""}
STATUS_STYLE = {"ready": "", "pending": "cyan", "failed": "bold red"}


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


def when(iso: str | None) -> str:
    if not iso:
        return "-"
    try:
        dt = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone()
    except ValueError:
        return iso
    return dt.strftime("%Y-%m-%d %H:%M")


def metric(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "-" if value is None else str(value)


def stage(name: str) -> str:
    style = STAGE_STYLE.get(name, "")
    return f"[{style}]{name}[/]" if style else name


def table(*columns: str, **kwargs: Any) -> Table:
    t = Table(box=None, pad_edge=False, header_style="bold", **kwargs)
    for col in columns:
        justify = "right" if col in ("v", "versions", "size", "files", "id") else "left"
        t.add_column(col, justify=justify, overflow="fold")
    return t


@contextmanager
def progress(total: int, label: str, enabled: bool) -> Iterator[Any]:
    """A byte progress bar on a terminal; a no-op otherwise (CI logs stay clean)."""
    if not enabled or not err.is_terminal:
        yield lambda n, absolute=False: None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task(label, total=total or None)

        def advance(n: int, absolute: bool = False) -> None:
            if absolute:
                bar.update(task, completed=n)
            else:
                bar.advance(task, n)

        yield advance
