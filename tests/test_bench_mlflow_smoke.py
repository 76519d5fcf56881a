"""The MLflow comparison works (issue 10 acceptance 5): a tiny run end to end, through
``python -m benchmarks --only mlflow``. Not a timing test: it checks that a stock MLflow server
and a modelreg daemon both answered the whole workload through the stock client, correctly and
without errors, and that every figure, floor and ratio is printed and lands in the JSON summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mlflow")

ROOT = Path(__file__).resolve().parents[1]
SERVERS = ("floor", "MLflow", "modelreg")


def test_tiny_mlflow_comparison_runs_the_workload_on_both_servers_and_prints_the_ratios():
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--only", "mlflow", "--tiny", "--versions", "100"],
                          cwd=ROOT, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    text = "\n".join(lines[:-1])
    for label in ("requests GET, no-op server:", "modelreg / MLflow:", "MLflow p50 / modelreg p50:", "server RSS:",
                  "reference versions, no artifacts"):
        assert label in text, label
    for phase in ("register (1 client)", "get_model_version", "search one model's 100 versions"):
        for server in SERVERS:
            assert f"{phase}, {server}:" in text, (phase, server)
    got = summary["mlflow"]
    assert summary["profile"] == "tiny" and got["versions"] == 100 and got["errors"] == 0
    for phase, calls in (("register", 100), ("get", 100), ("search", 4)):
        for server in SERVERS:
            fig = got[phase][server]
            assert fig["errors"] == 0 and fig["calls"] == calls and fig["p50_ms"] > 0, (phase, server, fig)
        assert got[phase]["ratio"] > 0, phase
    assert got["register"]["modelreg"]["per_s"] > 0 and got["register"]["MLflow"]["per_s"] > 0
    assert all(got["search"][server]["pages"] >= 1 for server in SERVERS)
    assert got["rss_mb"]["MLflow"] > 0 and got["rss_mb"]["modelreg"] > 0
    targets = {t["target"]: t for t in summary["targets"]}
    assert len(targets) == 3 and all(isinstance(t["met"], bool) for t in targets.values()), targets
    assert "target sequential registration" in text and "target get_model_version" in text
