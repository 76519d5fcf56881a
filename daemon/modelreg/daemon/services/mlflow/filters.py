"""MLflow's registry search grammar: filter strings, ``order_by`` lists, page tokens, page sizes.

The grammar of ``SearchModelUtils`` / ``SearchModelVersionUtils`` (mlflow/utils/search_utils.py)
and the checks its SQL store adds (store/model_registry/sqlalchemy_store.py), parsed into a
small AST (``Clause``, ``Order``) that ``store/sqlite/mlflow_search.py`` turns into SQL. Pure
Python: no SQL here, no I/O.

    filter   := comparison (AND comparison)*
    ident    := [attribute. | tag. | tags.] key        key: word, `back ticked` or "quoted"
    value    := 'string' | "string" | number | ( 'string' [, 'string']* )

Errors are ``InvalidInput`` (MLflow's INVALID_PARAMETER_VALUE) in MLflow's own words, so a client that
matches on them sees what it would see from an MLflow server. (MLflow prints its sets of valid
keys in hash order; ours are sorted, so the words match and the order is stable.)
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from modelreg.shared.errors import InvalidInput

MODEL_ATTRIBUTES = ("name",)
VERSION_ATTRIBUTES = ("name", "run_id", "source_path", "version_number")
NUMERIC = ("version_number", "creation_timestamp", "last_updated_timestamp")
STRING_COMPARATORS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
NUMERIC_COMPARATORS = ("=", "!=", "<", "<=", ">", ">=")
TAG_COMPARATORS = ("=", "!=", "LIKE", "ILIKE")
MODEL_ORDER_KEYS = ("creation_timestamp", "last_updated_timestamp", "name", "timestamp")
VERSION_ORDER_KEYS = ("creation_timestamp", "last_updated_timestamp", "name", "version_number")

MODELS_DEFAULT, MODELS_MAX = 100, 1000  # mlflow.store.model_registry constants
VERSIONS_DEFAULT, VERSIONS_MAX = 10_000, 200_000

Value = str | int | tuple[str, ...]


@dataclass(frozen=True)
class Clause:
    """One comparison: ``kind`` is attribute or tag; ``op`` upper-case (=, !=, LIKE, IN, NOT IN, <…)."""

    kind: str
    key: str
    op: str
    value: Value


@dataclass(frozen=True)
class Order:
    key: str  # name, version_number, creation_timestamp, last_updated_timestamp
    ascending: bool


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message)  # MLflow's INVALID_PARAMETER_VALUE (api/mlflow/errors.py)


def _set(keys: tuple[str, ...]) -> str:
    return "{" + ", ".join(repr(k) for k in sorted(keys)) + "}"


# -- tokens -----------------------------------------------------------------------------------

_SEGMENT = r"(?:`[^`]*`|\"[^\"]*\"|'[^']*'|[A-Za-z0-9_]+)"
_TOKENS = re.compile(rf"""
    (?P<space>\s+)
  | (?P<string>'[^']*(?:''[^']*)*'|"[^"]*(?:""[^"]*)*")
  | (?P<number>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)(?![A-Za-z_.])
  | (?P<op><=|>=|!=|<>|==|=|<|>|~)
  | (?P<open>\() | (?P<close>\)) | (?P<comma>,) | (?P<semi>;)
  | (?P<ident>(?:`[^`]*`|[A-Za-z_][A-Za-z0-9_]*)(?:\.{_SEGMENT})*)
""", re.VERBOSE)
_KEYWORDS = {"AND", "OR", "LIKE", "ILIKE", "IN", "NOT", "IS", "NULL"}


@dataclass(frozen=True)
class _Token:
    kind: str  # string number op open close comma semi ident keyword
    text: str


def _tokens(text: str) -> list[_Token]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKENS.match(text, pos)
        if m is None:
            raise _bad(f"Invalid clause(s) in filter string: {text[pos:pos + 100]}")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind == "space":
            continue
        if kind == "ident" and m.group().upper() in _KEYWORDS:
            out.append(_Token("keyword", m.group().upper()))
        else:
            out.append(_Token(kind, m.group()))
    return out


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"`":
        return text[1:-1]
    return text


# -- filters ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Grammar:
    attributes: tuple[str, ...]
    lists: tuple[str, ...]  # attributes compared with a list (IN, NOT IN)
    numbers: bool  # version_number takes numbers


_MODELS = _Grammar(MODEL_ATTRIBUTES, ("name",), numbers=False)
_VERSIONS = _Grammar(VERSION_ATTRIBUTES, ("name", "run_id"), numbers=True)


@dataclass(frozen=True)
class Filter:
    """A parsed filter: its comparisons, and whether it asks for prompts instead of models.

    MLflow keeps prompts in the registry as models tagged ``mlflow.prompt.is_prompt = 'true'``
    and its client adds ``tag.`mlflow.prompt.is_prompt` != 'true'`` to every model search; the
    server reads that tag as "prompts or not", never as a tag comparison (a model without the
    tag is not a prompt), and so does this.
    """

    clauses: list[Clause]
    prompts: bool = False


PROMPT_TAG = "mlflow.prompt.is_prompt"


def parse_model_filter(text: str | None) -> Filter:
    """``search_registered_models``' filter: ``name`` and ``tags.<key>``."""
    return _prompts([_check_model(c) for c in _parse(text, _MODELS)])


def parse_version_filter(text: str | None) -> Filter:
    """``search_model_versions``' filter: name, run_id, source_path, version_number, tags."""
    return _prompts([_check_version(c) for c in _parse(text, _VERSIONS)])


def _prompts(clauses: list[Clause]) -> Filter:
    prompts = False
    for c in clauses:
        if c.kind == "tag" and c.key == PROMPT_TAG and isinstance(c.value, str):
            prompts = (c.op == "=" and c.value.lower() == "true") or (c.op == "!=" and c.value.lower() == "false")
            break
    return Filter([c for c in clauses if not (c.kind == "tag" and c.key == PROMPT_TAG)], prompts)


def _parse(text: str | None, grammar: _Grammar) -> list[Clause]:
    if not text or not text.strip():
        return []
    tokens = _tokens(text)
    if any(t.kind == "keyword" and t.text == "OR" for t in tokens):
        raise _bad("Invalid clause(s) in filter string: OR")  # MLflow's words: only AND joins comparisons
    if any(t.kind == "semi" for t in tokens):
        if tokens[-1].kind != "semi" or sum(t.kind == "semi" for t in tokens) > 1:
            raise _bad(f"Search filter contained multiple expression {text!r}. Provide AND-ed expression list.")
        tokens = tokens[:-1]
    clauses: list[Clause] = []
    i = 0
    while i < len(tokens):
        if clauses:
            if tokens[i].kind == "keyword" and tokens[i].text == "AND":
                i += 1
            elif tokens[i].kind == "ident":
                pass  # MLflow reads "a = 'x' b = 'y'" as two AND-ed comparisons
            else:
                raise _bad(f"Invalid clause(s) in filter string: {_shown(tokens[i:])}")
        clause, i = _comparison(tokens, i, grammar)
        clauses.append(clause)
    return clauses


def _shown(tokens: list[_Token]) -> str:
    return ", ".join(t.text for t in tokens[:20])


def _comparison(tokens: list[_Token], i: int, grammar: _Grammar) -> tuple[Clause, int]:
    start = i
    if i >= len(tokens) or tokens[i].kind != "ident":
        raise _bad(f"Invalid clause(s) in filter string: {_shown(tokens[start:])}")
    ident = tokens[i].text
    i += 1
    op = None
    if i < len(tokens):
        t = tokens[i]
        if t.kind == "op":
            op = {"==": "=", "<>": "!="}.get(t.text, t.text)
        elif t.kind == "keyword" and t.text in ("LIKE", "ILIKE", "IN"):
            op = t.text
        elif t.kind == "keyword" and t.text == "NOT" and i + 1 < len(tokens) and tokens[i + 1].text == "IN":
            op, i = "NOT IN", i + 1
    if op is None or i + 1 >= len(tokens):
        raise _bad(f"Invalid clause(s) in filter string: {_shown(tokens[start:])}")
    i += 1
    value_token = tokens[i]
    if op in ("IN", "NOT IN"):
        if value_token.kind != "open":
            raise _bad(f"Invalid clause(s) in filter string: {_shown(tokens[start:])}")
        items, i = _list(tokens, i)
    else:
        items = None
        if value_token.kind in ("open", "keyword", "op", "comma", "close"):
            raise _bad(f"Invalid clause(s) in filter string: {_shown(tokens[start:])}")
        i += 1
    kind, key = _identifier(ident, grammar.attributes)
    return Clause(kind, key, op, _value(kind, key, value_token, items, grammar)), i


def _list(tokens: list[_Token], i: int) -> tuple[list[_Token], int]:
    """The tokens of ``( 'a', 'b' )`` starting at the open parenthesis; the index after it."""
    items: list[_Token] = []
    i += 1
    while i < len(tokens) and tokens[i].kind != "close":
        if tokens[i].kind != "comma":
            items.append(tokens[i])
        i += 1
    if i >= len(tokens):
        raise _bad("While parsing a list in the query, expected a non-empty list of string values, "
                   "but got ill-formed list.")
    return items, i + 1


def _identifier(text: str, attributes: tuple[str, ...]) -> tuple[str, str]:
    entity, dot, key = text.partition(".")
    if not dot:
        entity, key = "attribute", text
    elif entity not in ("attribute", "tag", "tags"):
        raise _bad(f"Invalid entity type '{entity}'. Valid entity types are ('attribute', 'tag', 'tags')")
    kind = "attribute" if entity == "attribute" else "tag"
    if kind == "attribute" and key not in attributes:
        raise _bad(f"Invalid attribute key '{key}' specified. Valid keys are '{_set(attributes)}'")
    return kind, _unquote(key)


def _value(kind: str, key: str, token: _Token, items: list[_Token] | None, grammar: _Grammar) -> Value:
    if kind == "tag":
        if items is not None or token.kind not in ("string", "ident"):
            raise _bad(f"Expected a quoted string value for tag (e.g. 'my-value'). Got value {token.text}")
        return _string(token)
    if items is not None:
        if key not in grammar.lists:
            raise _bad(f"Only {sorted(grammar.lists)} attributes support comparison with a list of quoted "
                       "string values.")
        if not items:
            raise _bad("While parsing a list in the query, expected a non-empty list of string values, "
                       "but got empty list")
        if any(t.kind != "string" for t in items):
            raise _bad("While parsing a list in the query, expected string value, punctuation, or whitespace, "
                       f"but got different type in list: {tuple(t.text for t in items)}")
        return tuple(_unquote(t.text) for t in items)
    if token.kind == "number":
        if not grammar.numbers:
            raise _bad("Expected a quoted string value or a list of quoted string values for attributes. "
                       f"Got value {token.text}")
        if key not in NUMERIC:
            raise _bad(f"Only the '{_set(NUMERIC)}' attributes support comparison with numeric values.")
        if re.fullmatch(r"[-+]?\d+", token.text):
            return int(token.text)
        raise _bad(f"Invalid value for numeric attribute '{key}': {float(token.text)!r}")
    return _string(token)


def _string(token: _Token) -> str:
    if token.kind != "string":
        raise _bad(f"Parameter value is either not quoted or unidentified quote types used for string value "
                   f"{token.text}. Use either single or double quotes.")
    return _unquote(token.text)


def _check_model(c: Clause) -> Clause:
    if c.kind == "tag":
        return _check_tag(c)
    if c.op not in STRING_COMPARATORS:
        raise _bad(f"Invalid comparator for attribute: {c.op}")
    return c


def _check_version(c: Clause) -> Clause:
    if c.kind == "tag":
        return _check_tag(c)
    if c.key == "version_number":
        if c.op not in NUMERIC_COMPARATORS:
            raise _bad(f"Invalid comparator for attribute {c.key}: {c.op}")
        try:
            return Clause(c.kind, c.key, c.op, int(c.value))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise _bad(f"Invalid value for numeric attribute '{c.key}': {c.value!r}") from None
    if c.op not in STRING_COMPARATORS or (c.op in ("IN", "NOT IN") and c.key not in ("run_id", "name")):
        raise _bad(f"Invalid comparator for attribute: {c.op}")
    return c


def _check_tag(c: Clause) -> Clause:
    if c.op not in TAG_COMPARATORS:
        raise _bad(f"Invalid comparator for tag: {c.op}")
    return c


# -- order_by -----------------------------------------------------------------------------------


def parse_model_order(order_by: list[Any]) -> list[Order]:
    """``order_by`` of a model search; ``name`` ascending comes last unless given (MLflow's natural order)."""
    orders = _orders(order_by, MODEL_ORDER_KEYS, "last_updated_timestamp")
    if not any(o.key == "name" for o in orders):
        orders.append(Order("name", True))
    return orders


def parse_version_order(order_by: list[Any]) -> list[Order]:
    """``order_by`` of a version search. None given: newest update first, then name, then the
    highest version (the client's documented default); otherwise name ascending and version
    descending fill in what the caller left out, as MLflow's store does."""
    if not order_by:
        return [Order("last_updated_timestamp", False), Order("name", True), Order("version_number", False)]
    orders = _orders(order_by, VERSION_ORDER_KEYS, None)
    if not any(o.key == "name" for o in orders):
        orders.append(Order("name", True))
    if not any(o.key == "version_number" for o in orders):
        orders.append(Order("version_number", False))
    return orders


def _orders(order_by: list[Any], valid: tuple[str, ...], timestamp: str | None) -> list[Order]:
    out: list[Order] = []
    for clause in order_by:
        if not isinstance(clause, str):
            raise _bad(f"Invalid order_by clause '{clause}'. Could not be parsed.")
        words = clause.replace("`", " ").split() if "`" in clause else clause.split()
        if not words or len(words) > 2 or "," in clause:
            raise _bad(f"Invalid order_by clause '{clause}'. Could not be parsed.")
        ascending = True
        if len(words) == 2:
            if words[1].lower() not in ("asc", "desc"):
                raise _bad(f"Invalid ordering key in order_by clause '{clause}'.")
            ascending = words[1].lower() == "asc"
        key = words[0]
        if key.startswith("attribute."):
            key = key[len("attribute."):]
        if key not in valid:
            raise _bad(f"Invalid order by key '{words[0]}' specified. Valid keys are "
                       f"'{_set(tuple(k for k in valid if k != 'timestamp'))}'")
        if key == "timestamp" and timestamp:
            key = timestamp
        if any(o.key == key for o in out):
            raise _bad(f"`order_by` contains duplicate fields: {order_by}")
        out.append(Order(key, ascending))
    return out


# -- pages --------------------------------------------------------------------------------------


def page_offset(token: Any) -> int:
    """The offset an MLflow page token carries (base64 of ``{"offset": N}``); 0 for none."""
    if not token:
        return 0
    if not isinstance(token, str) or len(token) > 200:
        raise _bad("Invalid page token, could not base64-decode")
    try:
        decoded = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        raise _bad("Invalid page token, could not base64-decode") from None
    try:
        parsed = json.loads(decoded)
    except ValueError:
        raise _bad(f"Invalid page token, decoded value={decoded!r}") from None
    offset = parsed.get("offset") if isinstance(parsed, dict) else None
    if not offset:
        raise _bad(f"Invalid page token, parsed value={parsed}")
    try:
        value = int(offset)
    except (TypeError, ValueError):
        raise _bad(f"Invalid page token, not stringable {offset}") from None
    if value < 0:
        raise _bad(f"Invalid page token, parsed value={parsed}")
    return value


def page_token(offset: int) -> str:
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def max_results(value: Any, default: int, maximum: int) -> int:
    """``max_results`` as MLflow's handler and store check it (a GET sends it as text)."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        value = str(value)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise _bad(f"Invalid value {json.dumps(value)} for parameter 'max_results' supplied. Hint: Value was of "
                   f"type '{type(value).__name__}'. See the API docs for more information about request "
                   "parameters.") from None
    if number > maximum:
        raise _bad(f"Invalid value for request parameter max_results. It must be at most {maximum}, "
                   f"but got value {number}")
    if number < 1:
        raise _bad(f"Invalid value for max_results. It must be a positive integer, but got {number}")
    return number
