"""watch add|list|rm: drop folders the daemon registers models from."""

from __future__ import annotations

from pathlib import Path

import click

from .context import Context, json_option, pass_ctx
from .render import emit_json, out, table


@click.group()
def watch() -> None:
    """Drop folders: each file or folder written into one becomes a new version."""


@watch.command("add")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--model", default=None, help="Model name for drops without a sidecar name (default: the drop's stem).")
@click.option("--mode", type=click.Choice(["move", "copy"]), default="move", show_default=True,
              help="move: the drop leaves the folder once registered (no copy on the same filesystem); copy: it stays.")
@click.option("--settle", type=click.FloatRange(0, 3600), default=3.0, show_default=True,
              help="Seconds without any change before a drop counts as finished (without _SUCCESS or a rename).")
@click.option("--poll/--no-poll", default=None, help="Poll instead of OS events (default: poll on NFS/SMB/9p…).")
@click.option("--include", "include", multiple=True, metavar="GLOB",
              help="Take only entries whose name matches (repeatable); they skip the default ignore list.")
@click.option("--exclude", "exclude", multiple=True, metavar="GLOB",
              help="Never take entries whose name matches (repeatable). Text, logs, spreadsheets and images "
                   "are ignored by default.")
@json_option
@pass_ctx
def watch_add(ctx: Context, folder: Path, model: str | None, mode: str, settle: float, poll: bool | None,
              include: tuple[str, ...], exclude: tuple[str, ...]) -> None:
    """Watch FOLDER (created if missing)."""
    w = ctx.client().add_watch(folder, model=model, mode=mode, settle=settle, poll=poll,
                               include=list(include) or None, exclude=list(exclude) or None)
    if ctx.as_json:
        return emit_json(w)
    out.line(f"watching {w['path']} ({w['mode']} mode, settle {w['settle']:g}s{', polling' if w['poll'] else ''}"
             f"{_globs(w)})")


def _globs(w: dict) -> str:
    return "".join(f", {what} {' '.join(w.get(what) or [])}" for what in ("include", "exclude") if w.get(what))


@watch.command("list")
@json_option
@pass_ctx
def watch_list(ctx: Context) -> None:
    """Watched folders and what they have taken."""
    items = ctx.client().watches()
    if ctx.as_json:
        return emit_json(items)
    if not items:
        out.line("no watched folders: `modelreg watch add DIR`")
        return
    t = table("id", "folder", "model", "mode", "settle", "filter", "state", "drops")
    for w in items:
        drops = ", ".join(f"{n} {s}" for s, n in sorted(w["drops"].items())) or "-"
        t.add_row(str(w["id"]), w["path"], w["model"] or "(stem)", w["mode"], f"{w['settle']:g}s",
                  _globs(w).removeprefix(", ") or "(default)",
                  _state(w) + (" · polling" if w["poll"] else ""), drops)
    out.table(t)


def _state(w: dict) -> str:
    """Running on this daemon, on another one of the registry (its lease), or nowhere."""
    if w["active"]:
        return "watching"
    return f"on {w['owner']}" if w.get("owner") else "stopped"


@watch.command("rm")
@click.argument("folder")
@json_option
@pass_ctx
def watch_rm(ctx: Context, folder: str) -> None:
    """Stop watching FOLDER (or watch id); nothing in it is touched."""
    w = ctx.client().remove_watch(folder)
    if ctx.as_json:
        return emit_json(w)
    out.line(f"no longer watching {w['path']}")


COMMANDS = [watch]
