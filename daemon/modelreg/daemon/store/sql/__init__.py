"""The aggregates, written once for every backend (``tx.py`` says what they are given).

``Aggregates(engine)`` is the registry's storage interface: one object per aggregate, each a
set of async operations in domain terms returning typed records (``records.py``). A backend
(``sqlite/``, ``postgres/``) is an engine plus its migrations and the few spellings its
dialect needs.
"""

from __future__ import annotations

from .approvals import ApprovalStore
from .audit import AuditStore
from .bulk import BulkStore
from .catalog import CatalogStore
from .gates import GateStore
from .gc import GcStore
from .hooks import HookStore
from .leases import LeaseStore
from .lineage import LineageStore
from .metrics import MetricStore
from .mlflow_search import MlflowSearchStore
from .signatures import SignatureStore
from .stages import StageStore
from .stats import StatsStore
from .tokens import TokenStore
from .tracking import TrackingStore
from .tx import Engine
from .versions import VersionStore
from .watchdogs import WatchdogStore
from .watches import WatchStore


class Aggregates:
    backend = "?"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.catalog = CatalogStore(engine)
        self.lineage = LineageStore(engine)
        self.versions = VersionStore(engine)
        self.metrics = MetricStore(engine)
        self.watches = WatchStore(engine)
        self.leases = LeaseStore(engine)  # which daemon runs each watch; this daemon's identity (issue 13)
        self.stages = StageStore(engine)
        self.gates = GateStore(engine)
        self.hooks = HookStore(engine)
        self.audit = AuditStore(engine)
        self.gc = GcStore(engine)
        self.stats = StatsStore(engine)
        self.bulk = BulkStore(engine)
        self.tracking = TrackingStore(engine)  # MLflow's tracking subset and artifact tree
        self.mlflow_search = MlflowSearchStore(engine)  # MLflow's registry views and searches
        self.tokens = TokenStore(engine)  # named, scoped tokens (issue 12)
        self.approvals = ApprovalStore(engine)  # approval requests and votes (issue 12)
        self.watchdogs = WatchdogStore(engine)  # rules on production monitoring metrics (issue 12)
        self.signatures = SignatureStore(engine)  # trusted keys, versions' signature checks (issue 12)

    @property
    def on_commit(self):  # noqa: ANN201 - list of callbacks given each committed write's events
        return self.engine.on_commit

    async def open(self) -> None:
        await self.engine.open()

    async def close(self) -> None:
        await self.engine.close()
