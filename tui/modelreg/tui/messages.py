"""Messages workers post back to the UI (dataclasses, as in toolong)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message


@dataclass
class EventsPending(Message):
    """Registry events are waiting in the app's queue.

    Carries no data, so a burst of them merges into one (``can_replace``): the handler
    drains everything queued so far in one go.
    """

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EventsPending)


@dataclass
class RegistryEvents(Message):
    """A batch of registry events, delivered to every screen on the stack."""

    events: list[dict[str, Any]]


@dataclass
class ConnectionChanged(Message):
    """The daemon became reachable again (``connected``) or was lost."""

    connected: bool
    url: str
    first: bool = False


@dataclass
class ModelsLoaded(Message):
    """Model summaries; ``replace`` means every model, else only those named (``missing``: gone)."""

    models: list[dict[str, Any]]
    replace: bool = True
    missing: list[str] = field(default_factory=list)


@dataclass
class ModelsChanged(Message):
    """The app's list of models changed (a model appeared, was renamed or deleted)."""


@dataclass
class VersionsPage(Message):
    """A page of version summaries; ``reset`` starts the table over (new filter or model)."""

    model: str
    items: list[dict[str, Any]]
    next: str | None
    total: int
    reset: bool
    generation: int = 0


@dataclass
class VersionsChanged(Message):
    """Fresh summaries of versions that events said had changed (stage, metrics, new)."""

    model: str
    items: list[dict[str, Any]]
    missing: list[int] = field(default_factory=list)


@dataclass
class VersionDetailLoaded(Message):
    detail: dict[str, Any]
    production: dict[str, Any] | None = None


@dataclass
class ModelInfoLoaded(Message):
    model: dict[str, Any]


@dataclass
class HistoryLoaded(Message):
    model: str
    history: dict[str, Any]


@dataclass
class ModelCardLoaded(Message):
    """The version's model card (its README.md); ``text`` is None when it has none."""

    ref: str
    text: str | None
    error: str | None = None


@dataclass
class VerdictLoaded(Message):
    target: str
    verdict: dict[str, Any] | None
    error: str | None = None


@dataclass
class TransitionFinished(Message):
    """A transition or rollback went through; ``result`` is the daemon's answer."""

    kind: str  # transition | rollback
    result: dict[str, Any]


@dataclass
class TransitionRefused(Message):
    message: str
    verdict: dict[str, Any] | None = None


@dataclass
class RequestsLoaded(Message):
    """A model's pending approval requests (issue 12)."""

    model: str
    requests: list[dict[str, Any]]


@dataclass
class VoteRecorded(Message):
    """An approval or rejection went in; ``request`` is the daemon's RequestView after it."""

    decision: str  # approve | reject
    request: dict[str, Any]


@dataclass
class VoteRefused(Message):
    message: str


@dataclass
class CompareLoaded(Message):
    details: list[dict[str, Any]]


@dataclass
class LineageLoaded(Message):
    ref: str
    lineage: dict[str, Any]


@dataclass
class EventsLoaded(Message):
    events: list[dict[str, Any]]
