"""A bad MODELREG_ARTIFACTS stops the daemon at start-up with one sentence, never a traceback (issue 13)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from daemon_process import daemon_env
from s3_daemon_support import new_registry


def start_failing(home, env: dict[str, str]) -> str:
    """Run the daemon in the foreground; it must exit non-zero; what it said."""
    proc = subprocess.run([sys.executable, "-m", "modelreg.daemon", "--home", str(home), "--listen", "127.0.0.1:0"],
                          env={**daemon_env(home), **env}, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    said = proc.stdout + proc.stderr
    assert proc.returncode != 0, said
    assert "Traceback" not in said
    return said


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("change, expected", [
    ({"MODELREG_ARTIFACTS": "file:///var/blobs"}, "an S3 artifact store is written s3://BUCKET/PREFIX"),
    ({"MODELREG_ARTIFACTS": "s3://Not_A_Bucket/p"}, "is not an S3 bucket name"),
    ({"AWS_SECRET_ACCESS_KEY": ""}, "needs S3 credentials: set AWS_SECRET_ACCESS_KEY"),
    ({"MODELREG_ARTIFACTS": "s3://no-such-bucket-here/p"}, "bucket 'no-such-bucket-here' at"),
    ({"AWS_SECRET_ACCESS_KEY": "wrong-secret"}, "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY"),
    ({"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:{port}"}, "S3 unreachable"),
])
def test_a_bad_setting_is_one_line_at_start_up(s3_server, tmp_path, change, expected):
    reg = new_registry(s3_server, tmp_path / "home")
    env = {**reg.env, **{k: v.format(port=free_port()) for k, v in change.items()}}
    said = start_failing(reg.home, env)
    assert [line for line in said.splitlines() if expected in line], said  # the whole reason on one line
    assert s3_server.secret_key not in said
    assert not (reg.home / "daemon.json").exists()
