"""The `modelreg` command against a real daemon process: what a user types, what they see."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path

import pytest


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    """Opaque bytes in no format a sniffer reads (random bytes named .safetensors are refused,
    and one starting with 0x80 would be read as a pickle)."""
    path = tmp_path / "model.dat"
    head = b"modelreg test\n"
    path.write_bytes(head + os.urandom(2_000_000 - len(head)))
    return path


def blob_files(home: Path) -> list[Path]:
    return [p for p in (home / "blobs" / "sha256").rglob("*") if p.is_file()]


def test_register_then_show_returns_everything(daemon, modelreg, model_file):
    r = modelreg("register", str(model_file), "--name", "fraud", "--metric", "auc=0.91", "--param", "lr=0.01",
                 "--dataset", "txns@2026-11", "--run", "r42", check=True)
    assert "fraud@1" in r.stdout
    shown = json.loads(modelreg("show", "fraud@1", "--json", check=True).stdout)
    assert shown["status"] == "ready"
    assert shown["metrics"] == {"auc": 0.91}
    assert shown["params"] == {"lr": "0.01"}
    assert shown["lineage"]["datasets"][0]["dataset"] == "txns@2026-11"
    assert shown["lineage"]["run"]["id"] == "r42"
    assert shown["files"] == [{"path": "model.dat", "sha256": hashlib.sha256(model_file.read_bytes()).hexdigest(),
                               "size": 2_000_000}]
    assert shown["total_size"] == 2_000_000


def test_same_bytes_twice_are_stored_once(daemon, modelreg, model_file):
    modelreg("register", str(model_file), "--name", "fraud", check=True)
    second = modelreg("register", str(model_file), "--name", "fraud", "--json", check=True)
    assert json.loads(second.stdout)["version"] == 2
    blobs = blob_files(daemon.home)
    assert len(blobs) == 1 and blobs[0].stat().st_size == 2_000_000
    assert not (blobs[0].stat().st_mode & 0o222), "stored blobs are read-only"


def test_lineage_by_dataset_lists_every_version_trained_on_it(daemon, modelreg, model_file, tmp_path):
    other = tmp_path / "other.bin"
    other.write_bytes(b"x" * 1000)
    modelreg("register", str(model_file), "--name", "fraud", "--dataset", "txns@2026-11", check=True)
    modelreg("register", str(other), "--name", "churn", "--dataset", "txns@2026-11", check=True)
    modelreg("register", str(other), "--name", "churn", "--dataset", "txns@2026-10", check=True)
    modelreg("register", str(other), "--name", "ranker", "--parent", "churn@1", check=True)
    listed = json.loads(modelreg("lineage", "--dataset", "txns@2026-11", "--json", check=True).stdout)
    assert sorted(i["ref"] for i in listed["items"]) == ["churn@1", "fraud@1"]
    human = modelreg("lineage", "--dataset", "txns@2026-11", check=True).stdout
    assert "churn@1" in human and "fraud@1" in human and "churn@2" not in human
    down = json.loads(modelreg("lineage", "churn@1", "--down", "--json", check=True).stdout)
    assert [c["ref"] for c in down["downstream"]["children"]] == ["ranker@1"]
    up = modelreg("lineage", "ranker@1", check=True).stdout
    assert "churn@1" in up and "txns@2026-11" in up


def test_exit_codes(daemon, modelreg, model_file):
    modelreg("register", str(model_file), "--name", "fraud", check=True)
    assert modelreg("show", "fraud@9").returncode == 4
    assert modelreg("show", "nosuch@1").returncode == 4
    assert modelreg("resolve", "fraud@V1", check=True).stdout.strip() == "fraud@1"
    huge = modelreg("show", "fraud@99999999999999999999")
    assert huge.returncode == 2 and "version number too large" in huge.stderr
    bad = modelreg("show", "fraud@-1")
    assert bad.returncode == 2 and "positive version number" in bad.stderr and "Traceback" not in bad.stderr
    bad_name = modelreg("register", str(model_file), "--name", "../x")
    assert bad_name.returncode == 2 and "invalid model name" in bad_name.stderr
    bad_metric = modelreg("register", str(model_file), "--name", "fraud", "--metric", "auc=high")
    assert bad_metric.returncode == 2 and "must be a number" in bad_metric.stderr
    as_json = modelreg("show", "fraud@9", "--json")
    assert json.loads(as_json.stdout)["error"]["code"] == "not_found"


def test_the_daemon_reads_refs_as_the_cli_does(daemon, modelreg, model_file):
    from modelreg.shared.errors import InvalidInput
    from modelreg.shared.sync_client import SyncClient

    modelreg("register", str(model_file), "--name", "fraud", check=True)
    with SyncClient(url=daemon.url, token=daemon.token) as c:
        assert c.version("fraud@V1")["version"] == 1
        with pytest.raises(InvalidInput, match="version number too large"):
            c.version("fraud@99999999999999999999")


def test_unreachable_daemon_exits_5(modelreg):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = modelreg("models", env={"MODELREG_URL": f"http://127.0.0.1:{port}"})
    assert r.returncode == 5
    assert "cannot reach" in r.stderr and "Traceback" not in r.stderr


def test_resolve_versions_and_metric(daemon, modelreg, model_file):
    modelreg("register", str(model_file), "--name", "fraud", check=True)
    modelreg("register", str(model_file), "--name", "fraud", "--metric", "auc=0.95", check=True)
    assert modelreg("resolve", "fraud@latest", check=True).stdout.strip() == "fraud@2"
    assert modelreg("resolve", "fraud@1", check=True).stdout.strip() == "fraud@1"
    modelreg("metric", "fraud@1", "auc=0.93", "--source", "online", check=True)
    v1 = json.loads(modelreg("show", "fraud@1", "--json", check=True).stdout)
    assert v1["metrics"]["auc"] == 0.93 and v1["metric_records"][-1]["source"] == "online"
    listed = json.loads(modelreg("versions", "fraud", "--metric", "auc>=0.94", "--json", check=True).stdout)
    assert [v["version"] for v in listed] == [2]


def test_verify_names_the_versions_of_a_changed_blob(daemon, modelreg, model_file):
    modelreg("register", str(model_file), "--name", "fraud", check=True)
    modelreg("register", str(model_file), "--name", "fraud-copy", check=True)
    assert modelreg("verify", check=True).returncode == 0
    blob = blob_files(daemon.home)[0]
    blob.chmod(0o644)
    with open(blob, "r+b") as f:
        f.seek(1000)
        f.write(b"\xff\xfe")
    r = modelreg("verify")
    assert r.returncode == 1
    assert "fraud@1" in r.stdout and "fraud-copy@1" in r.stdout and "corrupt" in r.stdout
    report = json.loads(modelreg("verify", "--json").stdout)
    assert report["problems"][0]["versions"] == ["fraud-copy@1", "fraud@1"]


def test_export_writes_the_same_bytes(daemon, modelreg, tmp_path):
    folder = tmp_path / "hf"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text('{"a": 1}')
    (folder / "sub" / "weights.bin").write_bytes(os.urandom(100_000))
    modelreg("register", str(folder), "--name", "llm", check=True)
    out = tmp_path / "out"
    modelreg("export", "llm@1", str(out), check=True)
    assert (out / "config.json").read_text() == '{"a": 1}'
    assert (out / "sub" / "weights.bin").read_bytes() == (folder / "sub" / "weights.bin").read_bytes()
    again = modelreg("export", "llm@1", str(out))
    assert again.returncode == 1 and "--force" in again.stderr


def test_upload_mode_registers_over_http(daemon, modelreg, model_file):
    r = modelreg("register", str(model_file), "--name", "remote", "--upload", "--json", check=True)
    v = json.loads(r.stdout)
    assert v["status"] == "ready" and v["files"][0]["sha256"] == hashlib.sha256(model_file.read_bytes()).hexdigest()


def test_daemon_command_starts_in_background_and_second_refuses(home, modelreg, tmp_path):
    r = modelreg("daemon", "--listen", "127.0.0.1:0", check=True)
    try:
        assert "started" in r.stdout
        assert json.loads(modelreg("status", "--json", check=True).stdout)["status"] == "ok"
        again = modelreg("daemon", "--json", check=True)
        assert json.loads(again.stdout)["already_running"] is True
        # A second daemon process on the same home is refused by the lock, with a clear message.
        import subprocess
        import sys

        second = subprocess.run([sys.executable, "-m", "modelreg.daemon", "--home", str(home), "--listen", "127.0.0.1:0"],
                                capture_output=True, text=True, timeout=30)
        assert second.returncode != 0 and "already running" in second.stderr
    finally:
        modelreg("daemon", "--stop", check=True)
    assert modelreg("status").returncode == 5
