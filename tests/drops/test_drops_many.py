"""200 drops at once, and the same content dropped again (issue 4, acceptance 4)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from drops_support import sha256_of

DROPS = 200


def entry(i: int) -> str:
    return f"d{i:03}" if i % 4 == 0 else f"d{i:03}.bin"


@pytest.mark.slow
def test_200_drops_in_a_few_seconds_are_all_registered_once_and_a_repeat_is_a_duplicate(reg, inbox, tmp_path):
    reg.watch(inbox, model="bulk", settle=1.0)
    keep = tmp_path / "originals"
    keep.mkdir()

    started = time.monotonic()
    for i in range(DROPS):
        data = b"weights of drop %d\n" % i * 200
        (keep / f"d{i:03}.bin").write_bytes(data)
        if i % 4 == 0:  # a folder written in place: its files are often never reported by the OS
            (inbox / entry(i)).mkdir()
            (inbox / entry(i) / "weights.bin").write_bytes(data)
            (inbox / entry(i) / "config.json").write_text('{"drop": %d}' % i)
        elif i % 2:  # written under a temporary name, then renamed
            (inbox / f"d{i:03}.bin.part").write_bytes(data)
            os.rename(inbox / f"d{i:03}.bin.part", inbox / entry(i))
        else:  # copied in (settle decides)
            shutil.copyfile(keep / f"d{i:03}.bin", inbox / entry(i))
        time.sleep(0.01)  # spread over ~2 s, so drops land while earlier ones are being ingested
    landed = time.monotonic() - started
    registered = reg.wait_event("drop.registered", timeout=60, count=DROPS, step=0.2)
    took = time.monotonic() - started
    print(f"\n{DROPS} drops landed in {landed:.2f}s; all registered {took:.1f}s after the first")

    time.sleep(1.5)  # a second registration of any of them would show up by now
    assert len(reg.events("drop.registered")) == DROPS
    assert sorted(e["data"]["entry"] for e in registered) == sorted(entry(i) for i in range(DROPS))
    versions = reg.versions("bulk")
    assert sorted(v["version"] for v in versions) == list(range(1, DROPS + 1)), "200 versions, none twice"
    assert len({v["content_digest"] for v in versions}) == DROPS
    assert sum(v["file_count"] for v in versions) == DROPS + DROPS // 4, "every file of every folder"
    assert reg.events("drop.duplicate") == [] and reg.events("drop.failed") == []
    assert os.listdir(inbox) == []

    # The same file copied back in: a duplicate of its version, not a new one.
    original = next(e["version"] for e in registered if e["data"]["entry"] == "d007.bin")
    after = reg.last_event_id()
    subprocess.run(["cp", str(keep / "d007.bin"), str(inbox / "d007.bin")], check=True)
    dup = reg.entry_event("drop.duplicate", "d007.bin", timeout=15, after=after)
    assert (dup["model"], dup["version"]) == ("bulk", original)
    assert reg.version(f"bulk@{original}")["files"][0]["sha256"] == sha256_of(keep / "d007.bin")
    time.sleep(0.5)
    assert reg.events("drop.registered", after=after) == []
    assert len(reg.versions("bulk")) == DROPS
