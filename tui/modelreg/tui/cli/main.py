"""The command group, global options, and the one place errors become exit codes.

Exit codes (PRODUCT.md §8): 0 ok, 1 error, 2 usage, 3 gate failed, 4 not found,
5 daemon unreachable.
"""

from __future__ import annotations

import sys

import click

from modelreg.shared.errors import ModelregError

from . import daemon_cmds, lifecycle_cmds, lineage_cmds, register_cmds, registry_cmds, watch_cmds
from .context import Context, make_context
from .render import emit_json, err


class Group(click.Group):
    def invoke(self, ctx: click.Context):  # noqa: D401 - click API
        try:
            return super().invoke(ctx)
        except ModelregError as exc:
            obj = ctx.find_object(Context)
            if obj is not None and obj.as_json:
                emit_json(exc.envelope())
            else:
                err.print(f"[bold red]error:[/] {exc.message}", markup=True, highlight=False, soft_wrap=True)
            ctx.exit(exc.exit_code)


@click.group(cls=Group, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", envvar="MODELREG_HOME", type=click.Path(file_okay=False), help="Registry home (env MODELREG_HOME).")
@click.option("--url", envvar="MODELREG_URL", help="Daemon URL (env MODELREG_URL); default: the home's daemon.")
@click.version_option(package_name="modelreg")
@click.pass_context
def cli(ctx: click.Context, home: str | None, url: str | None) -> None:
    """modelreg: a local-first model registry. Without a command, opens the TUI."""
    ctx.obj = make_context(home, url)
    ctx.call_on_close(ctx.obj.close)
    if ctx.invoked_subcommand is None:
        from .tui_cmds import open_tui

        open_tui(ctx.obj)


for module in (daemon_cmds, register_cmds, registry_cmds, lifecycle_cmds, lineage_cmds, watch_cmds):
    for command in module.COMMANDS:
        cli.add_command(command)

try:
    from . import tui_cmds

    for command in tui_cmds.COMMANDS:
        cli.add_command(command)
except ImportError:  # pragma: no cover - the TUI ships in the same distribution
    pass


def main() -> None:
    try:
        cli.main(prog_name="modelreg", standalone_mode=True)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
