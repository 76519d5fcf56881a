"""Typed records the store returns: never a driver's row objects (issue 9).

Every backend builds these from its own rows, so nothing above ``store/`` knows which
database answered. Times are POSIX seconds (floats); views turn them into ISO text.
"""

from __future__ import annotations

from typing import Any

import msgspec


class ModelRecord(msgspec.Struct, frozen=True):
    id: int
    name: str
    description: str
    directions: dict[str, str]
    created_at: float
    updated_at: float
    version_count: int = 0
    production: int | None = None
    staging: int | None = None
    latest: int | None = None
    tags: dict[str, str] = {}


class VersionRecord(msgspec.Struct, frozen=True):
    id: int
    model_id: int
    model_name: str
    number: int
    stage: str
    status: str
    status_message: str
    source: str
    description: str
    content_digest: str | None
    total_size: int
    file_count: int
    facts: dict[str, Any]
    created_at: float
    created_by: str
    updated_at: float
    stage_changed_at: float | None
    purged_at: float | None
    deleted_at: float | None

    @property
    def ref(self) -> str:
        return f"{self.model_name}@{self.number}"


class FileRecord(msgspec.Struct, frozen=True):
    path: str
    sha256: str
    size: int


class EventRecord(msgspec.Struct, frozen=True):
    id: int
    ts: float
    kind: str
    actor: str
    model: str | None
    version: int | None
    data: dict[str, Any]
    hash: str


class WatchRecord(msgspec.Struct, frozen=True):
    """A watched drop folder (``include``/``exclude``: its glob lists)."""

    id: int
    path: str
    model: str | None
    mode: str
    settle: float
    poll: bool
    include: list[str]
    exclude: list[str]
    created_at: float


class JournalRecord(msgspec.Struct, frozen=True):
    """One ingest-journal row (a drop's progress), with its watch's path and mode."""

    id: int
    watch_id: int
    entry: str
    fingerprint: str
    state: str
    watch_path: str
    watch_mode: str


class DropOutcome(msgspec.Struct, frozen=True):
    """What committing a drop did: ``registered`` a new version, or found a ``duplicate`` of one."""

    outcome: str
    version: VersionRecord


class SeedVersion(msgspec.Struct):
    """One version for ``store.bulk.seed``: what a registration stores, already ready."""

    files: list[FileRecord]
    metrics: dict[str, float] = {}
    params: dict[str, str] = {}
    tags: dict[str, str] = {}
    description: str = ""


class HookRecord(msgspec.Struct, frozen=True):
    id: int
    kind: str  # webhook | command
    target: str
    secret: str | None
    event_kinds: str  # comma-separated globs; empty: every kind
    model: str | None
    stage: str | None
    created_at: float


class DueDelivery(msgspec.Struct, frozen=True):
    """A pending hook delivery whose time has come, with what sending it needs."""
    id: int
    hook_id: int
    event_id: int
    attempts: int
    kind: str
    target: str
    secret: str | None
    event: dict[str, Any] | None  # the event's API view; None when the row left the log


class GcPlan(msgspec.Struct, frozen=True):
    """What a gc run would remove, read in one hop."""
    versions: list[str]  # refs (name@N) of the versions past retention
    version_ids: list[int]
    blobs: list[tuple[str, int]]  # (sha256, size) no kept version references
    protected_former_production: int
    known_blobs: frozenset[str]  # every blob the database records (orphans are the files it does not)


# -- stages and gates (store/sqlite/stages.py, gates.py) -----------------------------------------


class GateRecord(msgspec.Struct, frozen=True):
    id: int
    model: str | None  # None: the registry-wide default
    stage: str | None  # the stage it guards; None for an alias gate
    rule: str
    timeout: float | None
    created_at: float
    created_by: str
    alias: str | None = None  # the alias it guards (stage None)


class GateFacts(msgspec.Struct, frozen=True):
    """What the gates look at, read in one hop: the version and the production version it would replace."""

    version: VersionRecord
    metrics: dict[str, float]
    metric_sources: list[str]
    params: dict[str, str]
    tags: dict[str, str]
    relations: list[str]  # lineage relations the version has (trained_on, produced_by, ...)
    directions: dict[str, str]
    production_number: int | None
    production_metrics: dict[str, float]
    signature_status: str | None = None  # version_signatures.status (issue 12); None: no bundle
    signer: str | None = None


class GateDecision(msgspec.Struct, frozen=True):
    """A service's answer on fresh state: commit the change (passed or forced) or record a refusal."""

    allowed: bool
    forced: bool
    verdict: dict[str, Any] | None  # stored with the change; None when the target has no gates
    approvals_needed: int = 0  # > 0: refused only for want of approvals; open a request needing this many


class TransitionOutcome(msgspec.Struct, frozen=True):
    before: VersionRecord  # the version as the transition found it under the lock
    decision: GateDecision
    view: dict[str, Any] | None = None  # the version's detail after the change; None when refused
    archived: list[int] = []
    request: dict[str, Any] | None = None  # the approval request opened (or joined) instead of the move


class AliasOutcome(msgspec.Struct, frozen=True):
    before: VersionRecord  # the version the alias was to point at, as the write found it
    decision: GateDecision | None  # None when no gate guards the alias
    aliases: dict[str, int] | None = None  # the model's aliases after the move; None when refused
    request: dict[str, Any] | None = None  # the approval request opened (or joined) instead of the move


class StageChangeRecord(msgspec.Struct, frozen=True):
    id: int
    ts: float
    number: int
    from_stage: str
    to_stage: str
    kind: str  # transition | replaced | rollback
    actor: str
    reason: str
    forced: bool
    verdict: dict[str, Any] | None
    event_id: int | None
    approvals: list[str] = []  # the identities whose approvals let the change through (issue 12)


class RollbackPlan(msgspec.Struct, frozen=True):
    current: VersionRecord | None  # the production version now
    target: VersionRecord | None
    target_files: list[FileRecord] = []


class ServingTarget(msgspec.Struct, frozen=True):
    stage: str
    model: str  # the stored spelling
    version: VersionRecord | None
    files: list[FileRecord] = []


# -- catalog (store/sqlite/catalog.py) -------------------------------------------------------------


DEFAULT_PAGE = 100  # versions or models per page when the client does not say (every backend)
MAX_PAGE = 1000


class SearchQuery(msgspec.Struct, frozen=True):
    """A registry-wide version search, already validated (services/search.py)."""

    name: str | None = None  # a glob on the model name, case-insensitive
    tags: list[tuple[str, str | None]] = []  # (key, value or None for "has the key"), version or model
    metrics: list[str] = []  # latest-value filters such as auc>=0.9
    facts: list[tuple[str, str | None]] = []  # anywhere in the version's facts
    datasets: list[tuple[str, str | None]] = []  # (name, version or None for any version)
    stage: str | None = None
    status: str | None = None
    order: str = "-created"
    limit: int = 100
    cursor: str | None = None


# -- MLflow tracking subset (store/sqlite/tracking.py) ---------------------------------------------
# MLflow's timestamps stay integer milliseconds here, as its client sends and reads them.


class MlflowExperiment(msgspec.Struct, frozen=True):
    id: int
    name: str
    artifact_location: str
    lifecycle_stage: str
    created_ms: int
    updated_ms: int
    tags: dict[str, str] = {}


class MlflowMetric(msgspec.Struct, frozen=True):
    key: str
    value: float  # NaN survives the round trip (stored as a flag)
    timestamp: int
    step: int
    model_id: str | None = None


class MlflowRun(msgspec.Struct, frozen=True):
    run_id: str
    experiment_id: int
    name: str
    user_id: str
    status: str
    start_ms: int | None
    end_ms: int | None
    lifecycle_stage: str
    artifact_uri: str
    params: dict[str, str] = {}
    tags: dict[str, str] = {}
    metrics: list[MlflowMetric] = []  # the latest value per key (by step, then timestamp)
    outputs: list[tuple[str, int]] = []  # (logged model id, step)


class MlflowLoggedModel(msgspec.Struct, frozen=True):
    model_id: str
    experiment_id: int
    name: str
    artifact_uri: str
    status: str
    status_message: str
    model_type: str
    source_run_id: str | None
    lifecycle_stage: str
    created_ms: int
    updated_ms: int
    tags: dict[str, str] = {}
    params: dict[str, str] = {}
    metrics: list[MlflowMetric] = []


class RunFacts(msgspec.Struct, frozen=True):
    """What a registry version takes from the MLflow run that produced it (its lineage run)."""

    experiment: str | None
    started_at: float | None  # Unix seconds
    ended_at: float | None
    params: dict[str, str]
    metrics: dict[str, float]  # the latest value per key
    user: str


class ArtifactEntry(msgspec.Struct, frozen=True):
    """One entry of an mlflow-artifacts listing: a file (with its size) or a folder."""

    path: str
    is_dir: bool
    size: int | None = None


# -- MLflow registry views (store/sqlite/mlflow_search.py) -----------------------------------------


class MlflowVersion(msgspec.Struct, frozen=True):
    """A version with what MLflow's ModelVersion shows beyond our row, read in the same statement."""

    version: VersionRecord
    tags: dict[str, str]
    aliases: list[str]
    run_id: str | None  # the lineage run that produced it


class MlflowModel(msgspec.Struct, frozen=True):
    """A model as MLflow's RegisteredModel shows it: tags, aliases, the latest version per stage."""

    name: str
    description: str
    created_at: float
    updated_at: float
    tags: dict[str, str]
    aliases: dict[str, int]
    latest: list[MlflowVersion]


class MlflowPage(msgspec.Struct, frozen=True):
    """One page of an MLflow search; ``next_offset`` None on the last page."""

    items: list[Any]
    next_offset: int | None


class TokenRecord(msgspec.Struct, frozen=True):
    """A named token (issue 12); the secret itself is never stored, only its sha256."""

    id: int
    name: str
    scope: str
    models: str | None
    created_at: float
    created_by: str
    expires_at: float | None
    revoked_at: float | None
    revoked_by: str | None
    last_used_at: float | None


class TrustedKeyRecord(msgspec.Struct, frozen=True):
    """A public key or certificate signatures are verified with (issue 12); never a private key."""

    id: int
    name: str
    kind: str  # key | certificate
    pem: str
    fingerprint: str  # sha256 of the DER public key
    created_at: float
    created_by: str


class SignatureCheck(msgspec.Struct, frozen=True):
    """What verifying a version's signature bundle found (issue 12): status signed | mismatch |
    untrusted | invalid; signer the trusted key's name (signed, mismatch); the bundle's blob."""

    status: str
    signer: str | None
    message: str
    bundle_sha256: str | None


# -- watchdogs (store/sqlite/watchdogs.py; issue 12) -----------------------------------------------


class WatchdogRecord(msgspec.Struct, frozen=True):
    """A rule on a model's production monitoring metrics (``rule`` as services/watchdogs.py wrote it)."""

    id: int
    model: str
    rule: str
    rollback: bool
    cooldown: float  # seconds between two automatic rollbacks
    created_at: float
    created_by: str
    last_fired_at: float | None
    last_rollback_at: float | None


class WatchdogTrip(msgspec.Struct, frozen=True):
    """One firing: the version that tripped, the values it saw, what became of the rollback."""

    id: int
    watchdog_id: int
    version: int  # the number of the version that tripped it
    observed: list[float]
    rollback_to: int | None  # the version a rollback was started towards
    rolled_back_to: int | None
    note: str  # why it did not roll back ('' when it did, or while it runs)
    fired_at: float
    finished: bool  # its watchdog.fired event is written


class WatchdogFacts(msgspec.Struct, frozen=True):
    """What a watchdog looks at, read in one hop: the production version's latest monitoring
    records of the key (newest first, at most the rule's window), the newest record a trip of
    it already counted, and where a rollback could go."""

    watchdog: WatchdogRecord
    production_id: int | None
    production: int | None  # its number
    records: list[tuple[int, float]]  # (metric id, value), newest first
    counted_through: int  # records up to this metric id belong to an earlier trip on this version
    candidates: list[int]  # former production versions (numbers), the most recent first, deployable
    tripped: list[int]  # version numbers that tripped this watchdog
    trips: list[WatchdogTrip] = []  # the latest trips, newest first


class WatchdogFiring(msgspec.Struct, frozen=True):
    """A service's decision that a watchdog fires: what the trip records, where to roll back."""

    watchdog_id: int
    version_id: int
    version: int
    observed: list[float]
    last_metric_id: int
    rollback_to: int | None  # None: no rollback (``note`` says why)
    note: str


class StartedTrip(msgspec.Struct, frozen=True):
    """A trip whose rollback the service runs next (its event follows the rollback)."""

    trip_id: int
    firing: WatchdogFiring
    model: str
    rule: str
    previous_rollback_at: float | None  # put back when the rollback fails: the cooldown is not spent
