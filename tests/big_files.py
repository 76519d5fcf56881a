"""A big real model file for the tests that must catch a daemon in the middle of storing one."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path


def big_safetensors(path: Path, size: int) -> Path:
    """A real safetensors file of about ``size`` bytes (one U8 tensor of random bytes): the
    register pipeline refuses a broken one, and hashing it takes seconds."""
    block = os.urandom(4 * 1024 * 1024)
    count = max(1, size // len(block))
    header = json.dumps({"w": {"dtype": "U8", "shape": [count * len(block)],
                               "data_offsets": [0, count * len(block)]}}).encode()
    header += b" " * (-len(header) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        for _ in range(count):
            f.write(block)
    return path
