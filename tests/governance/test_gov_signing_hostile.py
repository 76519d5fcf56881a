"""Hostile signature bundles and key files (issue 12): a 400/413 or an `invalid` check, never a 5xx,
and a refused registration spends nothing."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gov_signing_support import make_key, sign
from gov_support import model_folder
from modelreg.shared.errors import InvalidInput, ModelregError, NotFound, PayloadTooLarge

MAX_BUNDLE = 32 * 1024 * 1024  # services/signing.py


@pytest.fixture
def setup(tmp_path, admin):
    key = make_key(tmp_path / "keys", "release")
    admin.trust_key("release-key", key.public_pem)
    folder = model_folder(tmp_path / "train", 1)
    files = []
    for name in ("weights.bin", "version.txt"):
        blob = admin.upload_blob(folder / name)
        files.append({"path": name, "sha256": blob["sha256"], "size": blob["size"]})
    return key, folder, files


def _with_bundle(admin, tmp_path, files, raw: bytes, name: str = "fraud") -> dict:
    path = tmp_path / "bundle.sig"
    path.write_bytes(raw)
    blob = admin.upload_blob(path)
    return admin.register(name, files=files, signature=blob["sha256"])["version"]


def test_malformed_bundles_are_invalid_never_a_5xx(tmp_path, admin, setup):
    key, folder, files = setup
    good = json.loads(sign(folder, key, tmp_path / "good.sig").read_text())
    tampered = json.loads(json.dumps(good))
    statement = json.loads(base64.b64decode(tampered["dsseEnvelope"]["payload"]))
    statement["predicate"]["resources"][0]["digest"] = "0" * 64
    tampered["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    no_envelope = {k: v for k, v in good.items() if k != "dsseEnvelope"}
    cases = [b"", b"{}", b"[]", b"null", b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000,
             json.dumps({"mediaType": good["mediaType"], "verificationMaterial": 7}).encode(),
             json.dumps(no_envelope).encode()]
    for raw in cases:
        sig = _with_bundle(admin, tmp_path, files, raw)["signature"]
        assert sig["status"] == "invalid" and sig["message"].startswith("the signature bundle is unreadable"), (raw[:40], sig)
    sig = _with_bundle(admin, tmp_path, files, json.dumps(tampered).encode())["signature"]
    assert sig["status"] == "invalid" and "names the trusted key release-key but does not verify" in sig["message"], sig
    assert admin.version("fraud@latest")["signature"]["status"] == "invalid"


def test_a_huge_bundle_is_413_and_spends_no_version(tmp_path, admin, setup):
    _, _, files = setup
    huge = tmp_path / "huge.sig"
    with open(huge, "wb") as f:
        f.truncate(MAX_BUNDLE + 1)
    blob = admin.upload_blob(huge)
    with pytest.raises(PayloadTooLarge):
        admin.register("fraud", files=files, signature=blob["sha256"])
    with pytest.raises(PayloadTooLarge):
        admin.register("fraud", path=model_folder(tmp_path / "train", 2), wait=True, signature_path=str(huge))
    with pytest.raises(NotFound):
        admin.model("fraud")  # nothing was created, no number spent
    assert admin.register("fraud", files=files)["version"]["version"] == 1
    with pytest.raises(PayloadTooLarge):
        admin.attach_signature("fraud@1", blob["sha256"])
    assert admin.version("fraud@1")["signature"] is None


def test_bad_references_and_routes(tmp_path, admin, setup):
    _, _, files = setup
    with pytest.raises(InvalidInput, match="never uploaded"):
        admin.register("fraud", files=files, signature="a" * 64)
    with pytest.raises(InvalidInput, match="sha256"):
        admin.register("fraud", files=files, signature="not-a-digest")
    with pytest.raises(InvalidInput, match="must be absolute"):
        admin.register("fraud", files=files, signature_path="relative/model.sig")
    with pytest.raises(InvalidInput, match="cannot be read"):
        admin.register("fraud", files=files, signature_path=str(tmp_path / "nowhere.sig"))
    with pytest.raises(InvalidInput, match="one signature bundle"):
        admin.register("fraud", files=files, signature="a" * 64, signature_path=str(tmp_path / "x"))
    admin.register("fraud", files=files)
    with pytest.raises(NotFound, match="has no signature bundle"):
        admin.request("GET", "/v1/models/fraud/versions/1/signature")
    for body in (None, [], {"sha256": 7}, {"sha256": "z" * 64}):
        with pytest.raises(InvalidInput):
            admin.request("PUT", "/v1/models/fraud/versions/1/signature", body=body)
    with pytest.raises(NotFound):
        admin.attach_signature("fraud@9", "a" * 64)


def test_hostile_key_files(tmp_path, admin):
    ec_key = ec.generate_private_key(ec.SECP256R1())
    private_pem = ec_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()).decode()
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    k1 = ec.generate_private_key(ec.SECP256K1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    for pem, words in ((private_pem, "this is a private key"), (rsa_pem, "elliptic-curve keys"),
                       (k1, "secp256k1"), ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "not a PEM"),
                       ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "not a readable PEM"),
                       ("", "give the PEM text"), (None, "give the PEM text")):
        with pytest.raises(InvalidInput, match=words):
            admin.trust_key("release-key", pem)
    with pytest.raises(PayloadTooLarge):
        admin.trust_key("release-key", "x" * (64 * 1024 + 1))
    good = make_key(tmp_path, "k").public_pem
    for name in ("Release", "", "a" * 65, "../x", None):
        with pytest.raises(InvalidInput, match="trusted key's name"):
            admin.trust_key(name, good)
    for body in (None, [], "pem"):
        with pytest.raises(ModelregError) as refused:
            admin.request("POST", "/v1/trust", body=body)
        assert refused.value.status == 400
    assert admin.trusted_keys() == []


def test_reading_a_bundle_on_the_daemons_machine_needs_admin(tmp_path, admin, token, setup):
    """signature_path makes the daemon read a file and serve it back: like path, admin only."""
    _, _, files = setup
    secret = tmp_path / "secret.txt"
    secret.write_text("not for a write token\n")
    writer = token("trainer", "write")
    with pytest.raises(ModelregError) as refused:
        writer.register("fraud", files=files, signature_path=str(secret))
    assert refused.value.status == 403
    with pytest.raises(NotFound):
        admin.model("fraud")
    assert writer.register("fraud", files=files)["version"]["signature"] is None  # uploads stay a writer's
