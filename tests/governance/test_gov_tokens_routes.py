"""Scoped tokens on every route, enumerated from the daemon's router (issue 12, acceptance 1).

The routes are read from the router when the module is collected, so a route added later is
covered without touching this file: a ``read`` token must be refused (403 ``forbidden``,
before any validation, changing nothing) on every route that is not a read, and a token
limited to ``fraud*`` on every route that names another model. Which routes only read is the
route policy's table; this file keeps its own list of the POSTs that only read, so a route
cannot become readable without a reviewer seeing it here.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon_process import start_daemon
from gov_support import make_token, model_folder, register
from modelreg.daemon.api.middleware import OPEN_PREFIXES, OPEN_ROUTES
from modelreg.daemon.api.policy import BODY_MODELS, REGISTER, route_scope
from modelreg.daemon.app import create_app
from modelreg.daemon.config import DaemonConfig
from modelreg.shared.sync_client import SyncClient
from reliability.hostile_support import StateProbe, Wire, budget, values

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# POSTs that change nothing (a check, a search): the only non-GET routes a read token may call.
READ_POSTS = {
    ("POST", "/v1/audit/verify"), ("POST", "/v1/verify"),
    ("POST", "/api/2.0/mlflow/registered-models/get-latest-versions"),
    ("POST", "/api/2.0/mlflow/logged-models/search"),
}


def router_routes() -> list[tuple[str, str]]:
    """(method, canonical path) of every route that needs a token; HEAD rides on its GET."""
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(DaemonConfig(home=Path(tmp) / "home"))
        found = {(r.method, r.resource.canonical) for r in app.router.routes() if r.method != "HEAD"}
    return sorted((m, p) for m, p in found if (m, p) not in OPEN_ROUTES
                  and not any(m == om and p.startswith(prefix) for om, prefix in OPEN_PREFIXES))


ROUTES = router_routes()
WRITES = [(m, p) for m, p in ROUTES if route_scope(m, p) != "read"]

# Path parameters: things that exist, so a refusal cannot be a 404 in disguise.
PARAMS = {"name": "fraud", "selector": "1", "ref": "fraud@1", "alias": "champion", "path": "weights.bin",
          "dataset": "txns@1", "id": "1", "key": "1", "model_id": "m-1", "upload_id": "0" * 32, "number": "1"}
MLFLOW = "/api/2.0/mlflow"
# Bodies the routes would take from the home's token (a refusal must come before validation,
# so any body would do; these make sure the refusal is not about the body).
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/v1/models"): {"name": "fresh"},
    ("PATCH", "/v1/models/{name}"): {"description": "changed"},
    ("POST", "/v1/models/{name}/rename"): {"name": "renamed", "reason": "tidy"},
    ("DELETE", "/v1/models/{name}"): {"reason": "gone", "force": True},
    ("DELETE", "/v1/models/{name}/versions/{selector}"): {"reason": "gone", "force": True},
    ("PATCH", "/v1/models/{name}/versions/{selector}"): {"description": "changed"},
    ("POST", "/v1/models/{name}/versions/{selector}/transition"): {"to": "staging", "reason": "try"},
    ("POST", "/v1/models/{name}/versions/{selector}/metrics"): {"metrics": {"auc": 0.99}},
    ("POST", "/v1/models/{name}/rollback"): {"reason": "bad"},
    ("PUT", "/v1/models/{name}/aliases/{alias}"): {"version": 2},
    ("POST", "/v1/tokens"): {"name": "evil", "scope": "admin"},
    ("POST", "/v1/gates"): {"model": "fraud", "stage": "production", "rule": "auc >= 0.99"},
    ("POST", "/v1/hooks"): {"kind": "command", "target": "true"},
    ("POST", "/v1/gc"): {"dry_run": False},
    ("POST", f"{MLFLOW}/registered-models/create"): {"name": "fresh"},
    ("PATCH", f"{MLFLOW}/registered-models/update"): {"name": "fraud", "description": "changed"},
    ("POST", f"{MLFLOW}/registered-models/rename"): {"name": "fraud", "new_name": "renamed"},
    ("DELETE", f"{MLFLOW}/registered-models/delete"): {"name": "fraud"},
    ("POST", f"{MLFLOW}/registered-models/set-tag"): {"name": "fraud", "key": "k", "value": "v"},
    ("POST", f"{MLFLOW}/registered-models/alias"): {"name": "fraud", "alias": "champion", "version": "2"},
    ("DELETE", f"{MLFLOW}/registered-models/alias"): {"name": "fraud", "alias": "champion"},
    ("POST", f"{MLFLOW}/model-versions/transition-stage"): {"name": "fraud", "version": "2", "stage": "Production"},
    ("PATCH", f"{MLFLOW}/model-versions/update"): {"name": "fraud", "version": "1", "description": "changed"},
    ("DELETE", f"{MLFLOW}/model-versions/delete"): {"name": "fraud", "version": "1"},
    ("POST", f"{MLFLOW}/model-versions/set-tag"): {"name": "fraud", "version": "1", "key": "k", "value": "v"},
    ("POST", f"{MLFLOW}/experiments/create"): {"name": "exp"},
}


def target(canonical: str, params: dict[str, str]) -> str:
    out = canonical
    for part in canonical.split("/"):
        if part.startswith("{"):
            name = part[1:-1].partition(":")[0]
            out = out.replace(part, quote(params.get(name, "x"), safe="/" if name == "path" else ""), 1)
    return out


class Registry:
    """One real daemon for the module: ``fraud`` (v1 production, v2 staging, alias champion)
    and ``other``, the home's admin, and named tokens."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.daemon = start_daemon(root / "home")
        self.admin = SyncClient(url=self.daemon.url, token=self.daemon.token, actor="owner@laptop")
        for model in ("fraud", "other"):
            register(self.admin, root / model, 1, model=model, auc=0.9)
            register(self.admin, root / model, 2, model=model, auc=0.95)
            self.admin.transition(f"{model}@1", "production", reason="seed")
            self.admin.transition(f"{model}@2", "staging", reason="seed")
            self.admin.set_alias(model, "champion", 1)
        self.probe = StateProbe(self.daemon.home)

    def wire(self, secret: str) -> Wire:
        return Wire(self.daemon.url, secret)

    def token(self, name: str, scope: str, models: str | None = None) -> Wire:
        return self.wire(make_token(self.admin, self.daemon.url, name, scope, models).secret)

    def close(self) -> None:
        self.probe.close()
        self.admin.close()
        self.daemon.stop()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory):
    r = Registry(tmp_path_factory.mktemp("gov-routes"))
    yield r
    r.close()
    log = (r.daemon.home / "test-daemon.log").read_text(errors="replace")
    assert "Traceback" not in log and "unhandled error" not in log, log[-5000:]


def send(wire: Wire, method: str, canonical: str, params: dict[str, str] | None = None, query: str = ""):
    path = target(canonical, {**PARAMS, **(params or {})}) + (f"?{query}" if query else "")
    value = BODIES.get((method, canonical), {} if method in MUTATING else None)
    data = b"" if value is None else json.dumps(value).encode()
    return path, wire.send(method, path, data, {"Content-Type": "application/json", "X-Modelreg-Actor": "x@y"})


def assert_forbidden(path: str, reply, what: str) -> dict[str, Any]:
    assert reply.status == 403, f"{what}: {path} answered {reply.status}: {reply.body[:300]!r}"
    err = reply.decoded()
    if path.startswith("/api/"):
        assert err["error_code"] == "PERMISSION_DENIED", err
        return {"message": err["message"]}
    assert err["error"]["code"] == "forbidden", err
    return err["error"]


def test_the_routes_that_only_read_are_the_listed_ones() -> None:
    """Every non-GET route writes unless listed here: the policy agrees, and nothing else reads."""
    read_posts = {(m, p) for m, p in ROUTES if m in MUTATING and route_scope(m, p) == "read"}
    assert read_posts == READ_POSTS
    assert {("POST", "/v1/models/{name}/versions"), ("DELETE", "/v1/tokens/{name}"),
            ("POST", f"{MLFLOW}/model-versions/transition-stage")} <= set(WRITES)  # the enumeration saw them


def test_a_read_token_is_refused_on_every_write_route_and_nothing_changes(registry: Registry) -> None:
    reader = registry.token("reader", "read")
    checked = []
    for method, canonical in WRITES:
        before = registry.probe.digest()
        path, reply = send(reader, method, canonical)
        err = assert_forbidden(path, reply, f"a read token on {method} {canonical}")
        if "details" in err:
            assert err["details"]["needs"] == route_scope(method, canonical), err
        assert registry.probe.digest() == before, f"a refused {method} {path} changed the registry"
        checked.append((method, canonical))
    assert len(checked) == len(WRITES) > 60
    # The same read token reads: the refusals are about its scope, not about it.
    assert reader.send("GET", "/v1/models/fraud/versions/1").status == 200
    assert reader.send("GET", f"{MLFLOW}/registered-models/get?name=fraud").status == 200


def test_the_refused_requests_are_taken_from_a_token_with_the_scope(registry: Registry) -> None:
    """The other side of the refusals: the same request with enough scope is not refused."""
    writer = registry.token("writer", "write")
    for method, canonical in [("PATCH", "/v1/models/{name}"), ("POST", "/v1/models/{name}/versions/{selector}/metrics"),
                              ("POST", f"{MLFLOW}/registered-models/set-tag")]:
        path, reply = send(writer, method, canonical)
        assert reply.status in (200, 201), (path, reply.status, reply.body[:300])
    promoter = registry.token("promoter", "promote")
    reply = promoter.json("POST", "/v1/models/other/versions/2/transition", {"to": "production", "reason": "ok"})
    assert reply.status == 200, reply.body[:300]


def test_a_token_limited_to_fraud_is_refused_on_every_route_of_another_model(registry: Registry) -> None:
    ci = registry.token("ci", "promote", models="fraud*")
    concerned = [(m, p) for m, p in ROUTES if p.startswith("/v1/models/{name}") or "{ref}" in p]
    assert len(concerned) > 20
    for method, canonical in concerned:
        before = registry.probe.digest()
        path, reply = send(ci, method, canonical, {"name": "other", "ref": "other@1"})
        err = assert_forbidden(path, reply, f"a fraud* token on {method} {canonical} of other")
        assert "other" in err["message"] or "admin" in err["message"], err
        assert registry.probe.digest() == before
    # MLflow's registry names the model in a parameter: the query for GET, the body otherwise.
    for method, canonical in [(m, p) for m, p in ROUTES if p.startswith((f"{MLFLOW}/registered-models/",
                                                                         f"{MLFLOW}/model-versions/"))]:
        query = "name=other&version=1&alias=champion" if method == "GET" else ""
        body = {**BODIES.get((method, canonical), {}), "name": "other"} if method != "GET" else None
        data = b"" if body is None else json.dumps(body).encode()
        path = canonical + (f"?{query}" if query else "")
        if canonical.endswith("/search"):
            continue  # a search names no model (docs/security.md: what is filtered)
        before = registry.probe.digest()
        reply = ci.send(method, path, data, {"Content-Type": "application/json"})
        assert_forbidden(path, reply, f"a fraud* token on MLflow {method} {canonical} of other")
        assert registry.probe.digest() == before
    # Comparing across models needs both.
    assert ci.send("GET", "/v1/compare?ref=fraud@1&ref=other@1").status == 403
    # ... and the model it covers it may promote, read and compare.
    assert ci.send("GET", "/v1/models/fraud").status == 200
    assert ci.send("GET", "/v1/compare?ref=fraud@1&ref=fraud@2").status == 200
    reply = ci.json("POST", "/v1/models/fraud/versions/2/transition", {"to": "production", "reason": "ci"})
    assert reply.status == 200, reply.body[:300]


def test_registering_a_path_on_the_daemons_machine_needs_admin(registry: Registry) -> None:
    writer = SyncClient(url=registry.daemon.url,
                        token=make_token(registry.admin, registry.daemon.url, "trainer", "write").secret)
    folder = model_folder(registry.root / "trainer", 7)
    before = registry.probe.digest()
    with pytest.raises(Exception, match="path on the daemon's machine.*needs 'admin'"):
        writer.register("fraud", path=folder, wait=True)
    assert registry.probe.digest() == before
    uploaded = writer.upload_and_register("fraud", folder)
    assert uploaded["version"]["created_by"] == "trainer"


BODY_ROUTES = [(m, p) for m, p in ROUTES if (m, p) in BODY_MODELS or (m, p) == REGISTER
               or (m != "GET" and p.startswith((f"{MLFLOW}/registered-models/", f"{MLFLOW}/model-versions/")))]


@pytest.fixture(scope="module")
def limited_writer(registry: Registry) -> Wire:
    return registry.token("fuzzer", "write", models="fraud*")


@pytest.mark.parametrize("method, canonical", BODY_ROUTES, ids=[f"{m} {p}" for m, p in BODY_ROUTES])
def test_hostile_bodies_from_a_limited_token_get_a_clear_answer(registry: Registry, limited_writer: Wire,
                                                                method: str, canonical: str) -> None:
    """The policy reads these routes' bodies for a model-limited token: whatever they hold, the
    answer is a documented 4xx or a success, never a 5xx, and a refusal changed nothing. (Last
    in the module: a taken request may rename or delete the seeded models.)"""
    limited = limited_writer

    @budget(8)
    @given(value=values(["fraud", "other", "fraud2", "FRAUD", "x" * 200], ["name", "new_name", "model", "path"]),
           as_msgpack=st.booleans())
    def run(value: Any, as_msgpack: bool) -> None:
        data = json.dumps(value).encode() if not as_msgpack or canonical.startswith("/api/") else _packb(value)
        ctype = "application/msgpack" if as_msgpack and not canonical.startswith("/api/") else "application/json"
        before = registry.probe.digest()
        reply = limited.send(method, target(canonical, PARAMS), data, {"Content-Type": ctype})
        assert reply.status < 500, (reply.status, reply.body[:300])
        if reply.status >= 400:
            assert registry.probe.digest() == before

    run()


def _packb(value: Any) -> bytes:
    try:
        return msgpack.packb(value, use_bin_type=True)
    except (UnicodeEncodeError, OverflowError):
        return json.dumps(value).encode()
