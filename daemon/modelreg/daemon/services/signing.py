"""Signed models (issue 12, PRODUCT.md §4): trusted keys, and verifying OpenSSF Model Signing bundles.

A bundle (``model_signing``: a Sigstore bundle whose DSSE envelope carries an in-toto
statement listing every file's digest) is verified offline, in the pool, with the
library's own verifiers, against each trusted key or certificate. The manifest it yields
is compared with the version's stored file digests: the library's default hashing is one
sha256 per file, which is exactly what the registry's manifest holds, so nothing is read
again; a bundle made with another hash or by shards has the version's blobs hashed by the
library itself (through a tree of hardlinks, no copy).

Every bundle given yields one check, never silently nothing: ``signed`` (a trusted key's
signature, the files match; signer = that key's name), ``mismatch`` (a trusted key's
signature, but the files differ: which ones, in the message), ``untrusted`` (a bundle no
trusted key verifies) or ``invalid`` (not a bundle, or one whose signature does not hold).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import pathlib
import tempfile
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from modelreg.shared.errors import InvalidInput, NotFound, PayloadTooLarge
from modelreg.shared.timefmt import iso

from ..artifacts import remote
from ..artifacts.blobs import BlobStore
from ..store import Store
from ..store.records import SignatureCheck, TrustedKeyRecord
from .gates import _IDENTITY as KEY_NAME  # the names a `signed_by NAME` rule accepts

log = logging.getLogger("modelreg.daemon.signing")

MAX_BUNDLE = 32 * 1024 * 1024  # a manifest of 100,000 files is ~20 MB
MAX_KEY_FILE = 64 * 1024
EC_CURVES = ("secp256r1", "secp384r1", "secp521r1")  # what model_signing signs with
# model_signing's hashing.Config leaves these out of every manifest unless told otherwise.
GIT_PATHS = (".git", ".gitattributes", ".github", ".gitignore")
SHOWN = 10  # files named per kind of difference

File = tuple[str, str, int]  # (manifest path, sha256, size)


# -- trusted keys ----------------------------------------------------------------------------------


def validate_key_name(name: object) -> str:
    if not isinstance(name, str) or not KEY_NAME.match(name):
        raise InvalidInput(f"a trusted key's name is 1-64 lowercase letters, digits, '.', '_' or '-', starting "
                           f"with a letter or digit (gate rules name it: 'signed_by release-key'), not "
                           f"{str(name)[:80]!r}")
    return name


def read_trusted(pem: object) -> tuple[str, str, str]:
    """A PEM public key or X.509 certificate: (kind, its PEM as stored, fingerprint).

    A private key is refused, and never stored; the fingerprint is the sha256 of the DER
    public key (``openssl pkey -pubin -outform DER | sha256sum``)."""
    if not isinstance(pem, str) or not pem.strip():
        raise InvalidInput("give the PEM text of a public key or an X.509 certificate", {"field": "pem"})
    if len(pem) > MAX_KEY_FILE:
        raise PayloadTooLarge(f"a key file is at most {MAX_KEY_FILE // 1024} KB")
    if "PRIVATE KEY" in pem:
        raise InvalidInput("this is a private key: trust the PUBLIC key (openssl pkey -in KEY -pubout) or a "
                           "certificate; the private key stays with whoever signs (it was not stored)",
                           {"field": "pem"})
    data = pem.encode()
    if "BEGIN CERTIFICATE" in pem:
        try:
            cert = x509.load_pem_x509_certificate(data)
        except ValueError as exc:
            raise InvalidInput(f"not a readable PEM certificate: {exc}", {"field": "pem"}) from None
        return "certificate", cert.public_bytes(serialization.Encoding.PEM).decode(), _fingerprint(cert.public_key())
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InvalidInput(f"not a PEM public key or X.509 certificate ({exc})", {"field": "pem"}) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in EC_CURVES:
        raise InvalidInput("model_signing signs with elliptic-curve keys (P-256, P-384 or P-521); this key is "
                           f"{getattr(getattr(key, 'curve', None), 'name', type(key).__name__)}", {"field": "pem"})
    stored = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "key", stored.decode(), _fingerprint(key)


def _fingerprint(key: Any) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def key_view(rec: TrustedKeyRecord) -> dict[str, Any]:
    view = {"name": rec.name, "kind": rec.kind, "fingerprint": rec.fingerprint,
            "created_at": iso(rec.created_at), "created_by": rec.created_by}
    if rec.kind == "certificate":
        cert = x509.load_pem_x509_certificate(rec.pem.encode())
        view["subject"] = cert.subject.rfc4514_string()
        view["not_after"] = iso(cert.not_valid_after_utc.timestamp())
    return view


# -- verifying a bundle (blocking: runs in the pool) -------------------------------------------------


def verify(bundle: pathlib.Path, sha: str, files: Sequence[File], keys: Sequence[TrustedKeyRecord],
           blobs: BlobStore) -> SignatureCheck:
    """Judge the bundle at ``bundle`` (digest ``sha``) against a version's files with every trusted key."""
    from model_signing._signing import sign_sigstore_pb

    try:
        signature = sign_sigstore_pb.Signature.read(bundle)
        envelope = signature.bundle.dsse_envelope
        if envelope is None or not envelope.signatures:
            raise ValueError("it has no signed DSSE envelope")
    except Exception as exc:  # noqa: BLE001 - whatever the parser trips on, the bundle is not one
        return SignatureCheck("invalid", None, f"the signature bundle is unreadable: {_short(exc)}", sha)
    with tempfile.TemporaryDirectory(prefix="modelreg-keys-") as tmp:
        found = _verified_manifest(signature, keys, pathlib.Path(tmp))
    if isinstance(found, SignatureCheck):
        return SignatureCheck(found.status, found.signer, found.message, sha)
    signer, manifest = found
    try:
        differences = _differences(manifest, files, blobs)
    except (ValueError, KeyError, TypeError) as exc:
        return SignatureCheck("invalid", signer, f"the bundle signed by {signer} lists no usable manifest: "
                                                 f"{_short(exc)}", sha)
    if differences:
        return SignatureCheck("mismatch", signer, "signature does not match: " + "; ".join(differences), sha)
    return SignatureCheck("signed", signer, f"signed by {signer}", sha)


def _verified_manifest(signature: Any, keys: Sequence[TrustedKeyRecord],
                       tmp: pathlib.Path) -> tuple[str, Any] | SignatureCheck:
    """(signer, manifest) from the first trusted key that verifies the bundle, else the check saying why not."""
    from model_signing._signing import sign_certificate, sign_ec_key

    material = signature.bundle.verification_material
    by_certificate = material.x509_certificate_chain is not None
    hint = material.public_key.hint if material.public_key is not None else None
    candidates = [k for k in keys if k.kind == ("certificate" if by_certificate else "key")]
    if hint:  # a key bundle names its key: sha256 of its PEM, as model_signing writes it
        candidates = [k for k in candidates if hashlib.sha256(k.pem.encode()).hexdigest() == hint]
    for key in candidates:
        path = tmp / f"{key.id}.pem"
        path.write_text(key.pem)
        try:
            if by_certificate:
                verifier = sign_certificate.Verifier([path])
                try:
                    verifier._verify_certificates(material)  # the chain, apart from the signature below
                except Exception:  # noqa: BLE001 - OpenSSL's chain errors: this certificate did not issue it
                    continue
            else:
                verifier = sign_ec_key.Verifier(path)
            verifier._verify_signed_content(signature)  # the signature alone: the envelope is the key's
        except (InvalidSignature, ValueError, KeyError, TypeError) as exc:
            if not (hint or by_certificate):
                continue  # a bundle that names no key (an older format, Sigstore's keyless): try the next
            return SignatureCheck("invalid", None, f"the bundle names the trusted key {key.name} but does not "
                                                   f"verify with it (altered or corrupt): {_short(exc)}", None)
        try:
            return key.name, verifier.verify(signature)  # the in-toto statement, as a manifest
        except (ValueError, KeyError, TypeError) as exc:
            return SignatureCheck("invalid", key.name, f"the bundle signed by {key.name} holds no model signing "
                                                       f"manifest: {_short(exc)}", None)
    what = ("a certificate no trusted certificate issued" if by_certificate
            else f"a key the registry does not trust (sha256 {hint[:16]}…)" if hint
            else "a key the registry does not trust")
    return SignatureCheck("untrusted", None, f"signed by {what}", None)


def _differences(manifest: Any, files: Sequence[File], blobs: BlobStore) -> list[str]:
    """What differs between the signed manifest and the version's files (empty: they match)."""
    kind = manifest.serialization_type
    ignored = [pathlib.PurePosixPath(p) for p in (*kind.get("ignore_paths", ()), *GIT_PATHS)]
    kept = [f for f in files if not any(pathlib.PurePosixPath(f[0]).is_relative_to(i) for i in ignored)]
    signed = {rd.identifier: rd.digest.digest_hex for rd in manifest.resource_descriptors()}
    if kind.get("method") == "files" and kind.get("hash_type") == "sha256":
        actual = {path: sha for path, sha, _ in kept}
    else:
        actual = _hashed_by_library(manifest, kept, blobs)
    if set(signed) == {"."} and len(actual) == 1:  # a single file signed on its own
        actual = {".": next(iter(actual.values()))}

    def path_of(identifier: str) -> str:  # a shard is path:start:end
        return identifier.rsplit(":", 2)[0] if kind.get("method") == "shards" else identifier

    changed = sorted({path_of(i) for i in signed.keys() & actual.keys() if signed[i] != actual[i]})
    missing = sorted({path_of(i) for i in signed.keys() - actual.keys()} - set(changed))
    extra = sorted({path_of(i) for i in actual.keys() - signed.keys()} - set(changed))
    return [_listed(names, word) for names, word in ((changed, "changed"), (missing, "missing"), (extra, "not signed"))
            if names]


def _hashed_by_library(manifest: Any, files: Sequence[File], blobs: BlobStore) -> dict[str, str]:
    """The version's files hashed the way the bundle says (another algorithm, or shards)."""
    from model_signing import hashing

    kind = manifest.serialization_type
    config = hashing.Config().set_ignored_paths(paths=[], ignore_git_paths=False)
    if kind.get("method") == "shards":
        config.use_shard_serialization(hashing_algorithm=kind["hash_type"], shard_size=int(kind["shard_size"]))
    elif kind.get("method") == "files":
        config.use_file_serialization(hashing_algorithm=kind["hash_type"])
    else:
        raise ValueError(f"unknown serialization method {kind.get('method')!r}")
    with blobs.linked_tree([(path, sha) for path, sha, _ in files]) as tree:
        hashed = config.hash(tree)
    return {rd.identifier: rd.digest.digest_hex for rd in hashed.resource_descriptors()}


def _listed(names: list[str], word: str) -> str:
    shown = ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")
    return f"{shown} {word}"


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


# -- the service -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bundle:
    """A bundle given with a version, stored as a blob."""

    sha256: str
    size: int


class Signing:
    def __init__(self, store: Store, blobs: BlobStore, pool: Executor) -> None:
        self.store, self.blobs, self.pool = store, blobs, pool

    async def trust(self, name: object, pem: object, actor: str) -> dict[str, Any]:
        kind, stored, fingerprint = read_trusted(pem)
        return key_view(await self.store.signatures.add_key(validate_key_name(name), kind, stored, fingerprint, actor))

    async def untrust(self, name: str, actor: str) -> dict[str, Any]:
        rec, untrusted = await self.store.signatures.remove_key(name, actor)
        return {**key_view(rec), "versions_untrusted": untrusted}

    async def keys(self) -> dict[str, Any]:
        return {"items": [key_view(k) for k in await self.store.signatures.keys()]}

    async def given(self, *, sha256: str | None = None, path: pathlib.Path | None = None) -> Bundle:
        """The bundle a registration names: an uploaded blob, or a file on the daemon's machine
        (stored as a blob). Too large or absent is refused before any version exists."""
        if sha256 is not None:
            await remote.fetch(self.blobs, [sha256], missing_ok=True)  # uploaded through another daemon
        return await asyncio.get_running_loop().run_in_executor(self.pool, self._given, sha256, path)

    def _given(self, sha256: str | None, path: pathlib.Path | None) -> Bundle:
        if path is not None:
            try:
                size = path.stat().st_size
            except OSError as exc:
                raise InvalidInput(f"the signature bundle {path} cannot be read: {exc.strerror}",
                                   {"field": "signature_path"}) from None
            if not path.is_file():
                raise InvalidInput(f"the signature bundle {path} is not a file", {"field": "signature_path"})
            _check_size(size)
            stored = self.blobs.store_file(path)
            return Bundle(stored.sha256, stored.size)
        assert sha256 is not None
        size = self.blobs.touch(sha256)  # its gc grace period restarts: the version references it soon
        if size is None:
            raise InvalidInput(f"the signature bundle's blob {sha256} was never uploaded; POST it to /v1/blobs first",
                               {"field": "signature"})
        _check_size(size)
        return Bundle(sha256, size)

    async def check(self, bundle: Bundle, files: Sequence[File]) -> SignatureCheck:
        """Verify a stored bundle against a version's files with every trusted key (in the pool)."""
        keys = await self.store.signatures.keys()
        await remote.fetch(self.blobs, [bundle.sha256])
        return await asyncio.get_running_loop().run_in_executor(
            self.pool, verify, self.blobs.path(bundle.sha256), bundle.sha256, files, keys, self.blobs)

    async def attach(self, ref: str, sha256: object, actor: str) -> dict[str, Any]:
        """A bundle given after registration (uploaded as a blob): checked, and it replaces the
        version's check; the version's view."""
        if not isinstance(sha256, str) or len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise InvalidInput("give the sha256 of the bundle uploaded to /v1/blobs: {\"sha256\": …}",
                               {"field": "sha256"})
        rec, files = await self.store.catalog.resolve_with_files(ref)
        if rec.status != "ready" or not files:
            raise InvalidInput(f"{rec.ref} has no stored files to verify a signature against ({rec.status})")
        bundle = await self.given(sha256=sha256)
        await remote.fetch(self.blobs, [f["sha256"] for f in files])  # a check may hash them itself
        check = await self.check(bundle, [(f["path"], f["sha256"], f["size"]) for f in files])
        await remote.push(self.blobs, [bundle.sha256])
        return await self.store.signatures.attach(rec.id, check, bundle.size, actor)

    async def bundle_path(self, ref: str) -> tuple[pathlib.Path, str]:
        """Where the version's bundle is stored, and its digest; NotFound when none came with it."""
        rec, sha = await self.store.signatures.bundle_of(ref)
        if sha is None:
            raise NotFound(f"{rec.ref} has no signature bundle")
        await remote.fetch(self.blobs, [sha])
        return self.blobs.path(sha), sha


def _check_size(size: int) -> None:
    if size > MAX_BUNDLE:
        raise PayloadTooLarge(f"a signature bundle is at most {MAX_BUNDLE // (1024 * 1024)} MiB; this one is "
                              f"{size} bytes")
