"""modelreg doctor (issue 11): each problem made on a real home is found with its fix; --fix
repairs what is safe (temp files, serving links, permissions) and nothing else; the exit code
says whether a finding remains; beside a running daemon it only looks."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from daemon_process import daemon_env, start_daemon
from rel_home_support import copy_fixture

pytestmark = pytest.mark.sqlite_only(reason="doctor examines the home's SQLite registry (integrity_check, "
                                            "foreign_key_check), on the fixture home's registry.db")


def doctor(home: Path, *args: str) -> tuple[int, dict]:
    result = subprocess.run([sys.executable, "-m", "modelreg.tui.cli", "doctor", "--json", *args], capture_output=True,
                            text=True, env=daemon_env(home), timeout=120, stdin=subprocess.DEVNULL)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def finding(report: dict, check: str, text: str) -> dict:
    matches = [f for f in report["findings"] if f["check"] == check and text in f["problem"]]
    assert matches, f"no {check} finding with {text!r} in {json.dumps(report['findings'], indent=1)}"
    return matches[0]


def blob_path(home: Path, sha: str) -> Path:
    return home / "blobs" / "sha256" / sha[:2] / sha[2:]


@pytest.fixture(scope="module")
def started_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture registry after one daemon start (migrated, serving links built), daemon stopped."""
    home = copy_fixture(tmp_path_factory.mktemp("template") / "home")
    start_daemon(home).stop()
    return home


@pytest.fixture
def healthy_home(started_once: Path, tmp_path: Path) -> Path:
    """A copy of it for one test to damage (links stay relative, so they hold in the copy)."""
    return Path(shutil.copytree(started_once, tmp_path / "home", symlinks=True))


def test_each_problem_is_found_and_fix_repairs_only_what_is_safe(healthy_home: Path):
    home = healthy_home
    code, report = doctor(home)
    assert (code, report["ok"], report["findings"]) == (0, True, [])
    assert report["checked"] == {"blobs": 7, "serving_links": 2, "temp_files": 0}

    with closing(sqlite3.connect(home / "registry.db")) as conn:
        files = dict(conn.execute("SELECT path, sha256 FROM manifest mf JOIN versions v ON v.id = mf.version_id "
                                  "JOIN models m ON m.id = v.model_id WHERE m.name = 'fraud' AND v.number = 1"))
        [artifact] = conn.execute("SELECT sha256 FROM mlflow_artifacts").fetchone()
    # Temp files an interrupted write leaves, in each place one can be.
    (home / "blobs" / "tmp" / "0123abcd").write_bytes(b"half a blob")
    (home / "versions" / ".tmp-deadbeef").mkdir()
    (home / "versions" / ".tmp-deadbeef" / "model.bin").write_bytes(b"half a folder")
    os.symlink("../../versions/fraud/1", home / "serving" / "fraud" / ".production.cafe")
    (home / "mlflow-uploads" / "upload-1").mkdir(parents=True)
    # Serving links: one pointing at the wrong version, one for a stage the model has no version in.
    (home / "serving" / "fraud" / "production").unlink()
    os.symlink("../../versions/fraud/1", home / "serving" / "fraud" / "production")
    (home / "serving" / "churn").mkdir()
    os.symlink("../../versions/churn/1", home / "serving" / "churn" / "production")
    # Permissions.
    home.chmod(0o777)
    (home / "token").chmod(0o644)
    # Blobs: a referenced one gone, one of the wrong size, a file nothing records.
    blob_path(home, artifact).unlink()
    grown = blob_path(home, files["model.bin"])
    grown.chmod(0o644)
    grown.write_bytes(grown.read_bytes() + b"!")
    stray = blob_path(home, "ab" + "0" * 62)
    stray.parent.mkdir(exist_ok=True)
    stray.write_bytes(b"nobody's")
    # The database: a file a version holds, no longer recorded as stored; a dangling reference;
    # an index that no longer matches its table.
    with closing(sqlite3.connect(home / "registry.db")) as conn:
        conn.execute("DELETE FROM blobs WHERE sha256 = ?", (files["config.json"],))
        conn.execute("INSERT INTO version_tags VALUES (999, 'k', 'v')")
        conn.execute("PRAGMA writable_schema=ON")
        conn.execute("UPDATE sqlite_master SET sql = replace(sql, 'content_digest', 'source') "
                     "WHERE name = 'versions_by_digest'")
        conn.commit()

    code, report = doctor(home)
    assert code == 1 and not report["ok"]
    temp = finding(report, "temp_files", "4 temp file(s)")
    assert temp["fixable"] and "doctor --fix" in temp["fix"]
    wrong = finding(report, "serving", "serving/fraud/production points at ../../versions/fraud/1, not at version 2")
    stale = finding(report, "serving", "serving/churn/production points at a version no longer in that stage")
    assert wrong["fixable"] and stale["fixable"] and "rebuilds it from the database" in wrong["fix"]
    assert finding(report, "permissions", "world-writable (mode 0777)")["fixable"]
    assert finding(report, "permissions", "mode 0644, not 0600: others can act as the admin")["fix"].startswith("`chmod 600")
    missing = finding(report, "blobs", f"blob {artifact[:16]}… (19 bytes) is missing (held by tracked@1:mlflow-model.txt, mlflow-artifacts:/1/")
    assert not missing["fixable"] and "modelreg restore" in missing["fix"]
    size = finding(report, "blobs", "is 137 bytes, the database says 136 (held by fraud@1:model.bin)")
    assert not size["fixable"] and "modelreg verify" in size["fix"]
    assert "modelreg restore" in finding(report, "blobs", f"blob {files['config.json'][:16]}… is named (held by "
                                                        "fraud@1:config.json) but not recorded as stored")["fix"]
    # The stray file, and the one whose record went (14 bytes).
    assert "modelreg gc" in finding(report, "blobs", "2 blob file(s) (22 bytes) that no version")["fix"]
    assert not finding(report, "foreign_keys", "1 row(s) of version_tags name a row that does not exist")["fixable"]
    assert "modelreg restore" in finding(report, "integrity", "missing from index versions_by_digest")["fix"]
    db_before = (home / "registry.db").read_bytes()

    code, report = doctor(home, "--fix")
    assert code == 1  # what --fix may not touch remains
    assert sorted(f["check"] for f in report["fixed"]) == ["permissions", "permissions", "serving", "serving",
                                                           "temp_files"]
    assert {f["check"] for f in report["findings"]} == {"blobs", "foreign_keys", "integrity"}
    assert not any(f["fixable"] for f in report["findings"])
    # Fixed on disk.
    assert list((home / "blobs" / "tmp").iterdir()) == [] and not (home / "versions" / ".tmp-deadbeef").exists()
    assert list((home / "mlflow-uploads").iterdir()) == []
    assert not (home / "serving" / "fraud" / ".production.cafe").is_symlink()
    assert (home / "serving" / "fraud" / "production" / "model.bin").read_bytes() == b"fraud weights v2\n" * 8
    assert not (home / "serving" / "churn" / "production").is_symlink()
    assert stat.S_IMODE(home.stat().st_mode) & 0o022 == 0 and stat.S_IMODE((home / "token").stat().st_mode) == 0o600
    # Never touched: the database, the stray blob, the grown one.
    assert (home / "registry.db").read_bytes() == db_before
    assert stray.read_bytes() == b"nobody's" and grown.stat().st_size == 137


def test_beside_a_running_daemon_doctor_only_looks(healthy_home: Path):
    home = healthy_home
    daemon = start_daemon(home)
    try:
        code, report = doctor(home)
        assert (code, report["ok"], report["daemon_running"]) == (0, True, True)
        # A temp file newer than the daemon's start may be a write in flight: not an orphan.
        (home / "blobs" / "tmp" / "in-flight").write_bytes(b"x")
        # A materialised folder that lost a file is found while the daemon serves.
        folder = home / "versions" / "fraud" / "2"
        folder.chmod(0o755)
        (folder / "config.json").unlink()
        code, report = doctor(home)
        assert code == 1 and report["checked"]["temp_files"] == 0
        problem = finding(report, "serving", "serving/fraud/production leads to version 2's folder, which lacks 1 file")
        assert problem["fixable"]
        # --fix needs the home to itself.
        result = subprocess.run([sys.executable, "-m", "modelreg.tui.cli", "doctor", "--fix"], capture_output=True,
                                text=True, env=daemon_env(home), timeout=120, stdin=subprocess.DEVNULL)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert "needs the home to itself" in result.stderr and "modelreg daemon --stop" in result.stderr
        assert not (folder / "config.json").exists()  # nothing was changed
    finally:
        daemon.stop()
    # Stopped: the fix rebuilds the folder from the blobs, and the temp file is now an orphan.
    code, report = doctor(home, "--fix")
    assert code == 0 and report["ok"], report
    assert {f["check"] for f in report["fixed"]} == {"serving", "temp_files"}
    assert (folder / "config.json").read_bytes() == b'{"layers": 3}\n'


def test_human_output_names_each_finding_and_its_fix(healthy_home: Path):
    (healthy_home / "token").chmod(0o640)
    result = subprocess.run([sys.executable, "-m", "modelreg.tui.cli", "doctor"], capture_output=True, text=True,
                            env=daemon_env(healthy_home), timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 1
    assert "1 finding in" in result.stdout and "mode 0640, not 0600" in result.stdout
    assert f"`chmod 600 {healthy_home / 'token'}` (doctor --fix does)" in result.stdout
