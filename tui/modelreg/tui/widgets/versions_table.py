"""The versions table: loaded a page at a time, rows updated in place as events arrive.

Beside each version's stage badge, the aliases pointing at it (``@champion``); in a narrow
column after the number, a marker for versions whose files are unsafe to load (``!``, the
sniffers' ``unsafe`` fact) with a second cell kept for signed versions. The page summaries do
not carry facts, so the table asks the registry once per model (and again when a version
changes) for the model's aliases and its unsafe versions, in a worker.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from .formatting import Palette, number, size, source_label, stage_badge

PAGE = 200
PREFETCH = 60  # load the next page when the cursor is this close to the last loaded row
FIXED_WIDTH = 50  # mark, v, stage, created, source and size columns with their padding
FLAGS_WIDTH = 4  # the flags column with its padding, shown while some version of the model is flagged
STAGE_WIDTH = 12  # the widest badge, "● production"
ALIAS_ROOM = 20  # at most this many cells beside the badge for aliases (longer ones are cut with …)
UNSAFE_LIMIT = 1000  # unsafe versions asked for per model (one search page)
SIDEBAR_WIDTH = 24  # the model screen's sidebar, shown from the "-wide" breakpoint on


def rank_metric_keys(items: list[dict[str, Any]]) -> list[str]:
    """Metric keys by how many versions have them (then by name): the column candidates."""
    counts: Counter[str] = Counter()
    for item in items:
        counts.update((item.get("metrics") or {}).keys())
    return sorted(counts, key=lambda k: (-counts[k], k))


def alias_labels(aliases: dict[str, int]) -> dict[int, str]:
    """``{alias: version}`` → ``{version: "@a @b"}`` (aliases by name)."""
    out: dict[int, list[str]] = {}
    for alias in sorted(aliases):
        out.setdefault(int(aliases[alias]), []).append(f"@{alias}")
    return {n: " ".join(names) for n, names in out.items()}


def alias_room(aliases: dict[str, int]) -> int:
    """Cells the stage column needs beside the badge for these aliases: 0 when there are none."""
    labels = alias_labels(aliases).values()
    return min(ALIAS_ROOM, 1 + max(len(label) for label in labels)) if labels else 0


def fit_metric_keys(ranked: list[str], width: int, extra: int = 0) -> tuple[list[str], int]:
    """As many ranked keys as fit in a table ``width`` cells wide (about 10 cells each), and
    the length their headers are shortened to: a pure function of the data and the width.
    ``extra``: cells the fixed columns take beyond ``FIXED_WIDTH`` (aliases, flags)."""
    room = max(0, width - FIXED_WIDTH - extra)
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
        self.model_name: str | None = None  # whose aliases and unsafe versions are loaded
        self.aliases: dict[str, int] = {}
        self.unsafe: set[int] = set()
        self.layout_room = 0  # the alias room the columns were chosen for
        self.layout_flags = False  # whether they have the flags column

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

    def _wants_flags(self) -> bool:
        """A flags column while the model has an unsafe version (or a shown row is flagged)."""
        return bool(self.unsafe) or any(self._flagged(s) for s in self.summaries.values())

    def _layout(self, width: int) -> tuple[tuple[list[str], int], int, bool]:
        room, flags = alias_room(self.aliases), self._wants_flags()
        return fit_metric_keys(self.ranked_keys, width, room + (FLAGS_WIDTH if flags else 0)), room, flags

    def _width(self) -> int:
        if self.size.width:
            return self.size.width
        screen = self.app.size.width
        return screen - SIDEBAR_WIDTH if screen >= 120 else screen

    def _add_columns(self, width: int) -> None:
        self.layout_width = width
        (self.metric_keys, limit), self.layout_room, self.layout_flags = self._layout(width)
        self.add_column(" ", key="mark", width=1)
        self.add_column("v", key="v")
        if self.layout_flags:
            self.add_column(" ", key="flags", width=2)
        self.add_column("stage", key="stage", width=STAGE_WIDTH + self.layout_room)
        self.add_column("created", key="created")
        self.add_column("source", key="source")
        for key in self.metric_keys:
            self.add_column(_short_key(key, limit), key=f"m:{key}")
        self.add_column("size", key="size")

    def on_resize(self, event: Any) -> None:
        width = event.size.width
        if not width or width == self.layout_width:
            return
        if self._layout(width) == self._layout(self.layout_width):
            self.layout_width = width
            return
        self._rebuild(width)

    def _rebuild(self, width: int) -> None:
        """Same rows, other columns: rebuild in the current order and keep the cursor's row."""
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
            *([self.flags(s)] if self.layout_flags else []),
            self.stage_cell(s),
            self.clock.day(s.get("created_at")),
            source_label(s.get("source")),
            *[Text(number(metrics.get(k)), justify="right") if k in metrics else Text("-", style="dim", justify="right")
              for k in self.metric_keys],
            Text(size(s.get("total_size")) if s.get("status") == "ready" else "-", justify="right"),
        ]

    def is_unsafe(self, s: dict[str, Any]) -> bool:
        """Flagged unsafe to load: by the model's search (pages) or the facts a detail carries."""
        facts = s.get("facts")
        if isinstance(facts, dict) and "unsafe" in facts:
            return bool(facts["unsafe"])
        return bool(s.get("unsafe")) or s["version"] in self.unsafe

    def _flagged(self, s: dict[str, Any]) -> bool:
        facts = s.get("facts") if isinstance(s.get("facts"), dict) else {}
        return self.is_unsafe(s) or bool(s.get("signed") or facts.get("signed"))

    def flags(self, s: dict[str, Any]) -> Text:
        """Two cells: ``!`` unsafe to load; the second kept for signed versions (``✓`` if a
        summary or its facts ever say ``signed``)."""
        out = Text()
        out.append("!" if self.is_unsafe(s) else " ", style=self.palette.error)
        facts = s.get("facts") if isinstance(s.get("facts"), dict) else {}
        out.append("✓" if s.get("signed") or facts.get("signed") else " ", style=self.palette.better)
        return out

    def stage_cell(self, s: dict[str, Any]) -> Text:
        """The stage badge (or pending / failed), then the aliases pointing at the version."""
        badge = stage_badge(s.get("stage", "none"), self.palette, s.get("status", "ready"))
        label = alias_labels(self.aliases).get(s["version"])
        if not label:
            return badge
        badge.pad_right(STAGE_WIDTH - badge.cell_len + 1)
        room = max(1, self.layout_room - 1)
        badge.append(label if len(label) <= room else label[: room - 1] + "…", style=self.palette.accent)
        return badge

    # -- aliases and unsafe versions, asked of the registry ----------------------------------

    def _model_of(self, items: list[dict[str, Any]]) -> None:
        """The model the rows belong to; a new one (first page, rename) loads its annotations."""
        model = next((s.get("model") for s in items if s.get("model")), None)
        if model and model != self.model_name:
            self.model_name = model
            self.refresh_annotations()

    def refresh_annotations(self) -> None:
        """Ask again for the model's aliases and unsafe versions (an alias moved or went)."""
        if self.model_name and getattr(self.app, "client", None) is not None:
            self._load_annotations(self.model_name)

    @work(exclusive=True, exit_on_error=False, group="versions-annotations")
    async def _load_annotations(self, model: str) -> None:
        client = self.app.client
        try:
            aliases = (await client.aliases(model)).get("aliases") or {}
        except Exception:  # noqa: BLE001 - annotations are extras; the rows stand without them
            aliases = None
        glob = "".join(f"[{c}]" if c in "*?[]" else c for c in model)
        try:
            page = await client.search(name=glob, facts=["unsafe=true"], order="-created", limit=UNSAFE_LIMIT)
            unsafe = {int(i["version"]) for i in page.get("items", [])
                      if (i.get("model") or "").lower() == model.lower()}
        except Exception:  # noqa: BLE001
            unsafe = None
        if model == self.model_name:
            self.set_annotations(aliases, unsafe)

    def set_annotations(self, aliases: dict[str, int] | None = None, unsafe: set[int] | None = None) -> None:
        """Show these aliases (``{alias: version}``) and unsafe versions; None keeps what is shown."""
        if aliases is not None:
            self.aliases = {str(k): int(v) for k, v in aliases.items()}
        if unsafe is not None:
            self.unsafe = set(unsafe)
        if not self.columns:
            return
        if self._relayout():
            return
        for n, s in self.summaries.items():
            if self.layout_flags:
                self.update_cell(str(n), "flags", self.flags(s))
            self.update_cell(str(n), "stage", self.stage_cell(s))

    def _relayout(self) -> bool:
        """Rebuild the columns if the aliases' room or the flags column changed; True if so."""
        if (alias_room(self.aliases), self._wants_flags()) == (self.layout_room, self.layout_flags):
            return False
        self._rebuild(self.layout_width or self._width())
        return True

    def append_page(self, items: list[dict[str, Any]]) -> None:
        self._model_of(items)
        for s in items:
            n = s["version"]
            if n in self.summaries:
                self.upsert(s)
                continue
            self.summaries[n] = s
            self.add_row(*self.cells(s), key=str(n))

    def upsert(self, s: dict[str, Any]) -> bool:
        """Update a loaded row, or insert a new version above the others; True if it is new.
        An alias may have moved with it (``alias.set`` comes as a change to its version), so the
        model's aliases are asked for again."""
        n = s["version"]
        self.refresh_annotations()
        if n in self.summaries:
            self.summaries[n] = s
            if not self._relayout():
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
        self._relayout()
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
