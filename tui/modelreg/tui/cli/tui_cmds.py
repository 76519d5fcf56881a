"""`modelreg` with no command, `modelreg tui`, and `modelreg demo`: the terminal UI."""

from __future__ import annotations

from pathlib import Path

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


@click.command()
@click.option("--keep", is_flag=True, help="Keep the demo registry after the TUI closes (its path is printed).")
@click.option("--into", "into", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Build the demo registry in this (empty or new) folder instead of a temporary one; kept.")
@click.option("--no-tui", is_flag=True, help="Only build the registry and leave its daemon running.")
@click.option("--screenshots", type=click.Path(file_okay=False, path_type=Path), default=None, hidden=True,
              help="Save SVG screenshots of the main screens into this folder instead of opening the TUI.")
def demo(keep: bool, into: Path | None, no_tui: bool, screenshots: Path | None) -> None:
    """A throwaway registry full of realistic models, with the TUI on it.

    Starts a private daemon on a free port in a temporary home (never your own registry),
    fills it through the API — five models, dozens of versions in every stage, metrics
    with history, lineage, gates (one failing), a rollback — and watches a drop folder
    inside it. Quitting the TUI stops that daemon and deletes the home unless --keep.
    """
    from modelreg.tui.demo import run_demo

    if into is not None and into.exists() and any(into.iterdir()):
        raise ModelregError(f"{into} is not empty; the demo builds a fresh registry")
    home = run_demo(into.absolute() if into else None, keep=keep, open_tui=not no_tui,
                    log=lambda text: click.echo(text, err=True),
                    screenshots=screenshots.absolute() if screenshots else None)
    if no_tui:
        click.echo(f"demo registry ready: MODELREG_HOME={home} (its daemon keeps running; "
                   f"stop it with `MODELREG_HOME={home} modelreg daemon --stop`)")


# The demo builds its own throwaway home and daemon: --home/--url would be ignored, so it has none.
demo.modelreg_global_options = False  # type: ignore[attr-defined]

COMMANDS = [tui, demo]
