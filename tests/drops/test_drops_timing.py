"""When a drop is taken: a slow writer, and an atomic rename (issue 4, acceptance 2).

Sizes and times are small by default; ``MODELREG_TEST_DROP_BYTES`` and
``MODELREG_TEST_SLOW_WRITE_S`` raise them for the by-hand run (2 GB over ~20 s).
"""

from __future__ import annotations

import hashlib
import os
import time
from datetime import datetime
from pathlib import Path

import pytest

from drops_support import drop_bytes, write_safetensors

SLOW_BYTES = drop_bytes(200 * 1024 * 1024)
SLOW_SECONDS = float(os.environ.get("MODELREG_TEST_SLOW_WRITE_S", 5))
CHUNK = 4 * 1024 * 1024


def epoch(iso_time: str) -> float:
    return datetime.fromisoformat(iso_time.replace("Z", "+00:00")).timestamp()


def write_slowly(path: Path, size: int, seconds: float) -> tuple[str, float]:
    """Write ``size`` bytes in 4 MB chunks spread over ``seconds``; returns (sha256, time of the last write)."""
    block = bytearray(b"raw weights, not a pickle\n" + os.urandom(CHUNK))[:CHUNK]
    chunks = max(1, -(-size // CHUNK))
    pause = seconds / chunks
    digest = hashlib.sha256()
    start = time.monotonic()
    with open(path, "wb") as f:
        for i in range(chunks):
            block[-8:] = i.to_bytes(8, "little")  # every chunk differs
            part = bytes(block[: min(CHUNK, size - i * CHUNK)])
            f.write(part)
            f.flush()
            digest.update(part)
            # Keep to the schedule: the writer never pauses for as long as the settle time.
            time.sleep(max(0.0, start + (i + 1) * pause - time.monotonic()))
    return digest.hexdigest(), time.time()


@pytest.mark.slow
def test_a_slowly_written_file_is_registered_once_after_the_writer_finishes(reg, inbox):
    reg.watch(inbox, settle=1.0)

    started = time.monotonic()
    sha, last_write = write_slowly(inbox / "slow.bin", SLOW_BYTES, SLOW_SECONDS)
    wrote = time.monotonic() - started
    event = reg.entry_event("drop.registered", "slow.bin", timeout=60 + SLOW_BYTES / 50e6)
    after_write = time.time() - last_write

    v = reg.version("slow@1")
    print(f"\nslow write: {SLOW_BYTES / 1e6:.0f} MB over {wrote:.1f}s; registered {after_write:.2f}s after the "
          f"last write (settle 1s); version created {epoch(v['created_at']) - last_write:+.2f}s after it")
    assert event["version"] == 1
    assert [x["version"] for x in reg.versions("slow")] == [1], "registered once"
    assert len(reg.events("drop.detected")) == 1, "never taken while it was being written"
    assert (v["total_size"], v["files"][0]["size"], v["files"][0]["sha256"]) == (SLOW_BYTES, SLOW_BYTES, sha)
    assert epoch(v["created_at"]) >= last_write, "the version exists only after the writer's last write"
    assert not (inbox / "slow.bin").exists()


def test_a_part_file_renamed_into_place_is_registered_within_a_second(reg, inbox):
    # A settle time far above the bound: only the rename can explain a fast registration.
    reg.watch(inbox, settle=5.0)
    latencies = []
    # The writers' usual temporary names: x.part, the final name + .part, rsync's .NAME.XXXXXX.
    for i, temp in enumerate(["x0.part", "x1.safetensors.part", ".x2.safetensors.Ab12Cd"]):
        after = reg.last_event_id()
        params = write_safetensors(inbox / temp, i)
        time.sleep(0.3)  # the writer takes its time; the temporary name alone keeps it from being taken
        assert reg.events("drop.detected", after=after) == [], f"{temp} is never taken"
        os.rename(inbox / temp, inbox / f"x{i}.safetensors")
        renamed = time.monotonic()
        event = reg.entry_event("drop.registered", f"x{i}.safetensors", timeout=10, after=after)
        latency = time.monotonic() - renamed
        latencies.append(latency)
        v = reg.version(f"x{i}@1")
        assert (event["model"], v["status"], v["facts"]["parameter_count"]) == (f"x{i}", "ready", params)
    print(f"\nrename → drop.registered: {', '.join(f'{t * 1000:.0f} ms' for t in latencies)} (settle 5s)")
    assert max(latencies) < 1.5, latencies


def test_a_slow_writer_is_not_taken_early_because_another_drop_was_renamed_in_beside_it(reg, inbox):
    """An atomic rename next to a slow writer must not make the slow writer's file count as renamed in."""
    reg.watch(inbox, settle=2.0)
    params = write_safetensors(inbox / "fast.part", 1)
    time.sleep(0.5)  # fast.part's own events are long delivered
    digest = hashlib.sha256()
    with open(inbox / "slow.bin", "wb") as f:
        for i in range(5):
            chunk = (b"raw weights, chunk %d\n" % i) * 50_000
            f.write(chunk)
            f.flush()
            digest.update(chunk)
            if i == 0:  # in the same event batch as the slow writer's first bytes
                os.rename(inbox / "fast.part", inbox / "fast.safetensors")
            time.sleep(0.6)  # pauses well under the settle time
        size = f.tell()
    last_write = time.time()
    assert reg.entry_event("drop.registered", "fast.safetensors", timeout=5)["version"] == 1
    assert reg.version("fast@1")["facts"]["parameter_count"] == params

    event = reg.entry_event("drop.registered", "slow.bin", timeout=15)
    v = reg.version("slow@1")
    assert (event["version"], v["total_size"]) == (1, size), "registered whole, not as it was mid-write"
    assert v["files"][0]["sha256"] == digest.hexdigest()
    assert epoch(v["created_at"]) >= last_write
    assert [x["version"] for x in reg.versions("slow")] == [1]
