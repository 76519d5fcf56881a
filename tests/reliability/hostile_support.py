"""Shared pieces of the generated hostile-input tests (issue 11, acceptance 2).

The hypothesis budget is fixed: every test here runs ``budget(n)`` examples with no deadline
(a loaded CI machine is slow, a hang is caught by the HTTP client's timeout instead), and under
``CI=true`` the examples are derandomized, so a CI failure replays exactly by running the test
again. Outside CI the seed is random: a failure prints the ``@reproduce_failure`` blob, and
``--hypothesis-seed=N`` fixes the seed. ``MODELREG_HOSTILE_SCALE`` multiplies the budget for a
deeper local run.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgpack
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import team_backend
from waiting import wait_until as wait_for  # noqa: F401 (the tests here import it from this module)

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SCALE = float(os.environ.get("MODELREG_HOSTILE_SCALE", "1"))

HOSTILE = settings(
    deadline=None,
    derandomize=CI,
    database=None,  # no .hypothesis/ in the shared checkout; the printed blob replays a failure
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                           HealthCheck.function_scoped_fixture],
)
settings.register_profile("modelreg-hostile", HOSTILE)


def budget(examples: int) -> settings:
    """The fixed budget of one property test: ``examples`` examples (times MODELREG_HOSTILE_SCALE)."""
    return settings(HOSTILE, max_examples=max(1, int(examples * SCALE)))


@pytest.fixture(scope="module", autouse=True)
def seed_note(request: pytest.FixtureRequest) -> None:
    """Say once per module how to replay what hypothesis generated (printed past the capture)."""
    seed = request.config.getoption("hypothesis_seed", None)
    how = ("derandomized (CI=true): a rerun generates the same examples" if CI else
           f"seed {seed}" if seed is not None else
           "random seed: replay a failure with the printed @reproduce_failure blob or --hypothesis-seed=N")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"{request.module.__name__}: hypothesis {how}, budget x{SCALE:g}")


# -- generated text ---------------------------------------------------------------------------------

# Strings that have broken parsers before: traversal, NUL, lone surrogates, reserved words, numbers
# past what SQLite or a float holds, digits that are not ASCII, markup and escapes.
SPICY = [
    "", " ", ".", "..", "../x", "../../etc/passwd", "/etc/passwd", "a/../../b", "a//b", "a\\b", "C:\\x",
    "a\x00b", "\x00", "\ud800", "\udfff", "é", "\u202e", "\u0663", "²", "🙂", "\n", "\r\n", "\t",
    "x" * 129, "x" * 5000, "9" * 30, "-1", "0", "1", "-0", "1e309", "NaN", "inf", "-inf", "true", "null",
    "%00", "%ff", "%2e%2e", "${jndi:x}", "' OR 1=1 --", "*", "?", "#", "@", "fraud@", "@1", "fraud@-1",
    "fraud@0", "fraud@archived", "production", "staging", "latest", "none", "archived", "v0", "v1",
    "9223372036854775808", "2026-13-45", "auc>=", "auc>=nan", "runs:/", "models:/x/1", "s3://",
    "mlflow-artifacts:/", "file:///etc/passwd",
]


def hostile_text(max_size: int = 40) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(SPICY), st.text(max_size=max_size),
                     st.text(alphabet=st.characters(codec="ascii"), max_size=max_size))


def scalars(names: list[str]) -> st.SearchStrategy[Any]:
    """Leaves of a body: every JSON type, and the values the registry already holds."""
    return st.one_of(
        st.none(), st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from([0, 1, -1, 2**63, 2**63 - 1, 2**64]),
        st.floats(allow_nan=True, allow_infinity=True),
        hostile_text(), st.sampled_from(names),
    )


def values(names: list[str], keys: list[str]) -> st.SearchStrategy[Any]:
    key = st.one_of(st.sampled_from(keys), hostile_text(12))
    return st.recursive(scalars(names), lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(key, inner, max_size=4)), max_leaves=12)


def nested(depth: int, leaf: Any = 1) -> Any:
    """A list/dict ``depth`` levels deep (the codec refuses more than 32)."""
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


# -- HTTP without a client library in between ---------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def decoded(self) -> Any:
        ctype = self.headers.get("content-type", "")
        if not self.body:
            return None
        if "json" in ctype:
            return json.loads(self.body)
        return msgpack.unpackb(self.body, raw=False, strict_map_key=False)


class Wire:
    """Raw HTTP/1.1 to the daemon: any method, any (percent-encoded) target, any bytes.

    ``timeout`` is the hang detector: a request that does not answer in time fails the test.
    """

    def __init__(self, url: str, token: str, timeout: float = 60.0) -> None:
        host, _, port = url.removeprefix("http://").rstrip("/").partition(":")
        self.host, self.port, self.token, self.timeout = host, int(port), token, timeout
        self.conn: http.client.HTTPConnection | None = None

    def send(self, method: str, target: str, body: bytes = b"", headers: dict[str, str | bytes] | None = None,
             auth: bool = True) -> Reply:
        hdrs: dict[str, str | bytes] = {"Accept": "application/json"}
        if auth:
            hdrs["Authorization"] = f"Bearer {self.token}"
        hdrs.update(headers or {})
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.putrequest(method, target, skip_accept_encoding=True)
                for k, v in hdrs.items():
                    self.conn.putheader(k, v)
                self.conn.putheader("Content-Length", str(len(body)))
                self.conn.endheaders(body)
                resp = self.conn.getresponse()
                data = resp.read()
                reply = Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
                if resp.will_close:
                    self.close()
                return reply
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                # A keep-alive connection the server closed between requests: once more on a new one.
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, target: str, value: Any = None) -> Reply:
        data = b"" if value is None else json.dumps(value).encode()
        return self.send(method, target, data, {"Content-Type": "application/json"})

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def segment(text: str, slashes: bool = False) -> str:
    """A path segment as a client would send it: every byte percent-encoded (``/`` kept for
    ``{path}`` parameters when ``slashes``)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="/" if slashes else "")


# -- the registry's state, to prove a refusal changed nothing ------------------------------------------

# Files that change without any request: the database (seen through data_version), logs, the lock.
_VOLATILE = re.compile(r"^(registry\.db.*|.*\.log|daemon\.json|token|.*lock.*)$")


# Rows every team daemon renews every few seconds, whatever the requests: its liveness and its
# drop-folder watch leases (store/sql/leases.py).
_LIVENESS = ("daemons", "watch_leases")


class StateProbe:
    """A cheap digest of everything a request could change: the database's state and the files
    under the home. SQLite: ``data_version`` (it moves on every commit by another connection,
    whatever the table); PostgreSQL, which has no such counter: a hash of every table's rows."""

    def __init__(self, home: Path) -> None:
        self.home = home
        if team_backend.team():
            self.db = team_backend.connect(home)
            tables = [t for (t,) in self.db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                                   "ORDER BY tablename").fetchall() if t not in _LIVENESS]
            rows = " UNION ALL ".join(f"SELECT '{t}' AS t, md5(coalesce(string_agg(r::text, '|' ORDER BY r::text), "
                                      f"'')) AS h FROM \"{t}\" r" for t in tables)
            self.state_sql = f"SELECT md5(string_agg(t || h, '' ORDER BY t)) FROM ({rows}) AS per_table"
        else:
            self.db = sqlite3.connect(f"file:{home / 'registry.db'}?mode=ro", uri=True, check_same_thread=False)
            self.state_sql = "PRAGMA data_version"

    def digest(self) -> tuple[int | str, frozenset[tuple[str, int]]]:
        version = self.db.execute(self.state_sql).fetchone()[0]
        files = set()
        for dirpath, _dirs, names in os.walk(self.home):
            for name in names:
                path = Path(dirpath, name)
                rel = path.relative_to(self.home).as_posix()
                if "/" not in rel and _VOLATILE.match(rel):
                    continue
                try:
                    files.add((rel, path.lstat().st_size))
                except FileNotFoundError:
                    continue
        return version, frozenset(files)

    def close(self) -> None:
        self.db.close()


def no_traceback(reply: Reply) -> None:
    assert b"Traceback" not in reply.body and b'File "/' not in reply.body, reply.body[:2000]
