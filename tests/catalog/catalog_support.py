"""Helpers for the catalog tests (a module of its own: test files import it by name)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import team_backend
from modelreg.shared.sync_client import SyncClient


class Registry:
    """Registers versions whose files are given as {relpath: bytes}."""

    def __init__(self, client: SyncClient, home: Path, root: Path) -> None:
        self.client, self.home, self.root = client, home, root
        self._n = 0

    def add(self, model: str, files: dict[str, bytes] | None = None, **metadata: Any) -> dict[str, Any]:
        self._n += 1
        folder = self.root / f"{model}-{self._n}"
        for rel, data in (files or {"weights.bin": f"{model}-{self._n}".encode()}).items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data)
        v = self.client.register(model, path=folder, wait=True, **metadata)["version"]
        assert v["status"] == "ready", v
        return v

    def set_facts(self, ref: str, facts: dict[str, Any]) -> None:
        """Store format facts on a version, as the sniffers would have (through the real database)."""
        model, _, number = ref.partition("@")
        with team_backend.connect(self.home) as conn:
            cur = conn.execute("UPDATE versions SET facts = ? WHERE number = ? AND model_id = "
                               "(SELECT id FROM models WHERE name = ?)", (json.dumps(facts), int(number), model))
            assert cur.rowcount == 1

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.client.events(limit=1000, kind=kind)["items"]]


DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2}


def safetensors_bytes(tensors: dict[str, tuple[str, list[int]]]) -> bytes:
    """A valid safetensors file with these tensors (zero-filled data)."""
    import math
    import struct

    header, offset = {}, 0
    for name, (dtype, shape) in tensors.items():
        size = math.prod(shape) * DTYPE_BYTES[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + b"\0" * offset
