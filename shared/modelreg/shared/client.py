"""The async HTTP client for the daemon's /v1 API, used by the CLI, the TUI and CI scripts.

>>> async with Client() as c:
...     prod = await c.resolve("fraud@production")
"""

from __future__ import annotations

import asyncio
import getpass
import os
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from .codec import MSGPACK, decode, encode
from .config import Endpoint, resolve_endpoint
from .errors import InvalidInput, ModelregError, Unavailable, from_envelope

Progress = Callable[[int], None]
_CHUNK = 1024 * 1024


def default_actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def _q(text: str) -> str:
    return quote(text, safe="@")


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
            self._session = aiohttp.ClientSession(
                headers=headers, timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=32, force_close=False))
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
        except aiohttp.ClientConnectorError as exc:
            raise Unavailable(f"cannot reach the modelreg daemon at {self.url}: {exc.os_error.strerror or exc}",
                              {"url": self.url}) from None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            raise Unavailable(f"lost the connection to the daemon at {self.url}: {exc}", {"url": self.url}) from None
        except asyncio.TimeoutError:
            raise Unavailable(f"the daemon at {self.url} did not answer in time", {"url": self.url}) from None

    # -- daemon ------------------------------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        return await self.request("GET", "/v1/health")

    async def status(self) -> dict[str, Any]:
        return await self.request("GET", "/v1/status")

    # -- models and versions -----------------------------------------------------------------

    async def models(self, *, query: str | None = None, limit: int = 100, cursor: str | None = None) -> dict[str, Any]:
        params = {"limit": limit, **({"q": query} if query else {}), **({"cursor": cursor} if cursor else {})}
        return await self.request("GET", "/v1/models", params=params)

    async def all_models(self, query: str | None = None) -> list[dict[str, Any]]:
        out, cursor = [], None
        while True:
            page = await self.models(query=query, limit=1000, cursor=cursor)
            out.extend(page["items"])
            cursor = page["next"]
            if not cursor:
                return out

    async def create_model(self, name: str, *, description: str = "", tags: dict[str, str] | None = None) -> dict[str, Any]:
        return await self.request("POST", "/v1/models", body={"name": name, "description": description, "tags": tags or {}})

    async def model(self, name: str) -> dict[str, Any]:
        return await self.request("GET", f"/v1/models/{_q(name)}")

    async def update_model(self, name: str, **fields: Any) -> dict[str, Any]:
        return await self.request("PATCH", f"/v1/models/{_q(name)}", body=fields)

    async def versions(self, name: str, *, stage: str | None = None, status: str | None = None,
                       tags: list[str] | None = None, metrics: list[str] | None = None, order: str = "-number",
                       limit: int = 100, cursor: str | None = None) -> dict[str, Any]:
        params: list[tuple[str, str]] = [("order", order), ("limit", str(limit))]
        for key, value in (("stage", stage), ("status", status), ("cursor", cursor)):
            if value:
                params.append((key, value))
        params += [("tag", t) for t in tags or []] + [("metric", m) for m in metrics or []]
        return await self.request("GET", f"/v1/models/{_q(name)}/versions", params=params)

    async def iter_versions(self, name: str, **filters: Any) -> AsyncIterator[dict[str, Any]]:
        cursor = None
        while True:
            page = await self.versions(name, cursor=cursor, **filters)
            for item in page["items"]:
                yield item
            cursor = page["next"]
            if not cursor:
                return

    async def version(self, ref: str) -> dict[str, Any]:
        name, _, selector = ref.partition("@")
        return await self.request("GET", f"/v1/models/{_q(name)}/versions/{_q(selector or 'latest')}")

    async def resolve(self, ref: str, *, path: bool = False) -> dict[str, Any]:
        """Which version a ref names; with ``path``, also a read-only folder of its files."""
        return await self.request("GET", f"/v1/resolve/{_q(ref)}", params={"path": "1"} if path else None)

    async def register(self, name: str, *, path: str | Path | None = None, files: list[dict[str, Any]] | None = None,
                       move: bool = False, wait: bool = False, **metadata: Any) -> dict[str, Any]:
        """Register from a path on the daemon's machine, or from uploaded blobs (``files``).

        Returns ``{"version": …, "job": …}``; with a path and ``wait=False`` the version is
        still ``pending`` and the job reports hashing progress (see ``job()``).
        """
        body: dict[str, Any] = {k: v for k, v in metadata.items() if v not in (None, [], {})}
        body.setdefault("source", "api")
        if path is not None:
            body["path"] = str(Path(path).expanduser().absolute())
            body["mode"] = "move" if move else "copy"
        else:
            body["files"] = files
        params = {"wait": "1"} if wait else None
        return await self.request("POST", f"/v1/models/{_q(name)}/versions", params=params, body=body)

    async def upload_blob(self, path: Path, progress: Progress | None = None) -> dict[str, Any]:
        """Stream one file to the daemon's blob store (for clients on another machine)."""
        size = path.stat().st_size

        async def chunks() -> AsyncIterator[bytes]:
            with open(path, "rb") as f:
                while chunk := await asyncio.to_thread(f.read, _CHUNK):
                    if progress:
                        progress(len(chunk))
                    yield chunk

        return await self.request("POST", "/v1/blobs", data=chunks(),
                                  headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)})

    async def upload_and_register(self, name: str, path: Path, progress: Progress | None = None,
                                  **metadata: Any) -> dict[str, Any]:
        path = Path(path)
        if path.is_dir():
            targets = sorted(p for p in path.rglob("*") if p.is_file())
            rels = [p.relative_to(path).as_posix() for p in targets]
        elif path.is_file():
            targets, rels = [path], [path.name]
        else:
            raise InvalidInput(f"{path} is neither a file nor a folder")
        files = []
        for target, rel in zip(targets, rels):
            blob = await self.upload_blob(target, progress)
            files.append({"path": rel, "sha256": blob["sha256"], "size": blob["size"]})
        return await self.register(name, files=files, **metadata)

    async def job(self, job_id: str, wait: float = 0) -> dict[str, Any]:
        return await self.request("GET", f"/v1/jobs/{_q(job_id)}", params={"wait": str(int(wait))} if wait else None)

    async def record_metrics(self, ref: str, metrics: dict[str, float] | list[dict[str, Any]], *,
                             source: str | None = None, dataset: str | None = None) -> dict[str, Any]:
        name, _, selector = ref.partition("@")
        body: dict[str, Any] = {"metrics": metrics}
        if source:
            body["source"] = source
        if dataset:
            body["dataset"] = dataset
        return await self.request("POST", f"/v1/models/{_q(name)}/versions/{_q(selector or 'latest')}/metrics", body=body)

    async def download(self, ref: str, relpath: str, dest: Path, progress: Progress | None = None) -> str:
        """Download one file of a version to ``dest`` (atomically); returns its sha256, checked."""
        import hashlib

        name, _, selector = ref.partition("@")
        url = f"{self.url}/v1/models/{_q(name)}/versions/{_q(selector or 'latest')}/files/{quote(relpath)}"
        tmp = dest.with_name(f".{dest.name}.modelreg-part")
        h = hashlib.sha256()
        try:
            async with self._http().get(url) as resp:
                if resp.status >= 400:
                    raw = await resp.read()
                    try:
                        body = decode(raw, resp.content_type)
                    except ModelregError:
                        body = None
                    raise from_envelope(resp.status, body)
                expected = resp.headers.get("X-Content-SHA256")
                with open(tmp, "wb") as f:
                    async for chunk in resp.content.iter_chunked(_CHUNK):
                        h.update(chunk)
                        await asyncio.to_thread(f.write, chunk)
                        if progress:
                            progress(len(chunk))
            if expected and h.hexdigest() != expected:
                raise ModelregError(f"{relpath}: downloaded bytes hash to {h.hexdigest()}, expected {expected}")
            os.replace(tmp, dest)
        except aiohttp.ClientConnectorError as exc:
            raise Unavailable(f"cannot reach the modelreg daemon at {self.url}: {exc}") from None
        finally:
            tmp.unlink(missing_ok=True)
        return h.hexdigest()

    # -- lifecycle (PRODUCT.md §4) -----------------------------------------------------------

    async def check(self, ref: str, to: str) -> dict[str, Any]:
        """Dry-run the gates of moving ``ref`` to stage ``to``; returns the verdict."""
        name, _, selector = ref.partition("@")
        return await self.request("GET", f"/v1/models/{_q(name)}/versions/{_q(selector or 'latest')}/check",
                                  params={"to": to})

    async def transition(self, ref: str, to: str, *, reason: str | None = None, force: bool = False) -> dict[str, Any]:
        """Move a version to a stage; raises GateFailed (details hold the verdict) when gates refuse.

        Returns ``{"version": …, "verdict": …, "archived": [numbers archived by this move]}``.
        """
        name, _, selector = ref.partition("@")
        body = {"to": to, "reason": reason, "force": force}
        return await self.request("POST", f"/v1/models/{_q(name)}/versions/{_q(selector or 'latest')}/transition",
                                  body=body)

    async def promote(self, ref: str, to: str = "production", *, reason: str | None = None,
                      force: bool = False) -> dict[str, Any]:
        return await self.transition(ref, to, reason=reason, force=force)

    async def archive(self, ref: str, *, reason: str) -> dict[str, Any]:
        return await self.transition(ref, "archived", reason=reason)

    async def rollback(self, name: str, *, reason: str, to: int | None = None) -> dict[str, Any]:
        """Make the previous production version (or ``to``) production again, archiving the current one."""
        return await self.request("POST", f"/v1/models/{_q(name)}/rollback", body={"reason": reason, "to": to})

    async def history(self, name: str, *, at: str | None = None, limit: int = 200) -> dict[str, Any]:
        """Stage changes of a model, newest last; with ``at``, also what each stage held then."""
        params: dict[str, Any] = {"limit": limit}
        if at:
            params["at"] = at
        return await self.request("GET", f"/v1/models/{_q(name)}/history", params=params)

    async def aliases(self, name: str) -> dict[str, Any]:
        return await self.request("GET", f"/v1/models/{_q(name)}/aliases")

    async def set_alias(self, name: str, alias: str, version: int) -> dict[str, Any]:
        return await self.request("PUT", f"/v1/models/{_q(name)}/aliases/{_q(alias)}", body={"version": version})

    async def remove_alias(self, name: str, alias: str) -> dict[str, Any]:
        return await self.request("DELETE", f"/v1/models/{_q(name)}/aliases/{_q(alias)}")

    async def gates(self, model: str | None = None, stage: str | None = None) -> dict[str, Any]:
        params = {k: v for k, v in (("model", model), ("stage", stage)) if v}
        return await self.request("GET", "/v1/gates", params=params)

    async def add_gate(self, rule: str, *, stage: str, model: str | None = None,
                       timeout: float | None = None) -> dict[str, Any]:
        return await self.request("POST", "/v1/gates",
                                  body={"rule": rule, "stage": stage, "model": model, "timeout": timeout})

    async def remove_gate(self, gate_id: int) -> dict[str, Any]:
        return await self.request("DELETE", f"/v1/gates/{int(gate_id)}")

    async def stream_events(self, after: int | None = None) -> AsyncIterator[dict[str, Any]]:
        """Every event after ``after``, then live ones as they commit (WebSocket, msgpack frames).

        Ends when the connection drops; call it again with ``after`` = the last id seen to
        resume without missing anything. Raises Unavailable when it cannot connect.
        """
        import msgpack

        last = after
        params = {"after": str(last)} if last is not None else {}
        try:
            async with self._http().ws_connect(self.url + "/v1/events/stream", params=params, heartbeat=20) as ws:
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.BINARY:
                        event = msgpack.unpackb(msg.data, raw=False)
                        last = event.get("id", last)
                        yield event
                    elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED):
                        break
        except (aiohttp.ClientConnectorError, aiohttp.WSServerHandshakeError) as exc:
            raise Unavailable(f"cannot open the event stream at {self.url}: {exc}") from None

    async def audit_verify(self) -> dict[str, Any]:
        return await self.request("POST", "/v1/audit/verify")

    async def gc(self, *, dry_run: bool = True) -> dict[str, Any]:
        return await self.request("POST", "/v1/gc", body={"dry_run": dry_run})

    # -- drop folders (PRODUCT.md §6) -------------------------------------------------------------

    async def watches(self) -> list[dict[str, Any]]:
        return (await self.request("GET", "/v1/watches"))["items"]

    async def add_watch(self, path: str | Path, *, model: str | None = None, mode: str = "move",
                        settle: float = 3.0, poll: bool | None = None) -> dict[str, Any]:
        body = {"path": str(Path(path).expanduser().absolute()), "model": model, "mode": mode, "settle": settle}
        if poll is not None:
            body["poll"] = poll
        return await self.request("POST", "/v1/watches", body=body)

    async def remove_watch(self, path_or_id: str | Path | int) -> dict[str, Any]:
        key = str(path_or_id)
        if not key.isdigit():
            key = str(Path(key).expanduser().absolute())
        return await self.request("DELETE", f"/v1/watches/{quote(key, safe='')}")

    # -- lineage, events, integrity ------------------------------------------------------------

    async def lineage(self, ref: str, direction: str = "both") -> dict[str, Any]:
        return await self.request("GET", f"/v1/lineage/{_q(ref)}", params={"direction": direction})

    async def dataset_versions(self, dataset: str) -> dict[str, Any]:
        return await self.request("GET", f"/v1/datasets/{_q(dataset)}/versions")

    async def events(self, *, after: int | None = None, limit: int = 100, model: str | None = None,
                     kind: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if after is not None:
            params["after"] = after
        if model:
            params["model"] = model
        if kind:
            params["kind"] = kind
        return await self.request("GET", "/v1/events", params=params)

    async def verify(self, ref: str | None = None, wait: bool = False) -> dict[str, Any]:
        return await self.request("POST", "/v1/verify", params={"wait": "1"} if wait else None,
                                  body={"ref": ref} if ref else {})
