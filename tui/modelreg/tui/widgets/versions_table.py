"""The versions table: loaded a page at a time, rows updated in place as events arrive."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from .formatting import Palette, number, size, source_label, stage_badge

PAGE = 200
PREFETCH = 60  # load the next page when the cursor is this close to the last loaded row
FIXED_WIDTH = 50  # mark, v, stage, created, source and size columns with their padding
SIDEBAR_WIDTH = 24  # the model screen's sidebar, shown from the "-wide" breakpoint on


def rank_metric_keys(items: list[dict[str, Any]]) -> list[str]:
    """Metric keys by how many versions have them (then by name): the column candidates."""
    counts: Counter[str] = Counter()
    for item in items:
        counts.update((item.get("metrics") or {}).keys())
    return sorted(counts, key=lambda k: (-counts[k], k))


def fit_metric_keys(ranked: list[str], width: int) -> tuple[list[str], int]:
    """As many ranked keys as fit in a table ``width`` cells wide (about 10 cells each), and
    the length their headers are shortened to: a pure function of the data and the width."""
    room = max(0, width - FIXED_WIDTH)
    keys = ranked[: room // 10]
    limit = 16 if keys and room // len(keys) >= 18 else 10
    return keys, limit


class VersionsTable(DataTable):
    """Rows keyed by version number; knows which page comes next and which rows are marked."""

    BINDINGS = [
        Binding("end", "scroll_bottom", "last row", show=False),
        Binding("home", "scroll_top", "first row", show=False),
    ]

    class NeedMore(Message):
        """Scrolled (by wheel or scrollbar) near the last loaded row."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", cursor_foreground_priority="renderable", **kwargs)
        self.summaries: dict[int, dict[str, Any]] = {}
        self.marked: set[int] = set()
        self.ranked_keys: list[str] = []
        self.metric_keys: list[str] = []
        self.layout_width = 0  # the width the columns were chosen for
        self.next_cursor: str | None = None
        self.total = 0
        self.loading = False
        self.palette = Palette()
        self.clock: Any = None

    def reset(self, ranked_keys: list[str]) -> None:
        """Start over with these metric keys as column candidates (see ``rank_metric_keys``).

        Which of them get a column depends only on them and on the table's width: when the
        width is not known yet (the first page can arrive before the first layout), it is
        estimated from the screen, and the columns are chosen again when the real width is
        known or changes. A page or event arriving later never changes them.
        """
        self.clear(columns=True)
        self.summaries.clear()
        self.ranked_keys = list(ranked_keys)
        self._add_columns(self._width())

    def _width(self) -> int:
        if self.size.width:
            return self.size.width
        screen = self.app.size.width
        return screen - SIDEBAR_WIDTH if screen >= 120 else screen

    def _add_columns(self, width: int) -> None:
        self.layout_width = width
        self.metric_keys, limit = fit_metric_keys(self.ranked_keys, width)
        self.add_column(" ", key="mark", width=1)
        self.add_column("v", key="v")
        self.add_column("stage", key="stage", width=12)
        self.add_column("created", key="created")
        self.add_column("source", key="source")
        for key in self.metric_keys:
            self.add_column(_short_key(key, limit), key=f"m:{key}")
        self.add_column("size", key="size")

    def on_resize(self, event: Any) -> None:
        width = event.size.width
        if not width or width == self.layout_width:
            return
        if fit_metric_keys(self.ranked_keys, width) == fit_metric_keys(self.ranked_keys, self.layout_width):
            self.layout_width = width
            return
        # Same rows, other columns: rebuild in the current order and keep the cursor's row.
        current = self.current_version()
        order = [int(row.key.value) for row in self.ordered_rows]
        self.clear(columns=True)
        self._add_columns(width)
        for n in order:
            self.add_row(*self.cells(self.summaries[n]), key=str(n))
        if current is not None:
            self.move_cursor(row=self.get_row_index(str(current)), animate=False)

    def cells(self, s: dict[str, Any]) -> list[Any]:
        n = s["version"]
        metrics = s.get("metrics") or {}
        return [
            Text("✓" if n in self.marked else " ", style=self.palette.accent),
            Text(str(n), style="bold", justify="right"),
            stage_badge(s.get("stage", "none"), self.palette, s.get("status", "ready")),
            self.clock.day(s.get("created_at")),
            source_label(s.get("source")),
            *[Text(number(metrics.get(k)), justify="right") if k in metrics else Text("-", style="dim", justify="right")
              for k in self.metric_keys],
            Text(size(s.get("total_size")) if s.get("status") == "ready" else "-", justify="right"),
        ]

    def append_page(self, items: list[dict[str, Any]]) -> None:
        for s in items:
            n = s["version"]
            if n in self.summaries:
                self.upsert(s)
                continue
            self.summaries[n] = s
            self.add_row(*self.cells(s), key=str(n))

    def upsert(self, s: dict[str, Any]) -> bool:
        """Update a loaded row, or insert a new version above the others; True if it is new."""
        n = s["version"]
        if n in self.summaries:
            self.summaries[n] = s
            for column, value in zip(self.columns, self.cells(s)):
                self.update_cell(str(n), column, value)
            return False
        if self.summaries and n < min(self.summaries) and self.next_cursor:
            return False  # belongs to a page not loaded yet; it will come with that page
        current = self.current_version()
        self.summaries[n] = s
        self.add_row(*self.cells(s), key=str(n))
        self.sort("v", key=lambda cell: int(cell.plain), reverse=True)
        self.total += 1
        if current is not None:
            self.move_cursor(row=self.get_row_index(str(current)), animate=False)
        return True

    def remove_version(self, n: int) -> bool:
        """Drop a deleted version's row; True if it was shown."""
        self.marked.discard(n)
        if n not in self.summaries:
            return False
        del self.summaries[n]
        self.remove_row(str(n))
        self.total = max(0, self.total - 1)
        return True

    def toggle_mark(self, n: int) -> None:
        self.marked ^= {n}
        if n in self.summaries:
            self.update_cell(str(n), "mark", self.cells(self.summaries[n])[0])

    def current_version(self) -> int | None:
        if self.row_count == 0:
            return None
        try:
            return int(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)
        except Exception:  # noqa: BLE001 - no cursor in an empty or changing table
            return None

    def current(self) -> dict[str, Any] | None:
        n = self.current_version()
        return self.summaries.get(n) if n is not None else None

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self.next_cursor and not self.loading and new_value >= self.max_scroll_y - PREFETCH:
            self.post_message(self.NeedMore())

    def needs_more(self) -> bool:
        return bool(self.next_cursor) and not self.loading and self.cursor_row >= self.row_count - PREFETCH


def _short_key(key: str, limit: int) -> str:
    return key if len(key) <= limit else key[: limit - 1] + "…"
