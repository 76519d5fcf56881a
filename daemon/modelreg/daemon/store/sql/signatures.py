"""Trusted keys and versions' signature checks (issue 12, migration 11).

A check is recorded in the same write that makes its version ready (``create_ready``,
``mark_ready``, ``register_drop`` here compose the versions' and drops' own transaction
functions with ``record``), so no gate ever sees a ready version whose bundle is not yet
judged. Removing a trusted key turns the checks it passed into ``untrusted`` in the same
write: a name given to another key later never inherits them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from modelreg.shared.errors import Conflict, NotFound
from modelreg.shared.names import Ref
from modelreg.shared.timefmt import iso

from ..records import SignatureCheck, TrustedKeyRecord, VersionRecord
from . import catalog, events, versions, watches
from .tx import Sql, Engine, WriteTx


def key_record(row: Any) -> TrustedKeyRecord:
    return TrustedKeyRecord(id=row["id"], name=row["name"], kind=row["kind"], pem=row["pem"],
                            fingerprint=row["fingerprint"], created_at=row["created_at"], created_by=row["created_by"])


def check_view(check: SignatureCheck, checked_at: float) -> dict[str, Any]:
    """A version's ``signature`` object (the same shape ``catalog`` reads back)."""
    return {"status": check.status, "signer": check.signer, "message": check.message, "checked_at": iso(checked_at)}


def add_key(tx: WriteTx, name: str, kind: str, pem: str, fingerprint: str, actor: str) -> TrustedKeyRecord:
    if tx.one("SELECT 1 FROM trusted_keys WHERE name = ?", (name,)) is not None:
        raise Conflict(f"a trusted key named {name!r} exists; remove it first (modelreg trust rm {name})")
    same = tx.one("SELECT name FROM trusted_keys WHERE fingerprint = ?", (fingerprint,))
    if same is not None:
        raise Conflict(f"this key is trusted already, as {same['name']!r}: one key has one name, the signer "
                       "versions show", {"name": same["name"]})
    row = tx.one("INSERT INTO trusted_keys (name, kind, pem, fingerprint, created_at, created_by) "
                 "VALUES (?, ?, ?, ?, ?, ?) RETURNING *", (name, kind, pem, fingerprint, tx.now, actor))
    events.append(tx, "trust.added", actor, data={"name": name, "kind": kind, "fingerprint": fingerprint})
    return key_record(row)


def remove_key(tx: WriteTx, name: str, actor: str) -> tuple[TrustedKeyRecord, int]:
    """Forget a key; the versions it had verified become ``untrusted``. (the key, how many)."""
    row = tx.one("SELECT * FROM trusted_keys WHERE name = ?", (name,))
    if row is None:
        raise NotFound(f"no trusted key named {name!r}; modelreg trust list shows them")
    rec = key_record(row)
    tx.execute("DELETE FROM trusted_keys WHERE id = ?", (rec.id,))
    cur = tx.execute("UPDATE version_signatures SET status = 'untrusted', signer = NULL, message = ?, checked_at = ? "
                     "WHERE signer = ?", (f"signed by {name}, a key the registry no longer trusts", tx.now, name))
    events.append(tx, "trust.removed", actor, data={"name": name, "kind": rec.kind, "fingerprint": rec.fingerprint,
                                                    "versions_untrusted": cur.rowcount})
    return rec, cur.rowcount


def list_keys(q: Sql) -> list[TrustedKeyRecord]:
    return [key_record(r) for r in q.all("SELECT * FROM trusted_keys ORDER BY name")]


def record(tx: WriteTx, rec: VersionRecord, check: SignatureCheck, bundle_size: int, actor: str) -> SignatureCheck:
    """The version's check (replacing an earlier one), its bundle's blob row (gc keeps it while
    the version is kept), and the ``version.signature`` event; the check as recorded."""
    if check.signer is not None and tx.one("SELECT 1 FROM trusted_keys WHERE name = ?", (check.signer,)) is None:
        # The key was removed while the bundle was being verified: what it verified is untrusted now.
        check = SignatureCheck("untrusted", None, f"signed by {check.signer}, a key the registry no longer trusts",
                               check.bundle_sha256)
    if check.bundle_sha256 is not None:
        tx.execute("INSERT INTO blobs (sha256, size, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                   (check.bundle_sha256, bundle_size, tx.now))
    tx.execute("INSERT INTO version_signatures (version_id, status, signer, message, bundle_sha256, checked_at) "
               "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (version_id) DO UPDATE SET status = excluded.status, "
               "signer = excluded.signer, message = excluded.message, bundle_sha256 = excluded.bundle_sha256, "
               "checked_at = excluded.checked_at",
               (rec.id, check.status, check.signer, check.message, check.bundle_sha256, tx.now))
    events.append(tx, "version.signature", actor, model=rec.model_name, version=rec.number,
                  data={"status": check.status, "signer": check.signer, "message": check.message,
                        "bundle_sha256": check.bundle_sha256})
    return check


def bundle_of(q: Sql, ref: Ref | str) -> tuple[VersionRecord, str | None]:
    """The version a ref names and its bundle's digest (None: no bundle came with it)."""
    rec = catalog.resolve(q, ref)
    row = q.one("SELECT bundle_sha256 FROM version_signatures WHERE version_id = ?", (rec.id,))
    return rec, (row["bundle_sha256"] if row is not None else None)


class SignatureStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- trusted keys ----------------------------------------------------------------------------

    async def add_key(self, name: str, kind: str, pem: str, fingerprint: str, actor: str) -> TrustedKeyRecord:
        return await self.engine.write(lambda tx: add_key(tx, name, kind, pem, fingerprint, actor))

    async def remove_key(self, name: str, actor: str) -> tuple[TrustedKeyRecord, int]:
        return await self.engine.write(lambda tx: remove_key(tx, name, actor))

    async def keys(self) -> list[TrustedKeyRecord]:
        return await self.engine.read(list_keys)

    # -- a version's check, in the write that makes it ready --------------------------------------

    async def create_ready(self, model: str, reg: versions.NewVersion, files: Sequence[versions.File], actor: str,
                           check: SignatureCheck, bundle_size: int) -> tuple[VersionRecord, dict[str, Any]]:
        """``VersionStore.create_ready`` with the version's signature check, in one transaction."""
        def write(tx: WriteTx) -> tuple[VersionRecord, dict[str, Any]]:
            rec = versions.create_ready(tx, model, reg, files, actor)
            recorded = record(tx, rec, check, bundle_size, actor)
            view = {**versions.fresh_detail(tx, rec, reg, files), "signature": check_view(recorded, tx.now)}
            return rec, view
        return await self.engine.write(write)

    async def mark_ready(self, rec: VersionRecord, files: Sequence[versions.File], actor: str,
                         check: SignatureCheck, bundle_size: int) -> VersionRecord:
        """``VersionStore.mark_ready`` with the version's signature check, in one transaction."""
        def write(tx: WriteTx) -> VersionRecord:
            ready = versions.mark_ready(tx, rec, files, actor)
            record(tx, ready, check, bundle_size, actor)
            return ready
        return await self.engine.write(write)

    async def register_drop(self, journal_id: int, model: str, reg: versions.NewVersion,
                            files: Sequence[versions.File], actor: str,
                            data: Callable[[str, VersionRecord], dict[str, Any]],
                            check: SignatureCheck, bundle_size: int) -> watches.DropOutcome:
        """``WatchStore.register_drop`` with the new version's signature check, in one transaction
        (a duplicate keeps the version it duplicates as it is)."""
        def write(tx: WriteTx) -> watches.DropOutcome:
            done = watches.register_drop(tx, journal_id, model, reg, files, actor, data)
            if done.outcome == "registered":
                record(tx, done.version, check, bundle_size, actor)
            return done
        return await self.engine.write(write)

    async def attach(self, version_id: int, check: SignatureCheck, bundle_size: int, actor: str) -> dict[str, Any]:
        """A bundle given after registration: its check replaces the version's; the version's view."""
        def write(tx: WriteTx) -> dict[str, Any]:
            rec = catalog.version_by_id(tx, version_id)
            record(tx, rec, check, bundle_size, actor)
            return catalog.version_detail(tx, rec)
        return await self.engine.write(write)

    async def bundle_of(self, ref: Ref | str) -> tuple[VersionRecord, str | None]:
        return await self.engine.read(lambda q: bundle_of(q, ref))
