"""``python -m modelreg.daemon``: run the daemon in the foreground until SIGTERM, SIGINT or SIGHUP."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import ssl
import sys
from pathlib import Path

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from modelreg.shared.config import DAEMON_FILE, ServerTls, default_home, is_loopback, parse_listen
from modelreg.shared.errors import InvalidInput, ModelregError
from modelreg.shared.timefmt import parse_duration

from . import __version__, logs
from .app import create_app
from .keys import LIFECYCLE
from .config import DaemonConfig
from .logs import SLOW_REQUEST_S, slow_requests
from .sdnotify import Notifier
from .tls import server_context

log = logging.getLogger("modelreg.daemon")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="modelreg-daemon", description="The modelreg registry daemon.")
    p.add_argument("--home", type=Path, default=None, help="registry home (default: $MODELREG_HOME or the user data dir)")
    p.add_argument("--listen", default=os.environ.get("MODELREG_LISTEN", "127.0.0.1:7311"), help="HOST:PORT (port 0 picks a free one)")
    p.add_argument("--allow-remote", action="store_true", help="permit a non-loopback --listen address")
    p.add_argument("--tls-cert", type=Path, default=None, help="serve https with this certificate (PEM, chain)")
    p.add_argument("--tls-key", type=Path, default=None, help="the private key of --tls-cert (PEM, unencrypted)")
    p.add_argument("--insecure-http", action="store_true",
                   help="permit plain http on a non-loopback address (behind a TLS proxy on the same host)")
    p.add_argument("--log-level", default=os.environ.get("MODELREG_LOG_LEVEL", "INFO"),
                   help="DEBUG, INFO, WARNING or ERROR (env MODELREG_LOG_LEVEL)")
    p.add_argument("--log-format", default=os.environ.get("MODELREG_LOG_FORMAT", "text"),
                   help="text or json, one object per line (env MODELREG_LOG_FORMAT)")
    p.add_argument("--log-file", type=Path, default=None,
                   help="log to this file, rotated by size (default: stderr)")
    return p.parse_args(argv)


def mlflow_roots(setting: str) -> tuple[Path, ...]:
    """MODELREG_MLFLOW_ROOTS (os.pathsep-separated): the folders MLflow sources may be read from,
    resolved (symlinks too) so the check against a source's own resolved path is exact."""
    return tuple(Path(os.path.realpath(os.path.expanduser(p))) for p in setting.split(os.pathsep) if p.strip())


def seconds(variable: str, default: float) -> float:
    """A duration in seconds from the environment (a positive number), else ``default``."""
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise InvalidInput(f"{variable} must be a positive number of seconds, not {raw[:40]!r}")
    return value


def duration(variable: str, default: float) -> float:
    """A duration from the environment (``7d``, ``12h``, ``90s`` or seconds), else ``default``."""
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = parse_duration(raw)
    except InvalidInput:
        value = 0.0
    if not 0 < value < float("inf"):
        raise InvalidInput(f"{variable} must be a positive duration such as 7d, 12h or 90s, not {raw[:40]!r}")
    return value


def artifacts_setting() -> str | None:
    """MODELREG_ARTIFACTS, checked before anything starts (a mistake is one sentence); None: local blobs."""
    url = os.environ.get("MODELREG_ARTIFACTS", "").strip()
    if not url:
        return None
    from .artifacts.s3 import parse_s3_config  # botocore loads only for a daemon that uses S3

    parse_s3_config(url)
    return url


def _reachable(host: str, tls: bool) -> str:
    """The host clients on this machine connect to (``daemon.json``). A wildcard bind is no
    address: plain http goes to loopback; https to this machine's name, which its
    certificate names (a certificate for a server seldom names 127.0.0.1)."""
    if host in ("0.0.0.0", "::", ""):
        if tls:
            return socket.getfqdn()
        return "127.0.0.1" if host != "::" else "[::1]"
    return f"[{host}]" if ":" in host else host


async def serve(config: DaemonConfig, tls: ssl.SSLContext | None = None,
                slow_request_s: float = SLOW_REQUEST_S) -> None:
    """Run until SIGTERM, SIGINT or SIGHUP (a closed terminal), then stop cleanly; a service
    manager is told READY=1 once health answers and STOPPING=1 when the stop begins."""
    notifier = Notifier()
    stop = asyncio.Event()
    stopped_by: list[str] = []
    loop = asyncio.get_running_loop()
    # Installed before start-up: a signal during it (migrating, recovering) still ends in a clean stop.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, lambda sig=sig: (stopped_by.append(sig.name), stop.set()))
    log.info("modelreg daemon %s starting (home %s, pid %d, %s)", __version__, config.home, os.getpid(),
             "database " + redacted(config.database) if config.database else "SQLite")
    app = create_app(config)
    runner = web.AppRunner(app, handle_signals=False, access_log=logging.getLogger("modelreg.daemon.http"),
                           access_log_class=slow_requests(slow_request_s), shutdown_timeout=10)
    info_path = config.home / DAEMON_FILE
    try:
        # Inside the try: a start-up step that fails still undoes the steps before it (the lock, the pool).
        await runner.setup()  # runs the cleanup contexts' start-up: lock, database, recovery
        site = web.TCPSite(runner, config.host, config.port, reuse_address=True, ssl_context=tls)
        await site.start()
        sockets = site._server.sockets if site._server else []  # the real port when 0 was asked for
        port = sockets[0].getsockname()[1] if sockets else config.port
        url = f"{'https' if tls else 'http'}://{_reachable(config.host, tls is not None)}:{port}"
        app[LIFECYCLE].url = url  # command gates get the real URL (the port may have been 0)
        info_path.write_text(json.dumps({"url": url, "pid": os.getpid()}))
        log.info("modelreg daemon listening on %s (home %s)", url, config.home)
        # The site is accepting and every start-up step has run: GET /v1/health answers from here on.
        notifier.notify("READY=1", f"STATUS=listening on {url}", f"MAINPID={os.getpid()}")
        await stop.wait()
        log.info("stopping (%s)", stopped_by[0] if stopped_by else "asked to")
        notifier.notify("STOPPING=1", "STATUS=stopping")
        info_path.unlink(missing_ok=True)
    finally:
        await runner.cleanup()
    log.info("modelreg daemon stopped")


def redacted(url: str) -> str:
    """A database URL without its password, for the log."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


def remote_refusal(host: str, args: argparse.Namespace, tls: ServerTls | None) -> str | None:
    """Why the daemon will not listen on the non-loopback ``host``, or None when it may."""
    if not args.allow_remote:
        return (f"refusing to listen on {host}, which is not loopback; add --allow-remote "
                "if you mean it (every request still needs the token)")
    if tls is None and not args.insecure_http:
        return (f"refusing to serve plain http on {host}, which is not loopback: tokens and model bytes would "
                "cross the network unencrypted; give --tls-cert FILE --tls-key FILE, or --insecure-http if a "
                "TLS proxy on this host fronts the daemon")
    return None


class _MalformedRequests(logging.Filter):
    """aiohttp logs a request it cannot parse (a URL past 8 KiB, a broken header) as an ERROR with
    a traceback, though it is the client's mistake and was answered with a 400: one warning line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg, record.args = f"{record.getMessage()}: {exc.code} {str(exc.message)[:200]}", ()
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = None
        return True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        logs.setup(args.log_level, args.log_format, args.log_file)
    except ModelregError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    logging.getLogger("aiohttp.server").addFilter(_MalformedRequests())
    try:
        host, port = parse_listen(args.listen)
        tls = ServerTls.from_options(args.tls_cert, args.tls_key)
        if not is_loopback(host):
            refusal = remote_refusal(host, args, tls)
            if refusal:
                log.error("%s", refusal)
                return 2
            if tls is None:
                log.warning(
                    "INSECURE: serving plain http on %s (--insecure-http): tokens and model bytes cross the "
                    "network unencrypted; put a TLS proxy in front or give --tls-cert and --tls-key", host)
        context = server_context(tls) if tls else None
        home = (args.home or default_home()).expanduser().resolve()
        asyncio.run(serve(DaemonConfig(home=home, host=host, port=port, tls=tls,
                                       database=os.environ.get("MODELREG_DATABASE") or None,
                                       artifacts=artifacts_setting(),
                                       upload_ttl=seconds("MODELREG_UPLOAD_TTL", DaemonConfig.upload_ttl),
                                       approval_ttl=duration("MODELREG_APPROVAL_TTL", DaemonConfig.approval_ttl),
                                       mlflow_roots=mlflow_roots(os.environ.get("MODELREG_MLFLOW_ROOTS", ""))),
                          context, seconds("MODELREG_SLOW_REQUEST_S", SLOW_REQUEST_S)))
    except ModelregError as exc:  # in the log's format: under a supervisor, stderr is the log
        log.error("%s", exc.message)
        return exc.exit_code
    except OSError as exc:
        log.error("cannot start the daemon: %s", exc.strerror or exc)
        return 1
    except KeyboardInterrupt:
        pass
    except Exception:  # a bug, or a failure nothing above names: its traceback goes to the log
        log.exception("the daemon stopped on an unexpected error")
        return 1
    return 0


if __name__ == "__main__":
    status = main()
    if status:
        # A start-up that failed part-way can leave a non-daemon thread behind (a half-opened
        # database connection): exit now, so a supervisor sees the failure, not a hung process.
        logging.shutdown()
        os._exit(status)
