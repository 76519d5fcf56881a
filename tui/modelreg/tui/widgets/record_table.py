"""A table of records (history rows, events) whose last column is free text: a reason, an
event's summary. Every column has a fixed width and the text column gets what is left of the
table's width, cut with "…", so the table never scrolls sideways (no horizontal scrollbar,
whose partial-block thumb read as a stray "▊"); `enter` shows a record in full."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

MIN_TEXT = 24  # narrower than this and the text column would say nothing; the table then scrolls


def cut(value: Any) -> Text:
    """A single-line cell that ends in "…" when it does not fit its column."""
    text = value.copy() if isinstance(value, Text) else Text(str(value))
    text.no_wrap, text.overflow, text.end = True, "ellipsis", ""
    return text


class RecordTable(DataTable):
    # DataTable's own enter binding is hidden; this one says what enter does here (the screen
    # shows the record on RowSelected).
    BINDINGS = [Binding("enter", "select_cursor", "full record", key_display="⏎",
                        tooltip="a history row or event in full")]

    def __init__(self, columns: list[tuple[str, int]], text_column: str, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", cursor_foreground_priority="renderable", **kwargs)
        self.fixed = columns
        self.text_column = text_column
        self.records: dict[str, dict[str, Any]] = {}
        self._cells: dict[str, list[Any]] = {}
        self.text_width = 0

    def on_mount(self) -> None:
        self._add_columns(self._text_width(0))

    def _text_width(self, width: int) -> int:
        width = width or self.size.width or self.app.size.width
        used = sum(w + 2 * self.cell_padding for _, w in self.fixed) + 2 * self.cell_padding + 1  # + scrollbar
        return max(MIN_TEXT, width - used)

    def _add_columns(self, text_width: int) -> None:
        self.text_width = text_width
        for label, width in self.fixed:
            self.add_column(label, key=label, width=width)
        self.add_column(self.text_column, key=self.text_column, width=text_width)

    def add_record(self, key: str, record: dict[str, Any], cells: list[Any], text: Any) -> None:
        """A row for ``record``: the fixed columns' ``cells``, then ``text``."""
        self.records[key] = record
        self._cells[key] = [cut(c) for c in cells] + [cut(text)]
        self.add_row(*self._cells[key], key=key)

    def remove_record(self, key: str) -> None:
        self.records.pop(key, None)
        self._cells.pop(key, None)
        self.remove_row(key)

    def clear_records(self) -> None:
        self.records.clear()
        self._cells.clear()
        self.clear()

    def current_record(self) -> dict[str, Any] | None:
        if self.row_count == 0:
            return None
        try:
            return self.records.get(str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value))
        except Exception:  # noqa: BLE001 - no cursor in an empty or changing table
            return None

    def on_resize(self, event: Any) -> None:
        width = self._text_width(event.size.width)
        if not event.size.width or width == self.text_width:
            return
        # Same rows, a wider or narrower text column: rebuild in the current order, keep the cursor.
        row = self.cursor_row
        order = [str(r.key.value) for r in self.ordered_rows]
        self.clear(columns=True)
        self._add_columns(width)
        for key in order:
            self.add_row(*self._cells[key], key=key)
        if self.row_count:
            self.move_cursor(row=min(row, self.row_count - 1), animate=False)
