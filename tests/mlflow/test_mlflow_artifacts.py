"""mlflow-artifacts over our blob store, through the stock client (issue 10): a folder logged
and read back byte for byte, deduplicated blobs, refused paths, multipart uploads, and gc
keeping what an artifact names."""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow")
from mlflow.exceptions import MlflowException  # noqa: E402

ART = "/api/2.0/mlflow-artifacts"


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _request(daemon, method: str, path: str, data: bytes | None = None, token: bool = True,
             content_type: str = "application/octet-stream") -> tuple[int, bytes]:
    headers = {"Content-Type": content_type, "Accept": "application/json"}  # /v1 answers msgpack otherwise
    if token:
        headers["Authorization"] = f"Bearer {daemon.token}"
    req = urllib.request.Request(daemon.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _blob_files(home: Path) -> list[Path]:
    return [p for p in (home / "blobs" / "sha256").rglob("*") if p.is_file()]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "out"
    (root / "model" / "deep" / "er").mkdir(parents=True)
    (root / "model" / "MLmodel").write_text("flavors: {}\n")
    (root / "model" / "deep" / "er" / "weights.bin").write_bytes(bytes(range(256)) * 400 + os.urandom(4096))
    (root / "model" / "empty.txt").write_bytes(b"")
    (root / "model" / "données-é☃.json").write_text('{"ok": true}', encoding="utf-8")
    (root / "README.md").write_text("# run output\n")
    return root


def test_log_artifacts_list_and_download_byte_identical(client, folder: Path, tmp_path: Path):
    run = client.create_run("0")
    run_id = run.info.run_id
    client.log_artifacts(run_id, str(folder))

    top = client.list_artifacts(run_id)
    assert [(f.path, f.is_dir) for f in top] == [("README.md", False), ("model", True)]
    assert top[0].file_size == len("# run output\n")
    inside = client.list_artifacts(run_id, "model")
    assert [(f.path, f.is_dir, f.file_size) for f in inside] == [
        ("model/MLmodel", False, 12), ("model/deep", True, None), ("model/données-é☃.json", False, 12),
        ("model/empty.txt", False, 0)]

    out = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "back")))
    assert _tree(out) == _tree(folder)
    one = Path(client.download_artifacts(run_id, "model/deep/er/weights.bin", str(tmp_path / "one")))
    assert one.read_bytes() == (folder / "model/deep/er/weights.bin").read_bytes()


def test_same_bytes_twice_are_one_blob_and_reupload_replaces(client, mlflow_env, tmp_path: Path):
    daemon = mlflow_env
    payload = os.urandom(200_000)
    (tmp_path / "a.bin").write_bytes(payload)
    (tmp_path / "b.bin").write_bytes(payload)
    run = client.create_run("0")
    before = len(_blob_files(daemon.home))
    client.log_artifact(run.info.run_id, str(tmp_path / "a.bin"))
    client.log_artifact(run.info.run_id, str(tmp_path / "b.bin"), "copy")
    digest = hashlib.sha256(payload).hexdigest()
    assert len(_blob_files(daemon.home)) == before + 1
    assert (daemon.home / "blobs" / "sha256" / digest[:2] / digest[2:]).is_file()

    (tmp_path / "a.bin").write_bytes(b"second version")
    client.log_artifact(run.info.run_id, str(tmp_path / "a.bin"))
    back = Path(client.download_artifacts(run.info.run_id, "a.bin", str(tmp_path / "dl")))
    assert back.read_bytes() == b"second version"
    listed = {f.path: f.file_size for f in client.list_artifacts(run.info.run_id)}
    assert listed == {"a.bin": len(b"second version"), "copy": None}


@pytest.mark.parametrize("path", [
    "0/x/../../etc/passwd", "0/%2e%2e/%2e%2e/etc", "%2Fetc%2Fpasswd", "0/a%5C..%5Cb", "0/nul%00byte",
    "0/" + "a" * 1100, "0/bad-%ff-utf8", "0//double", "0/./dot", "_registry/fraud/1/MLmodel",
])
def test_bad_paths_are_refused(mlflow_env, path: str):
    daemon = mlflow_env
    status, body = _request(daemon, "PUT", f"{ART}/artifacts/{path}", b"x")
    assert status in (400, 404), (path, status, body)
    assert json.loads(body)["error_code"] in ("INVALID_PARAMETER_VALUE", "ENDPOINT_NOT_FOUND")
    listing = _request(daemon, "GET", f"{ART}/artifacts?path=0")
    assert listing[0] == 200 and json.loads(listing[1]) == {"files": []}
    assert not any(p.name == "passwd" for p in daemon.home.rglob("*"))


def test_bad_paths_refused_by_name(mlflow_env):
    """The refusal names the rule (not a generic 404) for the classic traversal tricks."""
    daemon = mlflow_env
    for path in ("0/%2e%2e/etc", "0/a%5Cb", "0/nul%00byte", "_registry/fraud/1/x"):
        status, body = _request(daemon, "PUT", f"{ART}/artifacts/{path}", b"x")
        assert status == 400 and json.loads(body)["error_code"] == "INVALID_PARAMETER_VALUE", (path, body)


def test_missing_artifact_is_resource_does_not_exist(client, mlflow_env, tmp_path: Path):
    daemon = mlflow_env
    status, body = _request(daemon, "GET", f"{ART}/artifacts/0/nothing/here.bin")
    assert status == 404 and json.loads(body)["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    run = client.create_run("0")
    with pytest.raises(MlflowException):
        client.download_artifacts(run.info.run_id, "missing.txt", str(tmp_path))


def test_delete_removes_a_file_or_a_folder(client, folder: Path):
    run = client.create_run("0")
    client.log_artifacts(run.info.run_id, str(folder))
    repo = mlflow.store.artifact.artifact_repository_registry.get_artifact_repository(run.info.artifact_uri)
    repo.delete_artifacts("model/deep")
    assert [f.path for f in client.list_artifacts(run.info.run_id, "model")] == [
        "model/MLmodel", "model/données-é☃.json", "model/empty.txt"]
    repo.delete_artifacts("README.md")
    assert [f.path for f in client.list_artifacts(run.info.run_id)] == ["model"]


def test_multipart_upload_through_the_stock_client(client, mlflow_env, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch):
    daemon = mlflow_env
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(1024 * 1024))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(1024 * 1024))
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024 + 12345))  # four parts
    run = client.create_run("0")
    seen: list[str] = []
    real_put = __import__("requests").put

    def spy(url, *args, **kwargs):
        seen.append(url)
        assert "Authorization" not in (kwargs.get("headers") or {})
        return real_put(url, *args, **kwargs)

    monkeypatch.setattr("mlflow.store.artifact.http_artifact_repo.requests.put", spy)
    client.log_artifact(run.info.run_id, str(big), "weights")
    assert len(seen) == 4 and all(u.startswith(daemon.url + f"{ART}/mpu/part/") for u in seen)
    back = Path(client.download_artifacts(run.info.run_id, "weights/big.bin", str(tmp_path / "dl")))
    assert back.read_bytes() == big.read_bytes()
    assert [f.file_size for f in client.list_artifacts(run.info.run_id, "weights")] == [big.stat().st_size]
    assert list((daemon.home / "mlflow-uploads").iterdir()) == []  # the parts are gone


def test_multipart_refuses_unknown_ids_wrong_digests_and_cleans_on_abort(mlflow_env):
    daemon = mlflow_env
    # A part URL needs no token, but only a live upload id opens it.
    status, body = _request(daemon, "PUT", f"{ART}/mpu/part/{'x' * 43}/1", b"data", token=False)
    assert status == 404 and json.loads(body)["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    # As the stock client: the URL names the folder, "path" the local file (its base name is kept).
    start = b'{"path": "/home/me/out/f.bin", "num_parts": 2}'
    status, _ = _request(daemon, "POST", f"{ART}/mpu/create/0/r", start, token=False, content_type="application/json")
    assert status == 401
    status, body = _request(daemon, "POST", f"{ART}/mpu/create/0/r", start, content_type="application/json")
    assert status == 200
    created = json.loads(body)
    upload_id, creds = created["upload_id"], created["credentials"]
    assert len(upload_id) >= 32 and [c["part_number"] for c in creds] == [1, 2]
    part_path = creds[0]["url"][len(daemon.url):]
    status, _ = _request(daemon, "PUT", part_path, b"a" * 1000, token=False)
    assert status == 200
    assert len(list((daemon.home / "mlflow-uploads" / upload_id).iterdir())) == 1
    status, _ = _request(daemon, "PUT", part_path[:-1] + "3", b"b", token=False)
    assert status == 400  # no part 3 in a two-part upload
    wrong = json.dumps({"path": "/home/me/out/f.bin", "upload_id": upload_id, "parts": [{"part_number": 1, "etag": "nope"},
                                                          {"part_number": 2, "etag": "nope"}]}).encode()
    status, body = _request(daemon, "POST", f"{ART}/mpu/complete/0/r", wrong, content_type="application/json")
    assert status == 400 and json.loads(body)["error_code"] == "INVALID_PARAMETER_VALUE"
    abort = json.dumps({"path": "/home/me/out/f.bin", "upload_id": upload_id}).encode()
    status, _ = _request(daemon, "POST", f"{ART}/mpu/abort/0/r", abort, content_type="application/json")
    assert status == 200
    assert not (daemon.home / "mlflow-uploads" / upload_id).exists()
    status, _ = _request(daemon, "PUT", part_path, b"a", token=False)
    assert status == 404  # the id is dead once aborted
    assert _request(daemon, "GET", f"{ART}/artifacts/0/r/f.bin")[0] == 404


def test_gc_keeps_blobs_an_artifact_names(client, mlflow_env, tmp_path: Path):
    daemon = mlflow_env
    keep, drop = tmp_path / "keep.bin", tmp_path / "drop.bin"
    keep.write_bytes(os.urandom(50_000))
    drop.write_bytes(os.urandom(50_000))
    run = client.create_run("0")
    client.log_artifact(run.info.run_id, str(keep))
    client.log_artifact(run.info.run_id, str(drop))
    repo = mlflow.store.artifact.artifact_repository_registry.get_artifact_repository(run.info.artifact_uri)
    repo.delete_artifacts("drop.bin")

    status, body = _request(daemon, "POST", "/v1/gc", json.dumps({"dry_run": False}).encode(),
                            content_type="application/json")
    assert status == 200, body
    keep_sha = hashlib.sha256(keep.read_bytes()).hexdigest()
    drop_sha = hashlib.sha256(drop.read_bytes()).hexdigest()
    assert (daemon.home / "blobs/sha256" / keep_sha[:2] / keep_sha[2:]).is_file()
    assert not (daemon.home / "blobs/sha256" / drop_sha[:2] / drop_sha[2:]).exists()  # gc does collect
    back = Path(client.download_artifacts(run.info.run_id, "keep.bin", str(tmp_path / "dl")))
    assert back.read_bytes() == keep.read_bytes()


async def test_a_forgotten_multipart_upload_times_out(tmp_path: Path):
    """An upload neither completed nor aborted is removed by the timeout, parts and id."""
    from concurrent.futures import ThreadPoolExecutor

    from modelreg.daemon.artifacts.blobs import BlobStore
    from modelreg.daemon.services.mlflow.artifacts import Artifacts
    from modelreg.daemon.store import open_store
    from modelreg.shared.errors import NotFound

    async def body():
        yield b"x" * 100

    store = open_store(None, tmp_path)
    await store.open()
    pool = ThreadPoolExecutor(2)
    blobs = BlobStore(tmp_path / "blobs")
    blobs.prepare()
    arts = Artifacts(store, blobs, pool, tmp_path, max_upload=1 << 20)
    await arts.start()
    try:
        created = await arts.create_multipart("0/r", {"path": "f.bin", "num_parts": 2}, "http://127.0.0.1:1")
        uid = created["upload_id"]
        await arts.put_part(uid, "1", body(), 100)
        assert await arts.reap(timeout=3600) == 0  # young: kept
        assert (tmp_path / "mlflow-uploads" / uid / "1.part").is_file()
        assert await arts.reap(timeout=0) == 1
        assert not (tmp_path / "mlflow-uploads" / uid).exists()
        with pytest.raises(NotFound):
            await arts.put_part(uid, "2", body(), 100)
    finally:
        await arts.close()
        pool.shutdown()
        await store.close()


def test_verify_rehashes_artifact_blobs_and_names_their_paths(client, mlflow_env, tmp_path: Path):
    import time

    daemon = mlflow_env
    f = tmp_path / "weights.bin"
    f.write_bytes(os.urandom(30_000))
    run = client.create_run("0")
    client.log_artifact(run.info.run_id, str(f))
    sha = hashlib.sha256(f.read_bytes()).hexdigest()
    blob = daemon.home / "blobs/sha256" / sha[:2] / sha[2:]
    blob.chmod(0o644)
    blob.write_bytes(b"bit rot")

    status, body = _request(daemon, "POST", "/v1/verify", b"{}", content_type="application/json")
    assert status in (200, 202), body
    job_id = json.loads(body)["id"]
    deadline = time.monotonic() + 60
    while True:
        job = json.loads(_request(daemon, "GET", f"/v1/jobs/{job_id}", content_type="application/json")[1])
        if job["state"] not in ("pending", "running") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    result = job["result"]
    assert result["ok"] is False
    [problem] = result["problems"]
    assert problem["sha256"] == sha and problem["status"] == "corrupt" and problem["versions"] == []
    assert [x["path"] for x in problem["files"]] == [f"mlflow-artifacts:/0/{run.info.run_id}/artifacts/weights.bin"]
