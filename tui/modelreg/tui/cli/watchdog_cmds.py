"""watchdog add|list|rm: rules on a model's production monitoring metrics that can roll it back."""

from __future__ import annotations

import click

from .context import Context, json_option, pass_ctx
from .render import Span, emit_json, out, table, when

STATE_STYLE = {"ok": "green", "tripped": "bold red", "cooling down": "yellow", "no production": "dim"}


def _seconds(s: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size and s % size == 0:
            return f"{s / size:g}{unit}"
    return f"{s:g}s"


def _values(values: list) -> str:
    return ", ".join(f"{v:g}" for v in values)


def trip_text(t: dict) -> str:
    """One trip in words: when, which version, and what became of the rollback."""
    head = f"v{t['version']} tripped it {when(t['at'])} (observed {_values(t['observed'])})"
    if t.get("running"):
        return f"{head}, rolling back"
    return f"{head}, rolled back to v{t['to']}" if t["rolled_back"] else f"{head}: {t['why']}"


def state_text(w: dict) -> str:
    """The state on the production version, with what it rests on."""
    state = w["state"]
    if state == "no production":
        return "no production version"
    if state == "tripped":
        return trip_text(w["trip"])
    last = f"last {_values(w['values'])}" if w["values"] else "no monitoring records yet"
    if state == "cooling down":
        return f"v{w['production']}: {last}; no rollback before {when(w['cooldown_until'])}"
    return f"v{w['production']}: {last}"


@click.group()
def watchdog() -> None:
    """Watchdogs: rules on the production version's monitoring metrics that raise watchdog.fired
    and, with --rollback, roll production back."""


@watchdog.command("add")
@click.argument("name")
@click.argument("rule")
@click.option("--rollback", is_flag=True, help="Roll production back when it fires (to the latest former production "
                                               "version that has not tripped it).")
@click.option("--cooldown", default="1h", show_default=True, metavar="DURATION",
              help="At most one automatic rollback per this long (30s, 15m, 1h, 2d).")
@json_option
@pass_ctx
def watchdog_add(ctx: Context, name: str, rule: str, rollback: bool, cooldown: str) -> None:
    """Watch NAME's production version: RULE like 'monitoring:auc < 0.85 for 3 records'."""
    w = ctx.client().add_watchdog(name, rule, rollback=rollback, cooldown=cooldown)
    if ctx.as_json:
        return emit_json(w)
    then = (f"rolls {w['model']} back (at most once per {_seconds(w['cooldown'])})" if w["rollback"]
            else "raises watchdog.fired (no rollback)")
    out.line(f"watchdog {w['id']} on {w['model']}: {w['rule']}; when it fires it {then}")


@watchdog.command("list")
@click.argument("name", required=False)
@json_option
@pass_ctx
def watchdog_list(ctx: Context, name: str | None) -> None:
    """Watchdogs of NAME (or of every model) and their state on the production version."""
    items = ctx.client().watchdogs(name)
    if ctx.as_json:
        return emit_json(items)
    if not items:
        out.line("no watchdogs" + (f" on {name}" if name else "")
                 + ": `modelreg watchdog add NAME 'monitoring:auc < 0.85 for 3 records' --rollback` adds one")
        return
    t = table("id", "model", "rule", "on fire", "state", "")
    for w in items:
        t.add_row(str(w["id"]), w["model"], w["rule"],
                  f"rollback, cooldown {_seconds(w['cooldown'])}" if w["rollback"] else "event only",
                  Span(w["state"], STATE_STYLE.get(w["state"], "")), state_text(w))
    out.table(t)


@watchdog.command("rm")
@click.argument("watchdog_id", type=int, metavar="ID")
@json_option
@pass_ctx
def watchdog_rm(ctx: Context, watchdog_id: int) -> None:
    """Remove watchdog ID (see `watchdog list`); its events stay in the log."""
    w = ctx.client().remove_watchdog(watchdog_id)
    if ctx.as_json:
        return emit_json(w)
    out.line(f"removed watchdog {w['id']} on {w['model']}: {w['rule']}")


COMMANDS = [watchdog]
