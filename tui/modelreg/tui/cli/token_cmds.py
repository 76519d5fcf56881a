"""token create|list|revoke|whoami: named, scoped tokens (issue 12, docs/security.md)."""

from __future__ import annotations

import click

from .context import Context, json_option, pass_ctx
from .render import Span, emit_json, err, out, table, when


@click.group()
def token() -> None:
    """Named tokens: who may read, write, promote or administer the registry."""


@token.command("create")
@click.argument("name")
@click.option("--scope", required=True, metavar="read|write|promote|admin",
              help="Each includes the ones before. read: look; write: register, record metrics, edit; "
                   "promote: move stages and aliases; admin: tokens, gates, hooks, watches.")
@click.option("--models", default=None, metavar="GLOB", help="Only the models whose name matches, e.g. 'fraud*'.")
@click.option("--expires", default=None, metavar="DURATION", help="Refused after this long, e.g. 30d, 12h, 90m.")
@json_option
@pass_ctx
def token_create(ctx: Context, name: str, scope: str, models: str | None, expires: str | None) -> None:
    """Create the token NAME; its secret is printed once, here."""
    created = ctx.client().create_token(name, scope, models=models, expires=expires)
    if ctx.as_json:
        return emit_json(created)
    out.line(created["token"])
    err.line(Span("store it now: the registry keeps only its hash and cannot show it again", "bold yellow"))
    err.line(f"token {created['name']}: {_reach(created)}; use it with MODELREG_TOKEN or --token-file")


@token.command("list")
@json_option
@pass_ctx
def token_list(ctx: Context) -> None:
    """Every named token and its state (never a secret)."""
    items = ctx.client().tokens()
    if ctx.as_json:
        return emit_json(items)
    if not items:
        out.line("no named tokens (the home's own token is the local admin): `modelreg token create NAME --scope …`")
        return
    t = table("name", "scope", "models", "state", "created", "by", "expires")
    for item in items:
        t.add_row(item["name"], item["scope"], item["models"] or "(all)", _state(item), when(item["created_at"]),
                  item["created_by"], when(item["expires_at"]) if item["expires_at"] else "never")
    out.table(t)


@token.command("revoke")
@click.argument("name")
@json_option
@pass_ctx
def token_revoke(ctx: Context, name: str) -> None:
    """Revoke the token NAME: refused from now on (by every daemon within 5 seconds)."""
    revoked = ctx.client().revoke_token(name)
    if ctx.as_json:
        return emit_json(revoked)
    out.line(f"revoked {revoked['name']} ({when(revoked['revoked_at'])}, by {revoked['revoked_by']})")


@token.command("whoami")
@json_option
@pass_ctx
def token_whoami(ctx: Context) -> None:
    """Which identity this command acts as (MODELREG_TOKEN, --token-file, else the home's token)."""
    me = ctx.client().whoami()
    if ctx.as_json:
        return emit_json(me)
    if me["home_token"]:
        out.line(f"the home's token: admin of every model, recorded as {me['actor']}")
    else:
        out.line(f"token {me['name']}: {_reach(me)}")


def _reach(token: dict) -> str:
    return f"{token['scope']} on " + (f"models matching {token['models']!r}" if token.get("models") else "every model")


def _state(item: dict) -> Span | str:
    style = {"active": "green", "revoked": "red", "expired": "yellow"}.get(item["state"])
    return Span(item["state"], style) if style else item["state"]


COMMANDS = [token]
