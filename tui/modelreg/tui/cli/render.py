"""How the CLI prints: aligned text for people, one JSON document for machines.

Human output is built from plain strings and ``Span`` (text plus a style name); nothing a
command prints is ever parsed as markup, so a reason or a file name containing ``[bold]``
prints as typed. On a terminal, rich draws it (colour, the terminal's width); when piped,
the same lines come out as plain aligned text and rich is never imported, which keeps
``modelreg … | grep`` fast and free of escape codes.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TextIO

from modelreg.shared.units import format_size as size  # noqa: F401 - the one size format (the TUI shows the same)


class Span(NamedTuple):
    """Text with a rich style name ("bold", "green", "dim"…); the style is dropped when piped."""

    text: str
    style: str = ""


Part = str | Span
Cell = Part | Sequence[Part]

STAGE_STYLE = {"production": "bold green", "staging": "yellow", "archived": "dim", "none": "dim"}
STATUS_STYLE = {"ready": "", "pending": "cyan", "failed": "bold red"}
# Columns whose values are numbers read best right-aligned.
RIGHT = frozenset({"v", "versions", "size", "files", "id", "attempts", "events"})


def _parts(cell: Cell | None) -> list[Span]:
    if cell is None:
        return [Span("")]
    if isinstance(cell, Span):
        return [cell]
    if isinstance(cell, str):
        return [Span(cell)]
    return [p if isinstance(p, Span) else Span(str(p)) for p in cell]


def _plain(cell: Cell | None) -> str:
    return "".join(p.text for p in _parts(cell))


@dataclass
class Table:
    """Columns and rows of cells; ``add_row`` as in rich, but cells are never markup."""

    columns: tuple[str, ...]
    right: frozenset[str] = RIGHT
    indent: int = 0

    def __post_init__(self) -> None:
        self.rows: list[list[Cell]] = []

    def add_row(self, *cells: Cell | None) -> None:
        self.rows.append([c if c is not None else "" for c in cells])

    def plain_lines(self) -> list[str]:
        texts = [list(self.columns)] + [[_plain(c) for c in row] for row in self.rows]
        widths = [max(len(r[i]) for r in texts) for i in range(len(self.columns))]
        lines = []
        for row in texts:
            cells = [cell.rjust(w) if col in self.right else cell.ljust(w)
                     for cell, w, col in zip(row, widths, self.columns)]
            lines.append((" " * self.indent + "  ".join(cells)).rstrip())
        return lines


# rich's own tag pattern: only used to strip markup that other modules still pass to print().
_MARKUP_TAG = re.compile(r"(\\*)\[([a-z#/@][^[]*?)]")


def strip_markup(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        slashes = m.group(1)
        if len(slashes) % 2:  # an escaped bracket: keep it, drop one backslash
            return slashes[:-1] + f"[{m.group(2)}]"
        return slashes
    return _MARKUP_TAG.sub(repl, text)


class Output:
    """One output stream (stdout or stderr): rich on a terminal, plain text otherwise."""

    def __init__(self, stream: TextIO | None = None, *, stderr: bool = False, terminal: bool | None = None,
                 width: int | None = None) -> None:
        self._stream = stream
        self._stderr = stderr
        self._terminal = terminal
        self._width = width
        self._console: Any = None

    @property
    def stream(self) -> TextIO:
        if self._stream is not None:
            return self._stream
        return sys.stderr if self._stderr else sys.stdout

    @property
    def is_terminal(self) -> bool:
        if self._terminal is None:
            try:
                self._terminal = self.stream.isatty()
            except (AttributeError, ValueError):
                self._terminal = False
        return self._terminal

    def console(self) -> Any:
        """The rich Console behind a terminal stream (imported on first use)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(file=self.stream, highlight=False, width=self._width,
                                    force_terminal=True if self._terminal else None)
        return self._console

    def _text(self, parts: Iterable[Part]) -> Any:
        from rich.text import Text

        return Text.assemble(*((p.text, p.style) if isinstance(p, Span) else p for p in parts))

    def line(self, *parts: Part) -> None:
        """Print one line built from strings and spans (no markup is interpreted)."""
        if self.is_terminal:
            self.console().print(self._text(parts), soft_wrap=True)
        else:
            self.stream.write("".join(p.text if isinstance(p, Span) else p for p in parts) + "\n")

    def blank(self) -> None:
        self.line()

    def heading(self, title: str) -> None:
        self.line(Span(title, "bold"))

    def table(self, t: Table) -> None:
        if not self.is_terminal:
            for text in t.plain_lines():
                self.stream.write(text + "\n")
            return
        from rich.padding import Padding
        from rich.table import Table as RichTable

        rt = RichTable(box=None, pad_edge=False, header_style="bold", show_edge=False)
        for col in t.columns:
            rt.add_column(col, justify="right" if col in t.right else "left", overflow="fold")
        for row in t.rows:
            rt.add_row(*(self._text(_parts(c)) for c in row))
        self.console().print(Padding(rt, (0, 0, 0, t.indent)) if t.indent else rt)

    def fields(self, rows: Sequence[tuple[str, Cell]], indent: int = 2) -> None:
        """Aligned ``key   value`` lines; the keys' column is as wide as the longest key."""
        if not rows:
            return
        width = max(len(k) for k, _ in rows)
        for key, value in rows:
            self.line(" " * indent, Span(key.ljust(width), "dim" if self.is_terminal else ""), "  ", *_parts(value))

    def markdown(self, text: str) -> None:
        if self.is_terminal:
            from rich.markdown import Markdown

            self.console().print(Markdown(text))
        else:
            self.stream.write(text if text.endswith("\n") else text + "\n")

    def print(self, value: Any = "", *, markup: bool = True, **_options: Any) -> None:
        """rich's ``Console.print`` for a markup string or a Table (kept for older callers).

        New code should use ``line`` with ``Span``s, which cannot misread user text as markup.
        """
        if isinstance(value, Table):
            return self.table(value)
        text = str(value)
        if self.is_terminal:
            self.console().print(text, markup=markup, highlight=False, soft_wrap=True)
        else:
            self.stream.write((strip_markup(text) if markup else text) + "\n")

    def flush(self) -> None:
        self.stream.flush()


out = Output()
err = Output(stderr=True)


def emit_json(value: Any) -> None:
    """The one JSON document a command prints with --json."""
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def emit_json_line(value: Any) -> None:
    """One NDJSON record (``events --follow --json``), flushed at once."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def table(*columns: str, indent: int = 0, **_ignored: Any) -> Table:
    return Table(tuple(columns), indent=indent)


# -- values ------------------------------------------------------------------------------------


def count(n: int | None) -> str:
    """A large count people can read: 1552 → '1,552'; 7_241_732_096 → '7.24B (7,241,732,096)'."""
    if n is None:
        return "-"
    exact = f"{n:,}"
    for unit, scale in (("B", 10**9), ("M", 10**6)):
        if n >= scale:
            return f"{n / scale:.3g}{unit} ({exact})"
    return exact


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word if n == 1 else (words or word + 's')}"


def page_total(page: dict, word: str, words: str | None = None) -> str:
    """A page's total: the daemon stops counting a filtered listing at 1,000 (``total_exact``)."""
    if page.get("total_exact", True):
        return plural(page["total"], word, words)
    return f"more than {page['total']:,} {words or word + 's'}"


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


def stage(name: str | None) -> Span:
    return Span(name or "-", STAGE_STYLE.get(name or "", ""))


def status(name: str) -> Span:
    return Span(name, STATUS_STYLE.get(name, ""))


def value_text(value: Any, limit: int = 200) -> str:
    """Any JSON value as a person writes it: lists comma-separated, maps as k=v, never a repr."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return metric(value)
    if isinstance(value, dict):
        text = ", ".join(f"{k}={value_text(v, limit)}" for k, v in value.items())
    elif isinstance(value, list | tuple):
        text = ", ".join(value_text(v, limit) for v in value)
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@contextmanager
def progress(total: int, label: str, enabled: bool) -> Iterator[Any]:
    """A byte progress bar on a terminal; a no-op otherwise (CI logs stay clean)."""
    if not enabled or not err.is_terminal:
        yield lambda n, absolute=False: None
        return
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                               TransferSpeedColumn)

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=err.console(), transient=True) as bar:
        task = bar.add_task(label, total=total or None)

        def advance(n: int, absolute: bool = False) -> None:
            if absolute:
                bar.update(task, completed=n)
            else:
                bar.advance(task, n)

        yield advance
