"""Helpers shared by the governance tests (a module of its own: test files import it by name)."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelreg.shared.sync_client import SyncClient

MODEL = "fraud"


@dataclass
class TokenClient:
    """A named token: its secret, and a client that acts as it (the actor header it sends is
    ignored by the daemon for a named token; it is set to something else to prove it)."""

    name: str
    secret: str
    client: SyncClient

    def __getattr__(self, item: str) -> Any:
        return getattr(self.client, item)


def make_token(admin: SyncClient, url: str, name: str, scope: str, models: str | None = None,
               expires: str | None = None) -> TokenClient:
    created = admin.create_token(name, scope, models=models, expires=expires)
    return TokenClient(name, created["token"], SyncClient(url=url, token=created["token"], actor="impostor@elsewhere"))


def model_folder(root: Path, number: int, extra: dict[str, bytes] | None = None) -> Path:
    """A model folder whose bytes only version ``number`` has."""
    folder = root / f"v{number}"
    folder.mkdir(parents=True, exist_ok=True)
    seed = hashlib.sha256(f"weights-{number}".encode()).digest()
    (folder / "weights.bin").write_bytes(seed * 2048)
    (folder / "version.txt").write_text(f"{number}\n")
    for rel, data in (extra or {}).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder


def register(client: SyncClient, root: Path, number: int, model: str = MODEL, **metrics: float) -> dict[str, Any]:
    """Register ``model`` from a fresh folder and wait until it is ready; returns the version."""
    out = client.register(model, path=model_folder(root, number), wait=True, metrics=metrics or None)
    v = out["version"]
    assert v["status"] == "ready", v
    return v


def mlflow_transition(url: str, secret: str, name: str, version: int, stage: str) -> tuple[int, dict]:
    """MLflow's transition-stage call as the stock client sends it: (status, decoded reply)."""
    body = {"name": name, "version": str(version), "stage": stage}
    request = urllib.request.Request(url + "/api/2.0/mlflow/model-versions/transition-stage", method="POST",
                                     data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
