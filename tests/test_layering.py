"""PRODUCT.md §2 layering: shared ← daemon, shared ← tui; the daemon never loads textual and
the CLI/TUI never load the daemon. Checked in a fresh interpreter, not by reading code."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def loaded_after(imports: str) -> set[str]:
    code = f"import sys\n{imports}\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_daemon_never_loads_textual():
    mods = loaded_after("import modelreg.daemon.app, modelreg.daemon.__main__")
    assert "aiohttp" in mods  # the check itself works
    assert not any(m == "textual" or m.startswith("textual.") for m in mods)
    assert not any(m.startswith("modelreg.tui") for m in mods)


def test_cli_never_loads_the_daemon():
    mods = loaded_after("import modelreg.tui.cli.main")
    assert "click" in mods
    assert not any(m.startswith("modelreg.daemon") for m in mods)


def test_shared_loads_neither():
    mods = loaded_after("import modelreg.shared.client, modelreg.shared.sync_client, modelreg.shared.launcher")
    assert not any(m.startswith(("modelreg.daemon", "modelreg.tui", "textual")) for m in mods)


@pytest.mark.parametrize("package, forbidden", [
    ("shared/modelreg/shared", ("modelreg.daemon", "modelreg.tui", "textual")),
    ("daemon/modelreg/daemon", ("modelreg.tui", "textual")),
    ("tui/modelreg/tui", ("modelreg.daemon",)),
])
def test_no_forbidden_import_statements(package, forbidden):
    """Also catches imports hidden inside functions, which the runtime check cannot see."""
    offenders = []
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.startswith(forbidden)]
    assert offenders == []


# -- issue 9: the daemon's own layers ------------------------------------------------------------

DAEMON = ROOT / "daemon/modelreg/daemon"
DRIVERS = ("sqlite3", "aiosqlite", "asyncpg", "psycopg")
_SQL = re.compile(r"\b(SELECT\b.+\bFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+"
                  r"(TABLE|INDEX|TRIGGER)|PRAGMA\s+\w+|BEGIN\s+IMMEDIATE|SAVEPOINT)\b", re.IGNORECASE | re.DOTALL)


def _imports(path: Path) -> list[str]:
    """Every module a file imports, relative imports made absolute."""
    package = ".".join(path.relative_to(ROOT / "daemon").with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
                out += [module] if node.module else [f"{module}.{a.name}" for a in node.names]
            else:
                out.append(node.module or "")
    return out


def _daemon_files(under: str = "") -> list[Path]:
    return sorted((DAEMON / under).rglob("*.py"))


def _strings(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append((node.lineno, node.value))
        elif isinstance(node, ast.JoinedStr):  # an f-string: its literal parts, joined
            out.append((node.lineno, "".join(v.value for v in node.values
                                             if isinstance(v, ast.Constant) and isinstance(v.value, str))))
    return out


def test_sql_appears_only_in_the_store():
    offenders = []
    for path in _daemon_files():
        if path.is_relative_to(DAEMON / "store"):
            continue
        for line, text in _strings(path):
            if _SQL.search(text):
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {text[:60]!r}")
    assert offenders == []


def test_the_sql_check_finds_sql():
    """The check above would see a query written outside the store."""
    assert _SQL.search("SELECT v.* FROM versions v") and _SQL.search("INSERT OR REPLACE INTO meta VALUES (?)")
    assert _SQL.search("UPDATE versions SET stage = ?") and not _SQL.search("select a model to promote")


def test_only_the_store_imports_a_database_driver():
    offenders = [f"{p.relative_to(ROOT)}: {m}" for p in _daemon_files() if not p.is_relative_to(DAEMON / "store")
                 for m in _imports(p) if m.split(".")[0] in DRIVERS]
    assert offenders == []


BACKENDS = ("modelreg.daemon.store.sqlite", "modelreg.daemon.store.postgres", "modelreg.daemon.store.sql")


@pytest.mark.parametrize("layer, forbidden", [
    # api → services → store: never upward.
    ("store", ("modelreg.daemon.api", "modelreg.daemon.services", "modelreg.daemon.ingest", "aiohttp")),
    # Above the store only its interface (``store``, ``store.records``): never a backend's insides.
    ("services", ("modelreg.daemon.api", *BACKENDS, "aiohttp.web")),
    ("api", BACKENDS),
    ("ingest", ("modelreg.daemon.api", *BACKENDS)),
    ("artifacts", ("modelreg.daemon.api", "modelreg.daemon.services", "modelreg.daemon.store", "aiohttp")),
])
def test_layers_import_one_way(layer, forbidden):
    offenders = [f"{p.relative_to(ROOT)}: {m}" for p in _daemon_files(layer)
                 for m in _imports(p) if m.startswith(forbidden)]
    assert offenders == []
