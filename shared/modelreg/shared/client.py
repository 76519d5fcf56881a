"""The async HTTP client for the daemon's /v1 API, used by the TUI and long-lived programs.

>>> async with Client() as c:
...     prod = await c.resolve("fraud@production")

Every plain request is declared once in ``calls.py`` and bound here as an ``async`` method
of the same name and signature; the light ``SyncClient`` binds the same calls. What streams
(upload, download, the live event stream) is written here, beside aiohttp.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from . import calls, resumable
from .calls import Call, version_path
from .codec import MSGPACK, decode, encode
from .config import API_PREFIX, Endpoint, default_actor, resolve_endpoint
from .errors import Conflict, InvalidInput, ModelregError, Unavailable, from_envelope
from .tls import client_context, not_verified, plain_to_tls_hint

Progress = Callable[[int], None]
Notify = Callable[[str], None]
_CHUNK = 1024 * 1024

__all__ = ["Client", "default_actor"]


class Client:
    def __init__(self, endpoint: Endpoint | None = None, *, url: str | None = None, token: str | None = None,
                 home: Path | None = None, timeout: float = 60.0, actor: str | None = None) -> None:
        self.endpoint = endpoint or resolve_endpoint(home=home, url=url)
        self.url = self.endpoint.url
        self.token = token or self.endpoint.token
        self.actor = actor or default_actor()
        self._timeout = aiohttp.ClientTimeout(total=None, connect=5, sock_read=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"Accept": MSGPACK, "X-Modelreg-Actor": self.actor}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            # http:// URLs ignore the context; https:// ones verify the daemon's certificate with it.
            tls = client_context(self.endpoint.ca_file) if self.url.startswith("https://") else None
            self._session = aiohttp.ClientSession(
                headers=headers, timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=32, force_close=False, ssl=tls or True))
        return self._session

    async def request(self, method: str, path: str, *, params: Any = None, body: Any = None,
                      data: Any = None, headers: dict[str, str] | None = None) -> Any:
        hdrs = dict(headers or {})
        payload = data
        if body is not None:
            payload = encode(body, as_json=False)
            hdrs["Content-Type"] = MSGPACK
        try:
            async with self._http().request(method, self.url + path, params=params, data=payload, headers=hdrs) as resp:
                raw = await resp.read()
                try:
                    decoded = decode(raw, resp.content_type)
                except ModelregError:
                    decoded = None
                if resp.status >= 400:
                    raise from_envelope(resp.status, decoded)
                return decoded
        except aiohttp.ClientConnectorCertificateError as exc:
            raise not_verified(self.url, exc.certificate_error) from None
        except aiohttp.ClientConnectorError as exc:
            raise Unavailable(f"cannot reach the modelreg daemon at {self.url}: {exc.os_error.strerror or exc}",
                              {"url": self.url}) from None
        except aiohttp.ServerDisconnectedError as exc:
            raise Unavailable(f"lost the connection to the daemon at {self.url}: {exc}{plain_to_tls_hint(self.url)}",
                              {"url": self.url}) from None
        except aiohttp.ClientOSError as exc:
            raise Unavailable(f"lost the connection to the daemon at {self.url}: {exc}", {"url": self.url}) from None
        except aiohttp.ClientResponseError as exc:  # not an HTTP answer, e.g. a TLS alert to plain http
            first_line = str(exc.message).splitlines()[0] if exc.message else exc.status
            raise Unavailable(f"the server at {self.url} did not answer HTTP ({first_line}){plain_to_tls_hint(self.url)}",
                              {"url": self.url}) from None
        except asyncio.TimeoutError:
            raise Unavailable(f"the daemon at {self.url} did not answer in time", {"url": self.url}) from None

    async def send(self, call: Call) -> Any:
        """Execute one declared call (see ``calls.py``)."""
        result = await self.request(call.method, call.path, params=call.params, body=call.body)
        return result[call.pick] if call.pick else result

    async def all_models(self, query: str | None = None) -> list[dict[str, Any]]:
        out, cursor = [], None
        while True:
            page = await self.models(query=query, limit=1000, cursor=cursor)
            out.extend(page["items"])
            cursor = page["next"]
            if not cursor:
                return out

    async def iter_versions(self, name: str, **filters: Any) -> AsyncIterator[dict[str, Any]]:
        cursor = None
        while True:
            page = await self.versions(name, cursor=cursor, **filters)
            for item in page["items"]:
                yield item
            cursor = page["next"]
            if not cursor:
                return

    async def upload_blob(self, path: Path, progress: Progress | None = None, notify: Notify | None = None, *,
                          resumable_above: int = resumable.RESUMABLE_ABOVE) -> dict[str, Any]:
        """Send one file to the daemon's blob store (for clients on another machine); its ``{sha256, size}``.

        A file above ``resumable_above`` bytes goes as a resumable upload: a dropped connection
        is retried and the upload goes on from the last byte the daemon made durable (``notify``
        hears of each interruption and resume). Smaller files go in one request.
        """
        path = Path(path)
        size = (await asyncio.to_thread(path.stat)).st_size
        if size > resumable_above:
            return await self._upload_resumable(resumable.Upload(path, size, progress, notify))
        return await self.request("POST", f"{API_PREFIX}/blobs", data=_read(path, 0, size, progress),
                                  headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)})

    async def _upload_resumable(self, up: resumable.Upload) -> dict[str, Any]:
        sha256 = await asyncio.to_thread(resumable.file_sha256, up.path)
        session: dict[str, Any] | None = await self.send(resumable.create_call(up.size, sha256))
        assert session is not None
        upload_id = session["id"]
        try:
            while session is None or session["state"] != "committed":
                try:
                    if session is None:  # after an error: where did the daemon get to?
                        session = await self.send(resumable.status_call(upload_id))
                    else:
                        offset = session["offset"]
                        up.at(offset)
                        n = up.part(offset)
                        session = await self.request(
                            "PATCH", resumable.part_path(upload_id), data=_read(up.path, offset, n, up.sent),
                            headers={"Content-Type": "application/octet-stream", "Content-Length": str(n),
                                     "Upload-Offset": str(offset)})
                except Unavailable as exc:
                    await asyncio.sleep(up.failed(exc))
                    session = None
                except Conflict as exc:
                    if "offset" not in exc.details:
                        raise
                    session = None  # the daemon holds another offset than we thought: ask it
            up.at(session["offset"])
        except asyncio.CancelledError:
            # The daemon drops the session's bytes now rather than at its timeout (best effort).
            await asyncio.shield(self._abort_quietly(upload_id))
            raise
        return session["blob"]

    async def _abort_quietly(self, upload_id: str) -> None:
        try:
            await self.send(resumable.abort_call(upload_id))
        except ModelregError:
            pass

    async def upload_and_register(self, name: str, path: Path, progress: Progress | None = None,
                                  notify: Notify | None = None, **metadata: Any) -> dict[str, Any]:
        targets, rels = calls.upload_targets(Path(path))
        files = []
        for target, rel in zip(targets, rels):
            blob = await self.upload_blob(target, progress, notify)
            files.append({"path": rel, "sha256": blob["sha256"], "size": blob["size"]})
        return await self.register(name, files=files, **metadata)

    async def download(self, ref: str, relpath: str, dest: Path, progress: Progress | None = None) -> str:
        """Download one file of a version to ``dest`` (atomically); returns its sha256, checked.

        A daemon whose artifacts are in S3 answers with a presigned URL (a 307): the bytes are
        fetched from there by a session that carries none of our headers, never the token."""
        import hashlib

        url = f"{self.url}{version_path(ref)}/files/{quote(relpath)}"
        tmp = dest.with_name(f".{dest.name}.modelreg-part")
        h = hashlib.sha256()
        try:
            async with self._http().get(url, allow_redirects=False) as resp:
                if resp.status >= 400:
                    raw = await resp.read()
                    try:
                        body = decode(raw, resp.content_type)
                    except ModelregError:
                        body = None
                    raise from_envelope(resp.status, body)
                expected = resp.headers.get("X-Content-SHA256")
                if resp.status in REDIRECTS:
                    await _fetch_direct(resp.headers["Location"], tmp, h, progress, self._timeout)
                else:
                    await _save(resp, tmp, h, progress)
            if expected and h.hexdigest() != expected:
                raise ModelregError(f"{relpath}: downloaded bytes hash to {h.hexdigest()}, expected {expected}")
            os.replace(tmp, dest)
        except aiohttp.ClientConnectorCertificateError as exc:
            raise not_verified(self.url, exc.certificate_error) from None
        except aiohttp.ClientConnectorError as exc:
            raise Unavailable(f"cannot reach the modelreg daemon at {self.url}: {exc}") from None
        finally:
            tmp.unlink(missing_ok=True)
        return h.hexdigest()

    async def stream_events(self, after: int | None = None) -> AsyncIterator[dict[str, Any]]:
        """Every event after ``after``, then live ones as they commit (WebSocket, msgpack frames).

        Ends when the connection drops; call it again with ``after`` = the last id seen to
        resume without missing anything. Raises Unavailable when it cannot connect.
        """
        import msgpack

        last = after
        params = {"after": str(last)} if last is not None else {}
        try:
            async with self._http().ws_connect(self.url + API_PREFIX + "/events/stream", params=params, heartbeat=20) as ws:
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.BINARY:
                        event = msgpack.unpackb(msg.data, raw=False)
                        last = event.get("id", last)
                        yield event
                    elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED):
                        break
        except aiohttp.ClientConnectorCertificateError as exc:
            raise not_verified(self.url, exc.certificate_error) from None
        except (aiohttp.ClientConnectorError, aiohttp.WSServerHandshakeError) as exc:
            raise Unavailable(f"cannot open the event stream at {self.url}: {exc}") from None
        except aiohttp.ServerDisconnectedError as exc:
            raise Unavailable(f"cannot open the event stream at {self.url}: {exc}{plain_to_tls_hint(self.url)}") from None


REDIRECTS = (301, 302, 303, 307, 308)


async def _save(resp: aiohttp.ClientResponse, tmp: Path, h: Any, progress: Progress | None) -> None:
    with open(tmp, "wb") as f:
        async for chunk in resp.content.iter_chunked(_CHUNK):
            h.update(chunk)
            await asyncio.to_thread(f.write, chunk)
            if progress:
                progress(len(chunk))


async def _fetch_direct(url: str, tmp: Path, h: Any, progress: Progress | None, timeout: aiohttp.ClientTimeout) -> None:
    """A presigned artifact-store URL, fetched with a bare session: the URL is its own credential."""
    where = url.split("?", 1)[0]
    try:
        async with aiohttp.ClientSession(timeout=timeout) as bare, bare.get(url) as resp:
            if resp.status >= 400:
                raise ModelregError(f"the artifact store refused the download ({resp.status} {resp.reason}) "
                                    f"at {where}", {"status": resp.status})
            await _save(resp, tmp, h, progress)
    except aiohttp.ClientError as exc:
        raise Unavailable(f"cannot download from the artifact store at {where}: {exc}") from None


async def _read(path: Path, offset: int, length: int, progress: Progress | None) -> AsyncIterator[bytes]:
    """``length`` bytes of ``path`` from ``offset``, read off the loop a chunk at a time."""
    with open(path, "rb") as f:
        f.seek(offset)
        while length > 0 and (chunk := await asyncio.to_thread(f.read, min(_CHUNK, length))):
            length -= len(chunk)
            if progress:
                progress(len(chunk))
            yield chunk


def _bind(build: Callable[..., Call]) -> Callable[..., Any]:
    @functools.wraps(build)
    async def method(self: Client, *args: Any, **kwargs: Any) -> Any:
        return await self.send(build(*args, **kwargs))

    return method


for _name, _build in calls.CALLS.items():
    setattr(Client, _name, _bind(_build))
