"""The load benchmark works (issue 11 acceptance 6): a tiny run of ``python -m benchmarks --only load``
end to end. Not a timing test: it checks that 64 clients ran every operation of the mix against a
real daemon and the no-op floor without an error, that the provoked gate refusals were counted
apart, that every stream got every committed event, that every invariant was checked and held,
and that the figures land in the one-line JSON summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPS = ("get version", "resolve production", "page versions", "search", "register (upload)", "register (path)",
       "record metric", "to staging", "to production", "production, refused (provoked)", "archive", "rollback")
INVARIANTS = ("acknowledged registrations present, ready, same content", "every version in the stage its last transition left",
              "no version pending or failed", "at most one production version per model, the one put there",
              "serving links at the production versions", "acknowledged metric records present",
              "each stream received every committed event once, in order", "audit verify clean", "verify clean")


def test_tiny_load_run_has_no_error_keeps_every_invariant_and_prints_each_operation_next_to_its_floor():
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--only", "load", "--tiny"], cwd=ROOT,
                          capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    text = "\n".join(lines[:-1])
    assert summary["profile"] == "tiny" and summary["machine"]["nproc"] > 0
    load = summary["load"]
    assert load["total"]["errors"] == 0 and load["total"]["floor_errors"] == 0
    for op in OPS:
        fig = load["ops"][op]
        assert op in text, op
        assert fig["count"] > 0 and fig["errors"] == 0 and 0 < fig["p50_ms"] <= fig["p99_ms"], (op, fig)
        assert fig["floor_per_s"] > 0 and fig["floor_p50_ms"] > 0 and fig["p50_ratio"] > 0, (op, fig)
    assert load["versions_registered"] == load["ops"]["register (upload)"]["count"] + load["ops"]["register (path)"]["count"]
    events = load["events"]
    assert events["committed"] > load["versions_registered"]  # version.created and version.ready each, at least
    assert events["received"] == [events["committed"]] * 4 and events["lag_p50_ms"] is not None
    assert load["store"]["writes"] >= load["store"]["commits"] > 0 and load["store"]["fsync_p50_ms"] > 0
    assert set(load["invariants"]) == set(INVARIANTS)
    for name, inv in load["invariants"].items():
        assert inv["checked"] > 0 and inv["broken"] == 0, (name, inv)
    assert load["invariants"]["acknowledged registrations present, ready, same content"]["checked"] \
        >= load["versions_registered"]
    assert {t["target"]: t["met"] for t in summary["targets"]} == {
        "load errors (any answer but 2xx and the provoked gate refusals)": True, "invariants broken": True}
    assert load["cpu"]["server"] > 0 and load["cpu"]["client"] > 0
