"""Starting and stopping a local daemon process: the one way the CLI, the TUI, the demo and
the tests do it (they never import the daemon)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .config import API_PREFIX, DAEMON_FILE, DEFAULT_HOST, DEFAULT_PORT, Endpoint, ServerTls, resolve_endpoint
from .errors import Unavailable

if TYPE_CHECKING:
    import subprocess

NO_AUTOSTART_ENV = "MODELREG_NO_AUTOSTART"


def answers(url: str, timeout: float = 1.0, *, ca_file: Path | None = None) -> bool:
    """Whether a modelreg daemon answers GET /v1/health at ``url`` (blocking, standard library only).

    An https daemon is verified against ``ca_file`` (else the configured one, else the system's
    trust store); a certificate that does not verify raises Unavailable saying so, because
    "nothing answers" would send the user looking in the wrong place.
    """
    import http.client
    import ssl
    from urllib.parse import urlsplit

    from .config import configured_ca_file
    from .tls import client_context, not_verified

    parts = urlsplit(url)
    host = parts.hostname or DEFAULT_HOST
    if parts.scheme == "https":
        context = client_context(ca_file or configured_ca_file())
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(host, parts.port or 443, timeout=timeout,
                                                                       context=context)
    else:
        conn = http.client.HTTPConnection(host, parts.port or 80, timeout=timeout)
    try:
        conn.request("GET", parts.path.rstrip("/") + API_PREFIX + "/health")
        # 503 is a daemon that runs but has lost its database (health "degraded"): it answers,
        # and each request's error says why; starting another daemon would only collide with it.
        return conn.getresponse().status in (200, 503)
    except ssl.SSLCertVerificationError as exc:
        raise not_verified(url, exc) from None
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def autostart_disabled() -> bool:
    return os.environ.get(NO_AUTOSTART_ENV, "").strip().lower() not in ("", "0", "false", "no")


def ensure_daemon_sync(home: Path, listen: str | None = None, timeout: float = 15.0, *,
                       autostart: bool | None = None, announce: Callable[[str], None] | None = None,
                       tls: ServerTls | None = None) -> Endpoint:
    """The endpoint of the home's daemon, starting one in the background if none answers (blocking).

    ``autostart=False`` (or ``MODELREG_NO_AUTOSTART=1``) raises Unavailable instead of starting
    one; ``announce`` is told, once, that a daemon was started and how to stop it; a daemon it
    starts serves ``tls`` when given.
    """
    endpoint = resolve_endpoint(home=home)
    if endpoint.explicit_url:
        if answers(endpoint.url, ca_file=endpoint.ca_file):
            return endpoint
        raise Unavailable(f"no modelreg daemon answers at {endpoint.url} (MODELREG_URL)", {"url": endpoint.url})
    # Only the URL this home's daemon wrote counts: a daemon on the default port may serve another home.
    if (home / DAEMON_FILE).exists() and answers(endpoint.url, ca_file=endpoint.ca_file):
        return endpoint
    if autostart is False or (autostart is None and autostart_disabled()):
        raise Unavailable(f"no modelreg daemon is running for {home}, and starting one is turned off "
                          f"({NO_AUTOSTART_ENV} or --no-autostart); start it with `modelreg daemon --home {home}`",
                          {"home": str(home)})
    proc = start_background(home, listen, tls=tls)
    wait_for_daemon(home, proc, timeout)
    endpoint = resolve_endpoint(home=home)
    if announce is not None:
        announce(f"started a modelreg daemon in the background for {home} (pid {proc.pid}, {endpoint.url}); "
                 f"stop it with `{stop_command(home)}`")
    return endpoint


def stop_command(home: Path) -> str:
    """The command that stops this home's daemon, as a user would type it."""
    from .config import default_home

    return "modelreg daemon --stop" + ("" if Path(home) == default_home() else f" --home {home}")


async def ensure_daemon(home: Path, listen: str | None = None, timeout: float = 15.0, **options: object) -> Endpoint:
    """``ensure_daemon_sync`` off the event loop (for the TUI)."""
    import asyncio

    return await asyncio.to_thread(ensure_daemon_sync, home, listen, timeout, **options)  # type: ignore[arg-type]


def daemon_command(home: Path, listen: str | None = None, *, allow_remote: bool = False,
                   tls: ServerTls | None = None, insecure_http: bool = False) -> list[str]:
    """The command line that runs this home's daemon in this Python."""
    cmd = [sys.executable, "-m", "modelreg.daemon", "--home", str(home)]
    if listen:
        cmd += ["--listen", listen]
    if allow_remote:
        cmd.append("--allow-remote")
    if tls is not None:
        cmd += ["--tls-cert", str(tls.cert), "--tls-key", str(tls.key)]
    if insecure_http:
        cmd.append("--insecure-http")
    return cmd


def spawn_daemon(home: Path, listen: str | None = None, *, env: dict[str, str] | None = None,
                 log: Path | None = None, detach: bool = True, tls: ServerTls | None = None,
                 allow_remote: bool = False, insecure_http: bool = False) -> subprocess.Popen[bytes]:
    """Start the home's daemon as a child process that logs to ``log`` (default
    ``HOME/logs/daemon.log``, rotated by the daemon); returns at once (see ``wait_for_daemon``).

    ``env`` defaults to ours without MODELREG_URL; ``detach`` puts it in its own session, so a
    Ctrl-C in the terminal that started it does not reach it.
    """
    # Imported here: every CLI command loads this module, few start a daemon.
    import subprocess
    import threading

    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    log = log or home / "logs" / "daemon.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    if env is None:
        env = {k: v for k, v in os.environ.items() if k != "MODELREG_URL"}
    command = daemon_command(home, listen, allow_remote=allow_remote, tls=tls, insecure_http=insecure_http)
    # Its output goes to the log too, for what it prints before its logging is set up (an import error).
    with open(log, "ab") as out:
        proc = subprocess.Popen(command + ["--log-file", str(log)], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=detach, close_fds=True, env=env)
    # A long-lived parent (the TUI, `modelreg demo`) reaps the daemon when it exits, so it
    # does not linger as a zombie that still looks alive to `modelreg daemon --stop`.
    threading.Thread(target=proc.wait, name="modelreg-daemon-reaper", daemon=True).start()
    return proc


def wait_for_daemon(home: Path, proc: subprocess.Popen[bytes], timeout: float = 15.0, *,
                    log: Path | None = None, probe: bool = True, kill: bool = False) -> str:
    """The URL of the daemon ``proc`` once it has written ``HOME/daemon.json`` (and, with
    ``probe``, answers /v1/health). Unavailable, quoting its log's last lines, if it exits or
    does not come up within ``timeout`` (then, with ``kill``, it is killed)."""
    from .config import running_daemon_url

    log = log or home / "logs" / "daemon.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        url = running_daemon_url(home)
        if url and (not probe or answers(url)):
            return url
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    exited = proc.poll() is not None
    if not exited and kill:
        proc.kill()
    tail = ""
    try:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-5:])
    except OSError:
        pass
    what = f"exited with {proc.returncode}" if exited else f"did not answer within {timeout:.0f}s"
    raise Unavailable(f"started a daemon for {home} but it {what}"
                      + (f"; its log ({log}) ends with:\n{tail}" if tail else ""), {"home": str(home)})


def start_background(home: Path, listen: str | None = None, *, tls: ServerTls | None = None) -> subprocess.Popen[bytes]:
    """The home's daemon in the background, on the default port unless that serves another home."""
    if not listen and not _port_free(DEFAULT_HOST, DEFAULT_PORT):
        listen = f"{DEFAULT_HOST}:0"  # the default port serves another home: take any free one
    return spawn_daemon(home, listen, tls=tls)


def daemon_info(home: Path) -> dict[str, object] | None:
    """What the home's daemon wrote about itself (url, pid), if anything."""
    import json

    try:
        info = json.loads((home / DAEMON_FILE).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and "url" in info else None


def pid_alive(pid: int) -> bool:
    """Running, and not a zombie waiting for its parent (e.g. a TUI that started it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def stop_daemon(home: Path, proc: subprocess.Popen[bytes] | None = None, timeout: float = 15.0, *,
                restarted: bool = True) -> int:
    """Stop the home's daemon with SIGTERM and wait until it is gone; returns its pid.

    ``proc`` is a daemon we started for the home: it is stopped first (killed if it outlives
    ``timeout``). With ``restarted``, the daemon the home's daemon.json names is stopped too
    when it is another one (the user restarted it on the same home). NotFound when no daemon
    was running (a stale daemon.json is removed); ModelregError when one outlives ``timeout``.
    """
    import signal

    from .errors import ModelregError, NotFound

    if proc is not None and proc.poll() is None:
        import subprocess

        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    if proc is not None and not restarted:
        return proc.pid
    info = daemon_info(home) or {}
    pid = info.get("pid")
    if not isinstance(pid, int) or (proc is not None and pid == proc.pid):
        if proc is not None:
            return proc.pid
        raise NotFound(f"no daemon is running for {home}")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        (home / DAEMON_FILE).unlink(missing_ok=True)
        if proc is not None:
            return proc.pid
        raise NotFound(f"no daemon is running for {home} (stale pid {pid})") from None
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            raise ModelregError(f"daemon {pid} did not stop within {timeout:g} s")
        time.sleep(0.05)
    return pid


def _port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False
