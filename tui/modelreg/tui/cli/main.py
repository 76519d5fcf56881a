"""The command group, global options, and the one place errors become exit codes.

Exit codes (PRODUCT.md §8): 0 ok, 1 error, 2 usage, 3 gate failed, 4 not found,
5 daemon unreachable, 6 not permitted (the token's scope), 7 waiting for approval; 130 after Ctrl-C.

Start-up time is part of the interface (a pipeline runs `modelreg resolve` per step): a
command module is imported only when one of its commands runs, and the modules import
rich, asyncio, aiohttp or textual only inside the functions that need them
(tests/cli/test_fast_paths.py checks it; benchmarks/bench_cli.py measures it).
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from modelreg.shared.errors import ModelregError

from .context import Context, add_global_options, ca_file_param, json_param, make_context, token_file_param

# Every command module; each has a COMMANDS list. Loaded all at once only to list them (--help).
MODULES = ("daemon_cmds", "register_cmds", "registry_cmds", "lifecycle_cmds", "lineage_cmds", "watch_cmds",
           "card_cmds", "catalog_cmds", "tui_cmds", "import_cmds", "backup_cmds",
           "token_cmds", "approval_cmds", "signing_cmds", "watchdog_cmds", "service_cmds", "logs_cmd",
           "migrate_cmds")

# Where a command lives, so running it imports only its module. A command missing here still
# works (every module is loaded to find it), only slower; the fast-path test checks the entries.
COMMAND_MODULE = {
    "daemon": "daemon_cmds", "status": "daemon_cmds", "events": "daemon_cmds", "verify": "daemon_cmds",
    "register": "register_cmds",
    "models": "registry_cmds", "versions": "registry_cmds", "show": "registry_cmds", "metric": "registry_cmds",
    "resolve": "registry_cmds", "export": "registry_cmds",
    "check": "lifecycle_cmds", "promote": "lifecycle_cmds", "archive": "lifecycle_cmds", "rollback": "lifecycle_cmds",
    "history": "lifecycle_cmds", "alias": "lifecycle_cmds", "gate": "lifecycle_cmds", "hook": "lifecycle_cmds",
    "audit": "lifecycle_cmds", "gc": "lifecycle_cmds",
    "lineage": "lineage_cmds", "watch": "watch_cmds", "card": "card_cmds", "tui": "tui_cmds", "demo": "tui_cmds",
    "compare": "catalog_cmds", "search": "catalog_cmds", "update": "catalog_cmds", "rename": "catalog_cmds",
    "delete": "catalog_cmds",
    "import": "import_cmds",
    "backup": "backup_cmds", "restore": "backup_cmds", "doctor": "backup_cmds",
    "token": "token_cmds",  # governance (issue 12)
    "requests": "approval_cmds", "approve": "approval_cmds", "reject": "approval_cmds",
    "trust": "signing_cmds", "sign": "signing_cmds",
    "watchdog": "watchdog_cmds",
    "service": "service_cmds", "logs": "logs_cmd",  # running as a service (issue 15)
    "migrate": "migrate_cmds",  # to the team backends (issue 13)
}


class Group(click.Group):
    """Loads command modules on demand and turns ModelregError into its exit code."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._loaded: set[str] = set()

    def _load(self, module_name: str) -> None:
        if module_name in self._loaded:
            return
        self._loaded.add(module_name)
        module = importlib.import_module(f"{__package__}.{module_name}")
        for command in module.COMMANDS:
            self.add_command(add_global_options(command))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            if cmd_name in COMMAND_MODULE:
                self._load(COMMAND_MODULE[cmd_name])
            if cmd_name not in self.commands:
                for name in MODULES:
                    self._load(name)
        return self.commands.get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        for name in MODULES:
            self._load(name)
        return sorted(self.commands)

    def invoke(self, ctx: click.Context):  # noqa: D401 - click API
        try:
            return super().invoke(ctx)
        except ModelregError as exc:
            obj = ctx.find_object(Context)
            report_error(exc, as_json=obj is not None and obj.as_json)
            ctx.exit(exc.exit_code)


def report_error(exc: ModelregError, *, as_json: bool) -> None:
    from .render import Span, emit_json, err

    if as_json:
        emit_json(exc.envelope())
    else:
        err.line(Span("error:", "bold red"), " ", exc.message)


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import version

    click.echo(f"modelreg {version('modelreg')}")
    ctx.exit()


@click.group(cls=Group, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", envvar="MODELREG_HOME", type=click.Path(file_okay=False),
              help="Registry home (env MODELREG_HOME); also accepted after the command.")
@click.option("--url", envvar="MODELREG_URL", help="Daemon URL (env MODELREG_URL); default: the home's daemon.")
@click.option("--no-autostart", is_flag=True,
              help="Never start a daemon: fail with exit 5 instead (env MODELREG_NO_AUTOSTART=1; for CI).")
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_show_version,
              help="Show the version and exit.")
@click.pass_context
def cli(ctx: click.Context, home: str | None, url: str | None, no_autostart: bool) -> None:
    """modelreg: a local-first model registry. Without a command, opens the TUI.

    --home, --url, --json and --no-autostart go before or after the command.
    Exit codes: 0 ok, 1 error, 2 usage, 3 gate failed, 4 not found, 5 daemon unreachable.
    """
    obj = ctx.ensure_object(Context)
    if obj.home_option is None and home:
        obj.set_home(home)
    obj.url = obj.url or url
    obj.no_autostart = obj.no_autostart or no_autostart
    ctx.call_on_close(obj.close)
    if ctx.invoked_subcommand is None:
        from .tui_cmds import open_tui

        open_tui(obj)


cli.params += [json_param(), token_file_param(), ca_file_param()]


def main(args: list[str] | None = None) -> None:
    args = sys.argv[1:] if args is None else args
    try:
        rv = cli.main(args, prog_name="modelreg", standalone_mode=False, obj=make_context(None, None))
    except click.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):
            sys.exit(130)
        click.echo("aborted", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except click.ClickException as exc:
        if "--json" in args:
            from .render import emit_json

            emit_json({"error": {"code": "usage" if exc.exit_code == 2 else "error", "message": exc.format_message(),
                                 "details": {}}})
        else:
            exc.show()
        sys.exit(exc.exit_code)
    except ModelregError as exc:  # raised outside a command (e.g. while closing its client)
        report_error(exc, as_json="--json" in args)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        # The reader went away (`modelreg events | head`): stop quietly, and keep Python's
        # final flush of stdout from complaining about the same closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    sys.exit(rv if type(rv) is int else 0)
