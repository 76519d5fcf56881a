"""The metric-filter grammar (``auc>=0.9``, ``loss < 0.2``), parsed in one place.

The daemon turns a parsed filter into a query; the TUI's version filter and the CLI's
``--metric`` accept exactly what the daemon accepts, because all three call ``parse_metric_filter``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidInput

METRIC_FILTER_RE = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_.:/-]*)\s*(>=|<=|==|!=|>|<|=)\s*(-?[0-9.eE+-]+)$")
# What each operator means in SQL terms ("==" is "=").
METRIC_OPS = {">=": ">=", "<=": "<=", "==": "=", "=": "=", "!=": "!=", ">": ">", "<": "<"}


@dataclass(frozen=True)
class MetricFilter:
    key: str
    op: str  # one of >=, <=, =, !=, >, < ("==" is normalised to "=")
    value: float

    def __str__(self) -> str:
        return f"{self.key}{self.op}{self.value:g}"


def parse_metric_filter(text: object) -> MetricFilter:
    """``auc>=0.9`` → MetricFilter('auc', '>=', 0.9); anything else raises InvalidInput."""
    m = METRIC_FILTER_RE.match(text.strip()) if isinstance(text, str) else None
    if not m:
        raise InvalidInput(f"invalid metric filter {str(text)[:100]!r}: e.g. auc>=0.9 or loss<0.2")
    key, op, raw = m.groups()
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"invalid number in metric filter {text!r}") from None
    return MetricFilter(key, METRIC_OPS[op], value)
