"""Bearer-token auth on every route but GET /v1/health (PRODUCT.md §10, issue 2 acceptance 5)."""

from __future__ import annotations

import re
import stat

import pytest

from registry_harness import Registry

OPEN = {("GET", "/v1/health"), ("HEAD", "/v1/health")}
CAPABILITY_PREFIX = "/api/2.0/mlflow-artifacts/mpu/part/"
# A plausible value for each path parameter, so the request reaches the route's handler.
SAMPLES = {"name": "fraud", "selector": "1", "ref": "fraud@1", "dataset": "txns@2026-11",
           "path": "model.safetensors", "id": "1", "alias": "champion"}


def every_route(registry: Registry) -> list[tuple[str, str]]:
    """(method, concrete path) for every route the app serves, found by walking its router."""
    out = []
    for resource in registry.app.router.resources():
        info = resource.get_info()
        template = info.get("path") or info.get("formatter")
        assert template, f"cannot build a path for {resource!r}"
        path = re.sub(r"\{(\w+)(?::[^}]*)?\}", lambda m: SAMPLES.get(m.group(1), "x1"), template)
        for route in resource:
            out.append((route.method, path))
    return out


async def test_every_route_but_health_needs_the_token(registry: Registry) -> None:
    routes = every_route(registry)
    methods = {m for m, _ in routes}
    assert len(routes) >= 20 and {"GET", "POST"} <= methods, routes
    checked = 0
    for method, path in routes:
        for token in (None, "wrong-" + registry.token, registry.token + "x", ""):
            sends = {"body": {"name": "intruder"}} if method in ("POST", "PUT", "PATCH") else {}
            r = await registry.call(method, path, token=token, **sends)
            if (method, path) in OPEN:
                assert r.status == 200, (method, path, r.status)
                continue
            if path.startswith(CAPABILITY_PREFIX):
                # A multipart part URL is its own credential (the client sends no token to it):
                # an unknown upload id is refused all the same.
                assert r.status == 404, (method, path, r.status)
                continue
            assert r.status == 401, (method, path, token, r.status, r.raw[:200])
            if method != "HEAD" and path.startswith("/api/"):
                # MLflow's routes answer in MLflow's shape, so its client raises the right error.
                assert r.data["error_code"] == "UNAUTHENTICATED" and "token" in r.data["message"]
            elif method != "HEAD":
                assert r.error["code"] == "unauthorized"
                assert "token" in r.error["message"]
            checked += 1
    assert checked >= 4 * (len(routes) - 3)

    # None of those requests did anything.
    models = await registry.call("GET", "/v1/models")
    assert models.status == 200 and models.data["items"] == []
    events = await registry.call("GET", "/v1/events")
    assert events.status == 200 and events.data["items"] == []


async def test_the_right_token_gets_past_auth_on_every_route(registry: Registry) -> None:
    """The sweep above is not vacuous: with the token, no route answers 401."""
    for method, path in every_route(registry):
        sends = {"body": {}} if method in ("POST", "PUT", "PATCH") else {}
        r = await registry.call(method, path, **sends)
        assert r.status != 401, (method, path)
        assert r.status < 500, (method, path, r.status, r.raw[:300])


@pytest.mark.parametrize("header", ["Basic {t}", "{t}", "Bearer", "Bearer  ", "Token {t}"])
async def test_malformed_authorization_headers_are_refused(registry: Registry, header: str) -> None:
    r = await registry.call("GET", "/v1/status", token=None,
                            headers={"Authorization": header.format(t=registry.token)})
    assert r.status == 401 and r.error["code"] == "unauthorized"


async def test_health_needs_no_token_and_errors_follow_accept(registry: Registry) -> None:
    health = await registry.call("GET", "/v1/health", token=None)
    assert health.status == 200 and health.data["status"] == "ok"
    as_json = await registry.call("GET", "/v1/status", token=None, accept_json=True)
    as_msgpack = await registry.call("GET", "/v1/status", token=None)
    assert as_json.content_type == "application/json" and as_msgpack.content_type == "application/msgpack"
    assert as_json.error == as_msgpack.error


async def test_token_file_is_private(registry: Registry) -> None:
    mode = stat.S_IMODE((registry.home / "token").stat().st_mode)
    assert mode == 0o600
    assert len(registry.token) >= 32
