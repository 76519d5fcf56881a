"""Registering versions from a path and from uploaded blobs, and reading them back (issue 2, acceptance 2)."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest

from modelreg.daemon.artifacts.blobs import BlobStore
from registry_harness import Registry, blob_files, blob_path, sha256_of, write_safetensors


async def test_registered_version_returns_everything_it_was_given(registry: Registry, model_file: Path) -> None:
    c = registry.client()
    out = await c.register("fraud", path=model_file, wait=True, metrics={"auc": 0.91}, params={"lr": "0.01"},
                           datasets=["txns@2026-11"], run="r42", source="cli")
    assert out["version"]["version"] == 1 and out["version"]["status"] == "ready"

    v = await c.version("fraud@1")
    sha = hashlib.sha256(model_file.read_bytes()).hexdigest()
    size = model_file.stat().st_size
    assert v["model"] == "fraud" and v["version"] == 1
    assert v["status"] == "ready" and v["stage"] == "none" and v["source"] == "cli"
    assert v["files"] == [{"path": "model.safetensors", "sha256": sha, "size": size}]
    assert v["total_size"] == size and v["file_count"] == 1 and v["content_digest"]
    assert v["metrics"] == {"auc": 0.91}
    assert [(r["key"], r["value"], r["source"]) for r in v["metric_records"]] == [("auc", 0.91, "offline")]
    assert v["params"] == {"lr": "0.01"}
    assert v["lineage"]["datasets"] == [{"dataset": "txns@2026-11", "relation": "trained_on", "digest": None, "uri": None}]
    assert v["lineage"]["run"]["id"] == "r42"

    # The same answer through every way of naming it, and the stored bytes are the file's.
    assert (await c.version("fraud@latest"))["files"] == v["files"]
    assert (await c.resolve("fraud@1"))["files"] == v["files"]
    assert blob_path(registry.home, sha).read_bytes() == model_file.read_bytes()
    dest = model_file.parent / "downloaded"
    assert await c.download("fraud@1", "model.safetensors", dest) == sha
    assert dest.read_bytes() == model_file.read_bytes()


async def test_json_clients_get_the_same_version(registry: Registry, model_file: Path) -> None:
    await registry.client().register("fraud", path=model_file, wait=True, metrics={"auc": 0.91})
    as_json = await registry.call("GET", "/v1/models/fraud/versions/1", accept_json=True)
    as_msgpack = await registry.call("GET", "/v1/models/fraud/versions/1")
    assert as_json.status == as_msgpack.status == 200
    assert as_json.content_type == "application/json" and as_msgpack.content_type == "application/msgpack"
    assert as_json.data == as_msgpack.data
    assert as_json.data["metrics"] == {"auc": 0.91}


async def test_same_bytes_again_is_a_new_version_stored_once(registry: Registry, model_file: Path, src: Path) -> None:
    c = registry.client()
    first = (await c.register("fraud", path=model_file, wait=True))["version"]
    copy = src / "again" / "model.safetensors"
    copy.parent.mkdir()
    copy.write_bytes(model_file.read_bytes())
    second = (await c.register("fraud", path=copy, wait=True))["version"]

    assert (first["version"], second["version"]) == (1, 2)
    assert second["status"] == "ready"
    assert first["files"] == second["files"] and first["content_digest"] == second["content_digest"]
    stored = blob_files(registry.home)
    assert len(stored) == 1
    assert sum(p.stat().st_size for p in stored) == model_file.stat().st_size
    # Uploading the same bytes over HTTP does not store them again either.
    up = await c.upload_blob(model_file)
    assert up == {"sha256": sha256_of(model_file), "size": model_file.stat().st_size, "deduplicated": True}
    assert len(blob_files(registry.home)) == 1


async def test_stored_blobs_are_read_only(registry: Registry, model_file: Path) -> None:
    await registry.client().register("fraud", path=model_file, wait=True)
    (blob,) = blob_files(registry.home)
    assert blob.stat().st_mode & 0o222 == 0


async def test_folder_keeps_relative_paths(registry: Registry, src: Path) -> None:
    folder = src / "bert"
    files = {
        "config.json": b'{"hidden_size": 8}',
        "model.safetensors": write_safetensors(folder / "model.safetensors", seed=1),
        "tokenizer/vocab.txt": b"[PAD]\n[UNK]\nhello\n",
        "tokenizer/deep/merges.txt": b"h e\nl l\n",
        "README.md": b"# bert\n",
    }
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    v = (await registry.client().register("bert", path=folder, wait=True))["version"]

    assert v["status"] == "ready"
    assert {f["path"]: (f["sha256"], f["size"]) for f in v["files"]} == {
        rel: (hashlib.sha256(data).hexdigest(), len(data)) for rel, data in files.items()}
    assert v["total_size"] == sum(len(d) for d in files.values()) and v["file_count"] == len(files)
    got = folder.parent / "got-vocab"
    await registry.client().download("bert@1", "tokenizer/vocab.txt", got)
    assert got.read_bytes() == files["tokenizer/vocab.txt"]


async def test_register_from_uploaded_blobs(registry: Registry, src: Path) -> None:
    c = registry.client()
    folder = src / "up"
    write_safetensors(folder / "model.safetensors", seed=7)
    (folder / "sub").mkdir()
    (folder / "sub" / "extra.bin").write_bytes(b"\x00\x01" * 1000)
    out = await c.upload_and_register("uploaded", folder, metrics={"auc": 0.5})
    v = out["version"]
    assert out["job"] is None and v["status"] == "ready" and v["version"] == 1
    assert sorted(f["path"] for f in v["files"]) == ["model.safetensors", "sub/extra.bin"]
    for f in v["files"]:
        assert f["sha256"] == sha256_of(folder / f["path"])
        assert blob_path(registry.home, f["sha256"]).read_bytes() == (folder / f["path"]).read_bytes()


async def test_registering_without_wait_reports_progress_then_ready(registry: Registry, model_file: Path) -> None:
    c = registry.client()
    out = await c.register("fraud", path=model_file)
    assert out["version"]["status"] in ("pending", "ready")
    job = await c.job(out["job"]["id"], wait=10)
    assert job["state"] == "done" and job["done"] == job["total"] == model_file.stat().st_size
    assert (await c.version("fraud@1"))["status"] == "ready"


async def test_registering_a_file_inside_the_home_is_refused(registry: Registry) -> None:
    r = await registry.call("POST", "/v1/models/fraud/versions", body={"path": str(registry.home / "token")})
    assert r.status == 400 and "home" in r.error["message"]
    assert (registry.home / "token").exists()


async def test_file_name_that_is_not_utf8_is_refused_before_anything_is_stored(registry: Registry, src: Path) -> None:
    folder = src / "latin1"
    write_safetensors(folder / "model.safetensors")
    with open(os.path.join(os.fsencode(folder), b"r\xe9sum\xe9.txt"), "wb") as f:
        f.write(b"notes")
    r = await registry.call("POST", "/v1/models/fraud/versions?wait=1", body={"path": str(folder)})
    assert r.status == 400 and "UTF-8" in r.error["message"]
    assert blob_files(registry.home) == []
    assert (await registry.call("GET", "/v1/models/fraud")).status == 404


async def test_a_store_that_fails_on_a_full_disk_is_a_507_and_a_failed_version(
        registry: Registry, model_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(self, src, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(src))

    with monkeypatch.context() as m:
        m.setattr(BlobStore, "store_file", disk_full)
        r = await registry.call("POST", "/v1/models/fraud/versions?wait=1", body={"path": str(model_file)},
                                accept_json=True)
    assert r.status == 507 and r.error["code"] == "insufficient_storage", r.raw  # issue 11: a full disk is its own error
    assert "No space left on device" in r.error["message"]
    failed = await registry.client().version("fraud@1")
    assert failed["status"] == "failed" and "No space left" in failed["status_message"] and failed["files"] == []
    again = (await registry.client().register("fraud", path=model_file, wait=True))["version"]
    assert again["version"] == 2 and again["status"] == "ready"


def _unusable_source(src: Path, layout: str) -> Path:
    """A path to register that cannot work, built on disk."""
    folder = src / "m"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"weights")
    if layout == "broken-link":
        (src / "link").symlink_to(src / "nowhere")
        return src / "link"
    if layout == "link-loop":
        (src / "a").symlink_to(src / "b")
        (src / "b").symlink_to(src / "a")
        return src / "a"
    if layout == "loop-inside-folder":
        (folder / "a").symlink_to(folder / "b")
        (folder / "b").symlink_to(folder / "a")
    elif layout == "dangling-inside-folder":
        (folder / "gone").symlink_to(folder / "deleted.bin")
    elif layout == "link-escaping-folder":
        (folder / "passwd").symlink_to("/etc/passwd")
    elif layout == "empty-folder":
        (src / "empty").mkdir()
        return src / "empty"
    elif layout == "fifo":
        os.mkfifo(src / "pipe")
        return src / "pipe"
    return folder


@pytest.mark.parametrize("layout", ["broken-link", "link-loop", "loop-inside-folder", "dangling-inside-folder",
                                    "link-escaping-folder", "empty-folder", "fifo"])
async def test_unusable_sources_are_refused_with_a_reason(registry: Registry, src: Path, layout: str) -> None:
    target = _unusable_source(src, layout)
    r = await registry.call("POST", "/v1/models/fraud/versions?wait=1", body={"path": str(target)})
    assert r.status == 400, r.raw
    assert r.error["code"] == "invalid_input"
    assert blob_files(registry.home) == []
    assert (await registry.call("GET", "/v1/models/fraud")).status == 404
