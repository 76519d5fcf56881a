"""Issue 13, over the network: what the daemon refuses at start-up (plain http beyond loopback,
TLS files that cannot serve) with a clear message and exit 2, and what it accepts beyond
loopback (TLS, or plain http with --insecure-http and a loud warning)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from daemon_process import daemon_env
from modelreg.shared.config import Endpoint, ServerTls
from modelreg.shared.errors import NotFound
from modelreg.shared.launcher import spawn_daemon, stop_daemon, wait_for_daemon
from modelreg.shared.sync_client import SyncClient
from net_tls_certs import Certs, make_certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def run_daemon(home: Path, *args: str) -> subprocess.CompletedProcess:
    """A daemon that should refuse to start: it exits on its own, long before the timeout."""
    return subprocess.run([sys.executable, "-m", "modelreg.daemon", "--home", str(home), *args],
                          capture_output=True, text=True, env=daemon_env(home), timeout=30, stdin=subprocess.DEVNULL)


def test_plain_http_beyond_loopback_is_refused(tmp_path):
    result = run_daemon(tmp_path / "home", "--listen", "0.0.0.0:0", "--allow-remote")
    assert result.returncode == 2
    assert "refusing to serve plain http on 0.0.0.0" in result.stderr
    assert "--tls-cert" in result.stderr and "--insecure-http" in result.stderr
    assert not (tmp_path / "home" / "daemon.json").exists()


def encrypted_key(certs: Certs, folder: Path) -> Path:
    from cryptography.hazmat.primitives import serialization as s

    key = s.load_pem_private_key(certs.server.key.read_bytes(), None)
    path = folder / "encrypted.key"
    path.write_bytes(key.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.BestAvailableEncryption(b"pw")))
    return path


@pytest.mark.parametrize("case, expected", [
    ("missing cert", "--tls-cert {missing}: no such file"),
    ("key of another cert", "is not the private key of the certificate"),
    ("cert without key", "--tls-cert and --tls-key go together"),
    ("encrypted key", "is encrypted with a passphrase"),
    ("not PEM", "expected a PEM certificate"),
])
def test_tls_files_that_cannot_serve_are_a_clear_error(tmp_path, certs, case, expected):
    missing = tmp_path / "missing.pem"
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    args = {"missing cert": ["--tls-cert", str(missing), "--tls-key", str(certs.server.key)],
            "key of another cert": ["--tls-cert", str(certs.server.cert), "--tls-key", str(certs.other_key)],
            "cert without key": ["--tls-cert", str(certs.server.cert)],
            "encrypted key": ["--tls-cert", str(certs.server.cert), "--tls-key", str(encrypted_key(certs, tmp_path))],
            "not PEM": ["--tls-cert", str(junk), "--tls-key", str(junk)]}[case]
    result = run_daemon(tmp_path / "home", "--listen", "127.0.0.1:0", *args)
    assert result.returncode == 2, result.stderr
    assert expected.format(missing=missing) in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "home" / "daemon.json").exists()


def start_remote(home: Path, **options) -> tuple[subprocess.Popen, str, Path]:
    log = home / "daemon.log"
    proc = spawn_daemon(home, "0.0.0.0:0", env=daemon_env(home), log=log, detach=False, allow_remote=True, **options)
    try:
        return proc, wait_for_daemon(home, proc, 20, log=log, probe=False, kill=True), log
    except BaseException:
        proc.kill()
        raise


def test_tls_beyond_loopback_serves_https(tmp_path, certs):
    home = tmp_path / "home"
    proc, url, _ = start_remote(home, tls=certs.server)
    try:
        # daemon.json names this machine, not the wildcard: a client can connect and verify it.
        assert url.startswith(f"https://{socket.getfqdn()}:")
        port = url.rsplit(":", 1)[1]
        for where in (url, f"https://127.0.0.1:{port}"):
            local = Endpoint(url=where, token=None, home=home, explicit_url=True, ca_file=certs.ca)
            with SyncClient(local) as c:
                assert c.health()["status"] == "ok"
    finally:
        stop_daemon(home, proc, restarted=False)


def test_insecure_http_beyond_loopback_warns_loudly(tmp_path):
    home = tmp_path / "home"
    proc, url, log = start_remote(home, insecure_http=True)
    try:
        assert url.startswith("http://127.0.0.1:")  # reachable, unlike the wildcard it listens on
        assert "INSECURE: serving plain http on 0.0.0.0" in log.read_text()
        with SyncClient(Endpoint(url=url, token=None, home=home, explicit_url=True)) as c:
            assert c.health()["status"] == "ok"
    finally:
        stop_daemon(home, proc, restarted=False)


def test_the_launcher_passes_tls_through(tmp_path):
    from modelreg.shared.launcher import daemon_command

    cmd = daemon_command(tmp_path, "0.0.0.0:7311", allow_remote=True,
                         tls=ServerTls(tmp_path / "c.pem", tmp_path / "k.pem"), insecure_http=False)
    assert cmd[cmd.index("--tls-cert") + 1] == str(tmp_path / "c.pem")
    assert cmd[cmd.index("--tls-key") + 1] == str(tmp_path / "k.pem")
    assert "--insecure-http" not in cmd


def test_modelreg_daemon_starts_a_tls_daemon_in_the_background(tmp_path, certs):
    """`modelreg daemon --tls-cert … --tls-key …` passes the files through the launcher; the
    announced URL is https, and the home's CLI reaches it with the CA."""
    home = tmp_path / "home"
    env = {**daemon_env(home), "MODELREG_CA_FILE": str(certs.ca)}
    tls_args = ["--tls-cert", str(certs.server.cert), "--tls-key", str(certs.server.key)]
    try:
        started = subprocess.run([sys.executable, "-m", "modelreg.tui.cli", "daemon", "--listen", "127.0.0.1:0",
                                  *tls_args], capture_output=True, text=True, env=env, timeout=60,
                                 stdin=subprocess.DEVNULL)
        assert started.returncode == 0, started.stderr
        assert "daemon started at https://127.0.0.1:" in started.stdout
        status = subprocess.run([sys.executable, "-m", "modelreg.tui.cli", "status"], capture_output=True, text=True,
                                env=env, timeout=60, stdin=subprocess.DEVNULL)
        assert status.returncode == 0, status.stderr
        assert "at https://127.0.0.1:" in status.stdout
    finally:
        try:
            stop_daemon(home)
        except NotFound:  # it did not start; the assertions above say why
            pass
