"""The benchmark command works (issue 9 item 6): a tiny run end to end. Not a timing test:
it checks that every figure is printed with its floor and lands in the one-line JSON summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_tiny_benchmark_run_prints_every_figure_and_a_json_summary():
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--tiny", "--seconds", "0.3"], cwd=ROOT,
                          capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    text = "\n".join(lines[:-1])
    for label in ("register,  1 client", "register, 16 clients", "no-op POST", "no-op GET", "get version:",
                  "resolve production:", "page of 100", "daemon RSS:", "openssl dgst -sha256:", "register --move:",
                  "cp + fsync:", "register (copying):", "openssl, 2 processes:", "register 4 shards --move:"):
        assert label in text, label
    assert summary["profile"] == "tiny"
    for clients in ("c1", "c16"):
        reg = summary["register"][clients]
        assert reg["errors"] == 0 and reg["registrations_per_s"] > 0 and reg["noop_posts_per_s"] > 0
    reads = summary["reads"]
    assert reads["errors"] == 0 and reads["page_errors"] == 0 and reads["stored"] == 2000
    assert reads["get_p50_ms"] > 0 and reads["noop_get_p50_ms"] > 0 and reads["rss_mb"] > 0
    files = summary["files"]
    assert files["methods"] == {"move": ["rename"], "copy": ["copy"], "shards": ["rename"]}
    assert all(files[k] > 0 for k in ("openssl_s", "move_s", "cp_s", "copy_s", "openssl2_s", "shards_s"))
    names = {t["target"] for t in summary["targets"]}
    assert len(names) == 13, names
    assert all(set(t) >= {"target", "value", "op", "limit", "met"} for t in summary["targets"])
