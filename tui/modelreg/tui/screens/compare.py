"""Marked versions side by side: metrics with deltas coloured by direction, a small chart,
params that differ, artifacts added/removed/changed (by sha256), and safetensors tensors
whose shape or dtype changed. The oldest marked version is the baseline."""

from __future__ import annotations

import asyncio
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Static

from modelreg.shared.names import metric_direction

from ..messages import CompareLoaded
from ..widgets.formatting import judged_delta, number, size
from ..widgets.header import StatusHeader
from .base import RegistryScreen

CHART_WIDTH = 20


def artifact_diff(base: dict[str, Any], other: dict[str, Any]) -> dict[str, str]:
    """path → added | removed | changed | same, comparing manifests by sha256."""
    a = {f["path"]: f["sha256"] for f in base.get("files") or []}
    b = {f["path"]: f["sha256"] for f in other.get("files") or []}
    out = {}
    for path in sorted(a.keys() | b.keys()):
        if path not in a:
            out[path] = "added"
        elif path not in b:
            out[path] = "removed"
        else:
            out[path] = "same" if a[path] == b[path] else "changed"
    return out


def tensors(detail: dict[str, Any]) -> dict[str, tuple[str, tuple[int, ...]]]:
    """'file:tensor' → (dtype, shape) from the safetensors facts of a version."""
    out = {}
    files = (detail.get("facts") or {}).get("files") or {}
    for path, info in files.items():
        if isinstance(info, dict):
            info = info.get("safetensors", info)
            for t in info.get("tensors") or []:
                if isinstance(t, dict) and "name" in t:
                    out[f"{path}:{t['name']}"] = (str(t.get("dtype")), tuple(t.get("shape") or ()))
    return out


class CompareScreen(RegistryScreen):
    BINDINGS = [Binding("q,escape", "back", "back", id="back")]

    def __init__(self, model: str, versions: list[int], directions: dict[str, str]) -> None:
        super().__init__()
        self.model, self.versions, self.directions = model, sorted(versions), directions
        self.details: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield StatusHeader(f"{self.model} · compare v{', v'.join(map(str, self.versions))}")
        with VerticalScroll(id="compare"):
            yield Static(Text("loading…", style="italic"), id="compare-title")
            yield Static("Metrics", classes="section")
            yield DataTable(id="cmp-metrics", cursor_type="row", show_cursor=False)
            yield Static(id="cmp-chart")
            yield Static("Params", classes="section")
            yield DataTable(id="cmp-params", cursor_type="row", show_cursor=False)
            yield Static("Artifacts", classes="section")
            yield DataTable(id="cmp-files", cursor_type="row", show_cursor=False)
            yield Static("Tensors (safetensors)", classes="section", id="tensors-title")
            yield DataTable(id="cmp-tensors", cursor_type="row", show_cursor=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        if self.app.client is not None:
            self.load()

    def reconnected(self, first: bool) -> None:
        if not self.details:
            self.load()

    @work(exclusive=True, exit_on_error=False, group="compare")
    async def load(self) -> None:
        details = await asyncio.gather(*(self.client.version(f"{self.model}@{n}") for n in self.versions))
        self.post_message(CompareLoaded(list(details)))

    def apply_events(self, events: list[dict[str, Any]]) -> None:
        mine = {(e.get("model") or "").lower() for e in events if e.get("version") in self.versions}
        if self.model.lower() in mine and self.details:
            self.load()

    def on_compare_loaded(self, message: CompareLoaded) -> None:
        self.details = message.details
        base = self.details[0]
        self.query_one("#compare-title", Static).update(Text.assemble(
            "baseline ", (f"v{base['version']}", "bold"), " (the oldest marked); deltas are against it, ",
            ("green", self.palette.better), " is better and ", ("red", self.palette.worse),
            " is worse for that metric's direction"))
        self._metrics()
        self._params()
        self._files()
        self._tensors()

    def _columns(self, table: DataTable, first: str, *extra: str) -> None:
        table.clear(columns=True)
        table.add_column(first, key="key")
        for column in extra:
            table.add_column(column, key=column)
        for d in self.details:
            table.add_column(f"v{d['version']}", key=f"v{d['version']}")

    def _metrics(self) -> None:
        table = self.query_one("#cmp-metrics", DataTable)
        self._columns(table, "metric", "better")
        base = self.details[0].get("metrics") or {}
        keys = sorted({k for d in self.details for k in (d.get("metrics") or {})})
        for key in keys:
            cells: list[Any] = [key, "↑ higher" if metric_direction(key, self.directions) == "higher" else "↓ lower"]
            for i, d in enumerate(self.details):
                value = (d.get("metrics") or {}).get(key)
                if value is None:
                    cells.append(Text("-", style="dim"))
                    continue
                cell = Text(number(value), style="bold" if i == 0 else "")
                if i and key in base:
                    cell.append(" ")
                    cell.append_text(judged_delta(key, value - base[key], self.palette, self.directions))
                cells.append(cell)
            table.add_row(*cells)
        if not keys:
            table.add_row(Text("no metrics on these versions", style="dim"), "", *[""] * len(self.details))
        chart = self._chart(keys)
        self.query_one("#cmp-chart", Static).update(chart)
        self.query_one("#cmp-chart", Static).display = bool(chart.plain)

    def _chart(self, keys: list[str]) -> Text:
        """Bars for the first few metrics, scaled between the lowest and highest value.

        Two versions say no more than the deltas do, so the chart starts at three.
        """
        out = Text()
        if len(self.details) < 3:
            return out
        for key in keys[:4]:
            values = [(d["version"], (d.get("metrics") or {}).get(key)) for d in self.details]
            present = [v for _, v in values if isinstance(v, (int, float))]
            if len(present) < 2:
                continue
            lo, hi = min(present), max(present)
            best = hi if metric_direction(key, self.directions) == "higher" else lo
            out.append(f"\n{key}\n", style="bold")
            for version, value in values:
                if not isinstance(value, (int, float)):
                    continue
                frac = 1.0 if hi == lo else 0.15 + 0.85 * (value - lo) / (hi - lo)
                bar = "█" * max(1, round(frac * CHART_WIDTH))
                out.append(f"  v{version:<6}", style=self.palette.muted)
                out.append(bar.ljust(CHART_WIDTH), style=self.palette.better if value == best else self.palette.accent)
                out.append(f" {number(value)}\n")
        return out

    def _params(self) -> None:
        table = self.query_one("#cmp-params", DataTable)
        self._columns(table, "param")
        params = [d.get("params") or {} for d in self.details]
        keys = sorted({k for p in params for k in p})
        same = 0
        for key in keys:
            values = [p.get(key) for p in params]
            if len(set(values)) == 1:
                same += 1
                continue
            table.add_row(key, *[Text(v if v is not None else "-", style="bold" if v != values[0] else "")
                                 for v in values])
        if same or not keys:
            note = f"{same} identical param{'s' if same != 1 else ''}" if keys else "no params"
            table.add_row(Text(note, style="dim"), *[""] * len(self.details))

    def _files(self) -> None:
        table = self.query_one("#cmp-files", DataTable)
        self._columns(table, "path")
        base = self.details[0]
        diffs = [artifact_diff(base, d) for d in self.details]
        sizes = [{f["path"]: f["size"] for f in d.get("files") or []} for d in self.details]
        styles = {"added": self.palette.better, "removed": self.palette.worse, "changed": self.palette.accent,
                  "same": "dim"}
        for path in sorted({p for diff in diffs for p in diff}):
            cells: list[Any] = [path]
            for i, (diff, sz) in enumerate(zip(diffs, sizes)):
                status = diff.get(path, "same")
                if i == 0:
                    cells.append(Text(size(sz[path]) if path in sz else "-", style="" if path in sz else "dim"))
                else:
                    label = status if status != "same" else "="
                    cells.append(Text(f"{label} {size(sz[path])}" if path in sz else label, style=styles[status]))
            table.add_row(*cells)

    def _tensors(self) -> None:
        table = self.query_one("#cmp-tensors", DataTable)
        self._columns(table, "tensor")
        per = [tensors(d) for d in self.details]
        names = sorted({n for t in per for n in t})
        changed = [n for n in names if len({t.get(n) for t in per}) > 1]
        for name in changed[:500]:
            cells: list[Any] = [name]
            for i, t in enumerate(per):
                if name not in t:
                    cells.append(Text("absent", style=self.palette.worse if i else "dim"))
                else:
                    dtype, shape = t[name]
                    style = "" if i == 0 or per[0].get(name) == t[name] else self.palette.accent
                    cells.append(Text(f"{dtype} {list(shape)}", style=style))
            table.add_row(*cells)
        if names and not changed:
            table.add_row(Text(f"all {len(names)} tensors have the same shape and dtype", style="dim"),
                          *[""] * len(self.details))
        self.query_one("#tensors-title").display = bool(names)
        table.display = bool(names)

    def action_back(self) -> None:
        self.app.pop_screen()
