"""`modelreg` with no command, and `modelreg tui`: the terminal UI."""

from __future__ import annotations

import click

from modelreg.shared.errors import ModelregError

from .context import Context, pass_ctx


def open_tui(ctx: Context) -> None:
    try:
        from modelreg.tui.app import run_app
    except ImportError:
        raise ModelregError("the TUI is not built yet; see `modelreg --help` for the commands") from None
    run_app(ctx.home, ctx.url)


@click.command()
@pass_ctx
def tui(ctx: Context) -> None:
    """Open the terminal UI (starts the daemon if none answers)."""
    open_tui(ctx)


COMMANDS = [tui]
