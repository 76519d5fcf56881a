"""The SQLite backend: the embedded default (PRODUCT.md §5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .approvals import ApprovalStore
from .audit import AuditStore
from .bulk import BulkStore
from .catalog import CatalogStore
from .engine import SqliteEngine
from .gates import GateStore
from .gc import GcStore
from .hooks import HookStore
from .lineage import LineageStore
from .metrics import MetricStore
from .mlflow_search import MlflowSearchStore
from .stages import StageStore
from .stats import StatsStore
from .signatures import SignatureStore
from .tokens import TokenStore
from .tracking import TrackingStore
from .versions import VersionStore
from .watches import WatchStore
from .watchdogs import WatchdogStore


class SqliteStore:
    backend = "sqlite"

    def __init__(self, path: Path) -> None:
        self.engine = SqliteEngine(path)
        self.catalog = CatalogStore(self.engine)
        self.lineage = LineageStore(self.engine)
        self.versions = VersionStore(self.engine)
        self.metrics = MetricStore(self.engine)
        self.watches = WatchStore(self.engine)
        self.stages = StageStore(self.engine)
        self.gates = GateStore(self.engine)
        self.hooks = HookStore(self.engine)
        self.audit = AuditStore(self.engine)
        self.gc = GcStore(self.engine)
        self.stats = StatsStore(self.engine)
        self.bulk = BulkStore(self.engine)
        self.tracking = TrackingStore(self.engine)  # MLflow's tracking subset and artifact tree
        self.mlflow_search = MlflowSearchStore(self.engine)  # MLflow's registry views and searches
        self.tokens = TokenStore(self.engine)  # named, scoped tokens (issue 12)
        self.approvals = ApprovalStore(self.engine)  # approval requests and votes (issue 12)
        self.watchdogs = WatchdogStore(self.engine)  # rules on production monitoring metrics (issue 12)
        self.signatures = SignatureStore(self.engine)  # trusted keys, versions' signature checks (issue 12)

    @property
    def on_commit(self):  # noqa: ANN201 - list of callbacks given each committed group's events
        return self.engine.on_commit

    def commit_stats(self) -> dict[str, int | str]:
        """Group commit at work: writes acknowledged and the commits (fsyncs) they took."""
        return {"backend": self.backend, "writes": self.engine.grouped_writes, "commits": self.engine.groups}

    async def durability(self) -> dict[str, Any]:
        """The live connections' journal mode, synchronous level, foreign keys (issue 11)."""
        return await self.engine.settings()

    async def open(self) -> None:
        await self.engine.open()

    async def close(self) -> None:
        await self.engine.close()
