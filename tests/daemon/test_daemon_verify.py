"""POST /v1/verify re-hashes stored blobs and names the versions they break (issue 2, acceptance 7)."""

from __future__ import annotations

import os
from pathlib import Path

from registry_harness import Registry, blob_path, lose_blob, write_safetensors


async def _two_models_sharing_a_blob(registry: Registry, src: Path) -> tuple[str, str]:
    """fraud@1 and fraud-small@1 hold the same weights; fraud@2 holds others. Returns (shared, other) sha256."""
    c = registry.client()
    shared = src / "a" / "model.safetensors"
    write_safetensors(shared, seed=1)
    other = src / "b" / "model.safetensors"
    write_safetensors(other, seed=2)
    v1 = (await c.register("fraud", path=shared, wait=True))["version"]
    v2 = (await c.register("fraud", path=other, wait=True))["version"]
    await c.register("fraud-small", path=shared, wait=True)
    return v1["files"][0]["sha256"], v2["files"][0]["sha256"]


async def test_clean_store_verifies_ok(registry: Registry, src: Path) -> None:
    await _two_models_sharing_a_blob(registry, src)
    report = await registry.client().verify(wait=True)
    assert report["state"] == "done"
    assert report["result"]["ok"] is True and report["result"]["problems"] == []
    assert report["result"]["checked"] == 2


async def test_flipped_byte_is_reported_with_every_version_using_the_blob(registry: Registry, src: Path) -> None:
    shared, other = await _two_models_sharing_a_blob(registry, src)
    blob = blob_path(registry.home, shared)
    os.chmod(blob, 0o644)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    os.chmod(blob, 0o444)

    report = await registry.client().verify(wait=True)
    result = report["result"]
    assert result["ok"] is False and result["checked"] == 2
    assert [(p["sha256"], p["status"]) for p in result["problems"]] == [(shared, "corrupt")]
    assert result["problems"][0]["versions"] == ["fraud-small@1", "fraud@1"]
    assert {(f["ref"], f["path"]) for f in result["problems"][0]["files"]} == {
        ("fraud@1", "model.safetensors"), ("fraud-small@1", "model.safetensors")}

    # Verifying one version looks only at its own blobs.
    only_v2 = (await registry.client().verify("fraud@2", wait=True))["result"]
    assert only_v2["ok"] is True and only_v2["checked"] == 1
    only_v1 = (await registry.client().verify("fraud@1", wait=True))["result"]
    assert only_v1["ok"] is False and only_v1["problems"][0]["status"] == "corrupt"


async def test_deleted_blob_is_reported_missing(registry: Registry, src: Path) -> None:
    shared, other = await _two_models_sharing_a_blob(registry, src)
    lose_blob(registry.home, other)
    report = (await registry.client().verify(wait=True))["result"]
    assert report["ok"] is False
    assert [(p["sha256"], p["status"], p["versions"]) for p in report["problems"]] == [(other, "missing", ["fraud@2"])]
    # Downloading it says the bytes are gone instead of sending nothing.
    r = await registry.call("GET", "/v1/models/fraud/versions/2/files/model.safetensors")
    assert 400 <= r.status < 500 and "verify" in r.error["message"]


async def test_verify_without_wait_is_a_job_to_follow(registry: Registry, src: Path) -> None:
    shared, _ = await _two_models_sharing_a_blob(registry, src)
    lose_blob(registry.home, shared)
    c = registry.client()
    started = await c.verify()
    assert started["kind"] == "verify"
    job = await c.job(started["id"], wait=10)
    assert job["state"] == "done" and job["result"]["ok"] is False
    assert job["result"]["problems"][0]["versions"] == ["fraud-small@1", "fraud@1"]


async def test_verify_of_an_unknown_ref_is_404(registry: Registry) -> None:
    r = await registry.call("POST", "/v1/verify?wait=1", body={"ref": "nosuch@1"})
    assert r.status == 404 and r.error["code"] == "not_found"
