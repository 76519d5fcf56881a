"""One rule in one place (issue 9, item 4): every copy of a rule answers the same table.

Each test runs the same inputs through every layer that applies the rule (the shared
function, the daemon, the TUI, the CLI) and fails as soon as one of them disagrees.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelreg.shared.config import API_PREFIX, overlaps_home
from modelreg.shared.errors import InvalidInput, NotFound
from modelreg.shared.filters import MetricFilter, parse_metric_filter
from modelreg.shared.units import format_size

ROOT = Path(__file__).resolve().parents[1]

# -- the metric-filter grammar ---------------------------------------------------------------

ACCEPTED = {
    "auc>=0.9": MetricFilter("auc", ">=", 0.9),
    "loss<0.2": MetricFilter("loss", "<", 0.2),
    "latency_ms<=40": MetricFilter("latency_ms", "<=", 40.0),
    "acc==1": MetricFilter("acc", "=", 1.0),
    "acc=1": MetricFilter("acc", "=", 1.0),
    "f1!=0": MetricFilter("f1", "!=", 0.0),
    "val/loss>-1.5": MetricFilter("val/loss", ">", -1.5),
    "ndcg:10>0.5": MetricFilter("ndcg:10", ">", 0.5),
    "auc>=1e-3": MetricFilter("auc", ">=", 0.001),
    "auc>=+1": MetricFilter("auc", ">=", 1.0),
    "auc>=.5": MetricFilter("auc", ">=", 0.5),
}
REFUSED = ["auc", "auc>=", ">=0.9", "auc>=high", "auc>=1.2.3", "auc>=e", "auc>=--1", "auc=>0.9", "-auc>1",
           "auc>=0.9x", "auc>=inf", "auc>=nan", "auc<>1", "tag:team=risk", ""]


@pytest.mark.parametrize("text", list(ACCEPTED))
def test_metric_filter_accepted_everywhere(text: str):
    from modelreg.daemon.store.sql.catalog import metric_filter_join
    from modelreg.tui.screens.model import parse_filter

    parsed = parse_metric_filter(text)
    assert parsed == ACCEPTED[text]
    assert parse_filter(text)["metrics"] == [text]  # the TUI sends it on
    sql, params = metric_filter_join(text, "mf0")  # and the daemon takes it, as the same filter
    assert params == [parsed.key, parsed.value] and f"mf0.value {parsed.op} ?" in sql


@pytest.mark.parametrize("text", REFUSED)
def test_metric_filter_refused_everywhere(text: str):
    from modelreg.daemon.store.sql.catalog import metric_filter_join
    from modelreg.tui.screens.model import parse_filter

    with pytest.raises(InvalidInput) as shared:
        parse_metric_filter(text)
    with pytest.raises(InvalidInput) as daemon:
        metric_filter_join(text, "mf0")
    assert daemon.value.message == shared.value.message  # the same words from either side
    if text and not text.startswith("tag:"):
        with pytest.raises(InvalidInput):
            parse_filter(text)


def test_metric_filter_spaces_and_non_strings():
    assert parse_metric_filter("  auc >= 0.9 ") == MetricFilter("auc", ">=", 0.9)
    with pytest.raises(InvalidInput, match="invalid metric filter"):
        parse_metric_filter(3)  # type: ignore[arg-type]


def test_cli_refuses_a_bad_metric_filter_before_asking_the_daemon(tmp_path: Path):
    from click.testing import CliRunner

    from modelreg.tui.cli.main import cli

    for args in (["versions", "fraud", "--metric", "auc>=high"], ["search", "--metric", "auc>=1.2.3"]):
        result = CliRunner().invoke(cli, [*args, "--home", str(tmp_path / "none"), "--no-autostart"])
        assert result.exit_code == 2, result.output
        assert "metric filter" in result.output
        assert not (tmp_path / "none").exists()


# -- temporary names in drop folders ---------------------------------------------------------

TEMP = {  # temporary name -> a final name it is renamed to
    "model.safetensors.part": "model.safetensors",
    "model.part": "model.safetensors",
    "x.safetensors.partial": "x.safetensors",
    "weights.bin.tmp": "weights.bin",
    "big.gguf.crdownload": "big.gguf",
    "~syncthing~model.onnx.tmp": "model.onnx",
    ".syncthing.model.onnx.tmp": "model.onnx",
    ".x.safetensors.Ab12Cd": "x.safetensors",  # rsync
    ".notes.swp": "notes",  # vim
    "model.pt~": "model.pt",
}
FINAL = ["model.safetensors", "model.onnx", "_SUCCESS", "tmp-model.bin", "part1.bin", "model.partition"]


@pytest.mark.parametrize("temp", list(TEMP))
def test_every_temporary_name_is_skipped_and_its_rename_recognised(temp: str):
    from modelreg.daemon.ingest.scan import is_temporary
    from modelreg.daemon.ingest.watcher import _renamed_from

    assert is_temporary(temp)  # the scan never takes it
    assert _renamed_from(temp, TEMP[temp])  # the watcher knows what it turned into
    assert not is_temporary(TEMP[temp])


@pytest.mark.parametrize("name", FINAL)
def test_final_names_are_not_temporary(name: str):
    from modelreg.daemon.ingest.scan import is_temporary

    assert not is_temporary(name)


def test_scan_and_watcher_read_one_table():
    watcher = (ROOT / "daemon/modelreg/daemon/ingest/watcher.py").read_text()
    assert not re.search(r"""["'](\.part|\.tmp|\.crdownload|~syncthing~)""", watcher)


# -- inside the registry home ----------------------------------------------------------------

@pytest.mark.parametrize("path, overlaps", [
    ("/data/registry", True), ("/data/registry/blobs", True), ("/data", True), ("/", True),
    ("/data/registry2", False), ("/data/drops", False), ("/elsewhere/registry", False),
])
def test_overlaps_home(path: str, overlaps: bool):
    assert overlaps_home(Path(path), Path("/data/registry")) is overlaps


# -- sizes -----------------------------------------------------------------------------------

SIZES = {0: "0 B", 603: "603 B", 999: "999 B", 1000: "1.0 KB", 1400: "1.4 KB", 9_960: "10 KB",
         99_960: "100 KB", 999_960: "1.0 MB", 412_000_000: "412 MB", 7_241_732_096: "7.2 GB",
         3 * 10**15: "3000 TB", None: "-"}


def test_cli_and_tui_print_the_same_size():
    from modelreg.tui.cli.render import size as cli_size
    from modelreg.tui.widgets.formatting import size as tui_size

    for n, text in SIZES.items():
        assert format_size(n) == cli_size(n) == tui_size(n) == text, n


# -- /v1 ---------------------------------------------------------------------------------------

def test_every_client_path_uses_the_api_prefix():
    from modelreg.shared import calls

    assert calls.health().path == f"{API_PREFIX}/health"
    assert calls.version_path("fraud@7").startswith(API_PREFIX + "/")
    literal = re.compile(r"""["']/v1\b""")
    offenders = [f"{p.relative_to(ROOT)}:{i}" for base in ("shared/modelreg", "tui/modelreg")
                 for p in sorted((ROOT / base).rglob("*.py")) if p.name != "config.py"
                 for i, line in enumerate(p.read_text().splitlines(), 1) if literal.search(line)]
    assert offenders == []


# -- daemon start/stop -----------------------------------------------------------------------

def test_every_starter_goes_through_the_launcher():
    for path in ("tui/modelreg/tui/demo.py", "tui/modelreg/tui/cli/daemon_cmds.py", "tests/daemon_process.py"):
        text = (ROOT / path).read_text()
        assert '"modelreg.daemon"' not in text and "os.kill(" not in text, path


def test_stop_without_a_daemon(tmp_path: Path):
    from modelreg.shared.launcher import stop_daemon

    with pytest.raises(NotFound, match="no daemon is running"):
        stop_daemon(tmp_path)
    (tmp_path / "daemon.json").write_text('{"url": "http://127.0.0.1:9", "pid": 999999999}')
    with pytest.raises(NotFound, match="stale pid 999999999"):
        stop_daemon(tmp_path)
    assert not (tmp_path / "daemon.json").exists()


# -- the TUI's keys ----------------------------------------------------------------------------

_README_NAMES = {"?": "question_mark", "/": "slash", "f1": "f1"}


def _readme_keys() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## The TUI"):].split("\n\n")[1]
    keys = set()
    for line in table.splitlines()[2:]:
        for cell in line.strip("|").split("|")[0::2]:
            # A single letter keeps its case (`A` is shift+a, not `a`); names fold (`F1`).
            keys |= {_README_NAMES.get(k.lower(), k if len(k) == 1 else k.lower())
                     for k in re.findall(r"`([^`]+)`", cell)}
    return keys


def test_help_lists_the_bindings_and_the_readme_table_is_true():
    from modelreg.tui.app import ModelregApp
    from modelreg.tui.keymap import binding_ids, key_help

    app = ModelregApp(home=Path("/nonexistent"), url="http://127.0.0.1:9", keymap={}, start_daemon=False)
    rows = key_help(app)
    bound = {k for row in rows for k in row.keys}
    assert _readme_keys() <= bound  # every key the README names is bound
    remappable = {k for row in rows if row.binding_id for k in row.keys}
    assert remappable <= _readme_keys()  # and names every key a keymap can remap
    assert "ctrl+p" in bound and "o" in bound
    app.set_keymap({"promote": "P"})
    promote = next(row for row in key_help(app) if row.binding_id == "promote")
    assert promote.keys == ["P"]
    assert binding_ids()[:3] == ["stage", "promote", "archive"]
