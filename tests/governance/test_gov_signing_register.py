"""Signed models at registration (issue 12, acceptance 4), against a real daemon.

A folder signed by the real `model_signing` library with a key the registry trusts as
`release-key`, registered with its bundle by path, by upload and as a drop's model.sig, shows
"signed by release-key"; a byte changed before registration shows which file does not match,
and the gates `requires signature` / `signed_by NAME` refuse and pass on what was verified.
"""

from __future__ import annotations

import json
import os

import pytest

from gov_signing_support import make_ca_signer, make_key, sign, sign_with_certificate
from gov_support import model_folder
from modelreg.shared.errors import GateFailed, NotFound
from waiting import wait_until


@pytest.fixture
def release_key(tmp_path, admin):
    key = make_key(tmp_path / "keys", "release")
    admin.trust_key("release-key", key.public_pem)
    return key


def test_path_registration_signed_shown_and_gated(tmp_path, admin, release_key, modelreg):
    folder = model_folder(tmp_path / "train", 1)
    bundle = sign(folder, release_key, tmp_path / "model.sig")
    v = admin.register("fraud", path=folder, wait=True, signature_path=str(bundle))["version"]
    assert v["signature"]["status"] == "signed" and v["signature"]["signer"] == "release-key", v["signature"]
    assert admin.version("fraud@1")["signature"]["message"] == "signed by release-key"
    shown = modelreg("show", "fraud@1", check=True).stdout
    assert "signed by release-key" in shown
    # The bundle is kept and served as it was given.
    assert admin.request("GET", "/v1/models/fraud/versions/1/signature") == json.loads(bundle.read_text())
    kinds = [e["data"]["status"] for e in admin.events(model="fraud", kind="version.signature")["items"]]
    assert kinds == ["signed"]

    admin.add_gate("requires signature", stage="production", model="fraud")
    admin.add_gate("signed_by release-key", stage="production", model="fraud")
    moved = admin.promote("fraud@1", reason="signed release")
    assert moved["version"]["stage"] == "production"
    rules = {r["rule"]: r["status"] for r in moved["verdict"]["rules"]}
    assert rules == {"requires signature": "pass", "signed_by release-key": "pass"}, moved["verdict"]


def test_signed_by_passes_only_the_right_signer(tmp_path, admin, release_key):
    other = make_key(tmp_path / "keys", "other")
    admin.trust_key("other-key", other.public_pem)
    folder = model_folder(tmp_path / "train", 1)
    v = admin.register("churn", path=folder, wait=True,
                       signature_path=str(sign(folder, other, tmp_path / "other.sig")))["version"]
    assert v["signature"]["signer"] == "other-key"
    admin.add_gate("signed_by release-key", stage="staging", model="churn")
    with pytest.raises(GateFailed) as refused:
        admin.promote("churn@1", to="staging", reason="try")
    failed = [r for r in refused.value.details["verdict"]["rules"] if r["status"] == "fail"]
    assert [r["rule"] for r in failed] == ["signed_by release-key"]
    assert "signed by other-key" in failed[0]["message"] and "needs a signature by release-key" in failed[0]["message"]
    assert admin.version("churn@1")["stage"] == "none"


def test_byte_changed_before_registration_is_a_mismatch_the_gate_refuses(tmp_path, admin, release_key, modelreg):
    folder = model_folder(tmp_path / "train", 1)
    bundle = sign(folder, release_key, tmp_path / "model.sig")
    weights = folder / "weights.bin"
    data = bytearray(weights.read_bytes())
    data[100] ^= 0x01
    weights.write_bytes(bytes(data))
    (folder / "extra.txt").write_text("not signed\n")
    (folder / "version.txt").unlink()
    v = admin.register("fraud", path=folder, wait=True, signature_path=str(bundle))["version"]
    sig = v["signature"]
    assert sig["status"] == "mismatch" and sig["signer"] == "release-key"
    assert sig["message"] == ("signature does not match: weights.bin changed; version.txt missing; "
                              "extra.txt not signed"), sig
    assert "signature does not match: weights.bin changed" in modelreg("show", "fraud@1", check=True).stdout

    admin.add_gate("requires signature", stage="production", model="fraud")
    with pytest.raises(GateFailed) as refused:
        admin.promote("fraud@1", reason="ship it")
    rule = refused.value.details["verdict"]["rules"][0]
    assert rule["status"] == "fail" and "signature does not match" in rule["message"], rule
    result = modelreg("promote", "fraud@1", "--reason", "ship it")
    assert result.returncode == 3, result.stdout + result.stderr
    assert admin.version("fraud@1")["stage"] == "none"


def test_untrusted_garbage_and_no_bundle(tmp_path, admin, release_key):
    folder = model_folder(tmp_path / "train", 1)
    stranger = make_key(tmp_path / "keys", "stranger")
    v = admin.register("fraud", path=folder, wait=True,
                       signature_path=str(sign(folder, stranger, tmp_path / "stranger.sig")))["version"]
    assert v["signature"]["status"] == "untrusted" and v["signature"]["signer"] is None
    assert v["signature"]["message"].startswith("signed by a key the registry does not trust")

    garbage = tmp_path / "garbage.sig"
    garbage.write_bytes(b"\x00\xffnot a bundle at all")
    v = admin.register("fraud", path=model_folder(tmp_path / "train", 2), wait=True,
                       signature_path=str(garbage))["version"]
    assert v["signature"]["status"] == "invalid"
    assert v["signature"]["message"].startswith("the signature bundle is unreadable")

    v = admin.register("fraud", path=model_folder(tmp_path / "train", 3), wait=True)["version"]
    assert v["signature"] is None and admin.version("fraud@3")["signature"] is None
    admin.add_gate("requires signature", stage="staging", model="fraud")
    for n, words in ((1, "signed by a key the registry does not trust"), (2, "the signature bundle is unreadable"),
                     (3, "no signature was given")):
        with pytest.raises(GateFailed) as refused:
            admin.promote(f"fraud@{n}", to="staging", reason="try")
        assert words in refused.value.details["verdict"]["rules"][0]["message"], (n, refused.value.details)


def test_upload_registration_leaves_the_bundle_out_of_the_files(tmp_path, admin, release_key):
    folder = model_folder(tmp_path / "train", 1)
    bundle = sign(folder, release_key, folder / "model.sig")  # inside the folder it signs
    blob = admin.upload_blob(bundle)
    v = admin.upload_and_register("fraud", folder, signature=blob["sha256"])["version"]
    assert v["signature"]["status"] == "signed", v["signature"]
    assert sorted(f["path"] for f in v["files"]) == ["version.txt", "weights.bin"]


def test_drop_folder_model_sig(tmp_path, admin, release_key):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    admin.add_watch(inbox, model="fraud", mode="copy", settle=0.5)
    folder = model_folder(tmp_path / "staging-area", 1)
    sign(folder, release_key, folder / "model.sig")
    os.rename(folder, inbox / "v1")  # renamed in: taken at once

    def registered():
        try:
            v = admin.version("fraud@1")
        except NotFound:
            return None
        return v if v["status"] == "ready" else None

    v = wait_until(registered, 20, "the drop registered as fraud@1")
    assert v["signature"]["status"] == "signed" and v["signature"]["signer"] == "release-key", v["signature"]
    assert sorted(f["path"] for f in v["files"]) == ["version.txt", "weights.bin"]


def test_certificate_issued_by_a_trusted_ca(tmp_path, admin):
    signer = make_ca_signer(tmp_path / "pki")
    added = admin.trust_key("release-ca", signer.ca.read_text())
    assert added["kind"] == "certificate" and "Test Release CA" in added["subject"]
    folder = model_folder(tmp_path / "train", 1)
    bundle = sign_with_certificate(folder, signer, tmp_path / "model.sig")
    v = admin.register("fraud", path=folder, wait=True, signature_path=str(bundle))["version"]
    assert v["signature"]["status"] == "signed" and v["signature"]["signer"] == "release-ca", v["signature"]


def test_removing_a_key_untrusts_what_it_verified(tmp_path, admin, release_key):
    folder = model_folder(tmp_path / "train", 1)
    admin.register("fraud", path=folder, wait=True, signature_path=str(sign(folder, release_key, tmp_path / "s")))
    removed = admin.untrust_key("release-key")
    assert removed["versions_untrusted"] == 1
    sig = admin.version("fraud@1")["signature"]
    assert sig["status"] == "untrusted" and sig["signer"] is None
    # The same name given to another key later does not inherit the old signatures.
    admin.trust_key("release-key", make_key(tmp_path / "keys", "new").public_pem)
    assert admin.version("fraud@1")["signature"]["status"] == "untrusted"
    events = [e["kind"] for e in admin.events(kind="trust.removed")["items"]]
    assert events == ["trust.removed"]


def test_gc_keeps_the_bundle_of_a_kept_version(tmp_path, admin, release_key):
    folder = model_folder(tmp_path / "train", 1)
    bundle = sign(folder, release_key, tmp_path / "model.sig")
    admin.register("fraud", path=folder, wait=True, signature_path=str(bundle))
    admin.gc(dry_run=False)
    assert admin.request("GET", "/v1/models/fraud/versions/1/signature") == json.loads(bundle.read_text())
