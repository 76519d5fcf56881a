"""The watchdog rule grammar, and managing watchdogs: who may, what a mistake says, what is audited."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gov_support import MODEL, register
from modelreg.daemon.services.watchdogs import WatchdogRule, parse_cooldown, parse_watchdog_rule
from modelreg.shared.errors import Forbidden, InvalidInput, NotFound
from modelreg.shared.names import KEY_RE


@pytest.mark.parametrize(("text", "rule"), [
    ("monitoring:auc < 0.85 for 3 records", WatchdogRule("monitoring:auc < 0.85 for 3 records", "monitoring", "auc",
                                                         "<", 0.85, 3)),
    ("  monitoring:auc<0.85   for 3  records ", WatchdogRule("monitoring:auc < 0.85 for 3 records", "monitoring",
                                                             "auc", "<", 0.85, 3)),
    ("monitoring:latency_p99_ms >= 40 for 1 records", WatchdogRule("monitoring:latency_p99_ms >= 40 for 1 record",
                                                                   "monitoring", "latency_p99_ms", ">=", 40.0, 1)),
    ("monitoring:eval/loss > 1e-3 for 10 records", WatchdogRule("monitoring:eval/loss > 1e-3 for 10 records",
                                                                "monitoring", "eval/loss", ">", 0.001, 10)),
])
def test_rules_read_and_normalise(text: str, rule: WatchdogRule) -> None:
    assert parse_watchdog_rule(text) == rule
    assert parse_watchdog_rule(rule.text) == rule


@pytest.mark.parametrize(("text", "says"), [
    ("auc < 0.85 for 3 records", "monitoring:KEY OP THRESHOLD for N records"),
    ("monitoring:auc < 0.85", "monitoring:KEY OP THRESHOLD for N records"),
    ("monitoring:auc == 0.85 for 3 records", "OP one of < <= > >="),
    ("offline:auc < 0.85 for 3 records", "metrics of source 'monitoring' (write monitoring:auc)"),
    ("monitoring:auc < 0.85 for 0 records", "the window is 1 to 1000 records"),
    ("monitoring:auc < 1e999 for 3 records", "finite"),
    ("monitoring:a\u00e9 < 1 for 3 records", "invalid metric name"),
    ("", "monitoring:KEY OP THRESHOLD"),
])
def test_a_mistake_shows_the_grammar(text: str, says: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_watchdog_rule(text)
    assert says in caught.value.message


@settings(max_examples=100, deadline=None)  # no deadline: a loaded machine is slow, not wrong
@given(key=st.from_regex(KEY_RE, fullmatch=True), op=st.sampled_from(["<", "<=", ">", ">="]),
       threshold=st.floats(allow_nan=False, allow_infinity=False), window=st.integers(1, 1000))
def test_any_rule_the_grammar_can_say_round_trips(key: str, op: str, threshold: float, window: int) -> None:
    rule = parse_watchdog_rule(f"monitoring:{key} {op} {threshold!r} for {window} records")
    assert (rule.key, rule.op, rule.threshold, rule.window) == (key, op, threshold, window)
    assert parse_watchdog_rule(rule.text) == rule


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_any_text_is_a_rule_or_a_message(text: str) -> None:
    try:
        rule = parse_watchdog_rule(text)
    except InvalidInput as exc:
        assert exc.message
    else:
        assert parse_watchdog_rule(rule.text) == rule


def test_cooldowns() -> None:
    assert (parse_cooldown(None), parse_cooldown("90s"), parse_cooldown("2h"), parse_cooldown(5)) == (3600, 90, 7200, 5)
    for bad in ("soon", -1, True, [], "400d"):
        with pytest.raises(InvalidInput):
            parse_cooldown(bad)


def test_admins_manage_watchdogs_and_every_change_is_audited(daemon, admin, token, modelreg, tmp_path):
    register(admin, tmp_path / "src", 1)
    ci = token("ci", "promote", models="fraud*")
    with pytest.raises(Forbidden):
        ci.add_watchdog(MODEL, "monitoring:auc < 0.85 for 3 records")
    reader = token("dash", "read")
    assert reader.watchdogs(MODEL) == []

    bad = modelreg("watchdog", "add", MODEL, "monitoring:auc below 0.85")
    assert bad.returncode == 2 and "monitoring:KEY OP THRESHOLD for N records" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert modelreg("watchdog", "add", "nosuch", "monitoring:auc < 0.85 for 3 records").returncode == 4
    with pytest.raises(InvalidInput, match="rollback must be true or false"):
        admin.request("POST", f"/v1/models/{MODEL}/watchdogs", body={"rule": "monitoring:auc < 1 for 1 record",
                                                                      "rollback": "yes"})

    out = modelreg("watchdog", "add", MODEL, "monitoring:auc < 0.85 for 3 records", "--cooldown", "30m", check=True)
    assert out.stdout.strip() == ("watchdog 1 on fraud: monitoring:auc < 0.85 for 3 records; when it fires it raises "
                                  "watchdog.fired (no rollback)")
    listed = json.loads(modelreg("watchdog", "list", "--json", check=True).stdout)
    assert [(w["id"], w["model"], w["rollback"], w["cooldown"], w["state"]) for w in listed] == [
        (1, MODEL, False, 1800, "no production")]
    assert reader.watchdogs() == listed

    assert modelreg("watchdog", "rm", "1", check=True).stdout.strip() == (
        "removed watchdog 1 on fraud: monitoring:auc < 0.85 for 3 records")
    assert modelreg("watchdog", "rm", "1").returncode == 4
    with pytest.raises(NotFound):
        admin.remove_watchdog(1)
    assert "no watchdogs on fraud" in modelreg("watchdog", "list", MODEL, check=True).stdout
    audit = [(e["kind"], e["actor"], e["data"]["id"]) for e in admin.events(model=MODEL)["items"]
             if e["kind"].startswith("watchdog.")]
    assert [kind for kind, _, _ in audit] == ["watchdog.added", "watchdog.removed"]
    assert {wid for _, _, wid in audit} == {1}
