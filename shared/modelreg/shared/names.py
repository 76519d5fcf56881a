"""Names and refs grammar (PRODUCT.md §3), validated in one place.

A ref names one version: ``NAME@7`` / ``NAME@v7`` / ``NAME@V7`` (a number), ``NAME@production``,
``NAME@staging`` (newest in staging), ``NAME@latest`` or ``NAME@<alias>``. A bare ``NAME``
means ``NAME@latest``. Datasets are ``NAME@VERSION`` with a free-form version string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidInput

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ALIAS_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
DATASET_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$")
KEY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,249}$")
_VNUM_RE = re.compile(r"^[vV]?([0-9]+)$")
MAX_PATH_PART = 255  # bytes in one part of an artifact path: NAME_MAX of ext4, xfs, btrfs, tmpfs
# Version numbers are SQLite integers: 64-bit signed.
MAX_VERSION_NUMBER = 2**63 - 1

STAGES = ("none", "staging", "production", "archived")
METRIC_SOURCES = ("offline", "online", "monitoring", "model-card")
RESERVED_SELECTORS = frozenset({"production", "staging", "archived", "none", "latest"})


def validate_name(name: object, what: str = "model name") -> str:
    if not isinstance(name, str) or not NAME_RE.match(name) or name in (".", ".."):
        raise InvalidInput(
            f"invalid {what} {name!r}: use 1-128 characters from A-Z a-z 0-9 . _ -, "
            "starting with a letter or digit",
            {"field": what, "value": str(name)[:200]},
        )
    return name


def validate_key(key: object, what: str = "key") -> str:
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise InvalidInput(
            f"invalid {what} {key!r}: use letters, digits and _ . : / - (at most 250)",
            {"field": what, "value": str(key)[:200]},
        )
    return key


def validate_alias(alias: object) -> str:
    if not isinstance(alias, str) or not ALIAS_RE.match(alias):
        raise InvalidInput(
            f"invalid alias {alias!r}: lower-case letter first, then a-z 0-9 _ - (at most 64)",
            {"field": "alias", "value": str(alias)[:200]},
        )
    if alias in RESERVED_SELECTORS or _VNUM_RE.match(alias):
        raise InvalidInput(f"alias {alias!r} is reserved", {"field": "alias", "value": alias})
    return alias


def validate_stage(stage: object) -> str:
    if stage not in STAGES:
        raise InvalidInput(
            f"unknown stage {stage!r}: expected one of {', '.join(STAGES)}",
            {"field": "stage", "value": str(stage)[:200]},
        )
    return stage  # type: ignore[return-value]


@dataclass(frozen=True)
class Ref:
    """A parsed version reference. Exactly one of ``number`` / ``selector`` is set."""

    model: str
    number: int | None = None
    selector: str | None = None  # production | staging | latest | <alias>

    def __str__(self) -> str:
        return f"{self.model}@{self.number if self.number is not None else self.selector}"


def parse_ref(text: object) -> Ref:
    if not isinstance(text, str) or not text:
        raise InvalidInput("a ref looks like NAME@7, NAME@production or NAME@latest")
    name, sep, sel = text.partition("@")
    validate_name(name)
    if not sep:
        return Ref(name, selector="latest")
    m = _VNUM_RE.match(sel)
    if m:
        digits = m.group(1).lstrip("0") or "0"
        if len(digits) > len(str(MAX_VERSION_NUMBER)) or int(digits) > MAX_VERSION_NUMBER:
            raise InvalidInput(f"invalid ref {text[:200]!r}: version number too large (max {MAX_VERSION_NUMBER})")
        number = int(digits)
        if number < 1:
            raise InvalidInput(f"invalid ref {text!r}: version numbers start at 1")
        return Ref(name, number=number)
    if sel in ("archived", "none"):
        raise InvalidInput(
            f"invalid ref {text!r}: {sel!r} is a stage that can hold many versions; "
            f"list them with `modelreg versions {name} --stage {sel}`"
        )
    if sel in ("production", "staging", "latest") or ALIAS_RE.match(sel):
        return Ref(name, selector=sel)
    raise InvalidInput(
        f"invalid ref {text!r}: after @ comes a positive version number, production, "
        "staging, latest or an alias"
    )


@dataclass(frozen=True)
class DatasetRef:
    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


def parse_dataset_ref(text: object) -> DatasetRef:
    if not isinstance(text, str) or "@" not in text:
        raise InvalidInput(f"invalid dataset {text!r}: expected NAME@VERSION, e.g. txns@2026-11")
    name, _, version = text.partition("@")
    validate_name(name, "dataset name")
    if not DATASET_VERSION_RE.match(version):
        raise InvalidInput(
            f"invalid dataset version {version!r}: letters, digits and . _ : + - (at most 128)"
        )
    return DatasetRef(name, version)


def validate_relpath(path: object) -> str:
    """A file path inside a version's manifest: relative, no '..', no NUL, posix separators."""
    if not isinstance(path, str) or not path or len(path) > 1024:
        raise InvalidInput(f"invalid artifact path {str(path)[:200]!r}")
    if "\x00" in path or "\\" in path or path.startswith("/"):
        raise InvalidInput(f"invalid artifact path {path!r}: must be relative, posix, no NUL")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise InvalidInput(f"invalid artifact path {path!r}: no empty, '.' or '..' components")
    if any(len(p.encode("utf-8", "surrogatepass")) > MAX_PATH_PART for p in parts):
        # The files of a version are laid out under these names (sniffing, serving): a longer
        # part is ENAMETOOLONG on every common filesystem.
        raise InvalidInput(f"invalid artifact path {path[:200]!r}: a part is longer than {MAX_PATH_PART} bytes")
    return path


def metric_direction(key: str, overrides: dict[str, str] | None = None) -> str:
    """'lower' or 'higher' is better (PRODUCT.md §3), unless the model overrides it."""
    if overrides and key in overrides:
        return overrides[key]
    low = key.lower()
    # Long words match inside compound names (val_loss, logloss); short ones only as a
    # whole token, so "power" or "answer_rate" do not read as word error rate.
    if any(word in low for word in ("loss", "error", "rmse", "perplexity", "latency")):
        return "lower"
    tokens = set(re.split(r"[^a-z0-9]+", low))
    if tokens & {"err", "mae", "mse", "wer", "cer"}:
        return "lower"
    return "higher"
