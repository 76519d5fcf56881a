"""daemon, status, events, verify: the registry's process and its integrity."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from modelreg.shared.config import DAEMON_FILE, ServerTls, parse_listen, resolve_endpoint
from modelreg.shared.errors import Conflict, ModelregError, Unavailable

from .context import Context, json_option, pass_ctx
from .render import Span, emit_json, emit_json_line, err, out, plural, progress, size, table, value_text, when


@click.command()
@click.option("--listen", default=None, help="HOST:PORT to listen on (default 127.0.0.1:7311; port 0 = any free).")
@click.option("--foreground", is_flag=True, help="Stay attached; stop with Ctrl-C or SIGTERM.")
@click.option("--allow-remote", is_flag=True, help="Permit a non-loopback --listen address (needs TLS).")
@click.option("--tls-cert", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Serve https with this certificate (PEM; required beyond loopback).")
@click.option("--tls-key", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The unencrypted private key (PEM) of --tls-cert.")
@click.option("--insecure-http", is_flag=True,
              help="With --allow-remote: serve plain http anyway (a TLS proxy on this host fronts the daemon).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None,
              help="Log lines as text or one JSON object each (env MODELREG_LOG_FORMAT; default text).")
@click.option("--stop", is_flag=True, help="Stop the home's running daemon.")
@click.option("--watch", "watch_dirs", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="Also watch this drop folder (move mode); same as `modelreg watch add DIR`.")
@json_option
@pass_ctx
def daemon(ctx: Context, listen: str | None, foreground: bool, allow_remote: bool, tls_cert: Path | None,
           tls_key: Path | None, insecure_http: bool, log_format: str | None, stop: bool,
           watch_dirs: tuple[Path, ...]) -> None:
    """Run the registry daemon (in the background unless --foreground).

    The background daemon logs to HOME/logs/daemon.log (`modelreg logs`); with --foreground this
    process becomes the daemon, logs to stderr and stops cleanly on SIGTERM, SIGINT or SIGHUP.
    """
    if stop:
        return _stop(ctx)
    if watch_dirs and foreground:
        raise ModelregError("--watch with --foreground: add the watch with `modelreg watch add DIR` from another shell")
    tls = ServerTls.from_options(tls_cert, tls_key)
    if log_format:
        os.environ["MODELREG_LOG_FORMAT"] = log_format  # the daemon this starts (or becomes) reads it
    if foreground:
        _become_daemon(ctx.home, listen, allow_remote=allow_remote, tls=tls, insecure_http=insecure_http)
    if allow_remote:
        raise ModelregError("--allow-remote needs --foreground (a remote-facing daemon should be supervised)")
    from modelreg.shared.launcher import answers, ensure_daemon_sync, stop_command

    running = _running(ctx.home)
    already = running is not None and answers(running["url"])
    if already and listen:
        _refuse_other_address(ctx.home, running, listen)
    endpoint = ensure_daemon_sync(ctx.home, listen, autostart=True, tls=tls)
    running = _running(ctx.home) or {}
    info = {"url": endpoint.url, "home": str(ctx.home), "pid": running.get("pid"), "already_running": already,
            "watching": []}
    known = {w["path"] for w in ctx.client().watches()}
    for folder in watch_dirs:
        real = str(folder.expanduser().resolve())
        if real not in known:
            ctx.client().add_watch(real)
        info["watching"].append(real)
    if ctx.as_json:
        emit_json(info)
    else:
        out.line(f"daemon {'already running' if already else 'started'} at {endpoint.url} "
                 f"(home {ctx.home}, pid {info['pid']})")
        if not already:
            out.line(Span(f"it keeps running in the background; stop it with `{stop_command(ctx.home)}`", "dim"))
        for folder in info["watching"]:
            out.line(f"watching {folder}")


def _become_daemon(home: Path, listen: str | None, **options: Any) -> None:
    """Replace this process with the daemon (same pid): a supervisor's, a container runtime's or a
    shell's signal then reaches the daemon itself, and no child is left behind to orphan."""
    from modelreg.shared.launcher import daemon_command

    command = daemon_command(home, listen, **options)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)


def _running(home: Path) -> dict[str, Any] | None:
    """What the home's daemon wrote about itself (url, pid), if anything."""
    from modelreg.shared.launcher import daemon_info

    return daemon_info(home)


def _refuse_other_address(home: Path, running: dict[str, Any], listen: str) -> None:
    """`daemon --listen X` while the home's daemon listens elsewhere: say so, do not pretend."""
    from urllib.parse import urlsplit

    host, port = parse_listen(listen)
    url = urlsplit(running["url"])
    same_host = host == url.hostname or {host, url.hostname} <= {"127.0.0.1", "localhost"}
    if same_host and port in (0, url.port):
        return
    from modelreg.shared.launcher import stop_command

    raise Conflict(f"the daemon of {home} is already running at {running['url']} (pid {running.get('pid')}), "
                   f"not at {listen}; stop it first with `{stop_command(home)}`",
                   {"url": running["url"], "pid": running.get("pid"), "listen": listen})


def _stop(ctx: Context) -> None:
    from modelreg.shared.launcher import stop_daemon

    pid = stop_daemon(ctx.home)
    if ctx.as_json:
        emit_json({"stopped": pid})
    else:
        out.line(f"stopped daemon {pid}")


@click.command()
@json_option
@pass_ctx
def status(ctx: Context) -> None:
    """Daemon health, counts and watches."""
    from modelreg.shared.launcher import answers

    endpoint = resolve_endpoint(home=ctx.home, url=ctx.url)
    own = endpoint.explicit_url or (ctx.home / DAEMON_FILE).exists()
    if not own or not answers(endpoint.url):
        raise Unavailable(f"no modelreg daemon answers at {endpoint.url}; start one with `modelreg daemon`")
    s = ctx.client(start=False).status()
    if ctx.as_json:
        return emit_json(s)
    out.line(Span("●", "green"), f" daemon {s['version']} at {ctx.client().url}, pid {s['pid']}, "
             f"up {_duration(s['uptime_s'])}")
    out.fields([
        ("home", s["home"]),
        ("models", str(s["models"])),
        ("versions", f"{s['versions']} ({s['pending']} pending), {s['production']} in production"),
        ("blobs", f"{s['blobs']} ({size(s['blob_bytes'])})"),
        *[("artifacts", f"{a['url']} at {a['endpoint']}") for a in [s.get("artifacts", {})] if a.get("backend") == "s3"],
        ("events", str(s["last_event"] or 0)),
        *[("watching", str(w.get("path"))) for w in s.get("watches", [])],
    ])


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


@click.command()
@click.option("--follow", "-f", is_flag=True,
              help="Keep printing new events as they happen (Ctrl-C stops, exit 130). With --json: NDJSON, one "
                   "event object per line, flushed as it arrives.")
@click.option("--after", type=int, default=None, help="Only events after this id.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--model", default=None, help="Only events of this model.")
@click.option("--kind", default=None, help="Only events of this kind (glob: 'version.*').")
@json_option
@pass_ctx
def events(ctx: Context, follow: bool, after: int | None, limit: int, model: str | None, kind: str | None) -> None:
    """The event log, oldest first (the newest LIMIT unless --after).

    --json prints one JSON array of events; --follow --json prints NDJSON instead (one event
    object per line: the LIMIT latest, then each new one as it commits).
    """
    c = ctx.client()
    page = c.events(after=after, limit=limit, model=model, kind=kind)
    if ctx.as_json and not follow:
        return emit_json(page["items"])
    for e in page["items"]:
        _print_event(ctx, e)
    if not follow:
        if not page["items"]:
            out.line("no events" + (" match" if model or kind or after else " yet"))
        return
    sys.stdout.flush()
    last = page["last_id"] if page["last_id"] is not None else (after or 0)
    _follow_until_interrupted(ctx, c, last, model, kind)


def _follow_until_interrupted(ctx: Context, c, last: int, model: str | None, kind: str | None) -> None:
    """Run the live stream until Ctrl-C (or SIGTERM), then exit 130 without a word.

    The loop owns SIGINT: Ctrl-C cancels the follow task instead of interrupting whatever it
    awaits, so a cancelled read is never mistaken for a lost stream ("reconnecting").
    """
    import asyncio

    from modelreg.shared.client import Client

    async def run() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with Client(c.endpoint, actor=c.actor) as client:
            follow = asyncio.create_task(_follow(ctx, client, last, model, kind))
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait({follow, stopped}, return_when=asyncio.FIRST_COMPLETED)
            for task in (follow, stopped):
                task.cancel()
            await asyncio.gather(follow, stopped, return_exceptions=True)
            if follow.done() and not follow.cancelled() and follow.exception() is not None:
                raise follow.exception()  # type: ignore[misc]

    asyncio.run(run())
    sys.exit(130)


async def _follow(ctx: Context, client, last: int, model: str | None, kind: str | None) -> None:
    """Live events over the WebSocket stream; reconnects and resumes from the last id seen."""
    import asyncio
    import fnmatch

    delay = 0.5
    while True:
        try:
            async for event in client.stream_events(after=last):
                last = event["id"]
                delay = 0.5
                if model and (event.get("model") or "").lower() != model.lower():
                    continue
                if kind and not fnmatch.fnmatchcase(event["kind"], kind):
                    continue
                _print_event(ctx, event)
                sys.stdout.flush()
        except Unavailable:
            pass
        err.line(Span(f"event stream lost; reconnecting in {delay:.1f}s", "dim"))
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10)


def _print_event(ctx: Context, e: dict) -> None:
    if ctx.as_json:
        return emit_json_line(e)
    ref = f"{e['model']}@{e['version']}" if e.get("version") else (e.get("model") or "")
    out.line(f"{e['id']:>6}  {when(e['ts'])}  ", Span(f"{e['kind']:<18}", _KIND_STYLE.get(e["kind"].split(".")[0], "")),
             f" {ref:<24} {e['actor']:<18} ", event_detail(e))


_KIND_STYLE = {"stage": "yellow", "drop": "cyan", "gate": "magenta"}
_HIDDEN = {"content_digest", "verdict"}


def event_detail(e: dict) -> str:
    """An event's data as a person reads it: 'auc=0.87 (online)', 'staging → production (forced): why'."""
    data = dict(e.get("data") or {})
    kind = e["kind"]
    parts: list[str] = []
    if kind == "metric.recorded":
        parts.append(", ".join(f"{k}={value_text(v)}" for k, v in (data.pop("metrics", None) or {}).items()))
        sources = data.pop("source", None)
        if sources:
            parts.append(f"({value_text(sources)})")
    elif kind.startswith("stage.") and "to" in data:
        move = f"{data.pop('from', '?')} → {data.pop('to')}"
        how = data.pop("kind", None)
        if how and how != "transition":
            move += f" ({how})"
        if data.pop("forced", False):
            move += " forced"
        if kind == "stage.refused":
            move = "refused " + move
        parts.append(move)
    elif kind == "alias.refused":  # the alias's gates kept it where it was
        before = data.pop("from", None)
        held = f"v{before}" if before else "unset"
        parts.append(f"refused @{data.pop('alias', '?')} {held} → v{data.pop('to', '?')}")
    verdict = data.get("verdict")
    if isinstance(verdict, dict):
        parts.append("gates " + ("passed" if verdict.get("passed") else "FAILED"))
    reason = data.pop("reason", None)
    message = data.pop("message", None)
    for k, v in data.items():
        if k in _HIDDEN or v in (None, "", False, [], {}):
            continue
        if k == "total_size":
            parts.append(size(v))
        elif k == "files" and isinstance(v, int):
            parts.append(plural(v, "file"))
        else:
            parts.append(f"{k}={value_text(v, 120)}")
    text = " ".join(p for p in parts if p)
    for extra in (message, reason):
        if extra:
            text += (": " if text else "") + str(extra)
    return text


@click.command()
@click.argument("ref", required=False)
@json_option
@pass_ctx
def verify(ctx: Context, ref: str | None) -> None:
    """Re-hash stored files and name the versions whose bytes changed (exit 1 if any)."""
    c = ctx.client()
    job = c.verify(ref)
    with progress(job["total"], "verifying", not ctx.as_json) as advance:
        while job["state"] == "running":
            time.sleep(0.2)
            job = c.job(job["id"])
            advance(job["done"], absolute=True)
    if job["state"] == "failed":
        raise ModelregError(job["error"]["message"])
    result = job["result"]
    if ctx.as_json:
        emit_json(result)
    elif result["ok"]:
        out.line(Span("ok", "green"), f": {plural(result['checked'], 'blob')}, {size(result['bytes'])} re-hashed, all match")
    else:
        out.line(Span(f"{len(result['problems'])} of {plural(result['checked'], 'blob')} do not match their digest:",
                      "bold red"))
        t = table("blob", "status", "versions affected", "files")
        for p in result["problems"]:
            t.add_row(p["sha256"][:16] + "…", p["status"], ", ".join(p["versions"]),
                      ", ".join(sorted({f["path"] for f in p["files"]})))
        out.table(t)
    if not result["ok"]:
        sys.exit(1)


COMMANDS = [daemon, status, events, verify]
