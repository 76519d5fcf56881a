"""Refs grammar and name validation (PRODUCT.md §3): what users type, what they are told."""

from __future__ import annotations

import pytest

from modelreg.shared.errors import InvalidInput
from modelreg.shared.names import (
    Ref,
    metric_direction,
    parse_dataset_ref,
    parse_ref,
    validate_alias,
    validate_name,
    validate_relpath,
)


@pytest.mark.parametrize("text, ref", [
    ("fraud@7", Ref("fraud", number=7)),
    ("fraud@v7", Ref("fraud", number=7)),
    ("fraud@V7", Ref("fraud", number=7)),
    ("fraud@9223372036854775807", Ref("fraud", number=2**63 - 1)),
    ("fraud", Ref("fraud", selector="latest")),
    ("fraud@production", Ref("fraud", selector="production")),
    ("fraud@staging", Ref("fraud", selector="staging")),
    ("fraud@champion", Ref("fraud", selector="champion")),
    ("my.model-2_b@latest", Ref("my.model-2_b", selector="latest")),
])
def test_valid_refs(text, ref):
    assert parse_ref(text) == ref


@pytest.mark.parametrize("text, message", [
    ("fraud@-1", "positive version number"),
    ("fraud@0", "start at 1"),
    ("fraud@archived", "stage that can hold many versions"),
    ("../x@1", "invalid model name"),
    ("fraud@", "positive version number"),
    ("@3", "invalid model name"),
    ("fraud@Prod!", "positive version number"),
    ("fraud@99999999999999999999", r"version number too large \(max 9223372036854775807\)"),
    ("fraud@9223372036854775808", "version number too large"),
    ("fraud@v" + "9" * 5000, "version number too large"),
    ("fraud@\u0663", "positive version number"),  # an Arabic-Indic digit is not a version number
])
def test_invalid_refs_say_why(text, message):
    with pytest.raises(InvalidInput, match=message):
        parse_ref(text)


@pytest.mark.parametrize("name", ["../x", ".", "..", "-lead", "a/b", "a b", "", "x" * 129, "é"])
def test_invalid_names(name):
    with pytest.raises(InvalidInput):
        validate_name(name)


@pytest.mark.parametrize("alias", ["production", "staging", "latest", "none", "archived", "v12", "12", "Champion"])
def test_reserved_or_bad_aliases(alias):
    with pytest.raises(InvalidInput):
        validate_alias(alias)


def test_dataset_refs():
    assert str(parse_dataset_ref("txns@2026-11")) == "txns@2026-11"
    for bad in ("txns", "txns@", "../d@1", "d@a b"):
        with pytest.raises(InvalidInput):
            parse_dataset_ref(bad)


@pytest.mark.parametrize("path", ["../etc/passwd", "/abs", "a/../b", "a//b", "a\x00b", "a\\b", ""])
def test_manifest_paths_refused(path):
    with pytest.raises(InvalidInput):
        validate_relpath(path)


@pytest.mark.parametrize("key, direction", [
    ("auc", "higher"), ("val_loss", "lower"), ("latency_p99_ms", "lower"), ("rmse", "lower"),
    ("wer", "lower"), ("power", "higher"), ("answer_rate", "higher"), ("perplexity", "lower"), ("f1", "higher"),
])
def test_metric_direction(key, direction):
    assert metric_direction(key) == direction
    assert metric_direction(key, {key: "lower" if direction == "higher" else "higher"}) != direction
