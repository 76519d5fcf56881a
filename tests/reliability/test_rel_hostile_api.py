"""Generated hostile requests against every route of one real daemon (issue 11, acceptance 2).

The routes are read from the daemon's own router when the tests are collected, so a route added
later is fuzzed without touching this file. For each route hypothesis generates the path
parameters (names, refs, selectors, ids, artifact paths), the query string, the headers and the
body (JSON or msgpack, field names the API uses, every JSON type in them, deep nesting, long
strings, NUL, lone surrogates, bytes that are not UTF-8) and checks what a user relies on:

- the status is one the API documents (docs/api.md "Errors"; MLflow's shape under /api/): no 5xx;
- the body holds no traceback, and an error is the documented envelope;
- the daemon answers within the client's timeout (no hang);
- a refusal (4xx) changed nothing: neither the database (SQLite's data_version) nor the home's files.

Requests that would act outside the test (a hook or gate that runs a shell command, a path
outside the test's folders) are confined before they are sent; everything else goes as generated.
"""

from __future__ import annotations

import ast
import json
import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgpack
import msgspec
import pytest
from hypothesis import event, example, given, note
from hypothesis import strategies as st

import team_backend
from daemon_process import DaemonProcess, start_daemon
from hostile_support import (
    SPICY, Reply, StateProbe, Wire, budget, hostile_text, nested, no_traceback, segment, seed_note, values, wait_for,
)
from modelreg.daemon.app import create_app
from modelreg.daemon.config import DaemonConfig
from modelreg.shared import bodies

__all__ = ["seed_note"]  # the autouse fixture that prints how to replay

ROOT = Path(__file__).resolve().parents[2]


def documented_statuses() -> set[int]:
    """The 4xx of docs/api.md's "Errors" table, and the 2xx the endpoints answer: no input may
    cause a 5xx, whatever that table says a 5xx means (a bug, a full disk, a shutdown)."""
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    errors = text.split("\n### Errors\n", 1)[1].split("\n### ", 1)[0]
    four = {int(code) for code in re.findall(r"^\| (4\d\d) \|", errors, re.MULTILINE)}
    assert {400, 404} <= four, "docs/api.md lost its Errors table"
    return {200, 201, 202, 204} | four


# With artifacts in S3, file downloads answer a documented 307 to a presigned URL (docs/api.md).
_REDIRECT = {307} if team_backend.team() else set()
V1_STATUSES = documented_statuses() | _REDIRECT
# api/mlflow/errors.py: the statuses MLflow's shape uses for our errors (gates refuse with 403).
MLFLOW_STATUSES = {200, 400, 401, 403, 404, 409, 413} | _REDIRECT
MAX_LINE = 8190  # aiohttp's limit on the request line (web_protocol.RequestHandler max_line_size)
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
CONTENT_TYPES = ["application/json", "application/msgpack", "", "text/plain", "application/x-www-form-urlencoded",
                 "application/json; charset=latin-1", "multipart/form-data; boundary=x", "application/octet-stream",
                 "application/JSON", "\u00e9/\u00e9"]
ACCEPTS = ["application/json", "application/msgpack", "*/*", "", "text/html", "application/msgpack, application/json"]


def routes() -> list[tuple[str, str]]:
    """(method, canonical path) of every route the daemon registers; HEAD rides on its GET."""
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(DaemonConfig(home=Path(tmp) / "home"))
        return sorted({(r.method, r.resource.canonical) for r in app.router.routes() if r.method != "HEAD"},
                      key=lambda mr: (mr[1], mr[0]))


def vocabulary() -> list[str]:
    """Field and query names the API reads: the body Structs' fields and every identifier-like
    string literal in the route and service modules (``p.get("run_id")``, ``query.get("cursor")``)."""
    words: set[str] = set()
    for struct in vars(bodies).values():
        if isinstance(struct, type) and issubclass(struct, msgspec.Struct) and struct is not msgspec.Struct:
            words.update(f.name for f in msgspec.structs.fields(struct))
    sources = [*(ROOT / "daemon/modelreg/daemon/api").rglob("*.py"),
               *(ROOT / "daemon/modelreg/daemon/services/mlflow").rglob("*.py")]
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if 2 <= len(node.value) <= 40 and node.value.isidentifier() and node.value.islower():
                    words.add(node.value)
    return sorted(words)


ROUTES = routes()
WORDS = vocabulary()


# -- the one daemon of this module and what it holds --------------------------------------------------


class Seed:
    """Named things in the registry the generated requests can hit: strings a strategy draws as
    ``Seed.X`` placeholders, resolved when the request is built (a request may rename or delete
    the model; the next example gets a fresh one)."""

    def __init__(self, daemon: DaemonProcess, outside: Path) -> None:
        self.daemon, self.outside = daemon, outside
        self.wire = Wire(daemon.url, daemon.token)
        self.probe = StateProbe(daemon.home)
        self.generation = 0
        self.model = ""
        self.values: dict[str, str] = {}

    # Placeholders (class attributes so strategies can name them before the daemon starts).
    MODEL, REF, FILE, FOLDER, EMPTY, HOME, DB, RUN, EXPERIMENT, SHA = (
        "\x00seed:model", "\x00seed:ref", "\x00seed:file", "\x00seed:folder", "\x00seed:empty", "\x00seed:home",
        "\x00seed:db", "\x00seed:run", "\x00seed:experiment", "\x00seed:sha")
    ALL = (MODEL, REF, FILE, FOLDER, EMPTY, HOME, DB, RUN, EXPERIMENT, SHA)

    def files(self) -> None:
        """The files registrations and watches may point at (a move-mode request takes them away)."""
        (self.outside / "folder").mkdir(parents=True, exist_ok=True)
        (self.outside / "empty").mkdir(exist_ok=True)
        for path in (self.outside / "model.safetensors", self.outside / "folder" / "model.safetensors"):
            if not path.exists():
                header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
                path.write_bytes(len(header).to_bytes(8, "little") + header + bytes(8))

    def ensure(self) -> None:
        self.files()
        if self.model and self.wire.send("GET", f"/v1/models/{self.model}").status == 200:
            return
        self.generation += 1
        self.model = f"fraud{self.generation}"
        w = self.wire
        for status, reply in [
            (201, w.json("POST", f"/v1/models/{self.model}/versions?wait=1",
                         {"path": str(self.outside / "model.safetensors"), "metrics": {"auc": 0.9},
                          "params": {"lr": 0.1}, "datasets": ["txns@1"]})),
            (201, w.json("POST", f"/v1/models/{self.model}/versions?wait=1",
                         {"path": str(self.outside / "folder"), "metrics": {"auc": 0.95}, "parent": f"{self.model}@1"})),
            (200, w.json("POST", f"/v1/models/{self.model}/versions/1/transition", {"to": "production"})),
            (200, w.json("POST", f"/v1/models/{self.model}/versions/2/transition", {"to": "staging"})),
            (200, w.json("PUT", f"/v1/models/{self.model}/aliases/champion", {"version": 1})),
        ]:
            assert reply.status == status, (reply.status, reply.body[:500])
        exp = w.json("POST", "/api/2.0/mlflow/experiments/create", {"name": f"exp{self.generation}"})
        assert exp.status == 200, exp.body
        exp_id = exp.decoded()["experiment_id"]
        run = w.json("POST", "/api/2.0/mlflow/runs/create", {"experiment_id": exp_id})
        assert run.status == 200, run.body
        sha = w.json("GET", f"/v1/models/{self.model}/versions/1").decoded()
        self.values = {
            self.MODEL: self.model, self.REF: f"{self.model}@1", self.FILE: str(self.outside / "model.safetensors"),
            self.FOLDER: str(self.outside / "folder"), self.EMPTY: str(self.outside / "empty"),
            self.HOME: str(self.daemon.home), self.DB: str(self.daemon.home / "registry.db"),
            self.RUN: run.decoded()["run"]["info"]["run_id"], self.EXPERIMENT: exp_id,
            self.SHA: _first_sha(sha),
        }

    def resolve(self, value: Any, confine: bool = True) -> Any:
        """Placeholders → this generation's values; paths and commands confined to the test."""
        if isinstance(value, str):
            for placeholder in self.ALL:
                if placeholder in value:
                    value = value.replace(placeholder, self.values[placeholder])
            return value if not confine or value in self.values.values() else self.confine(value)
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, dict):
            out = {self.resolve(k) if isinstance(k, str) else k: self.resolve(v) for k, v in value.items()}
            if out.get("kind") == "command":
                out["target"] = "true"  # a command hook runs a shell: only one that does nothing
            return out
        return value

    def confine(self, text: str) -> str:
        """A generated absolute path or command lands inside the test's own folder."""
        if text.lstrip().lower().startswith(("command", "cmd")):
            return "command: true"
        if text.startswith(("/", "~", "file:")):
            return str(self.outside / "generated" / quote(text, safe=""))[:4000]
        return text

    def tidy(self) -> None:
        """After a request that was taken: remove what would act by itself later (hooks deliver,
        watches scan, gates refuse), wait for the jobs it started, and make sure the seed is there."""
        w = self.wire
        for kind, key in (("hooks", "id"), ("gates", "id"), ("watches", "id")):
            for item in w.send("GET", f"/v1/{kind}").decoded()["items"]:
                r = w.json("DELETE", f"/v1/{kind}/{item[key]}", {"reason": "hostile test tidy-up"})
                assert r.status == 200, (kind, r.status, r.body[:300])
        wait_for(lambda: all(j["state"] != "running" for j in w.send("GET", "/v1/jobs").decoded()["items"]),
                 60, "the jobs a request started to finish")
        self.ensure()


def _first_sha(version: dict[str, Any]) -> str:
    files = version.get("files") or []
    return files[0]["sha256"] if files else "ab" * 32


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("hostile-api")
    daemon = start_daemon(root / "home")
    s = Seed(daemon, root / "outside")
    s.ensure()
    yield s
    s.wire.close()
    s.probe.close()
    daemon.stop()
    log = (daemon.home / "test-daemon.log").read_text(errors="replace")
    assert "Traceback" not in log and "unhandled error" not in log, log[-5000:]


# -- strategies ---------------------------------------------------------------------------------------

NAMES = [*Seed.ALL, "nosuch", "FRAUD", "fraud1", "txns@1", "1", "champion"]
PARAMS: dict[str, st.SearchStrategy[str]] = {
    "name": st.sampled_from([Seed.MODEL, "nosuch", "x" * 128]),
    "selector": st.sampled_from(["1", "2", "v1", "production", "staging", "latest", "champion", "99", "0", "-1"]),
    "ref": st.sampled_from([Seed.REF, Seed.MODEL, Seed.MODEL + "@production", Seed.MODEL + "@champion", "nosuch@1"]),
    "path": st.sampled_from(["model.safetensors", "folder/model.safetensors", "a/b.bin", "x",
                             Seed.EXPERIMENT + "/" + Seed.RUN + "/artifacts/model/MLmodel"]),
    "alias": st.sampled_from(["champion", "fresh", "production", "v2"]),
    "id": st.sampled_from(["1", "2", "99", "0", "-1", "99999999999999999999"]),
    "dataset": st.sampled_from(["txns@1", "txns", "txns@2"]),
    "key": st.sampled_from([Seed.EMPTY, "1", "99"]),
    "model_id": st.sampled_from(["m-1", "m-" + "0" * 32, "1"]),
    "upload_id": st.sampled_from(["0" * 32, "x"]),
    "number": st.sampled_from(["1", "0", "10001", "-1"]),
}
VALUE = values(NAMES, WORDS)
FIELDS = st.dictionaries(st.sampled_from(WORDS), VALUE, max_size=6)


def param(name: str) -> st.SearchStrategy[str]:
    known = PARAMS.get(name, st.nothing())
    return st.one_of(known, known, hostile_text(60))


@st.composite
def body(draw: st.DrawFn) -> tuple[Any, str]:
    """(a decoded body or raw bytes, how to encode it: json | msgpack | raw)."""
    shape = draw(st.sampled_from(["fields", "fields", "fields", "any", "deep", "long", "raw", "none"]))
    if shape == "fields":
        value: Any = draw(FIELDS)
    elif shape == "any":
        value = draw(VALUE)
    elif shape == "deep":
        value = {draw(st.sampled_from(WORDS)): nested(draw(st.integers(20, 40)))}
    elif shape == "long":
        value = {draw(st.sampled_from(WORDS)): draw(st.sampled_from(["x", "\x00", "é", "9"])) * draw(
            st.sampled_from([10_001, 65_536, 200_000]))}
    elif shape == "raw":
        return draw(st.one_of(st.binary(max_size=64), st.sampled_from([
            b"{", b'{"name": "\xff\xfe"}', b"\xc1", b"\x82\xa4name", b"\x81\x01\x02", b"\xd4\x01\x00",
            b"[" * 5000 + b"]" * 5000, b'{"a": 1' + b"0" * 5000 + b"}", b"\x00" * 16, b"null", b"[]", b'"x"',
            b"NaN", b'{"name": NaN}']))), "raw"
    else:
        return None, "none"
    return value, draw(st.sampled_from(["json", "msgpack"]))


def encode(value: Any, how: str) -> bytes:
    if how == "raw":
        return value
    if how == "none":
        return b""
    if how == "msgpack":
        try:
            return msgpack.packb(value, use_bin_type=True)
        except (UnicodeEncodeError, OverflowError):
            pass  # a lone surrogate or an int past 64 bits: msgpack cannot carry it, JSON can
    return json.dumps(value, ensure_ascii=True).encode()


@st.composite
def query(draw: st.DrawFn) -> tuple[list[tuple[str, str]], str]:
    """(key/value pairs, percent-encoded when sent, and a raw tail sent as it is)."""
    pairs = draw(st.lists(st.tuples(st.one_of(st.sampled_from(WORDS), hostile_text(10)),
                                    st.one_of(st.sampled_from(NAMES), hostile_text(30),
                                              st.integers(-(2**70), 2**70).map(str))), max_size=4))
    extra = draw(st.sampled_from(["", "", "", "&", "%ff=%fe", "a", "=1", "limit=1&limit=2", "%00=%00", "wait=60"]))
    return pairs, extra


def query_text(seed: Seed, q: tuple[list[tuple[str, str]], str]) -> str:
    pairs, extra = q
    text = "&".join(f"{segment(seed.resolve(k))}={segment(seed.resolve(v))}" for k, v in pairs)
    return "&".join(p for p in (text, extra) if p)


@st.composite
def request(draw: st.DrawFn, method: str, canonical: str) -> dict[str, Any]:
    names = [part[1:-1].partition(":")[0] for part in canonical.split("/") if part.startswith("{")]
    if method == "GET":
        method = draw(st.sampled_from(["GET", "GET", "HEAD"]))
    value, how = draw(body())
    return {
        "method": method, "canonical": canonical, "params": {n: draw(param(n)) for n in names},
        "query": draw(query()), "body": value, "encoding": how,
        "content_type": draw(st.sampled_from(["json", "msgpack", *CONTENT_TYPES])),
        "accept": draw(st.sampled_from(ACCEPTS)),
        "auth": draw(st.sampled_from(["token"] * 12 + ["none", "wrong", "basic"])),
        "actor": draw(st.one_of(st.none(), st.sampled_from(SPICY))),
    }


# -- sending one request and judging the answer --------------------------------------------------------


def build(seed: Seed, req: dict[str, Any]) -> tuple[str, str, bytes, dict[str, str | bytes], bool]:
    target = req["canonical"]
    for name, raw in req["params"].items():
        value = seed.resolve(raw, confine=False)
        target = target.replace(f"{{{name}}}", segment(value, slashes=name == "path"), 1)
    q = query_text(seed, req["query"])
    if q:
        target += "?" + q
    value = req["body"] if req["encoding"] == "raw" else seed.resolve(req["body"])
    data = encode(value, req["encoding"])
    ctype = {"json": "application/json", "msgpack": "application/msgpack"}.get(req["content_type"],
                                                                                 req["content_type"])
    headers: dict[str, str | bytes] = {"Content-Type": ctype.encode(), "Accept": req["accept"]}
    if req["actor"] is not None and not any(c in req["actor"] for c in "\r\n\x00"):
        headers["X-Modelreg-Actor"] = req["actor"].encode("utf-8", "surrogatepass")
    if req["auth"] == "wrong":
        headers["Authorization"] = "Bearer not-the-token"
    elif req["auth"] == "basic":
        headers["Authorization"] = f"Basic {seed.daemon.token}"
    return req["method"], target, data, headers, req["auth"] == "token"


def judge(seed: Seed, req: dict[str, Any]) -> Reply:
    method, target, data, headers, auth = build(seed, req)
    note(f"{method} {target} ({len(data)} bytes, {headers.get('Content-Type')!r}): {data[:300]!r}")
    before = seed.probe.digest()
    reply = seed.wire.send(method, target, data, headers, auth=auth)
    note(f"-> {reply.status}: {reply.body[:500]!r}")
    event(f"status {reply.status}")  # --hypothesis-show-statistics: how deep the examples got
    mlflow = req["canonical"].startswith("/api/")
    allowed = MLFLOW_STATUSES if mlflow else V1_STATUSES
    assert reply.status in allowed, f"{method} {target} answered {reply.status}: {reply.body[:1000]!r}"
    no_traceback(reply)
    if reply.status >= 400:
        if len(target) > MAX_LINE:
            # aiohttp refuses a request line it will not parse before any route or middleware
            # sees it: a 400 in its own plain text (docs/api.md, Limits).
            assert reply.status == 400 and (method == "HEAD" or b"Got more than" in reply.body), reply.body[:300]
        elif method != "HEAD":
            err = reply.decoded()
            if mlflow:
                assert isinstance(err, dict) and err.get("error_code") and err.get("message"), err
            else:
                assert isinstance(err, dict) and err["error"]["code"] != "internal" and err["error"]["message"], err
        after = seed.probe.digest()
        assert after == before, f"a refused {method} {target} ({reply.status}) changed the registry: " \
                                f"files {sorted(after[1] ^ before[1])[:10]}, data_version {before[0]}->{after[0]}"
    elif method in MUTATING or reply.status == 202:
        seed.tidy()
    return reply


DEEP_MLFLOW_BODY = {"method": "POST", "canonical": "/api/2.0/mlflow/registered-models/alias", "params": {},
                    "query": ([], ""), "body": b"[" * 5000 + b"]" * 5000, "encoding": "raw", "content_type": "json",
                    "accept": "application/json", "auth": "token", "actor": None}


@pytest.mark.parametrize("method, canonical", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_generated_requests_get_documented_answers(seed: Seed, method: str, canonical: str) -> None:
    @budget(10)
    @given(req=request(method, canonical))
    @example(req={**DEEP_MLFLOW_BODY, "method": method, "canonical": canonical})  # was a 500 under /api/
    def run(req: dict[str, Any]) -> None:
        judge(seed, req)

    run()


def test_the_state_probe_sees_a_write_and_only_a_write(seed: Seed) -> None:
    """The "a refusal changed nothing" check must be able to fail: a read leaves the digest
    alone, a taken write (even one that only touches the database) moves it."""
    before = seed.probe.digest()
    assert seed.wire.send("GET", f"/v1/models/{seed.model}").status == 200
    assert seed.probe.digest() == before
    r = seed.wire.json("PATCH", f"/v1/models/{seed.model}", {"description": "probed"})
    assert r.status == 200, r.body[:300]
    assert seed.probe.digest()[0] != before[0]


@budget(40)
@given(method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "FOO"]),
       prefix=st.sampled_from(["/v1/", "/api/2.0/mlflow/", "/api/2.0/mlflow-artifacts/", "/", "/api/3.0/", "//v1/"]),
       rest=st.lists(hostile_text(20), max_size=4), q=query())
@example(method="GET", prefix="/v1/", rest=["models", "%ff"], q=([], ""))
def test_unknown_paths_and_methods(seed: Seed, method: str, prefix: str, rest: list[str], q: str) -> None:
    """Paths and methods no route has: a 404/405 in the right shape, never a 5xx."""
    tail = query_text(seed, q)
    target = prefix + "/".join(segment(seed.resolve(r, confine=False)) for r in rest) + (f"?{tail}" if tail else "")
    before = seed.probe.digest()
    reply = seed.wire.send(method, target, b"", {"Accept": "application/json"})
    note(f"{method} {target} -> {reply.status} {reply.body[:300]!r}")
    allowed = MLFLOW_STATUSES if target.startswith("/api/") else V1_STATUSES
    assert reply.status in allowed, (target, reply.status, reply.body[:500])
    no_traceback(reply)
    if reply.status >= 400:
        assert seed.probe.digest() == before
    elif method in MUTATING:
        seed.tidy()
