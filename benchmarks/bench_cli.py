"""How long `modelreg resolve NAME@production` takes, against the floor of any Python CLI.

Starts a daemon on a temporary home, registers and promotes one small version, then runs,
alternately, N times each:

- `modelreg resolve bench@production` (the venv's entry point, a real round trip), and
- `python -c "import click, json, urllib.request"` (the same interpreter: what a minimal
  click CLI that speaks HTTP costs before doing anything),

and prints the best and median times of both and their ratio (PRODUCT.md issue 8 item 7:
at most 1.6x). Also times `modelreg --help` and `modelreg --version` the same way.

    .venv/bin/python benchmarks/bench_cli.py [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 1.6


def start_daemon(home: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")}
    log = open(home / "bench-daemon.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "modelreg.daemon", "--home", str(home), "--listen", "127.0.0.1:0"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the daemon exited: {(home / 'bench-daemon.log').read_text()[-2000:]}")
        try:
            json.loads((home / "daemon.json").read_text())["url"]
            return proc
        except (OSError, ValueError, KeyError):
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the daemon did not start within 30 s")


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    modelreg = str(Path(sys.executable).with_name("modelreg"))
    with tempfile.TemporaryDirectory(prefix="modelreg-bench-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")},
               "MODELREG_HOME": str(home), "MODELREG_NO_AUTOSTART": "1"}
        daemon = start_daemon(home)
        try:
            model = Path(tmp) / "bench.bin"
            model.write_bytes(os.urandom(10_000))
            subprocess.run([modelreg, "register", str(model), "--name", "bench"], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            subprocess.run([modelreg, "promote", "bench@1", "--to", "production"], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            out = subprocess.run([modelreg, "resolve", "bench@production"], env=env, check=True,
                                 capture_output=True, text=True).stdout.strip()
            assert out == "bench@1", out
            cases = {
                "modelreg resolve bench@production": [modelreg, "resolve", "bench@production"],
                'python -c "import click, json, urllib.request"': [sys.executable, "-c",
                                                                    "import click, json, urllib.request"],
                "modelreg --help": [modelreg, "--help"],
                "modelreg --version": [modelreg, "--version"],
            }
            times: dict[str, list[float]] = {name: [] for name in cases}
            for name, cmd in cases.items():  # warm the page cache once
                timed(cmd, env)
            for _ in range(args.runs):
                for name, cmd in cases.items():  # interleaved, so load on the machine hits all alike
                    times[name].append(timed(cmd, env))
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(30)
    print(f"{args.runs} runs each, {Path(sys.executable).parent.parent}")
    width = max(len(n) for n in times)
    for name, values in times.items():
        print(f"  {name:<{width}}  best {min(values) * 1000:6.1f} ms   median {statistics.median(values) * 1000:6.1f} ms")
    names = list(times)
    resolve, floor = times[names[0]], times[names[1]]
    best_ratio = min(resolve) / min(floor)
    median_ratio = statistics.median(resolve) / statistics.median(floor)
    print(f"resolve / floor: best {best_ratio:.2f}x, median {median_ratio:.2f}x (target <= {TARGET_RATIO}x): "
          + ("ok" if median_ratio <= TARGET_RATIO else "TOO SLOW"))


if __name__ == "__main__":
    main()
