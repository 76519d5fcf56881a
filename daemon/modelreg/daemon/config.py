"""Daemon settings, from the command line and the environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelreg.shared.config import DEFAULT_HOST, DEFAULT_PORT, ServerTls


@dataclass(frozen=True)
class DaemonConfig:
    home: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_body: int = 8 * 1024 * 1024            # JSON/msgpack request bodies
    max_upload: int = 256 * 1024 * 1024 * 1024  # one streamed blob upload
    upload_ttl: float = 24 * 3600              # MODELREG_UPLOAD_TTL: a resumable upload idle this long is removed
    workers: int = 0                           # hashing threads; 0 = one per core, at least 2
    hook_backoff: float = 1.0                  # first retry delay of a failed hook delivery, doubling
    database: str | None = None                # MODELREG_DATABASE; None: SQLite at HOME/registry.db
    artifacts: str | None = None               # MODELREG_ARTIFACTS=s3://bucket/prefix; None: HOME/blobs only
    mlflow_roots: tuple[Path, ...] = ()        # MODELREG_MLFLOW_ROOTS: folders an MLflow source path may lie in
    approval_ttl: float = 7 * 86400            # MODELREG_APPROVAL_TTL: an undecided approval request then expires
    tls: ServerTls | None = None               # --tls-cert/--tls-key: serve https; None: plain http

    @property
    def db_path(self) -> Path:
        return self.home / "registry.db"
