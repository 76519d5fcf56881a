"""The MLflow search grammar (services/mlflow/filters.py) against MLflow's own parser.

MLflow's ``SearchModelVersionUtils`` / ``SearchModelUtils`` (installed with the client) are the
oracle: what they accept we parse to the same comparisons, what they refuse we refuse with
their words. MLflow prints its sets of valid keys in hash order, so messages are compared
with the elements of every ``{...}`` sorted.
"""

from __future__ import annotations

import re
import sqlite3

import pytest

from modelreg.daemon.services.mlflow import filters
from modelreg.daemon.store.sql.mlflow_search import glob_of_like
from modelreg.shared.errors import InvalidInput

search_utils = pytest.importorskip("mlflow.utils.search_utils")
MlflowException = pytest.importorskip("mlflow.exceptions").MlflowException

ACCEPTED_VERSIONS = [
    "name = 'fraud'",
    "name='fraud'",
    'name = "fraud"',
    "name != 'fraud'",
    "name LIKE 'fr%'",
    "name ilike '%FR_UD'",
    "name IN ('a', 'b')",
    "name NOT IN ('a')",
    "attribute.name = 'x'",
    "run_id = 'abc'",
    "run_id IN ('a','b')",
    "run_id NOT IN ('a')",
    "source_path = 's3://b/m'",
    "source_path LIKE 's3://%'",
    "version_number > 3",
    "version_number <= 10",
    "version_number != 2",
    "tags.team = 'risk'",
    "tag.team != 'risk'",
    "tags.`my key` = 'v'",
    'tags."my key" LIKE \'v%\'',
    "tags.`team.name` ILIKE 'R%'",
    "name = 'fraud' AND version_number >= 2 AND tags.team = 'risk'",
    "name = 'fraud' and run_id = 'r'",
    "name = 'it''s'",
]

ACCEPTED_MODELS = [
    "name = 'fraud'",
    "name LIKE '%raud'",
    "name ILIKE 'FRAUD'",
    "name IN ('a', 'b')",
    "tags.team = 'risk' AND name != 'x'",
    "tags.`my key` = 'v'",
]

REFUSED_VERSIONS = [
    "name = 'a' OR name = 'b'",
    "foo = 'x'",
    "NAME = 'a'",
    "name = x",
    "name = 3",
    "name",
    "name =",
    "metric.auc > 0.9",
    "tags.x = 3",
    "name = 'a'; name = 'b'",
    "source_path IN ('a')",
    "version_number IN ('1')",
    "run_id IN ()",
    "`tags`.x = 'y'",
]

REFUSED_MODELS = [
    "name = 'a' OR tags.x = 'y'",
    "version_number = 3",
    "run_id = 'x'",
    "name = 3",
    "tags.x = 3",
]

# Refused by MLflow's SQL store after its parser accepted them (comparators, numbers).
STORE_REFUSED_VERSIONS = {
    "name ~ 'a'": "Invalid comparator for attribute: ~",
    "tags.x > 'a'": "Invalid comparator for tag: >",
    "version_number LIKE '1%'": "Invalid comparator for attribute version_number: LIKE",
    "version_number = 3.5": "Invalid value for numeric attribute 'version_number': 3.5",
    "version_number = 'x'": "Invalid value for numeric attribute 'version_number': 'x'",
    "source_path NOT IN ('a')": "Only ['name', 'run_id'] attributes support comparison with a list of quoted "
                                "string values.",
}


def _sorted_sets(message: str) -> str:
    return re.sub(r"\{([^{}]*)\}", lambda m: "{" + ", ".join(sorted(m.group(1).split(", "))) + "}", message)


def _ours(clauses: list[filters.Clause]) -> list[dict]:
    return [{"type": c.kind, "key": c.key, "comparator": c.op, "value": c.value} for c in clauses]


def _theirs(parsed: list[dict]) -> list[dict]:
    out = []
    for d in parsed:
        value = d["value"]
        if d["key"] == "version_number" and d["type"] == "attribute":
            value = int(value)  # MLflow's store does int(value) before comparing
        out.append({**d, "comparator": d["comparator"].upper(), "value": value})
    return out


@pytest.mark.parametrize("text", ACCEPTED_VERSIONS)
def test_version_filters_parse_as_mlflow_parses_them(text: str) -> None:
    ours = filters.parse_version_filter(text)
    assert _ours(ours.clauses) == _theirs(search_utils.SearchModelVersionUtils.parse_search_filter(text))
    assert ours.prompts is False


@pytest.mark.parametrize("text", ACCEPTED_MODELS)
def test_model_filters_parse_as_mlflow_parses_them(text: str) -> None:
    assert _ours(filters.parse_model_filter(text).clauses) == _theirs(
        search_utils.SearchModelUtils.parse_search_filter(text))


def _their_error(utils, text: str) -> str:
    with pytest.raises(MlflowException) as exc:
        utils.parse_search_filter(text)
    assert exc.value.error_code == "INVALID_PARAMETER_VALUE"
    return exc.value.message


@pytest.mark.parametrize("text", REFUSED_VERSIONS)
def test_version_filters_mlflow_refuses_are_refused_in_its_words(text: str) -> None:
    expected = _their_error(search_utils.SearchModelVersionUtils, text)
    with pytest.raises(InvalidInput) as exc:
        filters.parse_version_filter(text)
    if text in ("name =", "name = 'a' OR name = 'b'", "name"):
        assert exc.value.message.startswith("Invalid clause(s) in filter string: ")
        assert expected.startswith("Invalid clause(s) in filter string: ")
    else:
        assert _sorted_sets(exc.value.message) == _sorted_sets(expected)


@pytest.mark.parametrize("text", REFUSED_MODELS)
def test_model_filters_mlflow_refuses_are_refused_in_its_words(text: str) -> None:
    expected = _their_error(search_utils.SearchModelUtils, text)
    with pytest.raises(InvalidInput) as exc:
        filters.parse_model_filter(text)
    assert _sorted_sets(exc.value.message) == _sorted_sets(expected)


@pytest.mark.parametrize("text,message", sorted(STORE_REFUSED_VERSIONS.items()))
def test_what_mlflows_store_refuses_is_refused_by_the_parser(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        filters.parse_version_filter(text)
    assert exc.value.message == message


def test_the_clients_prompt_clause_selects_models_not_a_tag() -> None:
    """The stock client appends ``tag.`mlflow.prompt.is_prompt` != 'true'`` to model searches."""
    plain = filters.parse_model_filter("name = 'a' AND tag.`mlflow.prompt.is_prompt` != 'true'")
    assert _ours(plain.clauses) == [{"type": "attribute", "key": "name", "comparator": "=", "value": "a"}]
    assert plain.prompts is False
    assert filters.parse_model_filter("tags.`mlflow.prompt.is_prompt` = 'true'").prompts is True
    assert filters.parse_model_filter("").clauses == []


@pytest.mark.parametrize("clause,expected", [
    ("name", ("name", True)),
    ("name DESC", ("name", False)),
    ("version_number asc", ("version_number", True)),
    ("attribute.last_updated_timestamp DESC", ("last_updated_timestamp", False)),
    ("`creation_timestamp` DESC", ("creation_timestamp", False)),
])
def test_version_order_by_as_mlflow(clause: str, expected: tuple[str, bool]) -> None:
    _, key, ascending = search_utils.SearchModelVersionUtils.parse_order_by_for_search_model_versions(clause)
    assert (key, ascending) == expected
    first = filters.parse_version_order([clause])[0]
    assert (first.key, first.ascending) == expected


@pytest.mark.parametrize("clause", ["name sideways", "name DESC x", "", "name,version_number"])
def test_unparsable_order_by_is_refused_in_mlflows_words(clause: str) -> None:
    with pytest.raises(MlflowException) as theirs:
        search_utils.SearchModelVersionUtils.parse_order_by_for_search_model_versions(clause)
    with pytest.raises(InvalidInput) as ours:
        filters.parse_version_order([clause])
    assert ours.value.message == theirs.value.message


@pytest.mark.parametrize("clause", ["foo", "tags.x DESC", "timestamp"])
def test_unknown_order_by_keys_are_refused(clause: str) -> None:
    with pytest.raises(InvalidInput) as ours:
        filters.parse_version_order([clause])
    key = clause.split()[0]
    assert ours.value.message.startswith(f"Invalid order by key '{key}' specified. Valid keys are ")


def test_orders_fill_in_mlflows_natural_order() -> None:
    assert [(o.key, o.ascending) for o in filters.parse_version_order([])] == [
        ("last_updated_timestamp", False), ("name", True), ("version_number", False)]
    assert [(o.key, o.ascending) for o in filters.parse_version_order(["version_number ASC"])] == [
        ("version_number", True), ("name", True)]
    assert [(o.key, o.ascending) for o in filters.parse_model_order(["timestamp DESC"])] == [
        ("last_updated_timestamp", False), ("name", True)]
    with pytest.raises(InvalidInput, match="duplicate fields"):
        filters.parse_version_order(["name", "name DESC"])


def test_page_tokens_round_trip_and_match_mlflows() -> None:
    token = filters.page_token(300)
    assert filters.page_offset(token) == 300
    assert search_utils.SearchUtils.parse_start_offset_from_page_token(token) == 300
    assert filters.page_offset(search_utils.SearchUtils.create_page_token(40).decode()) == 40
    assert filters.page_offset(None) == 0
    for bad in ("not base64!", "e30=", filters.page_token(-5)[:-1] + "x"):
        with pytest.raises(InvalidInput, match="Invalid page token"):
            filters.page_offset(bad)


def test_max_results_checked_as_mlflows_handler_and_store() -> None:
    assert filters.max_results(None, 100, 1000) == 100
    assert filters.max_results("25", 100, 1000) == 25
    with pytest.raises(InvalidInput, match="It must be at most 1000, but got value 1001"):
        filters.max_results(1001, 100, 1000)
    with pytest.raises(InvalidInput, match="must be a positive integer"):
        filters.max_results(0, 100, 1000)
    with pytest.raises(InvalidInput, match="for parameter 'max_results' supplied"):
        filters.max_results("ten", 100, 1000)


@pytest.mark.parametrize("pattern", ["fr%", "%raud", "f_aud", "%", "_", "a*b", "a?b", "[ab]%", "%\\%", "50%_off",
                                     "Fr%", "%[%", "x]y"])
def test_like_as_glob_matches_what_a_case_sensitive_like_matches(pattern: str) -> None:
    words = ["fraud", "Fraud", "fr", "a*b", "axb", "a?b", "[ab]x", "ax", "50%_off", "50x_off", "%\\", "\\%",
             "x]y", "%[%", "", "_", "f_aud"]
    db = sqlite3.connect(":memory:")
    db.execute("PRAGMA case_sensitive_like = ON")
    for word in words:
        like = db.execute("SELECT ? LIKE ?", (word, pattern)).fetchone()[0]
        glob = db.execute("SELECT ? GLOB ?", (word, glob_of_like(pattern))).fetchone()[0]
        assert like == glob, (word, pattern)
