"""modelreg trust and modelreg sign (issue 12), through the real CLI and a real daemon.

`modelreg sign` signs the files as the registry holds them; its bundle must verify with the
`model_signing` library's own verification on a downloaded copy of the version, and fail on a
copy with a byte changed.
"""

from __future__ import annotations

import json

import model_signing
import pytest

from gov_signing_support import make_key
from gov_support import model_folder


def test_trust_add_list_rm_and_a_private_key_is_never_sent(tmp_path, admin, modelreg):
    key = make_key(tmp_path / "keys", "release")
    refused = modelreg("trust", "add", "release-key", str(key.private))
    assert refused.returncode != 0 and "is a private key" in refused.stderr and "nothing was sent" in refused.stderr
    assert admin.trusted_keys() == []
    assert admin.events(kind="trust.added")["items"] == []

    added = json.loads(modelreg("trust", "add", "release-key", str(key.public), "--json", check=True).stdout)
    assert added["kind"] == "key" and len(added["fingerprint"]) == 64
    listed = modelreg("trust", "list", check=True).stdout
    assert "release-key" in listed and added["fingerprint"] in listed
    again = modelreg("trust", "add", "copy", str(key.public))
    assert again.returncode != 0 and "trusted already, as 'release-key'" in again.stderr
    assert "removed release-key" in modelreg("trust", "rm", "release-key", check=True).stdout
    assert admin.trusted_keys() == []
    missing = modelreg("trust", "rm", "release-key")
    assert missing.returncode == 4 and "no trusted key named 'release-key'" in missing.stderr


def test_sign_output_verifies_with_model_signing_on_a_downloaded_copy(tmp_path, admin, modelreg):
    key = make_key(tmp_path / "keys", "release")
    admin.trust_key("release-key", key.public_pem)
    folder = model_folder(tmp_path / "train", 1, extra={"nested/config.json": b'{"layers": 2}'})
    assert admin.register("fraud", path=folder, wait=True)["version"]["status"] == "ready"
    bundle = tmp_path / "out" / "fraud-1.sig"
    bundle.parent.mkdir()
    signed = modelreg("sign", "fraud@1", "--key", str(key.private), "--output", str(bundle), "--attach", check=True)
    assert "attached: signed by release-key" in signed.stdout, signed.stdout
    assert admin.version("fraud@1")["signature"]["status"] == "signed"

    copy = tmp_path / "copy" / "fraud"
    for f in admin.version("fraud@1")["files"]:
        (copy / f["path"]).parent.mkdir(parents=True, exist_ok=True)
        admin.download("fraud@1", f["path"], copy / f["path"])
    verifier = model_signing.verifying.Config().use_elliptic_key_verifier(public_key=key.public)
    verifier.verify(copy, bundle)  # raises when the signature or any file does not match

    data = bytearray((copy / "weights.bin").read_bytes())
    data[0] ^= 0xFF
    (copy / "weights.bin").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="weights.bin"):
        model_signing.verifying.Config().use_elliptic_key_verifier(public_key=key.public).verify(copy, bundle)


def test_register_signature_option_and_sign_refusals(tmp_path, admin, modelreg):
    key = make_key(tmp_path / "keys", "release")
    admin.trust_key("release-key", key.public_pem)
    folder = model_folder(tmp_path / "train", 1)
    bundle = tmp_path / "model.sig"
    model_signing.signing.Config().use_elliptic_key_signer(private_key=key.private).sign(folder, bundle)
    for how in ([], ["--upload"]):
        out = modelreg("register", str(folder), "--name", "fraud", "--signature", str(bundle), *how, check=True)
        assert "signed by release-key" in out.stdout, (how, out.stdout)
    inside = model_folder(tmp_path / "train", 2)
    model_signing.signing.Config().use_elliptic_key_signer(private_key=key.private).sign(inside, inside / "model.sig")
    modelreg("register", str(inside), "--name", "fraud", "--signature", str(inside / "model.sig"), check=True)
    v = admin.version("fraud@3")
    assert v["signature"]["status"] == "signed" and [f["path"] for f in v["files"]] == ["version.txt", "weights.bin"]
    not_a_key = modelreg("sign", "fraud@1", "--key", str(key.public), "--output", str(tmp_path / "x.sig"))
    assert not_a_key.returncode != 0 and "cannot sign with" in not_a_key.stderr and "Traceback" not in not_a_key.stderr
    assert not (tmp_path / "x.sig").exists()
