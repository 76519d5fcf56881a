"""Issue 13, over the network: a daemon serving https with a private CA's certificate, and every
client (sync, async, the event stream, the CLI, the TUI) verifying it: with the CA they work, without it
they refuse with "certificate verify failed" (exit 5), and plain http to the TLS port fails
cleanly."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from daemon_process import DaemonProcess, daemon_env, start_daemon
from modelreg.shared.client import Client
from modelreg.shared.config import Endpoint
from modelreg.shared.errors import Unavailable
from modelreg.shared.sync_client import SyncClient
from modelreg.tui.app import ModelregApp
from modelreg.tui.screens.models import ModelsScreen
from net_tls_certs import Certs, make_certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def tls_daemon(tmp_path_factory, certs: Certs):
    d = start_daemon(tmp_path_factory.mktemp("tls") / "home", tls=certs.server)
    try:
        with with_ca(d, certs.ca) as c:
            folder = tmp_path_factory.mktemp("model")
            (folder / "model.bin").write_bytes(b"weights over tls")
            c.upload_and_register("fraud", folder)  # a streamed upload crosses TLS too
        yield d
    finally:
        d.stop()


def with_ca(d: DaemonProcess, ca: Path | None) -> SyncClient:
    return SyncClient(Endpoint(url=d.url, token=d.token, home=d.home, explicit_url=True, ca_file=ca))


def cli(d: DaemonProcess, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**daemon_env(d.home), "MODELREG_NO_AUTOSTART": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "modelreg.tui.cli", *args], capture_output=True, text=True,
                          env=full_env, timeout=60, stdin=subprocess.DEVNULL)


def test_the_daemon_writes_an_https_url(tls_daemon):
    assert tls_daemon.url.startswith("https://127.0.0.1:")
    assert (tls_daemon.home / "daemon.json").read_text().count("https://") == 1


def test_the_sync_client_verifies_against_the_ca_file(tls_daemon, certs):
    with with_ca(tls_daemon, certs.ca) as c:
        assert [m["name"] for m in c.all_models()] == ["fraud"]
    with with_ca(tls_daemon, None) as c, pytest.raises(Unavailable) as refused:
        c.health()
    assert "certificate verify failed" in refused.value.message
    assert tls_daemon.url in refused.value.message
    assert refused.value.exit_code == 5


def test_plain_http_to_the_tls_port_fails_with_a_hint(tls_daemon, certs):
    plain = tls_daemon.url.replace("https://", "http://")
    with SyncClient(url=plain, token=tls_daemon.token, home=tls_daemon.home) as c, pytest.raises(Unavailable) as lost:
        c.health()
    assert "use an https:// URL" in lost.value.message


async def test_the_async_client_and_the_event_stream_verify(tls_daemon, certs):
    trusted = Endpoint(url=tls_daemon.url, token=tls_daemon.token, home=tls_daemon.home, explicit_url=True,
                       ca_file=certs.ca)
    async with Client(trusted) as c:
        assert [m["name"] for m in await c.all_models()] == ["fraud"]

        async def first_ready() -> dict:
            async for event in c.stream_events(after=0):
                if event["kind"] == "version.ready":
                    return event
            raise AssertionError("the stream ended before version.ready")

        event = await asyncio.wait_for(first_ready(), 10)
        assert event["model"] == "fraud"
    untrusted = Endpoint(url=tls_daemon.url, token=tls_daemon.token, home=tls_daemon.home, explicit_url=True)
    async with Client(untrusted) as c:
        with pytest.raises(Unavailable, match="certificate verify failed"):
            await c.health()
        with pytest.raises(Unavailable, match="certificate verify failed"):
            async for _ in c.stream_events(after=0):
                pass


@pytest.mark.parametrize("how", ["option before", "option after", "environment"])
def test_the_cli_trusts_the_given_ca(tls_daemon, certs, how):
    args, env = {"option before": (["--ca-file", str(certs.ca), "models"], {}),
                 "option after": (["models", "--ca-file", str(certs.ca)], {}),
                 "environment": (["models"], {"MODELREG_CA_FILE": str(certs.ca)})}[how]
    result = cli(tls_daemon, "--url", tls_daemon.url, *args, env=env)
    assert result.returncode == 0, result.stderr
    assert "fraud" in result.stdout


def test_the_cli_refuses_an_unverified_daemon(tls_daemon):
    result = cli(tls_daemon, "--url", tls_daemon.url, "models")
    assert result.returncode == 5
    assert "certificate verify failed" in result.stderr and tls_daemon.url in result.stderr
    assert "Traceback" not in result.stderr


def test_the_cli_status_of_the_home_says_why(tls_daemon):
    """No --url: the home's daemon.json names the https URL; without the CA, status says it is
    the certificate, not that nothing answers."""
    result = cli(tls_daemon, "status")
    assert result.returncode == 5
    assert "certificate verify failed" in result.stderr


def test_a_missing_ca_file_is_a_usage_error(tls_daemon, tmp_path):
    result = cli(tls_daemon, "--url", tls_daemon.url, "--ca-file", str(tmp_path / "nope.pem"), "models")
    assert result.returncode == 2
    assert "nope.pem does not exist" in result.stderr
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    env = {"MODELREG_CA_FILE": str(tmp_path / "junk.pem")}
    result = cli(tls_daemon, "--url", tls_daemon.url, "models", env=env)
    assert result.returncode == 2, result.stderr
    assert "junk.pem" in result.stderr and "Traceback" not in result.stderr


async def until(pilot, predicate, what: str, timeout: float = 30.0):
    """The TUI's state, polled while the app runs (generous: a loaded 2-core CI machine)."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await pilot.pause(0.05)
    return value


def tui(d: DaemonProcess) -> ModelregApp:
    return ModelregApp(home=d.home, url=d.url, actor="tester@tui", keymap={}, start_daemon=False, cursor_blink=False)


async def test_the_tui_connects_with_the_ca_and_says_why_without(tls_daemon, certs, monkeypatch):
    monkeypatch.setenv("MODELREG_CA_FILE", str(certs.ca))
    app = tui(tls_daemon)
    async with app.run_test(size=(120, 32)) as pilot:
        models = await until(pilot, lambda: isinstance(app.screen, ModelsScreen) and app.screen.loaded and app.screen,
                             "the models screen")
        await until(pilot, lambda: "fraud" in models.models, "fraud in the models table")
        assert app.connection == "connected"
    monkeypatch.delenv("MODELREG_CA_FILE")
    app = tui(tls_daemon)
    async with app.run_test(size=(120, 32)) as pilot:
        await until(pilot, lambda: app.connection == "disconnected", "the refusal")
        assert "certificate verify failed" in app.connection_error
        banner = app.screen.query_one("#banner")
        await until(pilot, lambda: "certificate verify failed" in str(banner.render()), "the banner")


@pytest.fixture
def alerting_port():
    """A TLS endpoint that, like many, answers a plain http request with a TLS alert record."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)  # a test that never connects does not leave the thread waiting

    def answer() -> None:
        with server:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                conn.sendall(bytes.fromhex("15030100020246"))  # alert, fatal, protocol_version

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    thread.join(10)


async def test_a_tls_alert_to_plain_http_is_a_clear_error(alerting_port):
    url = f"http://127.0.0.1:{alerting_port}"
    async with Client(url=url, token="t") as c:
        with pytest.raises(Unavailable, match="did not answer HTTP .*use an https:// URL"):
            await c.health()


def test_a_tls_alert_to_plain_http_is_a_clear_error_sync(alerting_port):
    with SyncClient(url=f"http://127.0.0.1:{alerting_port}", token="t") as c:
        with pytest.raises(Unavailable, match="did not answer HTTP .*use an https:// URL"):
            c.health()
