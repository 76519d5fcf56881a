"""Words that styled pieces of text are joined into must stay apart, on screen and in the
README's pictures (issue 14), and the metrics tab compares a version with production.

The pictures are SVG exports drawn by rsvg-convert, which draws each styled run as its own
<text> and drops the blanks the run starts with: a separator at the start of a run vanishes
(``fraud-detector`` + ``  14 versions`` was drawn ``fraud-detector14 versions``). ``drawn``
reads an exported screen the way rsvg-convert draws it, ``screen_text`` as the terminal shows it.
"""

from __future__ import annotations

import html
import re

import pytest
from rich.console import Console
from rich.text import Text

from conftest import SIZES, make_app, wait_for
from modelreg.tui.screens.model import ModelScreen
from modelreg.tui.widgets.formatting import Palette, anchored, joined
from modelreg.tui.widgets.version_detail import metric_rows

both_sizes = pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")

_TEXT = re.compile(r'<text class="[^"]*" x="([\d.]+)" y="[\d.]+" textLength="[\d.]+" '
                   r'clip-path="url\(#terminal-(?:\w+-)?line-(\d+)\)">([^<]*)</text>')
CELL = 12.2  # the SVG export's cell width (font size 20 x 0.61)


def _lines(svg: str, strip_leading: bool) -> list[str]:
    rows: dict[int, list[str]] = {}
    for x, line, content in _TEXT.findall(svg):
        text = html.unescape(content).replace("\u00a0", " ")
        if strip_leading:
            text = text.lstrip(" ")
        row = rows.setdefault(int(line), [])
        col = round(float(x) / CELL)
        row.extend(" " * (col + len(text) - len(row)))
        row[col:col + len(text)] = text
    return ["".join(rows.get(i, [])).rstrip() for i in range(max(rows, default=-1) + 1)]


def drawn(svg: str) -> str:
    """The screen as rsvg-convert draws the SVG: each run without its leading blanks."""
    return "\n".join(_lines(svg, strip_leading=True))


def screen_text(svg: str) -> str:
    return "\n".join(_lines(svg, strip_leading=False))


def test_drawn_reads_the_joined_words_the_issue_saw():
    """The reader itself: a run that starts with blanks loses them, as in the old pictures."""
    svg = ('<text class="r1" x="0" y="20" textLength="170.8" clip-path="url(#terminal-line-0)">fraud-detector</text>'
           '<text class="r2" x="170.8" y="20" textLength="134.2" clip-path="url(#terminal-line-0)">'
           '&#160;&#160;14&#160;versions</text>')
    assert drawn(svg) == "fraud-detector14 versions"
    assert screen_text(svg) == "fraud-detector  14 versions"


def _blank_led_runs(text: Text) -> list[str]:
    """Styled runs (as a renderer draws them) that start with a blank and go on to words."""
    runs = [seg.text for seg in Console(width=200).render(text) if seg.text and seg.text != "\n"]
    return [r for r in runs if r[0] == " " and r.strip()]


def test_joined_hands_leading_blanks_to_the_run_before():
    t = joined(("fraud-detector", "bold"), "14 versions", sep="  ")
    assert t.plain == "fraud-detector  14 versions"
    assert _blank_led_runs(t) == []
    assert _blank_led_runs(Text.assemble(("fraud-detector", "bold"), "  14 versions")) == ["  14 versions"]
    assert joined("a", None, "", Text(""), ("b", "bold")).plain == "a · b"
    odd = Text.assemble(("0.962", "bold"), " · ", ("auc", "dim"), " (", ("+0.011", "green"), " vs v12)")
    assert _blank_led_runs(odd)
    fixed = anchored(odd)
    assert fixed.plain == odd.plain == "0.962 · auc (+0.011 vs v12)"
    assert _blank_led_runs(fixed) == []


async def _model_screen(pilot, row: int) -> ModelScreen:
    await wait_for(pilot, lambda: pilot.app.connection == "connected" and getattr(pilot.app.screen, "loaded", False),
                   what="the models screen")
    pilot.app.open_model("fraud-detector")
    screen = await wait_for(pilot, lambda: isinstance(pilot.app.screen, ModelScreen) and pilot.app.screen.loaded
                            and pilot.app.screen, what="the model screen")
    screen.table.move_cursor(row=row, animate=False)
    n = screen.table.current_version()
    await wait_for(pilot, lambda: (screen.detail.detail or {}).get("version") == n and screen.history_loaded,
                   what="the detail pane")
    return screen


JOINED = ["fraud-detector14", "v12staging", "stagingfor", "0.962·", "( +", "+0.011vs", "modelreg·"]


@both_sizes
async def test_header_and_overview_keep_their_separators(demo_registry, size):
    app = make_app(demo_registry)
    async with app.run_test(size=size) as pilot:
        screen = await _model_screen(pilot, row=1)  # v13: staging, compared with v12 in production
        assert screen.detail.detail["version"] == 13
        svg = app.export_screenshot()
    for text in (drawn(svg), screen_text(svg)):
        assert "fraud-detector  14 versions · production v12 · staging v14" in text, text
        assert "v13  ◆ staging for 2h" in text, text
        assert "approval_rate 0.962 · auc 0.935 (+0.011 vs v12) · " in text, text
        assert "modelreg · fraud-detector" in text, text
        for bad in JOINED:
            assert bad not in text, (bad, text)


def _cells(row: list) -> list[str]:
    return [c.plain if isinstance(c, Text) else str(c) for c in row]


async def test_metrics_tab_compares_with_production(demo_registry):
    app = make_app(demo_registry)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await _model_screen(pilot, row=1)  # v13 staging
        screen.query_one("#detail-tabs").active = "metrics"
        table = screen.query_one("#metrics-table")
        await wait_for(pilot, lambda: table.row_count > 1, what="the metrics tab")
        labels = [str(c.label) for c in table.columns.values()]
        assert labels[:4] == ["metric", "offline", "online", "vs prod v12"], labels
        rows = {str(table.get_row_at(i)[0]): table.get_row_at(i) for i in range(table.row_count)}
        auc = _cells(rows["auc"])
        assert auc[1:4] == ["0.935", "0.935", "+0.011"], auc  # offline, online, vs prod
        assert _cells(rows["latency_p99_ms"])[3] == "+2"
        assert _cells(rows["val_loss"])[3] == "-0.015"
        assert _cells(rows["approval_rate"])[1:4] == ["-", "0.962", "-"]  # online only; v12 has none
        palette = screen.palette
        assert str(rows["auc"][3].spans[0].style) == palette.better  # higher is better
        assert str(rows["latency_p99_ms"][3].spans[0].style) == palette.worse  # lower is better
        assert str(rows["val_loss"][3].spans[0].style) == palette.better
        svg = app.export_screenshot()
        assert "vs prod v12" in drawn(svg)

        screen.table.move_cursor(row=2, animate=False)  # v12, the production version
        await wait_for(pilot, lambda: (screen.detail.detail or {}).get("version") == 12
                       and str(table.get_row_at(0)[0]) == "auc" and table.row_count > 1, what="v12's metrics")
        labels = [str(c.label) for c in table.columns.values()]
        assert labels[:4] == ["metric", "offline", "monitoring", "vs prod"], labels
        for i in range(table.row_count):
            assert _cells(table.get_row_at(i))[labels.index("vs prod")] == "● production"
        auc = _cells(next(table.get_row_at(i) for i in range(table.row_count)
                          if str(table.get_row_at(i)[0]) == "auc"))
        assert auc[1:3] == ["0.931", "0.924"], auc  # offline and monitoring side by side


def test_metric_rows_direction_override_and_no_production():
    detail = {"version": 3, "metrics": {"score": 5.0},
              "metric_records": [{"key": "score", "value": 4.0, "source": "offline"},
                                 {"key": "score", "value": 5.0, "source": "monitoring"}]}
    production = {"version": 1, "metrics": {"score": 6.0}}
    p = Palette()
    rows = metric_rows(detail, production, False, {"score": "lower"}, p)
    assert rows[0] == ["metric", "offline", "monitoring", "vs prod v1", "trend", "n", "dataset"]
    assert _cells(rows[1])[:4] == ["score", "4", "5", "-1"]
    assert str(rows[1][3].spans[0].style) == p.better  # lower is better for this model
    rows = metric_rows(detail, production, False, {}, p)
    assert str(rows[1][3].spans[0].style) == p.worse
    rows = metric_rows(detail, None, False, {}, p)
    assert _cells(rows[1])[3] == "no production"
    assert _cells(metric_rows({"version": 1}, None, False, {}, p)[1])[0] == "no metrics recorded"
