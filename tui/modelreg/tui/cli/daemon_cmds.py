"""daemon, status, events, verify: the registry's process and its integrity."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import click

from modelreg.shared.config import DAEMON_FILE, resolve_endpoint
from modelreg.shared.errors import ModelregError, NotFound, Unavailable
from modelreg.shared.launcher import answers, ensure_daemon_sync

from .context import Context, json_option, pass_ctx
from .render import emit_json, err, out, progress, size, table, when


@click.command()
@click.option("--listen", default=None, help="HOST:PORT to listen on (default 127.0.0.1:7311; port 0 = any free).")
@click.option("--foreground", is_flag=True, help="Stay attached; stop with Ctrl-C or SIGTERM.")
@click.option("--allow-remote", is_flag=True, help="Permit a non-loopback --listen address.")
@click.option("--stop", is_flag=True, help="Stop the home's running daemon.")
@click.option("--watch", "watch_dirs", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="Also watch this drop folder (move mode); same as `modelreg watch add DIR`.")
@json_option
@pass_ctx
def daemon(ctx: Context, listen: str | None, foreground: bool, allow_remote: bool, stop: bool,
           watch_dirs: tuple[Path, ...]) -> None:
    """Run the registry daemon (in the background unless --foreground)."""
    if stop:
        return _stop(ctx)
    if watch_dirs and foreground:
        raise ModelregError("--watch with --foreground: add the watch with `modelreg watch add DIR` from another shell")
    if foreground:
        from subprocess import call

        cmd = [sys.executable, "-m", "modelreg.daemon", "--home", str(ctx.home)]
        if listen:
            cmd += ["--listen", listen]
        if allow_remote:
            cmd.append("--allow-remote")
        try:
            sys.exit(call(cmd))
        except KeyboardInterrupt:
            sys.exit(0)
    if allow_remote:
        raise ModelregError("--allow-remote needs --foreground (a remote-facing daemon should be supervised)")
    endpoint = resolve_endpoint(home=ctx.home)
    already = answers(endpoint.url) and (ctx.home / DAEMON_FILE).exists()
    endpoint = ensure_daemon_sync(ctx.home, listen)
    info = {"url": endpoint.url, "home": str(ctx.home), "already_running": already, "watching": []}
    known = {w["path"] for w in ctx.client().watches()}
    for folder in watch_dirs:
        real = str(folder.expanduser().resolve())
        if real not in known:
            ctx.client().add_watch(real)
        info["watching"].append(real)
    if ctx.as_json:
        emit_json(info)
    else:
        out.print(f"daemon {'already running' if already else 'started'} at {endpoint.url} (home {ctx.home})")
        for folder in info["watching"]:
            out.print(f"watching {folder}", markup=False)


def _stop(ctx: Context) -> None:
    try:
        pid = json.loads((ctx.home / DAEMON_FILE).read_text())["pid"]
    except (OSError, ValueError, KeyError):
        raise NotFound(f"no daemon is running for {ctx.home}") from None
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        (ctx.home / DAEMON_FILE).unlink(missing_ok=True)
        raise NotFound(f"no daemon is running for {ctx.home} (stale pid {pid})") from None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if not _alive(pid):
            break
        time.sleep(0.05)
    else:
        raise ModelregError(f"daemon {pid} did not stop within 15 s")
    if ctx.as_json:
        emit_json({"stopped": pid})
    else:
        out.print(f"stopped daemon {pid}")


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting for its parent (e.g. a TUI that started it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


@click.command()
@json_option
@pass_ctx
def status(ctx: Context) -> None:
    """Daemon health, counts and watches."""
    endpoint = resolve_endpoint(home=ctx.home, url=ctx.url)
    own = endpoint.explicit_url or (ctx.home / DAEMON_FILE).exists()
    if not own or not answers(endpoint.url):
        raise Unavailable(f"no modelreg daemon answers at {endpoint.url}; start one with `modelreg daemon`")
    s = ctx.client(start=False).status()
    if ctx.as_json:
        return emit_json(s)
    out.print(f"[green]●[/] daemon {s['version']} at {ctx.client().url}, pid {s['pid']}, up {s['uptime_s']:.0f} s")
    out.print(f"  home      {s['home']}")
    out.print(f"  models    {s['models']}   versions {s['versions']} ({s['pending']} pending)   in production {s['production']}")
    out.print(f"  blobs     {s['blobs']} ({size(s['blob_bytes'])})   events {s['last_event'] or 0}")
    for w in s.get("watches", []):
        out.print(f"  watching  {w.get('path')}")


@click.command()
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events as they happen.")
@click.option("--after", type=int, default=None, help="Only events after this id.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--model", default=None, help="Only events of this model.")
@click.option("--kind", default=None, help="Only events of this kind (glob: 'version.*').")
@json_option
@pass_ctx
def events(ctx: Context, follow: bool, after: int | None, limit: int, model: str | None, kind: str | None) -> None:
    """The event log, oldest first (the newest LIMIT unless --after)."""
    c = ctx.client()
    page = c.events(after=after, limit=limit, model=model, kind=kind)
    _print_events(ctx, page["items"])
    if follow:
        last = page["last_id"] if page["last_id"] is not None else (after or 0)
        from modelreg.shared.client import Client

        async def follow_with_client() -> None:
            async with Client(c.endpoint, actor=c.actor) as client:
                await _follow(ctx, client, last, model, kind)

        asyncio.run(follow_with_client())


async def _follow(ctx: Context, client, last: int, model: str | None, kind: str | None) -> None:
    """Live events over the WebSocket stream; reconnects and resumes from the last id seen."""
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
                _print_events(ctx, [event])
        except Unavailable:
            pass
        err.print(f"[dim]event stream lost; reconnecting in {delay:.1f}s[/]")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10)


def _print_events(ctx: Context, items: list[dict]) -> None:
    for e in items:
        if ctx.as_json:
            sys.stdout.write(json.dumps(e, default=str) + "\n")
            continue
        ref = f"{e['model']}@{e['version']}" if e.get("version") else (e.get("model") or "")
        data = e.get("data") or {}
        detail = " ".join(f"{k}={v}" for k, v in data.items()
                          if k not in ("content_digest", "verdict") and v not in (None, "", False))
        if isinstance(data.get("verdict"), dict):
            detail += " gates=" + ("passed" if data["verdict"]["passed"] else "FAILED")
        out.print(f"{e['id']:>6}  {when(e['ts'])}  {e['kind']:<18} {ref:<24} {e['actor']:<18} {detail}",
                  markup=False)
    sys.stdout.flush()


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
        out.print(f"[green]ok[/]: {result['checked']} blobs, {size(result['bytes'])} re-hashed, all match")
    else:
        out.print(f"[bold red]{len(result['problems'])} of {result['checked']} blobs do not match their digest:[/]")
        t = table("blob", "status", "versions affected", "files")
        for p in result["problems"]:
            t.add_row(p["sha256"][:16] + "…", p["status"], ", ".join(p["versions"]),
                      ", ".join(sorted({f["path"] for f in p["files"]})))
        out.print(t)
    if not result["ok"]:
        sys.exit(1)


COMMANDS = [daemon, status, events, verify]
