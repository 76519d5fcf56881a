"""check, promote, archive, rollback, history, alias, gate, hook, audit, gc: the lifecycle."""

from __future__ import annotations

import sys

import click

from modelreg.shared.config import API_PREFIX
from modelreg.shared.errors import GateFailed, InvalidInput
from modelreg.shared.names import parse_ref, validate_alias, validate_name

from .approval_cmds import opened
from .context import Context, json_option, pass_ctx
from .render import Span, emit_json, err, out, plural, size, table, when
from .render import stage as stage_cell

MARKS = {"pass": Span("✓", "green"), "fail": Span("✗", "red"), "error": Span("!", "red")}


def print_verdict(verdict: dict) -> None:
    head: list = [Span("passed", "green") if verdict["passed"] else Span("failed", "red")]
    if verdict.get("forced"):
        head.append(Span(" (forced)", "yellow"))
    if verdict.get("production"):  # an alias's gates compare with the version the alias points at now
        baseline = verdict["target"] if str(verdict.get("target", "")).startswith("@") else "production"
        head.append(f" ({baseline}: v{verdict['production']})")
    out.line(f"gates for {verdict['ref']} → {verdict['target']}: ", *head)
    if not verdict["rules"]:
        out.line("  ", Span("no gates apply", "dim"))
    for r in verdict["rules"]:
        out.line("  ", MARKS.get(r["status"], "?"), " ", r["rule"])
        out.line(f"      {r['message']}")
        if r.get("output") and r["status"] != "pass":
            for line in r["output"].strip().splitlines()[-5:]:
                out.line(Span("      │ ", "dim"), line)


@click.command()
@click.argument("ref")
@click.option("--to", "to", default=None, type=click.Choice(["staging", "production"]))
@click.option("--alias", "alias_name", default=None, metavar="ALIAS", help="Dry-run moving alias ALIAS onto REF instead.")
@json_option
@pass_ctx
def check(ctx: Context, ref: str, to: str | None, alias_name: str | None) -> None:
    """Dry-run the gates of moving REF to a stage, or an alias onto it (exit 3 if they fail)."""
    parse_ref(ref)
    target = _gate_target(to, alias_name, "--to")
    verdict = ctx.client().check(ref, target)
    if ctx.as_json:
        emit_json(verdict)
    else:
        print_verdict(verdict)
    if not verdict["passed"]:
        sys.exit(3)


def _transition(ctx: Context, ref: str, to: str, reason: str | None, force: bool) -> None:
    parse_ref(ref)
    try:
        result = ctx.client().transition(ref, to, reason=reason, force=force)
    except GateFailed as exc:
        _refused(ctx, exc, ref, "stays where it is")
    if "request" in result:
        return _held(ctx, result)
    if ctx.as_json:
        return emit_json(result)
    if result.get("verdict"):
        print_verdict(result["verdict"])
    v = result["version"]
    archived = "".join(f"; v{n} archived" for n in result.get("archived", []))
    out.line(f"{v['model']}@{v['version']} is now ", stage_cell(v["stage"]), archived)


def _held(ctx: Context, result: dict) -> None:
    """A move held back for approval: the request it opened (or joined), then exit 7."""
    if ctx.as_json:
        emit_json(result)
        sys.exit(7)
    opened(result["request"])


def _refused(ctx: Context, exc: GateFailed, what: str, stays: str) -> None:
    """A move the gates refused: its verdict (or the JSON envelope), then exit 3."""
    verdict = exc.details.get("verdict")
    if ctx.as_json:
        emit_json(exc.envelope())
    elif verdict:
        print_verdict(verdict)
        who = [r["rule"] for r in verdict["rules"] if r["status"] != "pass" and r.get("kind") in ("by", "approvals")]
        if who:  # --force never stands in for who may move it
            err.line(Span("refused:", "red"), f" {what} {stays}; --force does not override {', '.join(who)}")
        else:
            err.line(Span("refused:", "red"), f" {what} {stays}; fix the failing rules, or pass "
                     "--force --reason '…' to override (audited)")
    else:
        err.line(Span("refused:", "red"), f" {exc.message}")
    sys.exit(3)


def _gate_target(stage: str | None, alias_name: str | None, stage_flag: str = "--stage") -> str:
    """A gate's target from the two options, exactly one given: the stage, or ``@ALIAS``."""
    if (stage is None) == (alias_name is None):
        raise click.UsageError(f"give exactly one of {stage_flag} STAGE and --alias ALIAS")
    return stage if alias_name is None else "@" + validate_alias(alias_name)


@click.command()
@click.argument("ref")
@click.option("--to", "to", default="production", show_default=True, type=click.Choice(["staging", "production"]))
@click.option("--reason", default=None, help="Why (recorded in the audit log).")
@click.option("--force", is_flag=True, help="Override failing gates (needs --reason; audited).")
@json_option
@pass_ctx
def promote(ctx: Context, ref: str, to: str, reason: str | None, force: bool) -> None:
    """Move REF to staging or production through its gates (exit 3 if they refuse; exit 7 when an
    approvals gate holds it back: the approval request it opened is printed)."""
    if force and not reason:
        raise InvalidInput("--force needs --reason")
    _transition(ctx, ref, to, reason, force)


@click.command()
@click.argument("ref")
@click.option("--reason", required=True, help="Why (recorded in the audit log).")
@json_option
@pass_ctx
def archive(ctx: Context, ref: str, reason: str) -> None:
    """Archive REF (its artifacts are kept for the retention period)."""
    _transition(ctx, ref, "archived", reason, False)


@click.command()
@click.argument("name")
@click.option("--to", "to", type=int, default=None, help="Version number to restore (default: the previous production).")
@click.option("--reason", required=True, help="Why (recorded in the audit log).")
@json_option
@pass_ctx
def rollback(ctx: Context, name: str, to: int | None, reason: str) -> None:
    """Make the previous production version of NAME production again, in one step."""
    validate_name(name)
    r = ctx.client().rollback(name, reason=reason, to=to)
    if ctx.as_json:
        return emit_json(r)
    out.line(f"rolled {r['model']} back: v{r['to']} is production again, v{r['from']} archived")


@click.command()
@click.argument("name")
@click.option("--at", "at", default=None, help="A time (ISO 8601, epoch, or '2h ago'): what each stage held then.")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@json_option
@pass_ctx
def history(ctx: Context, name: str, at: str | None, limit: int) -> None:
    """Stage changes of NAME, oldest first; --at answers 'what was in production then'."""
    validate_name(name)
    h = ctx.client().history(name, at=at, limit=limit)
    if ctx.as_json:
        return emit_json(h)
    if at is not None:
        snap = h["at"]
        prod = f"v{snap['production']}" if snap["production"] else "nothing"
        out.line(f"at {when(snap['time'])}: production {prod}; staging "
                 + (", ".join(f"v{n}" for n in snap["staging"]) or "nothing"))
        return
    if not h["items"]:
        out.line(f"{name} has had no stage changes yet")
        return
    approved = any(item.get("approvals") for item in h["items"])
    t = table("when", "v", "from", "to", "how", "by", *(["approved by"] if approved else []), "reason")
    for item in h["items"]:
        how = [item["kind"]] + ([Span(" forced", "yellow")] if item["forced"] else [])
        t.add_row(when(item["ts"]), str(item["version"]), stage_cell(item["from"]), stage_cell(item["to"]), how,
                  item["actor"], *([", ".join(item.get("approvals") or [])] if approved else []), item["reason"] or "")
    out.table(t)


@click.group()
def alias() -> None:
    """Free aliases such as champion: NAME@champion."""


@alias.command("set")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.argument("version", type=int)
@click.option("--reason", default=None, help="Why (recorded in the audit log).")
@click.option("--force", is_flag=True, help="Override the alias's failing gates (needs --reason; audited).")
@json_option
@pass_ctx
def alias_set(ctx: Context, name: str, alias_name: str, version: int, reason: str | None, force: bool) -> None:
    """Point NAME@ALIAS at VERSION, through the alias's gates (exit 3 if they refuse, 7 if the move
    waits for approval). A protected alias moves only by identities with promote on NAME."""
    if force and not reason:
        raise InvalidInput("--force needs --reason")
    try:
        r = ctx.client().set_alias(name, alias_name, version, reason=reason, force=force)
    except GateFailed as exc:
        _refused(ctx, exc, f"{name}@{alias_name}", "stays where it was")
    if "request" in r:
        return _held(ctx, r)
    if ctx.as_json:
        return emit_json(r)
    if r.get("verdict"):
        print_verdict(r["verdict"])
    out.line(f"{name}@{alias_name} → v{r['aliases'][alias_name]}")


@alias.command("rm")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@json_option
@pass_ctx
def alias_rm(ctx: Context, name: str, alias_name: str) -> None:
    """Remove an alias."""
    r = ctx.client().remove_alias(name, alias_name)
    if ctx.as_json:
        return emit_json(r)
    out.line(f"removed {name}@{alias_name}")


@alias.command("list")
@click.argument("name")
@json_option
@pass_ctx
def alias_list(ctx: Context, name: str) -> None:
    """The aliases of NAME."""
    r = ctx.client().aliases(name)
    if ctx.as_json:
        return emit_json(r)
    if not r["aliases"]:
        out.line(f"{name} has no aliases: `modelreg alias set {name} ALIAS VERSION` adds one")
    for a in r["items"]:
        out.line(f"{name}@{a['alias']} → v{a['version']}", Span(" (protected)", "yellow") if a["protected"] else "")


@alias.command("protect")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@json_option
@pass_ctx
def alias_protect(ctx: Context, name: str, alias_name: str) -> None:
    """Protect NAME@ALIAS: only identities with promote on NAME may move or remove it (through its gates)."""
    _protection(ctx, name, alias_name, True)


@alias.command("unprotect")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@json_option
@pass_ctx
def alias_unprotect(ctx: Context, name: str, alias_name: str) -> None:
    """Lift the protection of NAME@ALIAS (write tokens may move it again)."""
    _protection(ctx, name, alias_name, False)


def _protection(ctx: Context, name: str, alias_name: str, protected: bool) -> None:
    validate_name(name)
    validate_alias(alias_name)
    r = ctx.client().protect_alias(name, alias_name, protected)
    if ctx.as_json:
        return emit_json(r)
    out.line(f"{name}@{alias_name} is " + ("protected: it moves only by identities with promote on " + name
                                          if protected else "no longer protected"))


@click.group()
def gate() -> None:
    """Promotion gates: rules a version must pass to enter staging or production, or to take an alias."""


@gate.command("add")
@click.argument("name")
@click.argument("rules", nargs=-1, required=True, metavar="RULE...")
@click.option("--stage", default=None, type=click.Choice(["staging", "production"]), help="The stage the rules guard.")
@click.option("--alias", "alias_name", default=None, metavar="ALIAS",
              help="The alias the rules guard instead (moving NAME@ALIAS onto a version).")
@click.option("--timeout", type=float, default=None, help="Seconds a command gate may run (default 300).")
@json_option
@pass_ctx
def gate_add(ctx: Context, name: str, rules: tuple[str, ...], stage: str | None, alias_name: str | None,
             timeout: float | None) -> None:
    """Add gates for NAME ('*' for the registry-wide default) on the way into --stage, or on
    moving --alias (there 'production' in a rule means the version the alias points at now). Rules, e.g.:

    \b
      'auc >= 0.92'   'auc >= production - 0.002'   'latency_p99_ms <= production * 1.05'
      'auc ~ production ± 1%'   'requires dataset, run, metric:auc'   'staged_for >= 24h'
      'command: ./integration-tests.sh'
    """
    target = _gate_target(stage, alias_name)
    model = None if name == "*" else validate_name(name)
    added = [ctx.client().add_gate(rule, stage=stage, alias=alias_name, model=model, timeout=timeout)
             for rule in rules]
    # A metric no version records is most often a typo; the gate is added all the same.
    for g in added:
        for warning in g.get("warnings") or []:
            err.print(f"warning: {warning}", style="yellow", markup=False, soft_wrap=True)
    if ctx.as_json:
        return emit_json(added)
    for g in added:
        out.print(f"gate {g['id']}: {g['model'] or 'every model'} → {_shown_target(g) or target}: {g['rule']}",
                  markup=False)


@gate.command("list")
@click.argument("name", required=False)
@click.option("--stage", default=None, type=click.Choice(["staging", "production"]))
@click.option("--alias", "alias_name", default=None, metavar="ALIAS", help="Only the gates guarding this alias.")
@json_option
@pass_ctx
def gate_list(ctx: Context, name: str | None, stage: str | None, alias_name: str | None) -> None:
    """Gates that apply to NAME (with the registry-wide ones), or all; alias gates show as → @ALIAS."""
    if stage is not None and alias_name is not None:
        raise click.UsageError("give at most one of --stage and --alias")
    if alias_name is not None:
        validate_alias(alias_name)
    items = ctx.client().gates(model=name if name and name != "*" else None, stage=stage, alias=alias_name)["items"]
    if ctx.as_json:
        return emit_json(items)
    if not items:
        out.line("no gates" + (f" apply to {name}" if name else "")
                 + ": `modelreg gate add NAME --stage STAGE RULE` (or --alias ALIAS) adds one")
        return
    t = table("id", "model", "guards", "rule", "timeout")
    for g in items:
        t.add_row(str(g["id"]), g["model"] or "*", f"→ {_shown_target(g)}", g["rule"],
                  f"{g['timeout']:g}s" if g["timeout"] else "")
    out.table(t)


def _shown_target(g: dict) -> str:
    """``production`` or ``@champion``, from a gate as the API shows it."""
    return f"@{g['alias']}" if g.get("alias") else g.get("stage") or ""


@gate.command("rm")
@click.argument("gate_id", type=int, metavar="ID")
@json_option
@pass_ctx
def gate_rm(ctx: Context, gate_id: int) -> None:
    """Remove gate ID (see `gate list`)."""
    g = ctx.client().remove_gate(gate_id)
    if ctx.as_json:
        return emit_json(g)
    out.line(f"removed gate {g['id']}: {g['rule']}")


@click.group()
def hook() -> None:
    """Webhooks and local commands fired after committed events."""


@hook.command("add")
@click.argument("target")
@click.option("--command", "is_command", is_flag=True, help="TARGET is a shell command (event JSON on stdin).")
@click.option("--events", default="", help="Comma-separated kinds or globs, e.g. 'stage.*,drop.failed'.")
@click.option("--model", default=None)
@click.option("--stage", default=None, type=click.Choice(["none", "staging", "production", "archived"]),
              help="Only stage changes into this stage.")
@click.option("--secret", default=None, help="HMAC secret for webhooks (default: generated and shown once).")
@json_option
@pass_ctx
def hook_add(ctx: Context, target: str, is_command: bool, events: str, model: str | None, stage: str | None,
             secret: str | None) -> None:
    """Add a webhook URL (or --command) for matching events."""
    body = {"kind": "command" if is_command else "webhook", "target": target, "events": events, "model": model,
            "stage": stage, "secret": secret}
    h = ctx.client().request("POST", f"{API_PREFIX}/hooks", body=body)
    if ctx.as_json:
        return emit_json(h)
    out.line(f"hook {h['id']}: {h['kind']} {h['target']}")
    if h.get("secret") and not secret:
        out.line(f"  signing secret (shown once): {h['secret']}")


@hook.command("list")
@json_option
@pass_ctx
def hook_list(ctx: Context) -> None:
    """Every hook."""
    items = ctx.client().request("GET", f"{API_PREFIX}/hooks")["items"]
    if ctx.as_json:
        return emit_json(items)
    if not items:
        out.line("no hooks: `modelreg hook add URL --events 'stage.*'` adds one")
        return
    t = table("id", "kind", "target", "events", "model", "stage")
    for h in items:
        t.add_row(str(h["id"]), h["kind"], h["target"], h["events"] or "*", h["model"] or "*", h["stage"] or "*")
    out.table(t)


@hook.command("rm")
@click.argument("hook_id", type=int, metavar="ID")
@json_option
@pass_ctx
def hook_rm(ctx: Context, hook_id: int) -> None:
    """Remove hook ID."""
    h = ctx.client().request("DELETE", f"{API_PREFIX}/hooks/{hook_id}")
    if ctx.as_json:
        return emit_json(h)
    out.line(f"removed hook {h['id']}")


@hook.command("deliveries")
@click.argument("hook_id", type=int, metavar="ID")
@json_option
@pass_ctx
def hook_deliveries(ctx: Context, hook_id: int) -> None:
    """The delivery log of hook ID: every attempt's state."""
    items = ctx.client().request("GET", f"{API_PREFIX}/hooks/{hook_id}/deliveries")["items"]
    if ctx.as_json:
        return emit_json(items)
    if not items:
        out.line(f"hook {hook_id} has not been called yet")
        return
    t = table("id", "event", "ref", "state", "attempts", "last status", "next try")
    for d in items:
        ref = f"{d['model']}@{d['version']}" if d["version"] else (d["model"] or "")
        t.add_row(str(d["id"]), f"{d['event_id']} {d['event']}", ref, d["state"], str(d["attempts"]),
                  str(d["last_status"] or ""), when(d["next_attempt_at"]))
    out.table(t)


@click.group()
def audit() -> None:
    """The hash-chained audit log."""


@audit.command("verify")
@json_option
@pass_ctx
def audit_verify(ctx: Context) -> None:
    """Check the whole event chain; names the first edited or missing row (exit 1)."""
    r = ctx.client().audit_verify()
    if ctx.as_json:
        emit_json(r)
    elif r["ok"]:
        out.line(Span("ok", "green"), f": {plural(r['checked'], 'event')}, chain intact")
    else:
        out.line(Span("broken", "red"), f": {r['message']} (first bad event: {r['first_bad_id']}; "
                 f"{r['checked']} before it are intact)")
    if not r["ok"]:
        sys.exit(1)


@click.command()
@click.option("--dry-run", is_flag=True, help="Only show what would be removed.")
@json_option
@pass_ctx
def gc(ctx: Context, dry_run: bool) -> None:
    """Remove artifacts past retention (archived > 90 days, never the last 3 former production)."""
    r = ctx.client().gc(dry_run=dry_run)
    if ctx.as_json:
        return emit_json(r)
    verb = "would remove" if dry_run else "removed"
    out.line(f"{verb} {plural(r['blobs'], 'blob')}, {size(r['bytes'])}, of {plural(len(r['versions']), 'archived version')}"
             + (f"; {plural(r['orphans'], 'unreferenced upload')}" if r["orphans"] else ""))
    for ref in r["versions"]:
        out.line(f"  {ref}")


COMMANDS = [check, promote, archive, rollback, history, alias, gate, hook, audit, gc]
