"""The pure parts of the TUI: keymap files, the version filter, formatting, diffs, the
hand-written safetensors files of the demo."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from modelreg.shared.errors import InvalidInput
from modelreg.tui.demo import write_safetensors
from modelreg.tui.keymap import DEFAULT_KEYS, load_keymap
from modelreg.tui.screens.compare import artifact_diff, tensors
from modelreg.tui.screens.model import parse_filter
from modelreg.tui.widgets.formatting import Clock, FrozenClock, Palette, judged_delta, number, size, sparkline


def test_keymap_file_remaps_known_ids_and_reports_the_rest(tmp_path: Path):
    first, second = tmp_path / "home.toml", tmp_path / "user.toml"
    second.write_text('promote = "x"\n')
    first.write_text('promote = "P"\nrollback = "ctrl+r, R"\nnope = "z"\nhistory = 3\n')
    loaded = load_keymap([tmp_path / "missing.toml", first, second])
    assert loaded.path == first
    assert loaded.keymap == {"promote": "P", "rollback": "ctrl+r,R"}
    assert any("unknown binding id 'nope'" in p for p in loaded.problems)
    assert any("history must be a key string" in p for p in loaded.problems)
    (tmp_path / "bad.toml").write_text("promote = \n")
    assert load_keymap([tmp_path / "bad.toml"]).problems and not load_keymap([tmp_path / "bad.toml"]).keymap
    assert load_keymap([]).keymap == {}
    assert {"stage", "promote", "archive", "rollback", "gates", "approve", "reject", "mark", "compare", "lineage",
            "history", "events", "filter", "help", "back"} == set(DEFAULT_KEYS)


def test_version_filter_grammar():
    f = parse_filter("Production auc>=0.9 latency_ms<40 tag:team=risk failed")
    assert f == {"stage": "production", "status": "failed", "metrics": ["auc>=0.9", "latency_ms<40"],
                 "tags": ["team=risk"]}
    assert parse_filter("") == {"stage": None, "status": None, "metrics": [], "tags": []}
    with pytest.raises(InvalidInput, match="filter 'prod'"):
        parse_filter("prod")


def test_numbers_sizes_and_sparklines():
    assert [number(x) for x in (0.93512, 41.0, 12345.0, 1234.5, None)] == ["0.9351", "41", "12,345", "1,234", "-"]
    assert [size(x) for x in (603, 1400, 412_000_000, None)] == ["603 B", "1.4 KB", "412 MB", "-"]
    assert sparkline([1.0]) == "" and sparkline([1, 1]) == "▄▄"
    assert sparkline([0.931, 0.930, 0.924]) == "█▇▁"


def colour(text) -> str:
    return str(text.spans[0].style) if text.spans else str(text.style)


def test_deltas_are_coloured_by_the_metric_direction():
    p = Palette()
    assert colour(judged_delta("auc", 0.01, p)) == p.better
    assert colour(judged_delta("auc", -0.01, p)) == p.worse
    assert colour(judged_delta("val_loss", -0.01, p)) == p.better
    assert colour(judged_delta("latency_p99_ms", 3, p)) == p.worse and judged_delta("latency_p99_ms", 3, p).plain == "+3"
    assert colour(judged_delta("recall", 0.01, p, {"recall": "lower"})) == p.worse


def test_clocks_read_iso_and_epoch_times():
    clock = Clock()
    assert clock.ts("2026-11-26T07:21:10.664Z") == pytest.approx(1795677670.664)
    assert clock.ts(1795677670.5) == 1795677670.5 and clock.ts(None) is None
    frozen = FrozenClock()
    assert frozen.date("2020-01-01T00:00:00Z") == frozen.date(123.0) == "2026-11-25 09:46"
    assert frozen.ago("anything") == "2h ago"


def test_artifact_and_tensor_diffs():
    a = {"files": [{"path": "m.bin", "sha256": "1"}, {"path": "old.txt", "sha256": "2"}, {"path": "c", "sha256": "3"}]}
    b = {"files": [{"path": "m.bin", "sha256": "9"}, {"path": "new.txt", "sha256": "4"}, {"path": "c", "sha256": "3"}]}
    assert artifact_diff(a, b) == {"c": "same", "m.bin": "changed", "new.txt": "added", "old.txt": "removed"}
    facts = {"files": {"model.safetensors": {"format": "safetensors",
                                             "tensors": [{"name": "w", "dtype": "F16", "shape": [4, 8]}]}}}
    assert tensors({"facts": facts}) == {"model.safetensors:w": ("F16", (4, 8))}


def test_demo_safetensors_files_are_valid(tmp_path: Path):
    path = tmp_path / "m.safetensors"
    write_safetensors(path, {"a": ("F32", [2, 3], [0.5]), "b": ("F16", [5], [1.0, 2.0])}, {"k": "v"})
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0
    header = json.loads(raw[8:8 + n])
    assert header["__metadata__"] == {"k": "v"}
    assert header["a"] == {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}
    assert header["b"]["data_offsets"] == [24, 34]
    assert len(raw) == 8 + n + 34
    assert struct.unpack("<2e", raw[8 + n + 24:8 + n + 28]) == (1.0, 2.0)
