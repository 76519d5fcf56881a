"""How values read on screen: times (through a clock the snapshot tests can freeze), sizes,
metric values and deltas, stage badges and text sparklines."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from rich.text import Text

from modelreg.shared.names import metric_direction
from modelreg.shared.units import format_size as size  # noqa: F401 - one size format for the CLI and the TUI

_SPARKS = "▁▂▃▄▅▆▇█"


class Clock:
    """Wall-clock time and how timestamps are shown (local time)."""

    tz: timezone | None = None  # None: the machine's local zone

    def now(self) -> float:
        return time.time()

    def ts(self, value: Any) -> float | None:
        """Epoch seconds from an ISO string (the wire format) or a number (event ``ts``)."""
        if value is None or value == "":
            return None
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None

    def date(self, value: Any, seconds: bool = False) -> str:
        ts = self.ts(value)
        if ts is None:
            return "-"
        dt = datetime.fromtimestamp(ts, self.tz) if self.tz else datetime.fromtimestamp(ts)
        return dt.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")

    def day(self, value: Any) -> str:
        return self.date(value)[:10]

    def ago(self, value: Any) -> str:
        ts = self.ts(value)
        if ts is None:
            return "-"
        return f"{span(max(0.0, self.now() - ts))} ago" if self.now() - ts >= 5 else "just now"

    def since(self, value: Any) -> str:
        """'for 2 days': how long something has been so."""
        ts = self.ts(value)
        return "-" if ts is None else span(max(0.0, self.now() - ts))


class FrozenClock(Clock):
    """Every timestamp is the same fixed instant, two hours before 'now' (snapshot tests)."""

    tz = timezone.utc
    FIXED = 1795600000.0  # 2026-11-25 09:46:40 UTC

    def now(self) -> float:
        return self.FIXED + 7200

    def ts(self, value: Any) -> float | None:
        return None if value is None or value == "" else self.FIXED


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 version', '2 versions', '1,204 versions': every count the TUI shows goes through here."""
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def span(seconds: float) -> str:
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= length:
            n = int(seconds // length)
            return plural(n, unit) if unit == "day" else f"{n}{unit[0]}"
    return f"{int(seconds)}s"


def number(value: Any) -> str:
    """A metric value: integers as integers, big numbers grouped, others to 4 significant digits."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    v = float(value)
    if v.is_integer() and abs(v) < 1e15:
        return f"{int(v):,}" if abs(v) >= 10000 else str(int(v))
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.4g}"


def delta(d: float) -> str:
    if d == 0:
        return "±0"
    if float(d).is_integer() and abs(d) < 1e15:
        return f"{int(d):+d}"
    return f"{d:+.3g}" if abs(d) >= 0.001 else f"{d:+.2e}"


@dataclass(frozen=True)
class Palette:
    """Rich styles for cell content, taken from the app's theme."""

    production: str = "bold #4EBF71"
    staging: str = "bold #FFA62B"
    archived: str = "dim"
    better: str = "#4EBF71"
    worse: str = "#E0605A"
    error: str = "bold #E0605A"
    accent: str = "#FFA62B"
    muted: str = "dim"

    @classmethod
    def from_theme(cls, theme: Any) -> Palette:
        if theme is None:
            return cls()
        ok, warn, bad = theme.success or "#4EBF71", theme.warning or "#FFA62B", theme.error or "#E0605A"
        return cls(production=f"bold {ok}", staging=f"bold {warn}", better=ok, worse=bad, error=f"bold {bad}",
                   accent=theme.accent or warn)


BADGES = {"production": "● production", "staging": "◆ staging", "archived": "○ archived", "none": "  none"}


def _span(text: str, style: str) -> Text:
    """Styled as a span, not as the Text's base style, so a table's cursor row keeps the colour."""
    out = Text()
    out.append(text, style=style)
    return out


def stage_badge(stage: str, palette: Palette, status: str = "ready") -> Text:
    if status == "pending":
        return _span("… pending", "italic")
    if status == "failed":
        return _span("✗ failed", palette.error)
    style = {"production": palette.production, "staging": palette.staging, "archived": palette.archived}.get(stage, "")
    return _span(BADGES.get(stage, stage), style)


def version_ref(number: int | None, stage: str, palette: Palette) -> Text:
    if number is None:
        return Text("-", style=palette.muted)
    style = {"production": palette.production, "staging": palette.staging}.get(stage, "")
    return _span(f"v{number}", style)


def sparkline(values: list[float]) -> str:
    if len(values) < 2:
        return ""
    lo, hi = min(values), max(values)
    if hi == lo:
        return _SPARKS[3] * len(values)
    return "".join(_SPARKS[min(7, int((v - lo) / (hi - lo) * 7.999))] for v in values)


def judged_delta(key: str, d: float | None, palette: Palette, directions: dict[str, str] | None = None) -> Text:
    """A delta coloured by whether it is better (green) or worse (red) for this metric."""
    if d is None:
        return Text("")
    if d == 0:
        return Text("±0", style=palette.muted)
    better = (d > 0) == (metric_direction(key, directions) == "higher")
    return _span(delta(d), palette.better if better else palette.worse)


def source_label(source: str | None) -> str:
    if not source:
        return "-"
    return "drop" if source.startswith("drop:") else source


# -- joining styled pieces ----------------------------------------------------------------------
#
# A renderer that draws each styled run on its own (the SVG export, one <text> per run, as
# rsvg-convert draws the README's screenshots) drops the blanks a run starts with, so a
# separator that begins a run vanishes: `fraud-detector` + `  14 versions` read
# `fraud-detector14 versions`. Every line built from styled pieces goes through `joined`
# (or `anchored`), which hands such leading blanks to the run before them.

SEP = " · "  # between facts of one kind
GAP = "  "  # between a name and what follows it

_BLANKS = " \u00a0"


def _runs(text: Text) -> list[tuple[int, int, tuple[Any, ...]]]:
    """(start, end, styles) of each stretch of ``text`` that one set of spans covers."""
    n = len(text.plain)
    if not n:
        return []
    cuts = sorted({0, n} | {max(0, min(n, s.start)) for s in text.spans} | {max(0, min(n, s.end)) for s in text.spans})
    runs: list[tuple[int, int, tuple[Any, ...]]] = []
    for start, end in zip(cuts, cuts[1:]):
        if start == end:
            continue
        key = tuple(s.style for s in text.spans if s.start <= start and s.end >= end)
        if runs and runs[-1][2] == key:
            runs[-1] = (runs[-1][0], end, key)
        else:
            runs.append((start, end, key))
    return runs


def anchored(text: Text) -> Text:
    """``text`` with no styled run starting with blanks before its words: such blanks take
    the style of the run before them (the same on screen, and kept by every renderer)."""
    runs = _runs(text)
    plain = text.plain
    out: list[tuple[int, int, tuple[Any, ...]]] = []
    for start, end, key in runs:
        chunk = plain[start:end]
        lead = len(chunk) - len(chunk.lstrip(_BLANKS))
        if out and 0 < lead < len(chunk):
            prev_start, _, prev_key = out[-1]
            out[-1] = (prev_start, start + lead, prev_key)
            start += lead
        if out and out[-1][2] == key:
            out[-1] = (out[-1][0], end, key)
        else:
            out.append((start, end, key))
    fixed = Text(plain, style=text.style, justify=text.justify, overflow=text.overflow, no_wrap=text.no_wrap,
                 end=text.end)
    for start, end, key in out:
        for style in key:
            fixed.stylize(style, start, end)
    return fixed


def joined(*pieces: Any, sep: str = SEP) -> Text:
    """The one way styled pieces are joined into a line: ``sep`` between the pieces that are
    there (None and empty pieces are skipped), each piece a str, a Text or (text, style)."""
    out = Text()
    first = True
    for piece in pieces:
        if piece is None or piece == "" or (isinstance(piece, Text) and not piece.plain):
            continue
        if not first:
            out.append(sep)
        first = False
        if isinstance(piece, tuple):
            out.append(piece[0], style=piece[1])
        elif isinstance(piece, Text):
            out.append_text(piece)
        else:
            out.append(str(piece))
    return anchored(out)


def labelled(label: str, value: Any, label_style: str = "", value_style: str = "") -> Text:
    """``label value`` as one piece: 'production v12', 'auc 0.935'."""
    out = Text()
    out.append(label, style=label_style)
    out.append(" ")
    if isinstance(value, Text):
        out.append_text(value)
    else:
        out.append(str(value), style=value_style)
    return out
