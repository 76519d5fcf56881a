"""`modelreg import mlflow --from URL` (issue 10, acceptance 4), against a stock `mlflow server`
populated with the stock client: 3 models, 20 versions with real artifacts, tags,
descriptions, aliases and stages. The import must reproduce them (numbers, bytes included),
copy nothing twice, and follow a moved alias."""

from __future__ import annotations

import http.server
import json
import os
import socket
import threading
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from modelreg.shared.errors import Conflict, InvalidInput
from modelreg.shared.sync_client import SyncClient

STAGE = {"None": "none", "Staging": "staging", "Production": "production", "Archived": "archived"}


@pytest.fixture
def source(mlflow_server, monkeypatch):
    """The stock client pointed at the stock server (the fluent API too, for runs)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    mlflow.set_tracking_uri(mlflow_server.url)
    yield MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
    mlflow.set_tracking_uri(None)


def _logged_version(c: MlflowClient, tmp: Path, model: str, i: int, *, tags: dict | None = None,
                    description: str = "", payload: bytes | None = None) -> str:
    """A run that logs a folder of artifacts, registered as the next version of ``model``."""
    folder = tmp / f"{model}-{i}"
    (folder / "data").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(payload if payload is not None else os.urandom(3000 + i))
    (folder / "data" / "config.json").write_text(json.dumps({"model": model, "i": i}))
    with mlflow.start_run() as run:
        mlflow.log_param("lr", 0.01 * i)
        mlflow.log_metric("auc", 0.8 + i / 100)
        mlflow.log_artifacts(str(folder), artifact_path="model")
    mv = c.create_model_version(model, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id, tags=tags,
                                description=description)
    return mv.version


def _populate(c: MlflowClient, tmp: Path) -> None:
    mlflow.set_experiment("import-test")
    c.create_registered_model("fraud", tags={"team": "risk", "tier": "1"}, description="card fraud scorer")
    same = os.urandom(5000)  # two versions with identical weights: stored once in modelreg
    for i in range(1, 11):
        _logged_version(c, tmp, "fraud", i, tags={"round": str(i), "data": "txns"}, description=f"fraud round {i}",
                        payload=same if i in (3, 4) else None)
    c.transition_model_version_stage("fraud", "5", "Archived")
    c.transition_model_version_stage("fraud", "8", "Production")
    c.transition_model_version_stage("fraud", "9", "Staging")
    c.set_registered_model_alias("fraud", "champion", "8")
    c.set_registered_model_alias("fraud", "challenger", "10")

    c.create_registered_model("churn", description="churn model")
    from sklearn.linear_model import LogisticRegression

    with mlflow.start_run():
        mlflow.sklearn.log_model(LogisticRegression().fit([[0.0], [1.0], [2.0]], [0, 1, 1]), name="model",
                                 registered_model_name="churn")
    for i in range(2, 7):
        _logged_version(c, tmp, "churn", i, tags={"k": f"v{i}"})
    c.transition_model_version_stage("churn", "3", "Production")
    c.transition_model_version_stage("churn", "6", "Production", archive_existing_versions=False)  # two in Production
    c.set_registered_model_alias("churn", "champion", "1")

    c.create_registered_model("ranker", tags={"owner": "search"})
    for i in range(1, 6):
        _logged_version(c, tmp, "ranker", i)
    c.delete_model_version("ranker", "2")  # MLflow never reuses 2: neither must the copy
    c.transition_model_version_stage("ranker", "4", "Staging")


def _import(modelreg, url: str, *extra: str):
    return modelreg("import", "mlflow", "--from", url, *extra, timeout=300)


def _summary(result) -> dict:
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def test_import_reproduces_the_registry_twice_without_duplicates(source, mlflow_server, daemon, modelreg, tmp_path):
    _populate(source, tmp_path)
    models = {m.name: m for m in source.search_registered_models()}
    versions = {name: {v.version: v for v in source.search_model_versions(f"name='{name}'")} for name in models}
    assert sum(len(v) for v in versions.values()) == 20

    first = _import(modelreg, mlflow_server.url, "--json")
    summary = _summary(first)
    assert first.returncode == 0, summary["failures"]
    assert (summary["models"], summary["copied"], summary["present"]) == (3, 20, 0)
    assert any("churn v3" in n and "archived" in n for n in summary["notes"])  # one production in modelreg

    c = SyncClient(url=daemon.url, token=daemon.token)
    listed = json.loads(modelreg("versions", "fraud", "--json", check=True).stdout)
    listed = listed["items"] if isinstance(listed, dict) else listed
    assert sorted(v["version"] for v in listed) == list(range(1, 11))
    expected_stage = {name: {int(n): STAGE[v.current_stage] for n, v in vs.items()} for name, vs in versions.items()}
    expected_stage["churn"][3] = "archived"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    for name, rm in models.items():
        ours = c.model(name)
        assert ours["description"] == (rm.description or "")
        assert ours["tags"] == rm.tags
        mine = {v["version"]: v for v in c.iter_versions(name)}
        assert set(mine) == {int(n) for n in versions[name]}, name  # numbers kept, ranker's gap too
        assert {n: v["stage"] for n, v in mine.items()} == expected_stage[name]
        assert c.aliases(name)["aliases"] == {a: int(v) for a, v in rm.aliases.items()}
        for number, mv in versions[name].items():
            detail = c.version(f"{name}@{number}")
            assert detail["description"] == (mv.description or "")
            assert detail["tags"] == mv.tags
            assert detail["source"] == mv.source  # verbatim: runs:/…/model, models:/m-…
            assert {"ref": f"mlflow:{mlflow_server.url}/{name}/{number}", "external": True} in \
                detail["lineage"]["parents"]
            assert detail["lineage"]["run"]["id"] == mv.run_id
            # The bytes: the source server's files, fetched by the stock client, against ours.
            theirs = Path(mlflow.artifacts.download_artifacts(
                artifact_uri=source.get_model_version_download_uri(name, number),
                dst_path=str(scratch / f"{name}-{number}"), tracking_uri=mlflow_server.url))
            their_files = {p.relative_to(theirs).as_posix(): p.read_bytes() for p in theirs.rglob("*") if p.is_file()}
            assert {f["path"] for f in detail["files"]} == set(their_files)
            for rel, data in their_files.items():
                dest = scratch / "ours"
                c.download(f"{name}@{number}", rel, dest)
                assert dest.read_bytes() == data, f"{name}@{number} {rel}"
    weights = [{f["path"]: f["sha256"] for f in c.version(f"fraud@{n}")["files"]}["weights.bin"] for n in (3, 4, 5)]
    assert weights[0] == weights[1] != weights[2]  # the same bytes: one blob
    assert c.version("fraud@8")["metrics"]["auc"] == pytest.approx(0.88)
    history = c.history("fraud")
    assert any(h.get("reason") == f"imported from mlflow at {mlflow_server.url}" for h in history["items"])

    again = _import(modelreg, mlflow_server.url)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 copied, 20 already here" in again.stdout
    assert "Traceback" not in again.stderr
    assert sum(1 for _ in c.iter_versions("fraud")) == 10

    # Change the source: an alias moves, a tag is added, a stage changes, a version is new.
    source.set_registered_model_alias("fraud", "champion", "10")
    source.set_model_version_tag("fraud", "2", "reviewed", "yes")
    source.transition_model_version_stage("ranker", "5", "Production")
    _logged_version(source, tmp_path, "ranker", 6)
    third = _summary(_import(modelreg, mlflow_server.url, "--json"))
    assert (third["copied"], third["present"], third["failures"]) == (1, 20, [])
    assert c.aliases("fraud")["aliases"] == {"champion": 10, "challenger": 10}
    assert c.version("fraud@2")["tags"]["reviewed"] == "yes"
    assert c.version("ranker@5")["stage"] == "production"
    assert c.version("ranker@6")["status"] == "ready"
    assert sorted(v["version"] for v in c.iter_versions("ranker")) == [1, 3, 4, 5, 6]

    # Files the MLflow server does not hold (s3://): a reference version, as MLflow has it.
    source.create_registered_model("external")
    source.create_model_version("external", "s3://bucket/models/external/1", description="on s3")
    fourth = _summary(_import(modelreg, mlflow_server.url, "--models", "ext*", "--json"))
    assert (fourth["models"], fourth["copied"], fourth["failures"]) == (1, 1, [])
    ref = c.version("external@1")
    assert (ref["source"], ref["file_count"], ref["status"], ref["description"]) == \
        ("s3://bucket/models/external/1", 0, "ready", "on s3")
    assert _summary(_import(modelreg, mlflow_server.url, "--models", "ext*", "--json"))["present"] == 1

    # What cannot be copied is named, and the exit code says so.
    source.create_registered_model("my model")  # a name MLflow takes and modelreg does not
    _logged_version(source, tmp_path, "my model", 1)
    fifth = _import(modelreg, mlflow_server.url, "--models", "my*")
    assert fifth.returncode == 1
    assert "failed: my model: not copied, 1 version(s)" in fifth.stdout
    c.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _NotMlflow(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = b"<html>hello</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_import_errors_are_one_clear_line(daemon, modelreg):
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotMlflow)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        cases = {
            f"http://127.0.0.1:{_closed_port()}": "cannot reach the MLflow server",
            daemon.url: "needs credentials (HTTP 401)",  # our own MLflow API, without its token
            f"http://127.0.0.1:{web.server_address[1]}": "does not answer like an MLflow server",
            "ftp://example.org": "is not an http(s) URL",
        }
        for url, words in cases.items():
            r = _import(modelreg, url)
            assert r.returncode == 1, (url, r.stdout, r.stderr)
            assert words in r.stderr, (url, r.stderr)
            assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    finally:
        web.shutdown()


def test_a_registration_keeps_the_number_it_asks_for_where_possible(daemon, tmp_path):
    blob = tmp_path / "m.bin"
    blob.write_bytes(b"weights" * 100)
    with SyncClient(url=daemon.url, token=daemon.token) as c:
        stored = c.upload_blob(blob)
        files = [{"path": "m.bin", "sha256": stored["sha256"], "size": stored["size"]}]
        assert c.register("kept", files=files, number=5)["version"]["version"] == 5
        assert c.register("kept", files=files)["version"]["version"] == 6  # next_version moved past it
        with pytest.raises(Conflict, match=r"kept@3 cannot be created.*never reused.*kept@7"):
            c.register("kept", files=files, number=3)
        again = c.register("kept", files=files, number=3, renumber=True)["version"]
        assert (again["version"], again["renumbered_from"]) == (7, 3)
        assert sorted(v["version"] for v in c.iter_versions("kept")) == [5, 6, 7]
        ref = c.register("kept", reference="s3://bucket/kept/8", number=9)["version"]
        assert (ref["version"], ref["source"], ref["file_count"], ref["status"]) == (9, "s3://bucket/kept/8", 0, "ready")
        for bad in ({"reference": "/etc/passwd"}, {"reference": "file:///etc/passwd"},
                    {"reference": "s3://b/k", "files": files}):
            with pytest.raises(InvalidInput):
                c.register("kept", **bad)
        assert sorted(v["version"] for v in c.iter_versions("kept")) == [5, 6, 7, 9]
