"""Registry throughput and latency against a real daemon process: now part of `python -m benchmarks`.

    .venv/bin/python benchmarks/bench_registry.py [--versions 100000] [--large]

Runs the HTTP half of the benchmark command (benchmarks/run.py: registrations/s from 1 and
16 clients, get version, resolve production, a page of 100, daemon RSS), each figure next to
its floor measured in the same run; see docs/performance.md.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.run import main  # noqa: E402

if __name__ == "__main__":
    asyncio.run(main(["--only", "http", *sys.argv[1:]]))
