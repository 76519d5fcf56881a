"""Move mode on one filesystem stores a big drop without copying it (issue 4, acceptance 7).

``MODELREG_TEST_DROP_BYTES`` raises the size for the by-hand run (2 GB).
"""

from __future__ import annotations

import json
import os
import time

import pytest

from drops_support import blob_path, daemon_write_bytes, drop_bytes

SIZE = drop_bytes(200 * 1024 * 1024)


@pytest.mark.slow
def test_a_big_move_mode_drop_becomes_the_blob_without_a_copy(daemon, reg, inbox, tmp_path):
    reg.watch(inbox, mode="move", settle=1.0)
    src = tmp_path / "big.safetensors.part"
    block = os.urandom(4 * 1024 * 1024)
    n = SIZE // len(block) * len(block)
    # One U8 tensor of n bytes: a real safetensors file, streamed out without holding it in memory.
    header = json.dumps({"w": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}}).encode()
    with open(src, "wb") as f:
        f.write(len(header).to_bytes(8, "little") + header)
        for _ in range(n // len(block)):
            f.write(block)
        size = f.tell()
    os.sync()  # the test's own writes reach the disk now, not while the daemon is being measured
    st = os.stat(src)
    before = daemon_write_bytes(daemon.proc.pid)

    os.rename(src, inbox / "big.safetensors")  # mv on the same filesystem: the same inode
    moved = time.monotonic()
    event = reg.entry_event("drop.registered", "big.safetensors", timeout=60 + size / 100e6)
    latency = time.monotonic() - moved
    written = daemon_write_bytes(daemon.proc.pid) - before

    v = reg.version("big@1")
    sha = v["files"][0]["sha256"]
    blob = os.stat(blob_path(reg.home, sha))
    print(f"\nmove mode, {size / 1e6:.0f} MB: rename → registered {latency:.2f}s; drop inode {st.st_ino} "
          f"dev {st.st_dev}, blob inode {blob.st_ino} dev {blob.st_dev}; daemon write_bytes +{written:,} "
          f"({written / size:.4%} of the drop)")
    assert (event["version"], v["total_size"], v["facts"]["parameter_count"]) == (1, size, n)
    assert (blob.st_ino, blob.st_dev) == (st.st_ino, st.st_dev), "the blob is the dropped file itself"
    assert blob.st_size == size
    assert not (inbox / "big.safetensors").exists(), "the drop left the folder"
    assert blob.st_nlink == 1, "and the registry holds the only link"
    assert written < size / 100, f"the daemon wrote {written:,} bytes for a {size:,}-byte drop"
