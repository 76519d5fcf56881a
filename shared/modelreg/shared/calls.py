"""Every /v1 request the clients make, declared once as data.

A function here builds a ``Call`` (method, path, query, body); it never does I/O. The async
client (``client.Client``, aiohttp, for the TUI and long-lived programs) and the light
synchronous one (``sync_client.SyncClient``, the standard library, for the CLI and scripts)
both execute the same calls, so a route, its parameters and its defaults live in one place.
Calls that stream bytes or WebSocket frames (upload, download, the live event stream) are
written per client, beside their transport.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .config import API_PREFIX as V1

Params = list[tuple[str, str]]


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: Params | None = None
    body: Any = None
    pick: str | None = None  # return only this key of the decoded reply


def q(text: str) -> str:
    """One path segment; ``@`` stays readable in refs."""
    return quote(text, safe="@")


def version_path(ref: str) -> str:
    """``NAME@SELECTOR`` → its /v1 path (``NAME`` alone means the latest version)."""
    name, _, selector = ref.partition("@")
    return f"{V1}/models/{q(name)}/versions/{q(selector or 'latest')}"


def _params(**values: Any) -> Params:
    """Query parameters, skipping None; lists become repeated keys, booleans 1/0."""
    out: Params = []
    for key, value in values.items():
        if value is None:
            continue
        for item in value if isinstance(value, list | tuple) else [value]:
            out.append((key, "1" if item is True else "0" if item is False else str(item)))
    return out


def upload_targets(path: Path) -> tuple[list[Path], list[str]]:
    """The files an upload sends, and their relative paths in the version (blocking)."""
    if path.is_dir():
        targets = sorted(p for p in path.rglob("*") if p.is_file())
        return targets, [p.relative_to(path).as_posix() for p in targets]
    if path.is_file():
        return [path], [path.name]
    from .errors import InvalidInput

    raise InvalidInput(f"{path} is neither a file nor a folder")


CALLS: dict[str, Callable[..., Call]] = {}


def call(fn: Callable[..., Call]) -> Callable[..., Call]:
    CALLS[fn.__name__] = fn
    return fn


# -- daemon -------------------------------------------------------------------------------------


@call
def health() -> Call:
    return Call("GET", f"{V1}/health")


@call
def status() -> Call:
    return Call("GET", f"{V1}/status")


# -- models and versions ----------------------------------------------------------------------


@call
def models(*, query: str | None = None, limit: int = 100, cursor: str | None = None) -> Call:
    return Call("GET", f"{V1}/models", _params(limit=limit, q=query or None, cursor=cursor))


@call
def create_model(name: str, *, description: str = "", tags: dict[str, str] | None = None) -> Call:
    return Call("POST", f"{V1}/models", body={"name": name, "description": description, "tags": tags or {}})


@call
def model(name: str) -> Call:
    return Call("GET", f"{V1}/models/{q(name)}")


@call
def update_model(name: str, **fields: Any) -> Call:
    return Call("PATCH", f"{V1}/models/{q(name)}", body=fields)


@call
def versions(name: str, *, stage: str | None = None, status: str | None = None, tags: list[str] | None = None,
             metrics: list[str] | None = None, order: str = "-number", limit: int = 100,
             cursor: str | None = None) -> Call:
    return Call("GET", f"{V1}/models/{q(name)}/versions",
                _params(order=order, limit=limit, stage=stage or None, status=status or None, cursor=cursor or None,
                        tag=tags or None, metric=metrics or None))


@call
def version(ref: str) -> Call:
    return Call("GET", version_path(ref))


@call
def card(ref: str) -> Call:
    """The version's model card: ``{"path", "text"}``; NotFound when it has none."""
    return Call("GET", version_path(ref) + "/card")


@call
def resolve(ref: str, *, path: bool = False) -> Call:
    """Which version a ref names; with ``path``, also a read-only folder of its files."""
    return Call("GET", f"{V1}/resolve/{q(ref)}", _params(path=True) if path else None)


@call
def register(name: str, *, path: str | Path | None = None, files: list[dict[str, Any]] | None = None,
             move: bool = False, wait: bool = False, **metadata: Any) -> Call:
    """Register from a path on the daemon's machine, or from uploaded blobs (``files``).

    Returns ``{"version": …, "job": …}``; with a path and ``wait=False`` the version is
    still ``pending`` and the job reports hashing progress (see ``job()``).
    """
    body: dict[str, Any] = {k: v for k, v in metadata.items() if v not in (None, [], {})}
    body.setdefault("source", "api")
    if path is not None:
        body["path"] = str(Path(path).expanduser().absolute())
        body["mode"] = "move" if move else "copy"
    else:
        body["files"] = files
    return Call("POST", f"{V1}/models/{q(name)}/versions", _params(wait=True) if wait else None, body)


@call
def job(job_id: str, wait: float = 0) -> Call:
    return Call("GET", f"{V1}/jobs/{q(job_id)}", _params(wait=int(wait)) if wait else None)


@call
def cancel_job(job_id: str, wait: float = 10) -> Call:
    """Cancel a running job; waits up to ``wait`` seconds for it to end and returns it."""
    return Call("POST", f"{V1}/jobs/{q(job_id)}/cancel", _params(wait=int(wait)) if wait else None)


@call
def jobs(kind: str | None = None) -> Call:
    return Call("GET", f"{V1}/jobs", _params(kind=kind or None), pick="items")


@call
def record_metrics(ref: str, metrics: dict[str, float] | list[dict[str, Any]], *, source: str | None = None,
                   dataset: str | None = None) -> Call:
    body: dict[str, Any] = {"metrics": metrics}
    if source:
        body["source"] = source
    if dataset:
        body["dataset"] = dataset
    return Call("POST", version_path(ref) + "/metrics", body=body)


# -- compare, search, changing what exists --------------------------------------------------------


def _version_ref(ref: str, other: str) -> None:
    """A bare NAME means NAME@latest elsewhere; here it would hit a version nobody named."""
    if "@" not in str(ref):
        from .errors import InvalidInput

        raise InvalidInput(f"name a version, e.g. {ref}@3 or {ref}@latest ({other} changes the model itself)")


@call
def compare(*refs: str) -> Call:
    """Versions side by side, the first ref the baseline: metrics with judged deltas, params,
    files and safetensors tensors that differ (refs may be of different models)."""
    return Call("GET", f"{V1}/compare", _params(ref=list(refs)))


@call
def search(*, name: str | None = None, tags: list[str] | None = None, metrics: list[str] | None = None,
           facts: list[str] | None = None, datasets: list[str] | None = None, stage: str | None = None,
           status: str | None = None, order: str = "-created", limit: int = 100, cursor: str | None = None) -> Call:
    """A page of versions across every model: ``{"items", "next", "total"}``.

    ``name`` is a glob (``fraud*``); ``tags`` and ``facts`` are ``KEY`` or ``KEY=VALUE``;
    ``metrics`` like ``auc>=0.9``; ``datasets`` ``NAME@VERSION`` or ``NAME``.
    """
    return Call("GET", f"{V1}/search", _params(name=name or None, tag=tags or None, metric=metrics or None,
                                             fact=facts or None, dataset=datasets or None, stage=stage or None,
                                             status=status or None, order=order, limit=limit, cursor=cursor or None))


@call
def update_version(ref: str, *, description: str | None = None, tags: dict[str, str] | None = None,
                   untag: list[str] | None = None) -> Call:
    """Set a version's description, merge ``tags``, remove the ``untag`` keys; returns the version."""
    _version_ref(ref, "update_model")
    body: dict[str, Any] = {}
    if description is not None:
        body["description"] = description
    if tags:
        body["tags"] = tags
    if untag:
        body["untag"] = list(untag)
    return Call("PATCH", version_path(ref), body=body)


@call
def rename_model(name: str, new_name: str, *, reason: str | None = None) -> Call:
    """Rename a model; versions, refs, aliases, gates, history and serving links follow."""
    return Call("POST", f"{V1}/models/{q(name)}/rename", body={"name": new_name, "reason": reason})


@call
def delete_version(ref: str, *, reason: str, force: bool = False) -> Call:
    """Delete one version (its number is never reused; gc purges its files)."""
    _version_ref(ref, "delete_model")
    return Call("DELETE", version_path(ref), body={"reason": reason, "force": force})


@call
def delete_model(name: str, *, reason: str, force: bool = False) -> Call:
    """Delete a model and its versions; its name is free again, its events stay."""
    return Call("DELETE", f"{V1}/models/{q(name)}", body={"reason": reason, "force": force})


# -- lifecycle (PRODUCT.md §4) ------------------------------------------------------------------


@call
def check(ref: str, to: str) -> Call:
    """Dry-run the gates of moving ``ref`` to stage ``to`` (or alias ``@ALIAS`` onto it); returns the verdict."""
    return Call("GET", version_path(ref) + "/check", _params(to=to))


@call
def transition(ref: str, to: str, *, reason: str | None = None, force: bool = False) -> Call:
    """Move a version to a stage; raises GateFailed (details hold the verdict) when gates refuse.

    Returns ``{"version": …, "verdict": …, "archived": [numbers archived by this move]}``.
    """
    return Call("POST", version_path(ref) + "/transition", body={"to": to, "reason": reason, "force": force})


@call
def promote(ref: str, to: str = "production", *, reason: str | None = None, force: bool = False) -> Call:
    return transition(ref, to, reason=reason, force=force)


@call
def archive(ref: str, *, reason: str) -> Call:
    return transition(ref, "archived", reason=reason)


@call
def rollback(name: str, *, reason: str, to: int | None = None) -> Call:
    """Make the previous production version (or ``to``) production again, archiving the current one."""
    return Call("POST", f"{V1}/models/{q(name)}/rollback", body={"reason": reason, "to": to})


@call
def history(name: str, *, at: str | None = None, limit: int = 200) -> Call:
    """Stage changes of a model, newest last; with ``at``, also what each stage held then."""
    return Call("GET", f"{V1}/models/{q(name)}/history", _params(limit=limit, at=at or None))


@call
def aliases(name: str) -> Call:
    return Call("GET", f"{V1}/models/{q(name)}/aliases")


@call
def set_alias(name: str, alias: str, version: int, *, reason: str | None = None, force: bool = False) -> Call:
    """Point NAME@ALIAS at ``version`` through the alias's gates; raises GateFailed (details hold the
    verdict) when they refuse, unless ``force`` with a ``reason`` (audited)."""
    body: dict = {"version": version}
    if reason is not None or force:
        body.update(reason=reason, force=force)
    return Call("PUT", f"{V1}/models/{q(name)}/aliases/{q(alias)}", body=body)


@call
def remove_alias(name: str, alias: str) -> Call:
    return Call("DELETE", f"{V1}/models/{q(name)}/aliases/{q(alias)}")


@call
def protect_alias(name: str, alias: str, protected: bool = True) -> Call:
    """Mark NAME@ALIAS protected (or not): it then moves only by identities with ``promote``."""
    return Call("PUT" if protected else "DELETE", f"{V1}/models/{q(name)}/aliases/{q(alias)}/protection")


@call
def gates(model: str | None = None, stage: str | None = None, alias: str | None = None) -> Call:
    return Call("GET", f"{V1}/gates", _params(model=model or None, stage=stage or None, alias=alias or None))


@call
def add_gate(rule: str, *, stage: str | None = None, model: str | None = None, timeout: float | None = None,
             alias: str | None = None) -> Call:
    """A gate guarding ``stage`` or (exactly one of them) ``alias`` for ``model`` (None: every model)."""
    body = {"rule": rule, "stage": stage, "model": model, "timeout": timeout}
    if alias is not None:
        body["alias"] = alias
    return Call("POST", f"{V1}/gates", body=body)


@call
def remove_gate(gate_id: int) -> Call:
    return Call("DELETE", f"{V1}/gates/{int(gate_id)}")


@call
def hooks() -> Call:
    return Call("GET", f"{V1}/hooks", pick="items")


@call
def audit_verify() -> Call:
    return Call("POST", f"{V1}/audit/verify")


@call
def gc(*, dry_run: bool = True) -> Call:
    return Call("POST", f"{V1}/gc", body={"dry_run": dry_run})


# -- drop folders (PRODUCT.md §6) -----------------------------------------------------------------


@call
def watches() -> Call:
    return Call("GET", f"{V1}/watches", pick="items")


@call
def add_watch(path: str | Path, *, model: str | None = None, mode: str = "move", settle: float = 3.0,
              poll: bool | None = None, **options: Any) -> Call:
    body: dict[str, Any] = {"path": str(Path(path).expanduser().absolute()), "model": model, "mode": mode,
                            "settle": settle, **{k: v for k, v in options.items() if v is not None}}
    if poll is not None:
        body["poll"] = poll
    return Call("POST", f"{V1}/watches", body=body)


@call
def remove_watch(path_or_id: str | Path | int) -> Call:
    key = str(path_or_id)
    if not key.isdigit():
        key = str(Path(key).expanduser().absolute())
    return Call("DELETE", f"{V1}/watches/{quote(key, safe='')}")


# -- lineage, events, integrity ------------------------------------------------------------------


@call
def lineage(ref: str, direction: str = "both") -> Call:
    return Call("GET", f"{V1}/lineage/{q(ref)}", _params(direction=direction))


@call
def dataset_versions(dataset: str) -> Call:
    return Call("GET", f"{V1}/datasets/{q(dataset)}/versions")


@call
def events(*, after: int | None = None, limit: int = 100, model: str | None = None, kind: str | None = None) -> Call:
    return Call("GET", f"{V1}/events", _params(limit=limit, after=after, model=model or None, kind=kind or None))


@call
def verify(ref: str | None = None, wait: bool = False) -> Call:
    return Call("POST", f"{V1}/verify", _params(wait=True) if wait else None, {"ref": ref} if ref else {})


# -- tokens and identity (issue 12) ----------------------------------------------------------------


@call
def whoami() -> Call:
    return Call("GET", f"{V1}/whoami")


@call
def tokens() -> Call:
    return Call("GET", f"{V1}/tokens", pick="items")


@call
def create_token(name: str, scope: str, models: str | None = None, expires: str | None = None) -> Call:
    return Call("POST", f"{V1}/tokens", body={"name": name, "scope": scope, "models": models, "expires": expires})


@call
def revoke_token(name: str) -> Call:
    return Call("DELETE", f"{V1}/tokens/{q(name)}")


# -- approval requests (issue 12) ------------------------------------------------------------------
# A transition or alias move that an ``approvals >= N`` gate holds back returns
# ``{"request": RequestView, "verdict": …}`` (HTTP 202) instead of the move's result.


@call
def requests(model: str | None = None, status: str | None = None, mine: bool = False) -> Call:
    """Approval requests, newest first (``mine``: the ones the caller's identity asked for)."""
    return Call("GET", f"{V1}/requests", _params(model=model or None, status=status or None, mine=mine or None),
                pick="items")


@call
def approval_request(request_id: int) -> Call:
    """One approval request (not ``request``: that name is the clients' generic call)."""
    return Call("GET", f"{V1}/requests/{int(request_id)}")


@call
def approve(request_id: int, reason: str) -> Call:
    """Approve; returns ``{"request", "change"}`` (``change``: the move's result once it ran)."""
    return Call("POST", f"{V1}/requests/{int(request_id)}/approve", body={"reason": reason})


@call
def reject(request_id: int, reason: str) -> Call:
    return Call("POST", f"{V1}/requests/{int(request_id)}/reject", body={"reason": reason})


# -- signatures and trusted keys (issue 12) --------------------------------------------------------


@call
def trusted_keys() -> Call:
    """The public keys and certificates signature bundles are verified with."""
    return Call("GET", f"{V1}/trust", pick="items")


@call
def trust_key(name: str, pem: str) -> Call:
    """Trust a PEM public key or X.509 certificate as ``name`` (never a private key)."""
    return Call("POST", f"{V1}/trust", body={"name": name, "pem": pem})


@call
def untrust_key(name: str) -> Call:
    return Call("DELETE", f"{V1}/trust/{q(name)}")


@call
def attach_signature(ref: str, sha256: str) -> Call:
    """Give a version a signature bundle uploaded to /v1/blobs; returns the version with its check."""
    return Call("PUT", version_path(ref) + "/signature", body={"sha256": sha256})


# -- watchdogs (issue 12) --------------------------------------------------------------------------


@call
def watchdogs(model: str | None = None) -> Call:
    """Watchdogs with their state on the production version; every model's when ``model`` is None."""
    return Call("GET", f"{V1}/models/{q(model)}/watchdogs" if model else f"{V1}/watchdogs", pick="items")


@call
def add_watchdog(model: str, rule: str, *, rollback: bool = False, cooldown: str | float | None = None) -> Call:
    """Watch ``model``'s production monitoring metrics: ``rule`` like 'monitoring:auc < 0.85 for 3 records';
    ``rollback``: roll production back when it fires, at most once per ``cooldown`` (default 1h)."""
    body: dict[str, Any] = {"rule": rule, "rollback": rollback}
    if cooldown is not None:
        body["cooldown"] = cooldown
    return Call("POST", f"{V1}/models/{q(model)}/watchdogs", body=body)


@call
def remove_watchdog(watchdog_id: int) -> Call:
    return Call("DELETE", f"{V1}/watchdogs/{int(watchdog_id)}")
