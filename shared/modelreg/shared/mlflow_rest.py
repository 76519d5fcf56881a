"""A small client of a running MLflow server's REST API (the standard library, no ``mlflow``).

What ``modelreg import mlflow`` reads: registered models and their versions (paged), download
URIs, runs and experiments, and the files the server serves under ``mlflow-artifacts``. Every
failure is a ``ModelregError`` with a one-line message that says what went wrong where
(unreachable, refused credentials, not an MLflow server, an MLflow error code), never a
traceback.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import posixpath
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from .errors import ModelregError, NotFound, Unauthorized

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
MODELS_PAGE = 1000  # MLflow's SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD
VERSIONS_PAGE = 1000
_CHUNK = 1024 * 1024
MAX_FILES = 100_000  # files of one version's artifact tree (modelreg's own limit for a folder)


class MlflowError(ModelregError):
    """The MLflow server answered with an error (its ``error_code`` kept in details)."""


class MlflowUnreachable(MlflowError):
    """No answer from the MLflow server (refused, timed out, cut): nothing further can be read."""


class MlflowRest:
    """Requests to one MLflow server; ``token`` as MLFLOW_TRACKING_TOKEN (a bearer token), or
    MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD for basic auth."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ModelregError(f"--from {url!r} is not an http(s) URL of an MLflow server")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._headers = {"Accept": "application/json", "User-Agent": "modelreg-import"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        elif os.environ.get("MLFLOW_TRACKING_USERNAME"):
            pair = f"{os.environ['MLFLOW_TRACKING_USERNAME']}:{os.environ.get('MLFLOW_TRACKING_PASSWORD', '')}"
            self._headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()

    # -- transport ------------------------------------------------------------------------------

    def _open(self, path: str, params: dict[str, Any] | None = None):
        target = self.url + path + ("?" + urlencode(params) if params else "")
        request = urllib.request.Request(target, headers=self._headers)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)  # noqa: S310 - http(s) checked above
        except urllib.error.HTTPError as exc:
            raise self._error(exc) from None
        except urllib.error.URLError as exc:
            reason = getattr(exc.reason, "strerror", None) or exc.reason
            raise MlflowUnreachable(f"cannot reach the MLflow server at {self.url}: {reason}") from None
        except TimeoutError:
            raise MlflowUnreachable(f"the MLflow server at {self.url} did not answer within {self.timeout:g}s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise MlflowUnreachable(f"cannot reach the MLflow server at {self.url}: {_why(exc)}") from None

    def _error(self, exc: urllib.error.HTTPError) -> ModelregError:
        try:
            raw = exc.read(64 * 1024)
        except OSError:
            raw = b""
        body = _json(raw)
        if exc.code in (401, 403):
            why = "refused the credentials" if exc.code == 403 else "needs credentials"
            return Unauthorized(f"the MLflow server at {self.url} {why} (HTTP {exc.code}): give --token or set "
                                "MLFLOW_TRACKING_TOKEN (or MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD)")
        if isinstance(body, dict) and "error_code" in body:
            cls = NotFound if body["error_code"] == "RESOURCE_DOES_NOT_EXIST" else MlflowError
            return cls(f"MLflow: {body.get('message') or body['error_code']}", {"error_code": body["error_code"]})
        return MlflowError(f"{self.url} does not answer like an MLflow server (HTTP {exc.code} for "
                           f"{urlsplit(exc.url or '').path}): is --from the MLflow tracking server's URL?")

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        """GET an API path (``/registered-models/get``…) and its decoded JSON object."""
        with self._open(API + path, {k: v for k, v in params.items() if v is not None}) as resp:
            raw = self._read(resp)
            kind = resp.headers.get("Content-Type", "")
        body = _json(raw)
        if not isinstance(body, dict):
            raise MlflowError(f"{self.url} does not answer like an MLflow server ({kind or 'no content type'} "
                              f"for {API + path}): is --from the MLflow tracking server's URL?")
        return body

    # -- registry ---------------------------------------------------------------------------------

    def check(self) -> None:
        """One cheap request that fails clearly when the URL is not a reachable MLflow server."""
        self.get("/registered-models/search", max_results=1)

    def registered_models(self) -> Iterator[dict[str, Any]]:
        """Every registered model, name-ordered, page by page."""
        token = None
        while True:
            page = self.get("/registered-models/search", max_results=MODELS_PAGE, page_token=token)
            yield from page.get("registered_models", [])
            token = page.get("next_page_token")
            if not token:
                return

    def registered_model(self, name: str) -> dict[str, Any]:
        """One model with its description, tags and aliases."""
        return self.get("/registered-models/get", name=name)["registered_model"]

    def model_versions(self, name: str) -> Iterator[dict[str, Any]]:
        """Every version of one model, page by page."""
        token = None
        literal = "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"
        while True:
            page = self.get("/model-versions/search", filter=f"name={literal}", max_results=VERSIONS_PAGE,
                            page_token=token)
            yield from page.get("model_versions", [])
            token = page.get("next_page_token")
            if not token:
                return

    def download_uri(self, name: str, version: str) -> str:
        return self.get("/model-versions/get-download-uri", name=name, version=version).get("artifact_uri", "")

    def run(self, run_id: str) -> dict[str, Any]:
        return self.get("/runs/get", run_id=run_id)["run"]

    def experiment(self, experiment_id: str) -> dict[str, Any]:
        return self.get("/experiments/get", experiment_id=experiment_id)["experiment"]

    def logged_model(self, model_id: str) -> dict[str, Any]:
        return self.get(f"/logged-models/{quote(model_id, safe='')}")["model"]

    # -- artifacts --------------------------------------------------------------------------------

    def artifact_path(self, uri: str) -> str | None:
        """The path under the server's ``mlflow-artifacts`` root that ``uri`` names, or None when
        the server cannot serve it (s3://, a local path…). Resolves ``runs:/`` and ``models:/m-…``."""
        parts = urlsplit(uri)
        if parts.scheme == "runs":
            run_id, _, sub = parts.path.lstrip("/").partition("/")
            base = self.run(run_id)["info"].get("artifact_uri", "")
            return self._join(self.artifact_path(base), sub)
        if parts.scheme == "models" and parts.path.lstrip("/").startswith("m-"):
            model = self.logged_model(parts.path.lstrip("/").split("/", 1)[0])
            return self.artifact_path(model.get("info", {}).get("artifact_uri", ""))
        if parts.scheme == "mlflow-artifacts":
            return parts.path.strip("/")
        if parts.scheme in ("http", "https") and ARTIFACTS + "/" in parts.path:
            return parts.path.split(ARTIFACTS + "/", 1)[1].strip("/")
        return None

    @staticmethod
    def _join(base: str | None, sub: str) -> str | None:
        if base is None:
            return None
        return posixpath.join(base, sub).strip("/") if sub else base

    def list_files(self, root: str) -> list[tuple[str, int]]:
        """Every file under ``root`` (recursively): (path relative to root, size)."""
        out: list[tuple[str, int]] = []
        stack = [""]
        while stack:
            rel = stack.pop()
            listing = self._listing(posixpath.join(root, rel) if rel else root)
            for f in listing:
                name = posixpath.join(rel, posixpath.basename(f["path"])) if rel else posixpath.basename(f["path"])
                if f.get("is_dir"):
                    stack.append(name)
                else:
                    out.append((name, int(f.get("file_size", 0))))
                if len(out) > MAX_FILES:
                    raise MlflowError(f"{root} holds more than {MAX_FILES} files")
        return sorted(out)

    def _listing(self, path: str) -> list[dict[str, Any]]:
        with self._open(ARTIFACTS, {"path": path}) as resp:
            body = _json(self._read(resp))
        if not isinstance(body, dict):
            raise MlflowError(f"{self.url} does not serve artifacts (mlflow server --no-serve-artifacts?)")
        return body.get("files", [])

    def download(self, path: str, dest: Path, progress: Callable[[int], None] | None = None) -> tuple[str, int]:
        """Stream one artifact to ``dest``; its (sha256, size)."""
        h, size = hashlib.sha256(), 0
        with self._open(f"{ARTIFACTS}/{quote(path)}") as resp, open(dest, "wb") as f:
            expected = resp.headers.get("Content-Length")
            while chunk := self._read(resp, _CHUNK):
                h.update(chunk)
                f.write(chunk)
                size += len(chunk)
                if progress:
                    progress(len(chunk))
        if expected is not None and expected.isdigit() and int(expected) != size:
            raise MlflowUnreachable(f"the MLflow server at {self.url} sent {size} of {expected} bytes of {path}")
        return h.hexdigest(), size

    def _read(self, resp: Any, n: int = -1) -> bytes:
        try:
            return resp.read(n)
        except (OSError, http.client.HTTPException) as exc:
            raise MlflowUnreachable(f"lost the connection to the MLflow server at {self.url}: {_why(exc)}") from None


def _why(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
