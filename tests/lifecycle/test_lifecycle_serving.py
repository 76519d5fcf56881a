"""The serving handoff under 1,000 rapid promotions (issue 3, acceptance 5).

A separate serving process follows HOME/serving/fraud/production the way a model server
would: resolve the link once, list the folder, read the marker and the weights, and check
they belong to the same version. It must never see a mix or a missing path.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from lifecycle_support import Versions, weights_for

PROMOTIONS = 1000
CYCLE = (2, 3, 4, 1)

READER = r"""
import hashlib, json, os, sys, time

link, stop, report = sys.argv[1], sys.argv[2], sys.argv[3]

def weights_for(number, size=64 * 1024):
    seed = hashlib.sha256(f"weights-{number}".encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]

expected = {n: weights_for(n) for n in range(1, 5)}
seen, errors, iterations, switches, last = {}, [], 0, 0, None
open(report + ".ready", "w").close()
while not os.path.exists(stop):
    iterations += 1
    try:
        target = os.path.join(os.path.dirname(link), os.readlink(link))  # resolve once per iteration
        names = sorted(os.listdir(target))
        with open(os.path.join(target, "version.txt")) as f:
            number = int(f.read())
        with open(os.path.join(target, "weights.bin"), "rb") as f:
            weights = f.read()
    except OSError as exc:
        errors.append(f"iteration {iterations}: {type(exc).__name__}: {exc}")
        continue
    if names != ["version.txt", "weights.bin"]:
        errors.append(f"iteration {iterations}: {target} holds {names}")
    elif weights != expected.get(number):
        errors.append(f"iteration {iterations}: {target} says v{number} but its weights are another version's")
    seen[number] = seen.get(number, 0) + 1
    switches += last is not None and number != last
    last = number
json.dump({"iterations": iterations, "seen": seen, "switches": switches, "errors": errors[:20],
           "error_count": len(errors)}, open(report, "w"))
"""


async def test_serving_reader_never_sees_a_mix_during_a_thousand_promotions(daemon, client, versions: Versions,
                                                                            tmp_path: Path):
    for n in range(1, 5):
        await versions.add(n)
    await client.promote("fraud@1", reason="start")
    link = daemon.home / "serving" / "fraud" / "production"
    assert (link / "version.txt").read_text() == "1\n"

    stop, report = tmp_path / "stop", tmp_path / "reader.json"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(link), str(stop), str(report)])
    try:
        deadline = time.monotonic() + 10
        while not Path(str(report) + ".ready").exists():
            assert reader.poll() is None and time.monotonic() < deadline, "the serving reader did not start"
            time.sleep(0.01)
        started = time.monotonic()
        for i in range(PROMOTIONS):
            await client.promote(f"fraud@{CYCLE[i % len(CYCLE)]}", reason=f"flip {i}")
        elapsed = time.monotonic() - started
    finally:
        stop.touch()
        reader.wait(30)
    result = json.loads(report.read_text())
    print(f"\n{PROMOTIONS} promotions in {elapsed:.1f} s ({PROMOTIONS / elapsed:.0f}/s); the reader made "
          f"{result['iterations']} reads, saw {result['seen']} and {result['switches']} switches")

    assert result["error_count"] == 0, "\n".join(result["errors"])
    assert len(result["seen"]) >= 2 and result["switches"] >= 10, result  # it really read during the flips
    final = CYCLE[(PROMOTIONS - 1) % len(CYCLE)]
    assert (link / "version.txt").read_text() == f"{final}\n"
    assert (link / "weights.bin").read_bytes() == weights_for(final)
    assert (await client.resolve("fraud@production"))["version"] == final
    # No temp links or half-built folders are left behind by the swaps.
    assert sorted(p.name for p in link.parent.iterdir()) == ["production"]
    assert sorted(p.name for p in (daemon.home / "versions").iterdir()) == ["fraud"]
