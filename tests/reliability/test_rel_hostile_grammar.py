"""Generated input for the grammars users type: refs, dataset refs, metric filters, gate rules.

Two properties each: what the grammar can say survives ``parse(render(x)) == x``, and any string
at all is either a valid parse or an ``InvalidInput`` (a message for a person), never another
exception. Gate rules are rendered here the way docs/api.md spells them.
"""

from __future__ import annotations

import math

from hypothesis import assume, example, given
from hypothesis import strategies as st

from hostile_support import SPICY, budget, hostile_text, seed_note
from modelreg.daemon.services.gates import Rule, parse_rule
from modelreg.shared.errors import InvalidInput
from modelreg.shared.filters import METRIC_OPS, MetricFilter, parse_metric_filter
from modelreg.shared.names import (
    ALIAS_RE, DATASET_VERSION_RE, KEY_RE, MAX_VERSION_NUMBER, METRIC_SOURCES, NAME_RE, RESERVED_SELECTORS,
    DatasetRef, Ref, parse_dataset_ref, parse_ref, validate_relpath,
)

__all__ = ["seed_note"]

NAMES = st.from_regex(NAME_RE, fullmatch=True).filter(lambda n: n not in (".", ".."))
ALIASES = st.from_regex(ALIAS_RE, fullmatch=True).filter(
    lambda a: a not in RESERVED_SELECTORS and not (a[0] == "v" and a[1:].isdigit()))
KEYS = st.from_regex(KEY_RE, fullmatch=True)
FINITE = st.floats(allow_nan=False, allow_infinity=False)
ANY_TEXT = st.one_of(hostile_text(80), st.text(max_size=300), st.binary(max_size=80).map(
    lambda b: b.decode("utf-8", "surrogateescape")))


def refuses_or_parses(parse, text):  # noqa: ANN001, ANN201 - a grammar's parse function
    """Call ``parse``: a value, or InvalidInput with a message; any other exception fails the test."""
    try:
        return parse(text)
    except InvalidInput as exc:
        assert exc.message and isinstance(exc.message, str)
        return None


# -- refs --------------------------------------------------------------------------------------------


@budget(150)
@given(model=NAMES, number=st.integers(1, MAX_VERSION_NUMBER))
def test_ref_with_a_number_round_trips(model: str, number: int) -> None:
    ref = Ref(model, number=number)
    assert parse_ref(str(ref)) == ref
    assert parse_ref(f"{model}@v{number}") == ref


@budget(150)
@given(model=NAMES, selector=st.one_of(st.sampled_from(["production", "staging", "latest"]), ALIASES))
def test_ref_with_a_selector_round_trips(model: str, selector: str) -> None:
    ref = Ref(model, selector=selector)
    assert parse_ref(str(ref)) == ref


@budget(150)
@given(name=NAMES, version=st.from_regex(DATASET_VERSION_RE, fullmatch=True))
def test_dataset_ref_round_trips(name: str, version: str) -> None:
    ref = DatasetRef(name, version)
    assert parse_dataset_ref(str(ref)) == ref


@budget(250)
@given(text=st.one_of(ANY_TEXT, st.tuples(NAMES, ANY_TEXT).map("@".join), st.tuples(ANY_TEXT, NAMES).map("@".join)))
@example(text="fraud@" + "9" * 5000)
@example(text="fraud@\u0663")
def test_any_ref_text_parses_or_is_refused(text: str) -> None:
    ref = refuses_or_parses(parse_ref, text)
    if ref is not None:  # what was accepted is what it says: a number or a known selector
        assert NAME_RE.match(ref.model)
        assert (ref.number is None) != (ref.selector is None)
        assert ref.number is None or 1 <= ref.number <= MAX_VERSION_NUMBER
        assert parse_ref(str(ref)) == ref
    refuses_or_parses(parse_dataset_ref, text)


# -- artifact paths ------------------------------------------------------------------------------------


@budget(250)
@given(path=st.one_of(ANY_TEXT, st.lists(st.sampled_from(["..", ".", "", "a", "b.bin", "\\", "\x00", "é"]),
                                         max_size=6).map("/".join)))
@example(path="a/../../b")
@example(path="x" * 1025)
def test_an_accepted_artifact_path_stays_inside(path: str) -> None:
    """validate_relpath is the one gate for manifest, upload and MLflow paths: what it accepts
    cannot climb out of the folder it is joined to."""
    import posixpath

    if refuses_or_parses(validate_relpath, path) is not None:
        joined = posixpath.normpath(posixpath.join("/root/home", path))
        assert joined.startswith("/root/home/") and "\x00" not in path and len(path) <= 1024


# -- metric filters ------------------------------------------------------------------------------------


@budget(150)
@given(key=KEYS, op=st.sampled_from(sorted(METRIC_OPS)), value=FINITE, spaces=st.sampled_from(["", " ", "  "]))
def test_metric_filter_round_trips(key: str, op: str, value: float, spaces: str) -> None:
    parsed = parse_metric_filter(f"{key}{spaces}{op}{spaces}{value!r}")
    assert parsed == MetricFilter(key, METRIC_OPS[op], value)


@budget(200)
@given(text=st.one_of(ANY_TEXT, st.tuples(KEYS, st.sampled_from(sorted(METRIC_OPS)), ANY_TEXT).map("".join)))
@example(text="auc>=" + "9" * 400)
@example(text="auc>=1e999")
def test_any_metric_filter_text_parses_or_is_refused(text: str) -> None:
    parsed = refuses_or_parses(parse_metric_filter, text)
    if parsed is not None:
        assert KEY_RE.match(parsed.key) and parsed.op in METRIC_OPS.values()


# -- gate rules -----------------------------------------------------------------------------------------

# A metric key that begins like another rule's keyword is read as that rule ("staged_for >= 1h"
# is the soak rule; "has x" and "requires x" list facts; "cmd:x ..." runs a command): the
# grammar's documented keywords win, so the generated keys leave them out.
RULE_KEYS = KEYS.filter(lambda k: not k.startswith(("staged_for", "has", "require", "command", "cmd")))
FACTS = st.one_of(st.sampled_from(["dataset", "run", "parent", "description"]),
                  st.tuples(st.sampled_from(["metric", "param", "tag"]), KEYS).map(":".join),
                  st.sampled_from(METRIC_SOURCES).map("source:".__add__))
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def number(x: float) -> str:
    return repr(x)


@st.composite
def rules(draw: st.DrawFn) -> tuple[str, Rule]:
    """(rule text as a user writes it, the Rule it must parse to; ``text`` is the normalised text)."""
    kind = draw(st.sampled_from(["threshold", "versus", "no-worse", "requires", "soak", "command"]))
    sp = draw(st.sampled_from([" ", "", "  "]))
    if kind == "threshold":
        key, op, value = draw(RULE_KEYS), draw(st.sampled_from([">=", "<=", "==", ">", "<"])), draw(FINITE)
        text = f"{key}{sp}{op}{sp}{number(value)}"
        return text, Rule(" ".join(text.split()), "threshold", key=key, op=op, value=value)
    if kind == "versus":
        key, op = draw(RULE_KEYS), draw(st.sampled_from([">=", "<=", ">", "<"]))
        tol_op = draw(st.sampled_from(["", "-", "+", "*"]))
        tol = abs(draw(FINITE)) if tol_op else 0.0
        relative = tol_op in ("-", "+") and draw(st.booleans())
        text = f"{key}{sp}{op}{sp}production" + (f" {tol_op} {number(tol)}{'%' if relative else ''}" if tol_op else "")
        return text, Rule(" ".join(text.split()), "versus", key=key, op=op, tolerance_op=tol_op, tolerance=tol,
                          relative=relative)
    if kind == "no-worse":
        key = draw(RULE_KEYS)
        tol = abs(draw(FINITE)) if draw(st.booleans()) else None
        relative = tol is not None and draw(st.booleans())
        spelled = draw(st.sampled_from(["±", "+-", "+/-"]))
        text = f"{key} ~ production" + (f" {spelled} {number(tol)}{'%' if relative else ''}" if tol is not None else "")
        return text, Rule(" ".join(text.split()), "versus", key=key, op="~", tolerance_op="±", tolerance=tol or 0.0,
                          relative=relative)
    if kind == "requires":
        facts = tuple(draw(st.lists(FACTS, min_size=1, max_size=5)))
        word = draw(st.sampled_from(["requires", "require", "has"]))
        text = f"{word} " + f",{sp}".join(facts)
        return text, Rule(" ".join(text.split()), "requires", facts=facts)
    if kind == "soak":
        amount, unit = draw(st.integers(0, 10**6)), draw(st.sampled_from(sorted(UNITS)))
        text = f"staged_for >= {amount}{unit}"
        return text, Rule(text, "soak", value=float(amount * UNITS[unit]))
    command = draw(st.text(st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=60)).strip()
    assume(command)
    text = f"command: {command}"
    return text, Rule(text, "command", command=command)


@budget(300)
@given(case=rules())
@example(case=("auc >= 0.92", Rule("auc >= 0.92", "threshold", key="auc", op=">=", value=0.92)))
def test_gate_rule_round_trips(case: tuple[str, Rule]) -> None:
    text, rule = case
    parsed = parse_rule(text)
    assert parsed == rule
    assert parse_rule(parsed.text) == parsed  # the stored text reads back as the same rule


@budget(300)
@given(text=st.one_of(ANY_TEXT, st.sampled_from(SPICY),
                      st.tuples(KEYS, st.sampled_from([" >= ", " ~ production ± ", " <= production * ", " >= production - "]),
                                ANY_TEXT).map("".join),
                      st.tuples(st.sampled_from(["requires ", "staged_for >= ", "has "]), ANY_TEXT).map("".join)))
@example(text="staged_for >= " + "9" * 400)
@example(text="auc >= production * 5%")
@example(text="x" * 4001)
def test_any_gate_rule_text_parses_or_is_refused(text: str) -> None:
    rule = refuses_or_parses(parse_rule, text)
    if rule is not None:
        assert rule.kind in ("threshold", "versus", "requires", "soak", "command")
        assert not (rule.kind == "threshold" and math.isnan(rule.value))
        assert parse_rule(rule.text) == rule
