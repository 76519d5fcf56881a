"""The detail pane under the versions table: one tab per aspect of the highlighted version."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Markdown, Static, TabbedContent, TabPane

from modelreg.shared.errors import ModelregError
from modelreg.shared.names import METRIC_SOURCES

from .formatting import (GAP, Clock, Palette, anchored, joined, judged_delta, labelled, number, plural, size,
                         source_label, sparkline, stage_badge)

TABS = ("overview", "card", "metrics", "params", "artifacts", "lineage", "history")


class VersionDetail(Vertical):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.detail: dict[str, Any] | None = None
        self.card_ref: str | None = None
        self.card_text = ""  # the Markdown source shown in the card tab
        self._view: tuple[Any, ...] = (None, [], {}, Clock(), Palette())
        self._drawn: set[str] = set()
        self._is_prod = False

    @property
    def active(self) -> str:
        return self.query_one(TabbedContent).active

    def compose(self) -> ComposeResult:
        with TabbedContent(initial="overview", id="detail-tabs"):
            with TabPane("Overview", id="overview"):
                yield VerticalScroll(Static(id="overview-text"), Static(id="watchdog-text"))
            with TabPane("Model card", id="card"):
                yield VerticalScroll(Markdown(id="card-md"))
            with TabPane("Metrics", id="metrics"):
                yield _table("metrics-table", *METRIC_COLUMNS)
            with TabPane("Params", id="params"):
                yield _table("params-table", "param", "value")
            with TabPane("Artifacts", id="artifacts"):
                with VerticalScroll():
                    yield _table("files-table", "path", "size", "sha256")
                    yield Static(id="facts-text")
            with TabPane("Lineage", id="lineage"):
                yield VerticalScroll(Static(id="lineage-text"))
            with TabPane("History", id="history"):
                yield _table("history-table", "when", "from → to", "kind", "actor", "reason", "gates")

    def clear_detail(self, message: str) -> None:
        self.detail = None
        self.query_one("#overview-text", Static).update(Text(message, style="dim"))
        for table in self.query(DataTable):
            table.clear()

    def show(self, detail: dict[str, Any], production: dict[str, Any] | None, history: list[dict[str, Any]],
             directions: dict[str, str], clock: Clock, palette: Palette) -> None:
        """Show a version; only the visible tab is drawn now, the others when they are opened
        (scrolling through versions must not rebuild seven panes per row)."""
        self.detail = detail
        is_prod = (production or {}).get("version") == detail["version"]
        self._is_prod = is_prod
        self._view = (None if is_prod else production, history, directions, clock, palette)
        self._drawn: set[str] = set()
        self.draw(self.active)
        self.query_one("#watchdog-text", Static).display = False  # takes no row until there is something to say
        self.run_worker(self._load_watchdogs(detail, clock, palette), exclusive=True, group="watchdogs",
                        exit_on_error=False)

    async def _load_watchdogs(self, detail: dict[str, Any], clock: Clock, palette: Palette) -> None:
        """The model's watchdogs, as they judge this version (issue 12): shown under the overview."""
        try:
            text = watchdog_text(detail, await self.app.require_client().watchdogs(detail["model"]), clock, palette)
        except ModelregError as exc:  # the model renamed or deleted meanwhile, the daemon gone: said, not raised
            text = Text(f"watchdogs: {exc.message}", style=palette.muted)
        if self.detail is detail:  # not a version shown since
            line = self.query_one("#watchdog-text", Static)
            line.update(text)
            line.display = bool(text.plain)

    def show_history(self, history: list[dict[str, Any]], clock: Clock, palette: Palette) -> None:
        if self.detail is None:
            return
        production, _, directions, _, _ = self._view
        self._view = (production, history, directions, clock, palette)
        self._drawn.discard("history")
        if self.active == "history":
            self.draw("history")

    def draw(self, pane: str) -> None:
        if self.detail is None or pane in self._drawn:
            return
        self._drawn.add(pane)
        detail = self.detail
        production, history, directions, clock, palette = self._view
        if pane == "overview":
            self.query_one("#overview-text", Static).update(overview(detail, production, directions, clock, palette))
        elif pane == "metrics":
            self._metrics(detail, production, directions, palette)
        elif pane == "params":
            params = self.query_one("#params-table", DataTable)
            params.clear()
            for key, value in sorted((detail.get("params") or {}).items()):
                params.add_row(key, value)
            run = (detail.get("lineage") or {}).get("run") or {}
            for key, value in sorted((run.get("hyperparameters") or {}).items()):
                params.add_row(Text(f"run · {key}", style=palette.muted), value)
            if params.row_count == 0:
                params.add_row(Text("no params", style="dim"), "")
        elif pane == "artifacts":
            files = self.query_one("#files-table", DataTable)
            files.clear()
            for f in detail.get("files") or []:
                files.add_row(f["path"], Text(size(f["size"]), justify="right"),
                              Text(f["sha256"][:16], style=palette.muted))
            self.query_one("#facts-text", Static).update(facts_text(detail.get("facts") or {}, palette))
        elif pane == "lineage":
            self.query_one("#lineage-text", Static).update(lineage_text(detail, clock, palette))
        elif pane == "history":
            table = self.query_one("#history-table", DataTable)
            table.clear()
            mine = [h for h in history if h.get("version") == detail["version"]]
            for h in reversed(mine):
                table.add_row(*history_cells(h, clock, palette))
            if not mine:
                table.add_row(Text("no stage changes yet", style="dim"), "", "", "", "", "")

    def _metrics(self, detail: dict[str, Any], production: dict[str, Any] | None, directions: dict[str, str],
                 palette: Palette) -> None:
        """One row per metric: its latest value per source side by side, how it compares with
        production (the overview's rule: judged_delta with the model's directions), its trend."""
        table = self.query_one("#metrics-table", DataTable)
        rows = metric_rows(detail, production, self._is_prod, directions, palette)
        columns = [str(c.label) for c in table.columns.values()]
        if columns != rows[0]:
            table.clear(columns=True)
            for column in rows[0]:
                table.add_column(column, key=column)
        else:
            table.clear()
        for row in rows[1:]:
            table.add_row(*row)

    def show_card(self, ref: str, text: str | None, error: str | None = None) -> None:
        self.card_ref = ref
        if error:
            text = f"*{ref}: the model card cannot be shown.*\n\n{error}"
        elif text is None:
            text = f"*{ref} has no model card.*\n\nA `README.md` among the version's files is shown here."
        self.card_text = _strip_front_matter(text)
        self.query_one("#card-md", Markdown).update(self.card_text)


METRIC_COLUMNS = ("metric", "offline", "vs prod", "trend", "n", "dataset")


def metric_rows(detail: dict[str, Any], production: dict[str, Any] | None, is_prod: bool,
                directions: dict[str, str], palette: Palette) -> list[list[Any]]:
    """The metrics tab as rows, the first the column labels: metric, one column per source
    recorded (offline, online, monitoring, in that order, then any other), vs prod, trend
    (of the source with the most records), n, dataset (of the latest record)."""
    records: dict[str, list[dict[str, Any]]] = {}
    for r in detail.get("metric_records") or []:
        records.setdefault(r["key"], []).append(r)
    seen = {r.get("source") or "offline" for recs in records.values() for r in recs}
    sources = [s for s in METRIC_SOURCES if s in seen] + sorted(seen - set(METRIC_SOURCES))
    sources = sources or ["offline"]
    prod_metrics = (production or {}).get("metrics") or {}
    vs = f"vs prod v{production['version']}" if production and not is_prod else "vs prod"
    rows: list[list[Any]] = [["metric", *sources, vs, "trend", "n", "dataset"]]
    keys = sorted(set(detail.get("metrics") or {}) | set(records))
    for key in keys:
        recs = records.get(key, [])
        latest: dict[str, Any] = {}
        counts: dict[str, int] = {}
        for r in recs:
            src = r.get("source") or "offline"
            latest[src] = r["value"]
            counts[src] = counts.get(src, 0) + 1
        value = (detail.get("metrics") or {}).get(key)
        if not recs and value is not None:
            latest["offline"] = value
        cells: list[Any] = [key]
        cells += [Text(number(latest[s])) if s in latest else Text("-", style=palette.muted) for s in sources]
        if is_prod:
            cells.append(Text("● production", style=palette.production))
        elif production is None:
            cells.append(Text("no production", style=palette.muted))
        else:
            d = prod_delta(key, value, prod_metrics)
            cells.append(judged_delta(key, d, palette, directions) if d is not None
                         else Text("-", style=palette.muted))
        trend_source = max(counts, key=lambda s: counts[s]) if counts else None
        trend = [r["value"] for r in recs if (r.get("source") or "offline") == trend_source
                 and isinstance(r.get("value"), (int, float))]
        cells.append(Text(sparkline(trend), style=palette.accent))
        cells.append(str(len(recs)))
        cells.append((recs[-1] if recs else {}).get("dataset") or "-")
        rows.append(cells)
    if not keys:
        rows.append([Text("no metrics recorded", style="dim"), *[""] * (len(rows[0]) - 1)])
    return rows


def _strip_front_matter(text: str) -> str:
    """A Hugging Face card starts with YAML metadata between ``---`` lines: not prose to show
    (its license, datasets and base model are in the overview's format facts)."""
    lines = text.splitlines(keepends=True)
    if lines and lines[0].strip() == "---":
        for i, line in enumerate(lines[1:], start=1):
            if line.strip() == "---":
                return "".join(lines[i + 1:]).lstrip("\n")
    return text


def _table(table_id: str, *columns: str) -> DataTable:
    table: DataTable = DataTable(id=table_id, cursor_type="row", show_cursor=False, zebra_stripes=False)
    for column in columns:
        table.add_column(column, key=column)
    return table


def overview(d: dict[str, Any], production: dict[str, Any] | None, directions: dict[str, str], clock: Clock,
             palette: Palette) -> Text:
    lines: list[Text] = []
    stage = d.get("stage", "none")
    badge = stage_badge(stage, palette, d.get("status", "ready"))
    if stage in ("staging", "production") and d.get("stage_changed_at"):
        badge = joined(badge, f"for {clock.since(d['stage_changed_at'])}", sep=" ")
    failure = d.get("status_message") if d.get("status") == "failed" else None
    lines.append(joined((f"v{d['version']}", "bold"), badge, (failure, palette.worse) if failure else None, sep=GAP))
    lines.append(Text(f"created {clock.date(d.get('created_at'))} ({clock.ago(d.get('created_at'))}) by "
                      f"{d.get('created_by') or '-'} · source {source_label(d.get('source'))} · "
                      f"{plural(d.get('file_count', 0), 'file')} · {size(d.get('total_size'))}"))
    lin = d.get("lineage") or {}
    bits = []
    for ds in lin.get("datasets") or []:
        bits.append(f"{ds.get('relation', 'trained_on').replace('_', ' ')} {ds['dataset']}")
    if run := lin.get("run"):
        bits.append(f"run {run['id']}")
    for parent in lin.get("parents") or []:
        bits.append(f"derived from {parent['ref']}")
    if bits:
        lines.append(Text(" · ".join(bits)))
    metrics = d.get("metrics") or {}
    if metrics:
        prod = (production or {}).get("metrics") or {}
        pieces = []
        for key, value in sorted(metrics.items()):
            piece = labelled(key, Text(number(value), style="bold"), label_style=palette.muted)
            d_prod = prod_delta(key, value, prod)
            if d_prod is not None:
                piece = joined(piece, Text.assemble("(", judged_delta(key, d_prod, palette, directions),
                                                    f" vs v{production['version']})"), sep=" ")
            pieces.append(piece)
        lines.append(joined(*pieces))
    if d.get("description"):
        lines.append(Text(d["description"], style="italic"))
    if tags := d.get("tags"):
        lines.append(Text("tags " + "  ".join(f"{k}={v}" for k, v in sorted(tags.items())), style=palette.muted))
    facts = d.get("facts") or {}
    if facts:
        lines.append(Text(_facts_line(facts), style=palette.muted))
    if sig := d.get("signature"):  # issue 12: the check of the bundle given with the version
        lines.append(Text(sig["message"], style=palette.better if sig["status"] == "signed" else palette.worse))
    if d.get("content_digest"):
        lines.append(Text(f"digest {d['content_digest'][:16]}", style=palette.muted))
    return Text("\n").join(lines)


def watchdog_text(d: dict[str, Any], watchdogs: list[dict[str, Any]], clock: Clock, palette: Palette) -> Text:
    """One line per watchdog that judges this version: its state on the production version (ok
    with the last values, tripped, cooling down), or a trip of this version when it is not."""
    lines: list[Text] = []
    for w in watchdogs:
        trip = next((t for t in w.get("trips") or [] if t.get("version") == d["version"]), None)
        head = Text.assemble((f"watchdog {w['id']} ", palette.muted), w["rule"], " · ")
        if d.get("stage") == "production" and w.get("production") == d["version"] and w["state"] != "tripped":
            values = ", ".join(number(v) for v in w.get("values") or [])
            if w["state"] == "cooling down":
                head.append(f"cooling down until {clock.date(w.get('cooldown_until'))}", style=palette.accent)
            else:
                head.append("ok", style=palette.better)
            head.append(f" · last {values}" if values else " · no monitoring records yet", style=palette.muted)
        elif trip is not None:
            head.append(f"tripped {clock.ago(trip.get('at'))}", style=palette.worse)
            head.append(f" (observed {', '.join(number(v) for v in trip.get('observed') or [])}) · ")
            head.append(f"rolled back to v{trip['to']}" if trip.get("rolled_back")
                        else "rolling back" if trip.get("running") else f"no rollback: {trip.get('why')}")
        else:
            continue
        lines.append(head)
    return Text("\n").join(lines)


def prod_delta(key: str, value: Any, prod: dict[str, Any]) -> float | None:
    """How far ``value`` is from production's value of ``key`` (None: nothing to compare)."""
    other = prod.get(key)
    if isinstance(value, bool) or isinstance(other, bool):
        return None
    if isinstance(value, (int, float)) and isinstance(other, (int, float)):
        return value - other
    return None


def _count(n: Any) -> str:
    if not isinstance(n, (int, float)):
        return str(n)
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}".replace(".0" + unit, unit)
    return str(int(n))


def _facts_line(facts: dict[str, Any]) -> str:
    """'format safetensors · 1.2M parameters · 14 tensors · F16' from the sniffed facts."""
    bits = [str(facts["format"])] if facts.get("format") else []
    if facts.get("parameter_count"):
        bits.append(f"{_count(facts['parameter_count'])} parameters")
    tensors, dtypes, unsafe = 0, set(), False
    for info in (facts.get("files") or {}).values():
        if isinstance(info, dict):
            tensors += info.get("tensor_count") or 0
            dtypes |= set(info.get("dtypes") or ())
            unsafe = unsafe or bool(info.get("unsafe"))
    if tensors:
        bits.append(plural(tensors, "tensor"))
    if dtypes:
        bits.append("/".join(sorted(dtypes)))
    hf = facts.get("huggingface") or {}
    for key in ("architecture", "architectures", "model_type", "license", "base_model"):
        if isinstance(hf, dict) and hf.get(key):
            value = hf[key]
            bits.append(f"{key} {', '.join(map(str, value)) if isinstance(value, list) else value}")
    if unsafe:
        bits.append("UNSAFE TO LOAD (pickle reaches beyond tensors)")
    return "format " + " · ".join(bits) if bits else ""


def _fact_value(value: Any) -> str:
    if isinstance(value, list):
        shown = ", ".join(str(v) for v in value[:5])
        return shown + (f" … ({len(value)} in all)" if len(value) > 5 else "")
    if isinstance(value, dict):
        shown = ", ".join(f"{k}={v}" for k, v in list(value.items())[:6])
        return shown + (" …" if len(value) > 6 else "")
    text = str(value)
    return text[:160] + "…" if len(text) > 160 else text


def facts_text(facts: dict[str, Any], palette: Palette) -> Text:
    """What the sniffers read from the files (PRODUCT.md §6), per file and per folder format."""
    if not facts:
        return Text("")
    out = Text("\nformat facts", style="bold")
    if line := _facts_line(facts):
        out.append(f"  {line}", style=palette.muted)
    sections = [(f"file {path}", info) for path, info in sorted((facts.get("files") or {}).items())]
    sections += [(key, value) for key, value in sorted(facts.items())
                 if key not in ("files", "format", "parameter_count") and isinstance(value, dict)]
    for title, info in sections:
        out.append(f"\n  {title}", style=palette.accent)
        if not isinstance(info, dict):
            continue
        for key, value in sorted(info.items()):
            if key == "tensors":
                value = [f"{t.get('name')} {t.get('dtype')} {t.get('shape')}" for t in value if isinstance(t, dict)]
            out.append(f"\n    {key}: ", style=palette.muted)
            out.append(_fact_value(value))
    return anchored(out)


def lineage_text(d: dict[str, Any], clock: Clock, palette: Palette) -> Text:
    lin = d.get("lineage") or {}
    out = Text()
    for ds in lin.get("datasets") or []:
        out.append(f"{ds.get('relation', 'trained_on').replace('_', ' '):<13}", style=palette.muted)
        out.append(f"dataset {ds['dataset']}")
        if ds.get("digest"):
            out.append(f"  {ds['digest'][:20]}", style=palette.muted)
        out.append("\n")
    if run := lin.get("run"):
        out.append(f"{'produced by':<13}", style=palette.muted)
        out.append(f"run {run['id']}")
        extra = [x for x in (run.get("experiment"), run.get("hardware"), run.get("code_revision")) if x]
        if run.get("duration_s"):
            extra.append(_duration(run["duration_s"]))
        if extra:
            out.append(f"  ({', '.join(extra)})", style=palette.muted)
        out.append("\n")
    for parent in lin.get("parents") or []:
        out.append(f"{'derived from':<13}", style=palette.muted)
        out.append(parent["ref"])
        if parent.get("stage"):
            out.append("  ")
            out.append_text(stage_badge(parent["stage"], palette))
        out.append("\n")
    if not out.plain:
        out.append("no lineage recorded (datasets, run, parent)\n", style="dim")
    out.append("\npress l for the full tree, upstream and downstream", style="dim")
    return anchored(out)


def history_cells(h: dict[str, Any], clock: Clock, palette: Palette, with_version: bool = False) -> list[Any]:
    move = Text.assemble(stage_badge(h.get("from", "none"), palette).plain.strip(), " → ",
                         stage_badge(h.get("to", "none"), palette))
    gate = "-"
    if h.get("forced"):
        gate = Text("forced", style=palette.worse)
    elif h.get("passed") is True:
        gate = Text("✓ passed", style=palette.better)
    elif h.get("passed") is False:
        gate = Text("✗ failed", style=palette.worse)
    cells: list[Any] = [clock.date(h.get("ts"))]
    if with_version:
        cells.append(Text(f"v{h.get('version')}", style="bold"))
    return cells + [move, h.get("kind", ""), h.get("actor", ""), h.get("reason") or "", gate]


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"
