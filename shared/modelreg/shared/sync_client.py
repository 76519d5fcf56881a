"""The light synchronous client: the standard library's http.client, no event loop.

For the CLI's one-shot commands and for scripts: importing it costs a few milliseconds (no
aiohttp), and one kept-alive connection serves every request of a command.

>>> with SyncClient() as c:
...     print(c.resolve("fraud@production")["version"])

The plain requests are the ones declared in ``calls.py`` (the same as ``Client``'s, with the
same names and signatures, returning values instead of coroutines).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, urlencode, urlsplit

from . import calls, resumable
from .calls import Call, version_path
from .codec import MSGPACK, decode, encode
from .config import API_PREFIX, Endpoint, default_actor, resolve_endpoint
from .errors import Conflict, ModelregError, Unavailable, from_envelope
from .tls import client_context, not_verified, plain_to_tls_hint

Progress = Callable[[int], None]
Notify = Callable[[str], None]
_CHUNK = 1024 * 1024
# aiohttp's server closes idle keep-alive connections after 75 s; reconnect well before.
_IDLE_REUSE = 30.0
_RETRYABLE = {"GET", "HEAD", "PUT", "DELETE"}


class SyncClient:
    def __init__(self, endpoint: Endpoint | None = None, *, url: str | None = None, token: str | None = None,
                 home: Path | None = None, timeout: float = 60.0, actor: str | None = None) -> None:
        self.endpoint = endpoint or resolve_endpoint(home=home, url=url)
        self.url = self.endpoint.url
        self.token = token or self.endpoint.token
        self.actor = actor or default_actor()
        self.timeout = timeout
        parts = urlsplit(self.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        self._conn: http.client.HTTPConnection | None = None
        self._last_used = 0.0

    # -- transport ------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": MSGPACK, "X-Modelreg-Actor": self.actor}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """The kept-alive connection (and whether it was reused), fresh when idle too long."""
        if self._conn is not None and time.monotonic() - self._last_used > _IDLE_REUSE:
            self._drop()
        if self._conn is None:
            if self._https:
                self._conn = http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout,
                                                         blocksize=_CHUNK,
                                                         context=client_context(self.endpoint.ca_file))
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout, blocksize=_CHUNK)
            return self._conn, False
        return self._conn, True

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _exchange(self, method: str, target: str, body: Any, headers: dict[str, str]) -> http.client.HTTPResponse:
        """Send one request and return its response (headers read, body not yet)."""
        for attempt in (1, 2):
            conn, reused = self._connection()
            try:
                conn.request(method, target, body=body, headers=headers)
                resp = conn.getresponse()
                self._last_used = time.monotonic()
                return resp
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self._drop()
                # A kept-alive connection the daemon closed meanwhile: safe to resend an idempotent request.
                if attempt == 1 and reused and method in _RETRYABLE and not hasattr(body, "read"):
                    continue
                hint = "" if reused else plain_to_tls_hint(self.url)
                raise Unavailable(f"lost the connection to the daemon at {self.url}: {exc}{hint}",
                                  {"url": self.url}) from None
            except ConnectionRefusedError:
                self._drop()
                raise Unavailable(f"cannot reach the modelreg daemon at {self.url}: connection refused",
                                  {"url": self.url}) from None
            except TimeoutError:
                self._drop()
                raise Unavailable(f"the daemon at {self.url} did not answer in time", {"url": self.url}) from None
            except ssl.SSLCertVerificationError as exc:
                self._drop()
                raise not_verified(self.url, exc) from None
            except OSError as exc:
                self._drop()
                raise Unavailable(f"cannot reach the modelreg daemon at {self.url}: {exc.strerror or exc}",
                                  {"url": self.url}) from None
            except http.client.HTTPException as exc:  # not an HTTP answer, e.g. a TLS alert to plain http
                self._drop()
                raise Unavailable(f"the server at {self.url} did not answer HTTP ({exc!r}){plain_to_tls_hint(self.url)}",
                                  {"url": self.url}) from None
            except BaseException:
                self._drop()  # interrupted mid-exchange (Ctrl-C): the connection's state is unknown
                raise
        raise AssertionError("unreachable")

    def _target(self, path: str, params: Any) -> str:
        target = self._prefix + path
        if params:
            items = params.items() if isinstance(params, dict) else params
            target += "?" + urlencode([(k, str(v)) for k, v in items])
        return target

    def _read(self, resp: http.client.HTTPResponse) -> bytes:
        try:
            return resp.read()
        except (OSError, http.client.HTTPException) as exc:
            self._drop()
            raise Unavailable(f"lost the connection to the daemon at {self.url}: {exc}", {"url": self.url}) from None
        except BaseException:
            self._drop()
            raise

    def _decoded(self, resp: http.client.HTTPResponse) -> Any:
        raw = self._read(resp)
        try:
            value = decode(raw, resp.getheader("Content-Type"))
        except ModelregError:
            value = None
        if resp.status >= 400:
            raise from_envelope(resp.status, value)
        return value

    def request(self, method: str, path: str, *, params: Any = None, body: Any = None, data: Any = None,
                headers: dict[str, str] | None = None) -> Any:
        """One request; the decoded reply, or the daemon's error raised as its ModelregError."""
        hdrs = {**self._headers(), **(headers or {})}
        payload = data
        if body is not None:
            payload = encode(body, as_json=False)
            hdrs["Content-Type"] = MSGPACK
        return self._decoded(self._exchange(method, self._target(path, params), payload, hdrs))

    def send(self, call: Call) -> Any:
        """Execute one declared call (see ``calls.py``)."""
        result = self.request(call.method, call.path, params=call.params, body=call.body)
        return result[call.pick] if call.pick else result

    # -- calls that page or stream ---------------------------------------------------------------

    def all_models(self, query: str | None = None) -> list[dict[str, Any]]:
        out, cursor = [], None
        while True:
            page = self.models(query=query, limit=1000, cursor=cursor)
            out.extend(page["items"])
            cursor = page["next"]
            if not cursor:
                return out

    def iter_versions(self, name: str, **filters: Any) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            page = self.versions(name, cursor=cursor, **filters)
            yield from page["items"]
            cursor = page["next"]
            if not cursor:
                return

    def upload_blob(self, path: Path, progress: Progress | None = None, notify: Notify | None = None, *,
                    resumable_above: int = resumable.RESUMABLE_ABOVE) -> dict[str, Any]:
        """Send one file to the daemon's blob store (for clients on another machine); its ``{sha256, size}``.

        A file above ``resumable_above`` bytes goes as a resumable upload: a dropped connection
        is retried and the upload goes on from the last byte the daemon made durable (``notify``
        hears of each interruption and resume). Smaller files go in one request.
        """
        path = Path(path)
        size = path.stat().st_size
        if size > resumable_above:
            return self._upload_resumable(resumable.Upload(path, size, progress, notify))
        hdrs = {**self._headers(), "Content-Type": "application/octet-stream", "Content-Length": str(size)}
        with open(path, "rb") as f:
            resp = self._exchange("POST", self._target(f"{API_PREFIX}/blobs", None), _Counting(f, progress), hdrs)
            return self._decoded(resp)

    def _upload_resumable(self, up: resumable.Upload) -> dict[str, Any]:
        session: dict[str, Any] | None = self.send(resumable.create_call(up.size, resumable.file_sha256(up.path)))
        assert session is not None
        upload_id = session["id"]
        try:
            with open(up.path, "rb") as f:
                while session is None or session["state"] != "committed":
                    try:
                        if session is None:  # after an error: where did the daemon get to?
                            session = self.send(resumable.status_call(upload_id))
                        else:
                            up.at(session["offset"])
                            session = self._send_part(f, up, upload_id, session["offset"])
                    except Unavailable as exc:
                        time.sleep(up.failed(exc))
                        session = None
                    except Conflict as exc:
                        if "offset" not in exc.details:
                            raise
                        session = None  # the daemon holds another offset than we thought: ask it
            up.at(session["offset"])
        except KeyboardInterrupt:
            self._abort_quietly(upload_id)
            raise
        return session["blob"]

    def _send_part(self, f: BinaryIO, up: resumable.Upload, upload_id: str, offset: int) -> dict[str, Any]:
        n = up.part(offset)
        f.seek(offset)
        hdrs = {**self._headers(), "Content-Type": "application/octet-stream", "Content-Length": str(n),
                "Upload-Offset": str(offset)}
        resp = self._exchange("PATCH", self._target(resumable.part_path(upload_id), None), _Counting(f, up.sent, n),
                              hdrs)
        return self._decoded(resp)

    def _abort_quietly(self, upload_id: str) -> None:
        """Ctrl-C: the daemon drops the session's bytes now rather than at its timeout (best effort)."""
        self._drop()  # the interrupted exchange left the connection in an unknown state
        try:
            self.send(resumable.abort_call(upload_id))
        except (ModelregError, KeyboardInterrupt):
            pass

    def upload_and_register(self, name: str, path: Path, progress: Progress | None = None,
                            notify: Notify | None = None, **metadata: Any) -> dict[str, Any]:
        targets, rels = calls.upload_targets(Path(path))
        files = []
        for target, rel in zip(targets, rels):
            blob = self.upload_blob(target, progress, notify)
            files.append({"path": rel, "sha256": blob["sha256"], "size": blob["size"]})
        return self.register(name, files=files, **metadata)

    def download(self, ref: str, relpath: str, dest: Path, progress: Progress | None = None) -> str:
        """Download one file of a version to ``dest`` (atomically); returns its sha256, checked
        (from S3's presigned URL when the daemon answers with one)."""
        dest = Path(dest)
        resp = self._exchange("GET", self._target(f"{version_path(ref)}/files/{quote(relpath)}", None), None,
                              self._headers())
        if resp.status >= 400:
            self._decoded(resp)
        expected = resp.getheader("X-Content-SHA256")
        tmp = dest.with_name(f".{dest.name}.modelreg-part")
        h = hashlib.sha256()
        source: Any = None
        try:
            if resp.status in REDIRECTS:  # artifacts in S3: a presigned URL, fetched without our token
                self._read(resp)
                source, read = _open_direct(resp.getheader("Location") or "")
            else:
                read = self._chunk
            with source or nullcontext(), open(tmp, "wb") as f:
                while chunk := read(source or resp):
                    h.update(chunk)
                    f.write(chunk)
                    if progress:
                        progress(len(chunk))
            if expected and h.hexdigest() != expected:
                raise ModelregError(f"{relpath}: downloaded bytes hash to {h.hexdigest()}, expected {expected}")
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return h.hexdigest()

    def _chunk(self, resp: http.client.HTTPResponse) -> bytes:
        try:
            return resp.read(_CHUNK)
        except (OSError, http.client.HTTPException, socket.timeout) as exc:
            self._drop()
            raise Unavailable(f"lost the connection to the daemon at {self.url}: {exc}", {"url": self.url}) from None

    def close(self) -> None:
        self._drop()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


REDIRECTS = (301, 302, 303, 307, 308)


def _open_direct(url: str) -> tuple[Any, Callable[[Any], bytes]]:
    """A presigned artifact-store URL opened with none of our headers (the URL is its own
    credential); the response and how to read a chunk of it."""
    import urllib.error
    import urllib.request

    where = url.split("?", 1)[0]
    try:
        source = urllib.request.urlopen(urllib.request.Request(url), timeout=60)  # noqa: S310 - the daemon's URL
    except urllib.error.HTTPError as exc:
        raise ModelregError(f"the artifact store refused the download ({exc.code} {exc.reason}) at {where}",
                            {"status": exc.code}) from None
    except (urllib.error.URLError, OSError) as exc:
        raise Unavailable(f"cannot download from the artifact store at {where}: {getattr(exc, 'reason', exc)}") from None

    def read(resp: Any) -> bytes:
        try:
            return resp.read(_CHUNK)
        except (OSError, http.client.HTTPException) as exc:
            raise Unavailable(f"lost the connection to the artifact store at {where}: {exc}") from None

    return source, read


class _Counting:
    """A file object that reports how many bytes http.client has read from it (at most ``limit``)."""

    def __init__(self, f: BinaryIO, progress: Progress | None, limit: int | None = None) -> None:
        self._f, self._progress, self._left = f, progress, limit

    def read(self, n: int = -1) -> bytes:
        if self._left is not None:
            n = self._left if n < 0 else min(n, self._left)
        chunk = self._f.read(n)
        if self._left is not None:
            self._left -= len(chunk)
        if chunk and self._progress:
            self._progress(len(chunk))
        return chunk


def _bind(build: Callable[..., Call]) -> Callable[..., Any]:
    def method(self: SyncClient, *args: Any, **kwargs: Any) -> Any:
        return self.send(build(*args, **kwargs))

    method.__name__ = build.__name__
    method.__qualname__ = f"SyncClient.{build.__name__}"
    method.__doc__ = build.__doc__
    return method


for _name, _build in calls.CALLS.items():
    setattr(SyncClient, _name, _bind(_build))
