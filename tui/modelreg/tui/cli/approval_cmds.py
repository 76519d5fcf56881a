"""requests, approve, reject: two-person approval of a move an ``approvals >= N`` gate holds back."""

from __future__ import annotations

import sys

import click

from modelreg.shared.names import validate_name

from .context import Context, json_option, pass_ctx
from .render import Span, emit_json, out, plural, table, when

STATUS_STYLE = {"pending": "yellow", "approved": "green", "rejected": "red", "failed": "red", "expired": "dim",
                "cancelled": "dim"}
GATE_FAILED = 3  # the completing approval's move was refused by the other gates
WAITING = 7      # the move waits for approvals (main.py's exit codes)


def opened(request: dict) -> None:
    """The line a move held back for approval prints (promote, alias set), then exit 7."""
    have = len(request["approvals"])
    out.line(Span(f"approval request #{request['id']} opened", "yellow"),
             f": {request['ref']} → {request['target']} needs {plural(request['required'], 'approval')} "
             f"({have} so far) — modelreg approve {request['id']} --reason …")
    sys.exit(WAITING)


def _status(request: dict) -> Span:
    return Span(request["status"], STATUS_STYLE.get(request["status"], ""))


@click.command()
@click.option("--mine", is_flag=True, help="Only the requests you (your token's identity) asked for.")
@click.option("--model", default=None, metavar="NAME", help="Only this model's requests.")
@click.option("--all", "show_all", is_flag=True, help="Closed requests too (approved, rejected, expired, failed).")
@json_option
@pass_ctx
def requests(ctx: Context, mine: bool, model: str | None, show_all: bool) -> None:
    """Approval requests, newest first: pending ones unless --all."""
    if model is not None:
        validate_name(model)
    items = ctx.client().requests(model=model, status=None if show_all else "pending", mine=mine)
    if ctx.as_json:
        return emit_json(items)
    if not items:
        out.line(("no approval requests" if show_all else "no pending approval requests")
                 + (" of yours" if mine else "") + (f" for {model}" if model else ""))
        return
    columns = ["id", "ref", "target", "requested by", "approvals", "expires", "reason"]
    t = table(*(columns[:4] + ["status"] + columns[4:] if show_all else columns))
    for r in items:
        row = [f"#{r['id']}", r["ref"], r["target"], r["requested_by"]]
        if show_all:
            row.append(_status(r))
        row += [f"{len(r['approvals'])}/{r['required']}", when(r["expires_at"]) if r["status"] == "pending" else "",
                r["reason"]]
        t.add_row(*row)
    out.table(t)


def _vote(ctx: Context, request_id: int, reason: str, approve: bool) -> None:
    client = ctx.client()
    result = client.approve(request_id, reason) if approve else client.reject(request_id, reason)
    if ctx.as_json:
        emit_json(result)
    else:
        r = result["request"]
        verb = "approved" if approve else "rejected"
        out.line(f"{verb} request #{r['id']} ({r['ref']} → {r['target']}): ", _status(r),
                 f", {len(r['approvals'])}/{r['required']} approvals" if r["status"] == "pending" else "",
                 f" — {r['outcome']}" if r["outcome"] else "")
    if result["request"]["status"] == "failed":
        sys.exit(GATE_FAILED)


@click.command()
@click.argument("request_id", type=click.IntRange(1), metavar="ID")
@click.option("--reason", required=True, help="Why you approve (recorded in the audit log).")
@json_option
@pass_ctx
def approve(ctx: Context, request_id: int, reason: str) -> None:
    """Approve request ID; the approval that completes it runs the move (exit 3 if its gates refuse)."""
    _vote(ctx, request_id, reason, True)


@click.command()
@click.argument("request_id", type=click.IntRange(1), metavar="ID")
@click.option("--reason", required=True, help="Why you reject it (recorded in the audit log).")
@json_option
@pass_ctx
def reject(ctx: Context, request_id: int, reason: str) -> None:
    """Reject request ID: it closes, nothing moves."""
    _vote(ctx, request_id, reason, False)


COMMANDS = [requests, approve, reject]
