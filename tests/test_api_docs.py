"""docs/api.md and the daemon's routes stay in step.

Every route the app registers (method + canonical path; HEAD is implied by GET) must have an
endpoint heading such as ``### GET /v1/models/{name}`` in docs/api.md, and every endpoint
heading there must name a route that exists. Adding a route without documenting it, or
removing one and leaving its section behind, fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelreg.daemon.app import create_app
from modelreg.daemon.config import DaemonConfig

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")
# An endpoint heading: "### METHOD /path", nothing else on the line.
HEADING = re.compile(rf"^###\s+({'|'.join(METHODS)})\s+(/\S*)\s*$", re.MULTILINE)


def app_routes(home: Path) -> set[tuple[str, str]]:
    app = create_app(DaemonConfig(home=home))
    routes = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        # canonical drops regex parts: "{path:.+}" is documented as "{path}"
        routes.add((route.method, route.resource.canonical))
    return routes


def documented_endpoints() -> list[tuple[str, str]]:
    return [(m, p) for m, p in HEADING.findall(DOC.read_text(encoding="utf-8"))]


def endpoint_sections() -> dict[tuple[str, str], str]:
    """Each endpoint heading's section text, up to the next heading of level 1-3."""
    text = DOC.read_text(encoding="utf-8")
    heads = list(re.finditer(r"^#{1,3}\s.*$", text, re.MULTILINE))
    sections = {}
    for i, head in enumerate(heads):
        m = HEADING.match(head.group(0))
        if m:
            end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
            sections[(m.group(1), m.group(2))] = text[head.end():end]
    return sections


@pytest.fixture
def routes(tmp_path: Path) -> set[tuple[str, str]]:
    found = app_routes(tmp_path / "home")
    assert found, "the app registered no routes"
    return found


def test_every_route_is_documented(routes: set[tuple[str, str]]) -> None:
    documented = set(documented_endpoints())
    missing = sorted(routes - documented)
    assert not missing, "routes without a '### METHOD /path' heading in docs/api.md: " + ", ".join(
        f"{m} {p}" for m, p in missing)


def test_every_documented_endpoint_exists(routes: set[tuple[str, str]]) -> None:
    extra = sorted(set(documented_endpoints()) - routes)
    assert not extra, "docs/api.md documents endpoints the app does not serve: " + ", ".join(
        f"{m} {p}" for m, p in extra)


def test_each_endpoint_is_documented_once() -> None:
    headings = documented_endpoints()
    dupes = sorted({h for h in headings if headings.count(h) > 1})
    assert not dupes, f"endpoints with more than one heading: {dupes}"


def test_each_endpoint_has_a_curl_example(routes: set[tuple[str, str]]) -> None:
    sections = endpoint_sections()
    without = sorted(key for key in routes if "curl " not in sections.get(key, ""))
    assert not without, f"endpoint sections without a curl example: {without}"
