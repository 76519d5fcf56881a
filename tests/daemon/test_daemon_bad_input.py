"""Hostile and mistaken input gets a 4xx with the error envelope, never a 5xx (PRODUCT.md §9, §10).

Each case runs twice: asking for JSON and asking for nothing (msgpack). After each rejected
request the registry must be unchanged: a refusal never leaves a version behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from registry_harness import Registry, blob_files

NAN, INF = float("nan"), float("inf")
Case = Callable[[Path], tuple[str, str, dict[str, Any]]]


def reg(body: dict[str, Any]) -> Case:
    """A registration of 'fraud' with this body; "{file}" in a path becomes a real file."""
    def build(f: Path) -> tuple[str, str, dict[str, Any]]:
        b = dict(body)
        if isinstance(b.get("path"), str):
            b["path"] = b["path"].format(file=f)
        return "POST", "/v1/models/fraud/versions?wait=1", {"body": b}
    return build


def get(path: str) -> Case:
    return lambda f: ("GET", path, {})


def raw(method: str, path: str, data: bytes, ctype: str) -> Case:
    return lambda f: (method, path, {"data": data, "headers": {"Content-Type": ctype}})


SHA = "ab" * 32
CASES: dict[str, tuple[Case, int]] = {
    # bodies that are not what they claim to be
    "malformed-msgpack": (raw("POST", "/v1/models", b"\xc1\x82\xa4name", "application/msgpack"), 400),
    "truncated-msgpack": (raw("POST", "/v1/models", b"\x82\xa4name\xa5fr", "application/msgpack"), 400),
    "msgpack-int-keys": (raw("POST", "/v1/models", b"\x81\x01\x02", "application/msgpack"), 400),
    "malformed-json": (raw("POST", "/v1/models", b'{"name": "fraud2",', "application/json"), 400),
    "json-not-utf8": (raw("POST", "/v1/models", b'{"name": "\xff\xfe"}', "application/json"), 400),
    "json-lone-surrogate": (raw("POST", "/v1/models", b'{"name": "ok", "description": "\\ud800"}',
                                "application/json"), 400),
    "json-lone-surrogate-path": (raw("POST", "/v1/models/fraud/versions", b'{"path": "/tmp/\\udfff"}',
                                     "application/json"), 400),
    "json-nested-10000-lists": (raw("POST", "/v1/models", b"[" * 10_000 + b"]" * 10_000, "application/json"), 400),
    "json-nested-10000-objects": (raw("POST", "/v1/models/fraud/versions", b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
                                      "application/json"), 400),
    "msgpack-nested-10000": (raw("POST", "/v1/models", b"\x91" * 10_000 + b"\xc0", "application/msgpack"), 400),
    "body-not-an-object": (lambda f: ("POST", "/v1/models/fraud/versions", {"body": [1, 2, 3]}), 400),
    # names and refs
    "name-dotdot-in-path": (get("/v1/models/..%2Fx"), 400),
    "name-dotdot-register": (lambda f: ("POST", "/v1/models/..%2Fx/versions", {"body": {"path": str(f)}}), 400),
    "name-dotdot-versions": (get("/v1/models/..%2Fx/versions"), 400),
    "name-dotdot-body": (lambda f: ("POST", "/v1/models", {"body": {"name": "../x"}}), 400),
    "name-empty-body": (lambda f: ("POST", "/v1/models", {"body": {"name": ""}}), 400),
    "name-nul-body": (lambda f: ("POST", "/v1/models", {"body": {"name": "a\x00b"}}), 400),
    "name-too-long": (lambda f: ("POST", "/v1/models", {"body": {"name": "a" * 129}}), 400),
    "ref-minus-one": (get("/v1/models/fraud/versions/-1"), 400),
    "ref-zero": (get("/v1/models/fraud/versions/0"), 400),
    "ref-archived": (get("/v1/models/fraud/versions/archived"), 400),
    "resolve-minus-one": (get("/v1/resolve/fraud@-1"), 400),
    "resolve-zero": (get("/v1/resolve/fraud@0"), 400),
    "resolve-archived": (get("/v1/resolve/fraud@archived"), 400),
    "lineage-minus-one": (get("/v1/lineage/fraud@-1"), 400),
    "metrics-on-zero": (lambda f: ("POST", "/v1/models/fraud/versions/0/metrics", {"body": {"metrics": {"auc": 1}}}),
                        400),
    "dataset-dotdot": (get("/v1/datasets/..%2Fx@1/versions"), 400),
    # listing parameters
    "unknown-stage": (get("/v1/models/fraud/versions?stage=prod"), 400),
    "unknown-status": (get("/v1/models/fraud/versions?status=done"), 400),
    "metric-filter-no-op": (get("/v1/models/fraud/versions?metric=auc"), 400),
    "metric-filter-bad-op": (get("/v1/models/fraud/versions?metric=auc%3E%3E0.9"), 400),
    "metric-filter-not-number": (get("/v1/models/fraud/versions?metric=auc%3E%3Dhigh"), 400),
    "metric-filter-two-dots": (get("/v1/models/fraud/versions?metric=auc%3E%3D1.2.3"), 400),
    "metric-filter-nan": (get("/v1/models/fraud/versions?metric=auc%3E%3Dnan"), 400),
    "bad-order": (get("/v1/models/fraud/versions?order=-popularity"), 400),
    "cursor-garbage": (get("/v1/models/fraud/versions?cursor=garbage"), 400),
    "cursor-not-number": (get("/v1/models/fraud/versions?cursor=n:abc"), 400),
    "cursor-wrong-kind": (get("/v1/models/fraud/versions?cursor=o:5"), 400),
    "cursor-huge": (get("/v1/models/fraud/versions?cursor=n:99999999999999999999999"), 400),
    "cursor-huge-offset": (get("/v1/models/fraud/versions?order=-metric:auc&cursor=o:99999999999999999999999"), 400),
    "limit-zero": (get("/v1/models/fraud/versions?limit=0"), 400),
    "limit-100000": (get("/v1/models/fraud/versions?limit=100000"), 400),
    "limit-not-number": (get("/v1/models/fraud/versions?limit=ten"), 400),
    "models-limit-zero": (get("/v1/models?limit=0"), 400),
    "events-after-huge": (get("/v1/events?after=99999999999999999999999"), 400),
    "events-limit-100000": (get("/v1/events?limit=100000"), 400),
    "lineage-direction": (get("/v1/lineage/fraud@1?direction=sideways"), 400),
    "history-at-huge": (get("/v1/models/fraud/history?at=99999999999999999999999"), 400),
    "history-at-bad-date": (get("/v1/models/fraud/history?at=2026-13-45"), 400),
    "hook-id-huge": (get("/v1/hooks/99999999999999999999999/deliveries"), 400),
    "hook-delete-id-huge": (lambda f: ("DELETE", "/v1/hooks/99999999999999999999999", {}), 400),
    "gate-delete-id-huge": (lambda f: ("DELETE", "/v1/gates/99999999999999999999999", {}), 400),
    "job-unknown": (get("/v1/jobs/..%2F..%2Fetc"), 404),
    # registrations
    "relative-path": (reg({"path": "model.safetensors"}), 400),
    "missing-path": (reg({"path": "/nonexistent/modelreg-test/model.safetensors"}), 400),
    "path-and-files": (reg({"path": "{file}", "files": [{"path": "a.bin", "sha256": SHA, "size": 1}]}), 400),
    "neither-path-nor-files": (reg({"metrics": {"auc": 0.9}}), 400),
    "nan-metric": (reg({"path": "{file}", "metrics": {"auc": NAN}}), 400),
    "inf-metric": (reg({"path": "{file}", "metrics": {"auc": INF}}), 400),
    "nan-metric-record": (reg({"path": "{file}", "metrics": [{"key": "auc", "value": NAN}]}), 400),
    "huge-int-metric": (raw("POST", "/v1/models/fraud/versions", b'{"path": "/tmp", "metrics": {"auc": 1'
                            + b"0" * 400 + b"}}", "application/json"), 400),
    "string-metric": (reg({"path": "{file}", "metrics": {"auc": "high"}}), 400),
    "bad-metric-key": (reg({"path": "{file}", "metrics": {"a b": 1.0}}), 400),
    "bad-dataset": (reg({"path": "{file}", "datasets": ["txns"]}), 400),
    "run-started-nanoseconds": (reg({"path": "{file}", "run": {"id": "r42", "started_at": 1_795_000_000_000_000_000}}),
                                400),
    "run-ended-milliseconds": (reg({"path": "{file}", "run": {"id": "r42", "ended_at": 1_795_000_000_000_000.0}}), 400),
    "run-started-bad-date": (reg({"path": "{file}", "run": {"id": "r42", "started_at": "2026-13-45"}}), 400),
    "bad-parent": (reg({"path": "{file}", "parent": "fraud@-1"}), 400),
    "unknown-parent": (reg({"path": "{file}", "parent": "nosuch@1"}), 404),
    "files-dotdot": (reg({"files": [{"path": "../etc/passwd", "sha256": SHA, "size": 1}]}), 400),
    "files-absolute": (reg({"files": [{"path": "/etc/passwd", "sha256": SHA, "size": 1}]}), 400),
    "files-inner-dotdot": (reg({"files": [{"path": "a/../../b", "sha256": SHA, "size": 1}]}), 400),
    "files-nul": (reg({"files": [{"path": "a\x00b", "sha256": SHA, "size": 1}]}), 400),
    "files-bad-sha": (reg({"files": [{"path": "a.bin", "sha256": "xyz", "size": 1}]}), 400),
    "files-never-uploaded": (reg({"files": [{"path": "a.bin", "sha256": SHA, "size": 1}]}), 400),
    "files-empty": (reg({"files": []}), 400),
    "metric-nan-on-version": (lambda f: ("POST", "/v1/models/fraud/versions/1/metrics",
                                         {"body": {"metrics": {"auc": NAN}}}), 400),
    "metric-bad-source": (lambda f: ("POST", "/v1/models/fraud/versions/1/metrics",
                                     {"body": {"metrics": {"auc": 0.5}, "source": "gut-feeling"}}), 400),
    "verify-ref-not-string": (lambda f: ("POST", "/v1/verify", {"body": {"ref": 5}}), 400),
    "unknown-route": (get("/v1/nothing-here"), 404),
    "unknown-version": (get("/v1/models/fraud/versions/99"), 404),
    "unknown-model": (get("/v1/models/nosuch/versions/1"), 404),
    "wrong-method": (lambda f: ("PUT", "/v1/models/fraud", {}), 405),  # DELETE deletes a model now
}


@pytest.fixture
async def fraud(registry: Registry, model_file: Path) -> Registry:
    """A registry holding fraud@1 (ready), so refusals are not 404s in disguise."""
    await registry.client().register("fraud", path=model_file, wait=True, metrics={"auc": 0.9})
    return registry


@pytest.mark.parametrize("accept_json", [True, False], ids=["json", "msgpack"])
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
async def test_bad_input_gets_4xx_envelope(fraud: Registry, model_file: Path, case: str, accept_json: bool) -> None:
    build, expected = CASES[case]
    method, path, kwargs = build(model_file)
    r = await fraud.call(method, path, accept_json=accept_json, **kwargs)
    assert r.status == expected, (r.status, r.raw[:300])
    assert r.content_type == ("application/json" if accept_json else "application/msgpack")
    err = r.error
    assert err["code"] != "internal"
    after = await fraud.call("GET", "/v1/models/fraud/versions")
    assert after.status == 200 and after.data["total"] == 1, "a refused request left a version behind"
    models = await fraud.call("GET", "/v1/models")
    assert [m["name"] for m in models.data["items"]] == ["fraud"]


@pytest.mark.parametrize("accept_json", [True, False], ids=["json", "msgpack"])
async def test_body_over_the_limit_is_413(registry: Registry, accept_json: bool) -> None:
    limit = registry.config.max_body
    body = b'{"name": "big", "description": "' + b"x" * limit + b'"}'
    r = await registry.call("POST", "/v1/models", data=body, headers={"Content-Type": "application/json"},
                            accept_json=accept_json)
    assert r.status == 413 and r.error["code"] == "payload_too_large"
    assert r.content_type == ("application/json" if accept_json else "application/msgpack")
    # The daemon is still there, and nothing was created.
    assert (await registry.call("GET", "/v1/models")).data["items"] == []


async def test_body_just_under_the_limit_is_accepted(start_registry, home: Path) -> None:
    registry = await start_registry(home, max_body=64 * 1024)
    desc = "x" * 9_000  # the longest description the API takes, well under the body limit
    r = await registry.call("POST", "/v1/models", body={"name": "ok", "description": desc})
    assert r.status == 201 and r.data["description"] == desc
    r = await registry.call("POST", "/v1/models", body={"name": "big", "description": "y" * 65 * 1024})
    assert r.status == 413 and r.error["code"] == "payload_too_large"


async def test_blob_upload_with_wrong_announced_digest_stores_nothing(registry: Registry) -> None:
    data = b"weights" * 1000
    wrong = hashlib.sha256(b"other bytes").hexdigest()
    r = await registry.call("POST", "/v1/blobs", data=data,
                            headers={"Content-Type": "application/octet-stream", "X-Content-SHA256": wrong})
    assert r.status == 400 and r.error["code"] == "invalid_input"
    assert hashlib.sha256(data).hexdigest() in r.error["message"]
    assert blob_files(registry.home) == []
    assert list((registry.home / "blobs" / "tmp").iterdir()) == []
    right = hashlib.sha256(data).hexdigest()
    ok = await registry.call("POST", "/v1/blobs", data=data,
                             headers={"Content-Type": "application/octet-stream", "X-Content-SHA256": right})
    assert ok.status == 201 and ok.data["sha256"] == right and ok.data["size"] == len(data)


async def test_blob_upload_over_the_limit_is_413_and_leaves_no_temp_file(start_registry, home: Path) -> None:
    registry = await start_registry(home, max_upload=1024 * 1024)
    r = await registry.call("POST", "/v1/blobs", data=b"\0" * (2 * 1024 * 1024),
                            headers={"Content-Type": "application/octet-stream"})
    assert r.status == 413 and r.error["code"] == "payload_too_large"
    assert blob_files(registry.home) == []
    assert list((registry.home / "blobs" / "tmp").iterdir()) == []
