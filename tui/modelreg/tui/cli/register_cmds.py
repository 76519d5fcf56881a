"""register: a file or folder becomes a new version (read by the daemon's one ingest pipeline)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from modelreg.shared.config import NAMED_TOKEN_PREFIX, is_loopback
from modelreg.shared.errors import InvalidInput, ModelregError, from_envelope
from modelreg.shared.names import parse_dataset_ref, parse_ref, validate_name

from .context import Context, json_option, pass_ctx
from .registry_cmds import _numbers, _pairs
from .render import Span, emit_json, err, out, progress, size

INTERRUPTED = 130  # the shell's code for "stopped by SIGINT"
CANCEL_WAIT_S = 10


def _daemon_is_local(ctx: Context) -> bool:
    from urllib.parse import urlsplit

    host = urlsplit(ctx.client().url).hostname or ""
    return is_loopback(host)


@click.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--name", "-n", required=True, help="Model name (created on first registration).")
@click.option("--metric", "-m", "metrics", multiple=True, metavar="K=V", help="Offline metric, e.g. auc=0.91.")
@click.option("--param", "-p", "params", multiple=True, metavar="K=V", help="Training parameter, e.g. lr=0.01.")
@click.option("--tag", "-t", "tags", multiple=True, metavar="K=V")
@click.option("--dataset", "-d", "datasets", multiple=True, metavar="NAME@VER", help="Dataset it was trained on.")
@click.option("--eval-dataset", "eval_datasets", multiple=True, metavar="NAME@VER", help="Dataset it was evaluated on.")
@click.option("--run", "run_id", default=None, help="Training run id.")
@click.option("--parent", default=None, metavar="REF", help="Version it was derived from (fine-tune, quantize…).")
@click.option("--description", default="", help="Free text.")
@click.option("--move", is_flag=True, help="Move the files into the store instead of copying (same filesystem: no copy at all).")
@click.option("--upload", is_flag=True, help="Stream the bytes over HTTP even when the daemon is local.")
@click.option("--no-wait", is_flag=True, help="Return as soon as the version exists (still pending).")
@click.option("--signature", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              metavar="FILE", help="An OpenSSF Model Signing bundle of PATH (model.sig): verified with the trusted keys.")
@json_option
@pass_ctx
def register(ctx: Context, path: Path, name: str, metrics: tuple[str, ...], params: tuple[str, ...],
             tags: tuple[str, ...], datasets: tuple[str, ...], eval_datasets: tuple[str, ...], run_id: str | None,
             parent: str | None, description: str, move: bool, upload: bool, no_wait: bool,
             signature: Path | None) -> None:
    """Register the file or folder PATH as a new version of model NAME."""
    validate_name(name)
    for ds in datasets + eval_datasets:
        parse_dataset_ref(ds)
    if parent:
        parse_ref(parent)
    metadata: dict[str, Any] = {
        "metrics": _numbers(metrics), "params": _pairs(params, "param"), "tags": _pairs(tags, "tag"),
        "datasets": [{"ref": d, "relation": "trained_on"} for d in datasets]
        + [{"ref": d, "relation": "evaluated_on"} for d in eval_datasets],
        "run": run_id, "parent": parent, "description": description, "source": "cli",
    }
    c = ctx.client()
    path = path.absolute()
    total = sum(p.stat().st_size for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file())
    show_bar = not ctx.as_json
    # A named token uploads: reading a path on the daemon's machine needs admin (docs/security.md).
    named = (c.token or "").startswith(NAMED_TOKEN_PREFIX)
    if upload or named or not _daemon_is_local(ctx):
        if move:
            raise InvalidInput("--move works only with a daemon on this machine"
                               + (" and the home's token (a named token uploads the files)" if named else ""))
        if signature is not None:  # uploaded first; the daemon leaves it out of the files if it is one of them
            metadata["signature"] = c.upload_blob(signature)["sha256"]
        try:
            with progress(total, f"uploading {path.name}", show_bar) as advance:
                # Large files go resumably: a dropped connection is retried, and said so on stderr.
                result = c.upload_and_register(name, path, progress=advance, notify=_tell, **metadata)
        except KeyboardInterrupt:
            # The daemon drops the half-sent blob (with the connection, or the aborted upload); nothing registered.
            err.line(f"cancelled: upload of {path.name} (nothing registered)")
            raise click.exceptions.Exit(INTERRUPTED) from None
    else:
        if signature is not None:  # the daemon reads it (and leaves it out of the files if it is one of them)
            metadata["signature_path"] = str(signature.absolute())
        try:
            result = c.register(name, path=path, move=move, **metadata)
        except KeyboardInterrupt:
            # Still reading the files: the daemon cancels a job whose client has gone.
            err.line(f"cancelled: {name} (nothing registered)")
            raise click.exceptions.Exit(INTERRUPTED) from None
        job = result.get("job")
        ref = f"{name}@{result['version']['version']}"
        if job and not no_wait:
            try:
                with progress(job["total"], f"hashing {path.name}", show_bar) as advance:
                    while job["state"] == "running":
                        time.sleep(0.1)
                        job = c.job(job["id"])
                        advance(job["done"], absolute=True)
            except KeyboardInterrupt:
                _cancel(c, job["id"], ref)
            result = {"version": c.version(ref), "job": job}
            if job["state"] == "failed":
                exc = from_envelope(422, {"error": job["error"]})  # keeps the error's exit code
                exc.message = f"{ref} failed: {exc.message}"
                raise exc
            if job["state"] == "cancelled":
                raise ModelregError(f"{ref} was cancelled")
    v = result["version"]
    if ctx.as_json:
        return emit_json(v)
    how = ""
    job = result.get("job")
    if job and job.get("result"):
        methods = job["result"].get("methods", [])
        how = " (same bytes as an earlier version: stored once)" if methods == ["dedup"] else ""
    out.line("registered ", Span(f"{v['model']}@{v['version']}", "bold"),
             f" · {v['status']} · {v['file_count']} file(s), {size(v['total_size'])}{how}")
    if v.get("signature"):
        sig = v["signature"]
        out.line("  ", Span(sig["message"], "green" if sig["status"] == "signed" else "bold red"))


def _tell(text: str) -> None:
    """An upload's interruptions and resumes, on stderr (the bar, when shown, stays below)."""
    err.line(Span(text, "dim"))


def _cancel(c: Any, job_id: str, ref: str) -> None:
    """Ctrl-C while the daemon stores the files: cancel its job, wait (bounded) for it to end, exit 130."""
    try:
        # An exchange cut by Ctrl-C dropped its connection; this one opens a fresh one.
        job = c.cancel_job(job_id, wait=CANCEL_WAIT_S)
    except KeyboardInterrupt:
        job = {"state": "running"}  # a second Ctrl-C: stop waiting; the daemon still cancels it
    if job.get("state") == "done":
        err.line(f"registered {ref} before the cancel arrived")
    else:
        err.line(f"cancelled: {ref}")
    raise click.exceptions.Exit(INTERRUPTED)


COMMANDS = [register]
