"""The daemon's log: one line per event an operator cares about, as text or JSON, to stderr
(a supervisor or the journal keeps it) or to a file the daemon rotates itself."""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
import time
from pathlib import Path

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse, WebSocketResponse

from modelreg.shared.errors import InvalidInput

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MAX_BYTES = 10 * 1024 * 1024  # MODELREG_LOG_MAX_BYTES: the file rotates past this size
BACKUPS = 5                   # daemon.log.1 … daemon.log.5 are kept
SLOW_REQUEST_S = 1.0          # MODELREG_SLOW_REQUEST_S: a request slower than this is logged


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers: ts (UTC, ISO 8601), level, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
                 "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _OwnedLog(logging.handlers.RotatingFileHandler):
    """The background daemon's file: stdout and stderr point at it too, so a stray traceback
    lands in the same log, and they follow it when it rotates."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        super().__init__(path, maxBytes=max_bytes, backupCount=BACKUPS, encoding="utf-8")
        self._point_std_streams()

    def doRollover(self) -> None:
        super().doRollover()
        self._point_std_streams()

    def _point_std_streams(self) -> None:
        if self.stream is not None:
            for fd in (1, 2):
                os.dup2(self.stream.fileno(), fd)


def setup(level: str, fmt: str, file: Path | None) -> None:
    """Configure the root logger once, at start-up; InvalidInput for an unknown level or format."""
    if fmt not in FORMATS:
        raise InvalidInput(f"--log-format must be one of {', '.join(FORMATS)}, not {fmt[:40]!r}")
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise InvalidInput(f"--log-level must be DEBUG, INFO, WARNING or ERROR, not {level[:40]!r}")
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = _OwnedLog(file, _max_bytes())
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    logging.getLogger("asyncpg.pool").addFilter(_one_line)


def _one_line(record: logging.LogRecord) -> bool:
    """asyncpg's pool logs a whole traceback about every second while PostgreSQL is down
    ("failed to restore the pool connection floor"): one line each, ending with the cause."""
    if record.exc_info and record.exc_info[1] is not None:
        record.msg, record.args = f"{record.getMessage()}: {record.exc_info[1]}", ()
        record.exc_info = record.exc_text = None
    return True


def _max_bytes() -> int:
    raw = os.environ.get("MODELREG_LOG_MAX_BYTES", "").strip()
    if not raw:
        return MAX_BYTES
    if not raw.isdigit() or int(raw) < 1024:
        raise InvalidInput(f"MODELREG_LOG_MAX_BYTES must be a number of bytes, at least 1024, not {raw[:40]!r}")
    return int(raw)


def slow_requests(threshold: float) -> type[AbstractAccessLogger]:
    """aiohttp's access-log hook, used for one thing: a warning for each request slower than
    ``threshold`` seconds (the time includes sending the body; event streams are left out)."""

    class SlowRequests(AbstractAccessLogger):
        def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
            if time >= threshold and not isinstance(response, WebSocketResponse):
                self.logger.warning("slow request: %s %s → %d in %.2f s (%d bytes sent)", request.method,
                                    request.path, response.status, time, response.body_length)

    return SlowRequests
