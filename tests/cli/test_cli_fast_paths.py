"""Start-up cost is part of the CLI (issue 8 item 7): what a pipeline runs loads no aiohttp,
textual or rich. Checked in a fresh interpreter running the real entry point; the time itself
is measured by benchmarks/bench_cli.py, never by a test."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from daemon_process import daemon_env

HEAVY = ("aiohttp", "textual", "rich", "asyncio", "platformdirs")


def modules_after(home: Path, *args: str) -> tuple[int, set[str]]:
    """Run `modelreg ARGS` in a fresh interpreter; the modules it had loaded when it exited."""
    dump = home.parent / "modules.txt"
    code = (
        "import atexit, sys\n"
        f"atexit.register(lambda: open({str(dump)!r}, 'w').write('\\n'.join(sorted(sys.modules))))\n"
        f"sys.argv = ['modelreg', *{list(args)!r}]\n"
        "from modelreg.tui.cli import main\n"
        "main()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=daemon_env(home), timeout=60)
    return r.returncode, set(dump.read_text().split())


def heavy(mods: set[str]) -> list[str]:
    return sorted(m for m in mods if m.split(".")[0] in HEAVY)


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["resolve", "--help"]])
def test_help_and_version_load_nothing_heavy(home, args):
    home.mkdir(parents=True)
    rc, mods = modules_after(home, *args)
    assert rc == 0
    assert "click" in mods  # the check itself works
    assert heavy(mods) == []


def test_resolve_loads_nothing_heavy(daemon, modelreg, tmp_path):
    model = tmp_path / "m.dat"
    model.write_bytes(b"x" * 1000)
    modelreg("register", str(model), "--name", "fast", check=True)
    modelreg("promote", "fast@1", check=True)
    rc, mods = modules_after(daemon.home, "resolve", "fast@production")
    assert rc == 0
    assert "modelreg.shared.sync_client" in mods  # it did talk to the daemon
    assert heavy(mods) == []
    assert not any(m.startswith("modelreg.tui.cli.") and m.endswith("_cmds") and m != "modelreg.tui.cli.registry_cmds"
                   for m in mods), "only the module of the command that runs is imported"


def test_command_index_names_the_module_of_each_command():
    main = importlib.import_module("modelreg.tui.cli.main")

    for name, module_name in main.COMMAND_MODULE.items():
        module = importlib.import_module(f"modelreg.tui.cli.{module_name}")
        assert name in {c.name for c in module.COMMANDS}, f"{name} is not in {module_name}"
        assert module_name in main.MODULES


def test_every_command_takes_json_and_the_global_options():
    import click

    from modelreg.tui.cli.main import cli

    ctx = click.Context(cli)

    def leaves(group: click.Group, prefix: str):
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if isinstance(command, click.Group):
                yield from leaves(command, f"{prefix}{name} ")
            else:
                yield f"{prefix}{name}", command

    found = list(leaves(cli, ""))
    assert len(found) > 30
    for name, command in found:
        opts = {o for p in command.params for o in getattr(p, "opts", [])}
        if name == "demo":  # its own throwaway home: --home would be ignored
            continue
        assert {"--json", "--home", "--url", "--no-autostart"} <= opts, name
