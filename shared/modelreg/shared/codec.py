"""Wire codec: msgpack by default, JSON on request, both bounded.

Bodies are untrusted (PRODUCT.md §10): size is capped by the caller, nesting depth and
container lengths here. msgpack keeps floats and ints exact; bytes never appear in our
payloads, so both encodings carry the same values.
"""

from __future__ import annotations

import json
from typing import Any

import msgpack

from .errors import InvalidInput

MSGPACK = "application/msgpack"
JSON = "application/json"
MAX_DEPTH = 32
_MAX_LEN = 1_000_000


def wants_json(accept: str | None) -> bool:
    """Pick JSON only when asked for it and msgpack is not preferred."""
    if not accept:
        return False
    accept = accept.lower()
    return "application/json" in accept and "msgpack" not in accept.split("application/json")[0]


def encode(value: Any, as_json: bool) -> bytes:
    if as_json:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode()
    return msgpack.packb(value, use_bin_type=True, default=str)


def decode(data: bytes, content_type: str | None) -> Any:
    """Decode a request or response body; JSON when the content type says so."""
    if not data:
        return None
    ctype = (content_type or "").lower()
    try:
        if "json" in ctype:
            value = json.loads(data)
        else:
            value = msgpack.unpackb(
                data,
                raw=False,
                strict_map_key=True,
                max_str_len=_MAX_LEN * 16,
                max_bin_len=_MAX_LEN * 16,
                max_array_len=_MAX_LEN,
                max_map_len=_MAX_LEN,
                max_ext_len=0,
            )
    except RecursionError:
        raise InvalidInput("body is nested too deeply") from None
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        kind = "JSON" if "json" in ctype else "msgpack"
        raise InvalidInput(f"malformed {kind} body: {exc}") from None
    _check_depth(value)
    return value


def _check_depth(value: Any) -> None:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidInput(f"body is nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
