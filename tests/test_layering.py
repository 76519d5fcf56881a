"""PRODUCT.md §2 layering: shared ← daemon, shared ← tui; the daemon never loads textual and
the CLI/TUI never load the daemon. Checked in a fresh interpreter, not by reading code."""

from __future__ import annotations

import ast
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
