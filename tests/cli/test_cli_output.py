"""What a person reads (issue 8 item 5): aligned text, the facts the sniffers found, no
markup codes or Python reprs; and what a script reads: one JSON document per command."""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sniff"))
from sniff_fixtures import GGUF_TENSORS, TENSORS, make_onnx_model, write_gguf  # noqa: E402

from cli_helpers import run_on_terminal  # noqa: E402

REPR = re.compile(r"\{'|\['|\[/?(bold|dim|red|green|yellow)\]|\x1b\[")


class Unsafe:
    def __reduce__(self):
        return (os.system, ("true",))


@pytest.fixture
def model_files(tmp_path: Path) -> dict[str, Path]:
    import onnx
    from safetensors.numpy import save_file

    files = {"st": tmp_path / "tiny.safetensors", "onnx": tmp_path / "model.onnx", "gguf": tmp_path / "tiny.gguf",
             "pkl": tmp_path / "evil.pkl"}
    save_file(TENSORS, str(files["st"]), metadata={"format": "pt"})
    onnx.save(make_onnx_model(), str(files["onnx"]))
    write_gguf(files["gguf"], GGUF_TENSORS, quantized=True)
    files["pkl"].write_bytes(pickle.dumps(Unsafe()))
    return files


def readable(text: str) -> None:
    bad = [line for line in text.splitlines() if REPR.search(line)]
    assert bad == [], "markup, escape codes or Python reprs in piped output"


def test_show_prints_what_the_sniffers_read_from_each_file(daemon, modelreg, model_files):
    modelreg("register", str(model_files["st"]), "--name", "st", "--metric", "auc=0.91", "--param", "lr=0.01",
             "--tag", "team=risk", "--dataset", "txns@2026-11", "--run", "r42", check=True)
    modelreg("metric", "st@1", "auc=0.87", "--source", "online", check=True)
    shown = modelreg("show", "st@1", check=True).stdout
    readable(shown)
    lines = [line.strip() for line in shown.splitlines()]
    assert re.search(r"^\s+tensors\s+5 \(575 parameters\)$", shown, re.M), shown
    assert any(line.startswith("dtypes") and "F32 ×1" in line and "BOOL ×1" in line for line in lines)
    assert any(line.startswith("largest") and "embed.weight F32 [32×16]" in line for line in lines)
    assert re.search(r"^\s+auc\s+0\.87\s+online\s+2$", shown, re.M), "the latest value, its source, 2 records"
    assert re.search(r"^\s+lr\s+0\.01$", shown, re.M) and re.search(r"^\s+team\s+risk$", shown, re.M)
    assert re.search(r"^\s+trained on\s+txns@2026-11$", shown, re.M) and re.search(r"^\s+run\s+r42$", shown, re.M)

    modelreg("register", str(model_files["onnx"]), "--name", "graph", check=True)
    shown = modelreg("show", "graph@1", check=True).stdout
    readable(shown)
    assert re.search(r"^\s+opset\s+17 \(\+ ai\.onnx\.ml 3\)$", shown, re.M), shown
    assert re.search(r"^\s+inputs\s+x$", shown, re.M) and re.search(r"^\s+outputs\s+y$", shown, re.M)

    modelreg("register", str(model_files["gguf"]), "--name", "llm", check=True)
    shown = modelreg("show", "llm@1", check=True).stdout
    readable(shown)
    assert re.search(r"^\s+architecture\s+llama \(tiny-llama\)$", shown, re.M), shown
    assert re.search(r"^\s+quantisation\s+Q8_0$", shown, re.M)

    modelreg("register", str(model_files["pkl"]), "--name", "evil", check=True)
    shown = modelreg("show", "evil@1", check=True).stdout
    readable(shown)
    assert re.search(r"^\s+unsafe imports\s+posix\.system$", shown, re.M), shown


def test_events_read_as_text_and_json_is_one_document(daemon, modelreg, tmp_path):
    model = tmp_path / "m.dat"
    model.write_bytes(b"m" * 100)
    modelreg("register", str(model), "--name", "fraud", check=True)
    modelreg("metric", "fraud@1", "auc=0.87", "--source", "online", check=True)
    modelreg("promote", "fraud@1", "--to", "staging", "--reason", "[bold]looks good[/]", check=True)
    text = modelreg("events", check=True).stdout
    metric_line = next(line for line in text.splitlines() if "metric.recorded" in line)
    assert metric_line.endswith("auc=0.87 (online)"), metric_line
    stage_line = next(line for line in text.splitlines() if "stage.changed" in line)
    assert "none → staging" in stage_line and stage_line.endswith(": [bold]looks good[/]"), "reasons print as typed"
    assert "{'" not in text and "['" not in text
    events = json.loads(modelreg("events", "--json", check=True).stdout)  # one document, not one per line
    assert [e["kind"] for e in events][-2:] == ["metric.recorded", "stage.changed"]


@pytest.mark.parametrize("args", [["models"], ["versions", "fraud"], ["show", "fraud@1"], ["events"],
                                  ["history", "fraud"], ["lineage", "fraud@1"], ["status"], ["gate", "list"],
                                  ["alias", "list", "fraud"], ["verify"], ["resolve", "fraud@1"]])
def test_json_is_one_document_on_every_command(daemon, modelreg, tmp_path, args):
    model = tmp_path / "m.dat"
    model.write_bytes(b"m" * 100)
    modelreg("register", str(model), "--name", "fraud", check=True)
    modelreg("promote", "fraud@1", check=True)
    r = modelreg(*args, "--json", check=True)
    json.loads(r.stdout)  # raises on a second document
    readable(modelreg(*args, check=True).stdout)


def test_global_options_after_the_command(daemon, modelreg, tmp_path):
    model = tmp_path / "m.dat"
    model.write_bytes(b"m" * 100)
    modelreg("register", str(model), "--name", "fraud", check=True)
    elsewhere = {"MODELREG_HOME": str(tmp_path / "nothing-here"), "MODELREG_NO_AUTOSTART": "1"}
    assert modelreg("show", "fraud@1", env=elsewhere).returncode == 5  # the env points at no daemon
    shown = modelreg("show", "fraud@1", "--home", str(daemon.home), "--json", env=elsewhere, check=True)
    assert json.loads(shown.stdout)["model"] == "fraud"
    via_url = modelreg("resolve", "fraud@latest", "--url", daemon.url, env={**elsewhere, "MODELREG_TOKEN": daemon.token},
                       check=True)
    assert via_url.stdout.strip() == "fraud@1"


def test_on_a_terminal_rich_draws_and_user_text_is_never_markup(daemon, modelreg, tmp_path):
    model = tmp_path / "m.dat"
    model.write_bytes(b"m" * 100)
    modelreg("register", str(model), "--name", "fraud", "--param", "note=[red]not markup[/]", check=True)
    rc, screen = run_on_terminal(daemon.home, "show", "fraud@1")
    assert rc == 0
    assert "\x1b[" in screen  # styled: rich drew it
    assert "note" in screen and "[red]not markup[/]" in screen


def test_plain_output_aligns_tables_and_keeps_brackets():
    from modelreg.tui.cli.render import Output, Span, table

    buf = io.StringIO()
    o = Output(buf, terminal=False)
    t = table("v", "stage", "reason")
    t.add_row("1", Span("production", "bold green"), "[bold]x[/]")
    t.add_row("12", Span("none", "dim"), "")
    o.table(t)
    o.print("[green]ok[/] \\[kept]")  # the markup shim other modules still use
    assert buf.getvalue().splitlines() == [
        " v  stage       reason",
        " 1  production  [bold]x[/]",
        "12  none",
        "ok [kept]",
    ]


def test_a_capped_total_reads_more_than():
    """The daemon stops counting a filtered page at 1,000 (total_exact false): the CLI says so."""
    from modelreg.tui.cli.render import page_total

    assert page_total({"total": 1, "total_exact": True}, "version") == "1 version"
    assert page_total({"total": 40}, "match", "matches") == "40 matches"
    assert page_total({"total": 1000, "total_exact": False}, "version") == "more than 1,000 versions"
