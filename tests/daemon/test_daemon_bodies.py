"""Request bodies are declared once (modelreg.shared.bodies) and validated by msgspec (issue 9 item 3).

A wrong type or a missing field in any body is a 400 invalid_input whose message and
``details.field`` name the field; lists and maps over the limits (PRODUCT.md §10) are refused.
Through HTTP for the routes that parse with ``payloads`` today, and directly for every
``parse_*`` function (the handlers of the other routes call them as they move to services).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import msgspec
import pytest

from modelreg.daemon import payloads
from modelreg.shared import bodies
from modelreg.shared.bodies import MAX_ITEMS
from modelreg.shared.errors import InvalidInput
from registry_harness import Registry

SHA = "ab" * 32
TOO_MANY = MAX_ITEMS + 1


@pytest.fixture
async def fraud(registry: Registry, model_file: Path) -> Registry:
    await registry.client().register("fraud", path=model_file, wait=True, metrics={"auc": 0.9})
    return registry


# -- through HTTP -------------------------------------------------------------------------------

# (method, path, body (with "{file}" for a real file), the field the message must name)
HTTP_CASES: dict[str, tuple[str, str, Any, str]] = {
    "reg-description-int": ("POST", "/v1/models/fraud/versions", {"path": "{file}", "description": 5}, "description"),
    "reg-path-list": ("POST", "/v1/models/fraud/versions", {"path": ["/x"]}, "path"),
    "reg-mode-int": ("POST", "/v1/models/fraud/versions", {"path": "{file}", "mode": 1}, "mode"),
    "reg-tags-list": ("POST", "/v1/models/fraud/versions", {"path": "{file}", "tags": ["a"]}, "tags"),
    "reg-tag-value-map": ("POST", "/v1/models/fraud/versions", {"path": "{file}", "tags": {"team": {"a": 1}}},
                          "tags[team]"),
    "reg-param-value-list": ("POST", "/v1/models/fraud/versions", {"path": "{file}", "params": {"lr": [1]}},
                             "params[lr]"),
    "reg-metric-value-list": ("POST", "/v1/models/fraud/versions", {"path": "{file}", "metrics": {"auc": [1]}},
                              "metrics[auc]"),
    "reg-metric-missing-value": ("POST", "/v1/models/fraud/versions", {"path": "{file}", "metrics": [{"key": "auc"}]},
                                 "metrics[0].value"),
    "reg-metric-missing-key": ("POST", "/v1/models/fraud/versions", {"path": "{file}", "metrics": [{"value": 1}]},
                               "metrics[0].key"),
    "reg-metric-step-str": ("POST", "/v1/models/fraud/versions",
                            {"path": "{file}", "metrics": [{"key": "auc", "value": 1, "step": "3"}]}, "metrics[0].step"),
    "reg-dataset-int": ("POST", "/v1/models/fraud/versions", {"path": "{file}", "datasets": [5]}, "datasets[0]"),
    "reg-dataset-relation": ("POST", "/v1/models/fraud/versions",
                             {"path": "{file}", "datasets": [{"ref": "t@1", "relation": "x"}]}, "datasets[0].relation"),
    "reg-run-int": ("POST", "/v1/models/fraud/versions", {"path": "{file}", "run": 5}, "run"),
    "reg-run-missing-id": ("POST", "/v1/models/fraud/versions", {"path": "{file}", "run": {"experiment": "e"}}, "run.id"),
    "reg-run-hyper-list": ("POST", "/v1/models/fraud/versions",
                           {"path": "{file}", "run": {"id": "r", "hyperparameters": {"lr": [1]}}},
                           "run.hyperparameters[lr]"),
    "reg-parent-int": ("POST", "/v1/models/fraud/versions", {"path": "{file}", "parent": 5}, "parent"),
    "reg-files-missing-sha": ("POST", "/v1/models/fraud/versions", {"files": [{"path": "a.bin", "size": 1}]},
                              "files[0].sha256"),
    "reg-files-size-str": ("POST", "/v1/models/fraud/versions", {"files": [{"path": "a.bin", "sha256": SHA,
                                                                             "size": "1"}]}, "files[0].size"),
    "reg-files-not-list": ("POST", "/v1/models/fraud/versions", {"files": {"a.bin": SHA}}, "files"),
    "metrics-value-list": ("POST", "/v1/models/fraud/versions/1/metrics", {"metrics": {"auc": [0.5]}}, "metrics[auc]"),
    "metrics-record-missing-key": ("POST", "/v1/models/fraud/versions/1/metrics", [{"value": 0.5}], "metrics[0].key"),
    "model-description-list": ("POST", "/v1/models", {"name": "churn", "description": ["x"]}, "description"),
    "model-directions-value": ("POST", "/v1/models", {"name": "churn", "metric_directions": {"auc": "up"}},
                               "metric_directions[auc]"),
    "model-update-tags-str": ("PATCH", "/v1/models/fraud", {"tags": "team=risk"}, "tags"),
    "version-update-tag-value": ("PATCH", "/v1/models/fraud/versions/1", {"tags": {"a": [1]}}, "tags[a]"),
    # over the limits
    "reg-too-many-tags": ("POST", "/v1/models/fraud/versions",
                          {"path": "{file}", "tags": {f"t{i}": "x" for i in range(TOO_MANY)}}, "tags"),
    "reg-too-many-metrics": ("POST", "/v1/models/fraud/versions",
                             {"path": "{file}", "metrics": [{"key": f"m{i}", "value": 1} for i in range(TOO_MANY)]},
                             "metrics"),
    "reg-too-many-parents": ("POST", "/v1/models/fraud/versions", {"path": "{file}", "parent": ["fraud@1"] * TOO_MANY},
                             "parent"),
    "reg-too-many-hyperparameters": ("POST", "/v1/models/fraud/versions",
                                     {"path": "{file}", "run": {"id": "r", "hyperparameters": {
                                         f"h{i}": 1 for i in range(TOO_MANY)}}}, "run.hyperparameters"),
    "reg-too-many-files": ("POST", "/v1/models/fraud/versions",
                           {"files": [{"path": f"f{i}", "sha256": SHA, "size": 1} for i in range(TOO_MANY)]}, "files"),
    "reg-tag-value-too-long": ("POST", "/v1/models/fraud/versions", {"path": "{file}", "tags": {"a": "x" * 10_001}},
                               "tags[a]"),
    "model-too-many-directions": ("POST", "/v1/models", {"name": "churn", "metric_directions": {
        f"m{i}": "lower" for i in range(TOO_MANY)}}, "metric_directions"),
}


def _fill(body: Any, f: Path) -> Any:
    if isinstance(body, dict) and body.get("path") == "{file}":
        return {**body, "path": str(f)}
    return body


@pytest.mark.parametrize("case", list(HTTP_CASES), ids=list(HTTP_CASES))
async def test_bad_body_is_400_naming_the_field(fraud: Registry, model_file: Path, case: str) -> None:
    method, path, body, field = HTTP_CASES[case]
    r = await fraud.call(method, path, body=_fill(body, model_file), accept_json=True)
    assert r.status == 400, (r.status, r.raw[:300])
    err = r.error
    assert err["code"] == "invalid_input"
    assert field in err["message"], err
    assert err["details"].get("field") == field, err
    after = await fraud.call("GET", "/v1/models/fraud/versions")
    assert after.data["total"] == 1, "a refused request left a version behind"


async def test_a_good_body_still_registers_with_every_part(fraud: Registry, model_file: Path) -> None:
    body = {"path": str(model_file), "description": "d", "params": {"lr": 0.001, "epochs": 3, "amp": True},
            "tags": {"team": "risk"}, "metrics": [{"key": "auc", "value": "0.93", "step": 2, "source": "online"}],
            "datasets": ["txns@2026-11", {"name": "holdout", "version": 7, "relation": "evaluated_on"}],
            "run": {"id": "r1", "started_at": "2026-11-20T10:00:00Z", "hyperparameters": {"seed": 1}},
            "parent": "fraud@1", "unknown_field": "ignored"}
    r = await fraud.call("POST", "/v1/models/fraud/versions?wait=1", body=body)
    assert r.status == 201, r.raw[:300]
    v = r.data["version"]
    assert v["params"] == {"lr": "0.001", "epochs": "3", "amp": "true"}
    assert v["metrics"] == {"auc": 0.93}
    assert {d["dataset"] for d in v["lineage"]["datasets"]} == {"txns@2026-11", "holdout@7"}


# -- every parse function -----------------------------------------------------------------------

Parse = Callable[[Any], Any]
# (parse function, body, the field the message must name)
PARSE_CASES: dict[str, tuple[Parse, Any, str]] = {
    "metadata-description": (lambda b: payloads.parse_metadata(b, "drop"), {"description": 1}, "description"),
    "metadata-run-started": (lambda b: payloads.parse_metadata(b, "drop"),
                             {"run": {"id": "r", "started_at": [1]}}, "run.started_at"),
    "metrics-step-bool": (payloads.parse_metrics, [{"key": "a", "value": 1, "step": True}], "metrics[0].step"),
    "metrics-value-missing": (payloads.parse_metrics, [{"key": "a"}], "metrics[0].value"),
    "metrics-not-a-collection": (payloads.parse_metrics, 5, "metrics"),
    "model-tags": (payloads.parse_model, {"tags": 5}, "tags"),
    "model-create-directions": (payloads.parse_model_create, {"name": "m", "metric_directions": {"a": 1}},
                                "metric_directions[a]"),
    "model-update-untag": (payloads.parse_model_update, {"untag": 5}, "untag"),
    "version-update-description": (payloads.parse_version_update, {"description": {}}, "description"),
    "rename-reason": (payloads.parse_rename, {"name": "x", "reason": 5}, "reason"),
    "delete-force": (payloads.parse_delete, {"reason": "r", "force": "yes"}, "force"),
    "transition-to": (payloads.parse_transition, {"to": 5}, "to"),
    "transition-force": (payloads.parse_transition, {"force": "true"}, "force"),
    "rollback-to": (payloads.parse_rollback, {"to": "3"}, "to"),
    "alias-missing-version": (payloads.parse_alias, {}, "version"),
    "alias-version-zero": (payloads.parse_alias, {"version": 0}, "version"),
    "gate-missing-stage": (payloads.parse_gate, {"rule": "auc >= 0.9"}, "stage"),
    "gate-timeout": (payloads.parse_gate, {"stage": "production", "rule": "auc >= 0.9", "timeout": "5"}, "timeout"),
    "gate-rule": (payloads.parse_gate, {"stage": "production", "rule": 5}, "rule"),
    "hook-missing-kind": (payloads.parse_hook, {"target": "http://x/"}, "kind"),
    "hook-missing-target": (payloads.parse_hook, {"kind": "command"}, "target"),
    "hook-events": (payloads.parse_hook, {"kind": "command", "target": "true", "events": ["a"]}, "events"),
    "hook-stage": (payloads.parse_hook, {"kind": "command", "target": "true", "stage": "prod"}, "stage"),
    "watch-missing-path": (payloads.parse_watch, {}, "path"),
    "watch-settle": (payloads.parse_watch, {"path": "/x", "settle": "3"}, "settle"),
    "watch-poll": (payloads.parse_watch, {"path": "/x", "poll": "yes"}, "poll"),
    "watch-include": (payloads.parse_watch, {"path": "/x", "include": [1]}, "include[0]"),
    "watch-too-many-globs": (payloads.parse_watch, {"path": "/x", "exclude": ["*.txt"] * 101}, "exclude"),
    "gc-dry-run": (payloads.parse_gc, {"dry_run": "no"}, "dry_run"),
    "gc-retention": (payloads.parse_gc, {"retention_days": "90"}, "retention_days"),
    "verify-ref": (payloads.parse_verify, {"ref": 5}, "ref"),
    "record-metrics-source": (payloads.parse_record_metrics, {"metrics": {"a": 1}, "source": 5}, "source"),
    "record-metrics-dataset": (payloads.parse_record_metrics, {"metrics": {"a": 1}, "dataset": 5}, "dataset"),
    "model-update-too-many-untag": (payloads.parse_model_update, {"untag": ["a"] * TOO_MANY}, "untag"),
}


@pytest.mark.parametrize("case", list(PARSE_CASES), ids=list(PARSE_CASES))
def test_parse_names_the_field(case: str) -> None:
    parse, body, field = PARSE_CASES[case]
    with pytest.raises(InvalidInput) as refused:
        parse(body)
    assert field in refused.value.message and refused.value.details.get("field") == field, refused.value.envelope()
    assert "$" not in refused.value.message and "`" not in refused.value.message  # msgspec's wording, translated


@pytest.mark.parametrize("parse", [payloads.parse_registration, payloads.parse_model, payloads.parse_gate,
                                   payloads.parse_hook, payloads.parse_watch, payloads.parse_transition],
                         ids=lambda f: f.__name__)
@pytest.mark.parametrize("body", [[1, 2], "text", 5], ids=["list", "str", "int"])
def test_a_body_that_is_not_an_object_is_refused(parse: Parse, body: Any) -> None:
    with pytest.raises(InvalidInput, match="^body must be an object"):
        parse(body)


def test_nested_limits_hold_at_every_depth() -> None:
    deep_list = {"path": "/x", "metrics": [{"key": "a", "value": 1}] * TOO_MANY}
    deep_map = {"path": "/x", "run": {"id": "r", "hyperparameters": {str(i): i for i in range(TOO_MANY)}}}
    for body, field in ((deep_list, "metrics"), (deep_map, "run.hyperparameters")):
        with pytest.raises(InvalidInput, match=f"^{field} has more than {MAX_ITEMS}"):
            payloads.parse_registration(body)
    # At the limit is fine.
    ok = payloads.parse_registration({"path": "/x", "tags": {f"t{i}": i for i in range(MAX_ITEMS)}})
    assert len(ok.tags) == MAX_ITEMS and ok.tags["t7"] == "7"


def test_parsed_values_keep_their_meaning() -> None:
    change = payloads.parse_model_update({"description": "d", "untag": "x", "tags": {"a": 1}})
    assert (change.fields, change.untag, change.tags) == (["description", "tags", "untag"], ["x"], {"a": "1"})
    assert payloads.parse_transition(None) == payloads.TransitionRequest("production", "", False)
    assert payloads.parse_rename({"name": "new", "reason": "  typo "}) == ("new", "typo")
    assert payloads.parse_delete({"reason": "dup", "force": True}) == ("dup", True)
    assert payloads.parse_gc(None)[0] is True
    hook = payloads.parse_hook({"kind": "webhook", "target": " https://ci.example/hook "})
    assert (hook.target, hook.events, hook.secret) == ("https://ci.example/hook", "", None)
    watch = payloads.parse_watch({"path": "/srv/drops", "settle": 1, "include": "*.gguf"})
    assert (watch.settle, watch.mode, watch.include) == (1, "move", ["*.gguf"])
    assert isinstance(watch.settle, int), "an int settle stays an int (the watch.added event echoes it)"
    records = payloads.parse_record_metrics({"metrics": {"auc": "0.5"}, "source": "online", "dataset": "t@1"})
    assert records == [payloads.MetricRecord("auc", 0.5, "online", None, "t@1")]


def test_every_body_struct_has_a_parse_function() -> None:
    structs = {n for n, v in vars(bodies).items() if isinstance(v, type) and issubclass(v, msgspec.Struct)}
    source = Path(payloads.__file__).read_text()
    assert {n for n in structs if n not in source} == set()
