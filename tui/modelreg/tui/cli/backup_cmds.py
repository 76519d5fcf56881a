"""backup, restore, doctor: copies of a registry home, and what is wrong with one (issue 11).

They work on the home's files, so they run in the daemon package's maintenance process on
this machine (``python -m modelreg.daemon.maintenance``; the CLI never imports the daemon):
the same with no daemon as beside a running one, and never through ``--url``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from modelreg.shared.errors import ModelregError

from .context import Context, json_option, pass_ctx
from .render import Span, emit_json, err, out, plural, progress, size, table


def _maintenance(ctx: Context, *args: str, label: str | None = None) -> dict[str, Any]:
    """Run one maintenance command on the home; its JSON result, or its error raised here.

    With ``label``, a terminal shows a progress bar of the bytes it copies (its stderr lines).
    """
    import json
    import os
    import subprocess
    import tempfile
    from contextlib import ExitStack

    from modelreg.shared.errors import from_envelope

    show = label is not None and not ctx.as_json and err.is_terminal
    env = {**os.environ, "MODELREG_HOME": str(ctx.home)}
    command = [sys.executable, "-m", "modelreg.daemon.maintenance", *(["--progress"] if show else []), *args]
    other: list[str] = []
    # stdout to a file: the child may write a large report while this reads its stderr.
    with tempfile.TemporaryFile("w+") as stdout:
        proc = subprocess.Popen(command, env=env, text=True, stdin=subprocess.DEVNULL, stdout=stdout,
                                stderr=subprocess.PIPE)
        assert proc.stderr is not None
        with ExitStack() as bar:
            advance = None
            for line in proc.stderr:
                try:
                    step = json.loads(line)
                    done, total = int(step["done"]), int(step["total"])
                except (ValueError, KeyError, TypeError):
                    other.append(line)
                    continue
                if advance is None:  # the first report carries the total
                    advance = bar.enter_context(progress(total, label or "", show))
                advance(done, absolute=True)
        code = proc.wait()
        stdout.seek(0)
        text = stdout.read()
    try:
        doc = json.loads(text)
    except ValueError:
        raise ModelregError(f"modelreg {args[0]} stopped (exit {code}) without a report: "
                            f"{''.join(other).strip()[-500:] or 'no message'}") from None
    if code != 0:
        raise from_envelope(0, doc)
    return doc


@click.command()
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--include-token", is_flag=True, help="Also copy the admin token (the backup then grants admin access).")
@json_option
@pass_ctx
def backup(ctx: Context, dest: Path, include_token: bool) -> None:
    """Back the registry up into DEST (a new or empty folder), also while the daemon serves writes.

    DEST gets the database (one consistent snapshot), exactly the blobs it records (re-hashed
    as they are copied) and backup.json, written last. The token only with --include-token.
    """
    r = _maintenance(ctx, "backup", str(dest.absolute()), *(["--include-token"] if include_token else []),
                     label="backing up")
    if ctx.as_json:
        return emit_json(r)
    out.line(Span("backed up", "green"), f" {ctx.home} to {r['path']}: {plural(r['ready_versions'], 'ready version')}, "
             f"{plural(r['blobs'], 'blob')} ({size(r['bytes'])}) re-hashed, events up to #{r['last_event']}, "
             f"schema {r['schema']}")
    if not r["token"]:
        out.line(Span("the token is not in the backup (--include-token adds it); a restored home makes a new one", "dim"))


@click.command()
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@json_option
@pass_ctx
def restore(ctx: Context, src: Path) -> None:
    """Restore the backup SRC into --home DIR, which must be new or empty (nothing is overwritten).

    Every blob is re-hashed on the way, an older backup's schema is migrated, the serving links
    are rebuilt, and the audit chain and the database's integrity are checked (exit 1 if not sound).
    """
    r = _maintenance(ctx, "restore", str(src.absolute()), label="restoring")
    chain = r["audit"]
    if ctx.as_json:
        emit_json(r)
    else:
        migrated = f", schema {r['backup_schema']} migrated to {r['schema']}" if r["backup_schema"] != r["schema"] else ""
        out.line(Span("restored", "green"), f" {r['from']} into {r['home']}: {plural(r['ready_versions'], 'ready version')}, "
                 f"{plural(r['blobs'], 'blob')} ({size(r['bytes'])}) re-hashed, "
                 f"{plural(r['serving_links'], 'serving link')}{migrated}")
        for problem in r["database_problems"]:
            out.line(Span("database", "red"), f": {problem}")
        if chain["ok"]:
            out.line(Span("ok", "green"), f": audit chain intact ({plural(chain['checked'], 'event')})")
        else:
            out.line(Span("broken", "red"), f": audit chain: {chain['message']} (first bad event: {chain['first_bad_id']})")
        if not r["token"]:
            out.line(Span("no token in the backup: the daemon makes a new one at its first start", "dim"))
    if not chain["ok"] or r["database_problems"]:
        sys.exit(1)


@click.command()
@click.option("--fix", is_flag=True, help="Apply the safe fixes (temp files, serving links, chmod); needs the daemon stopped.")
@json_option
@pass_ctx
def doctor(ctx: Context, fix: bool) -> None:
    """Check the home: database integrity and foreign keys, blobs, temp files, serving links,
    permissions; each finding with its fix (exit 1 while one remains)."""
    r = _maintenance(ctx, "doctor", *(["--fix"] if fix else []))
    if ctx.as_json:
        emit_json(r)
    else:
        for f in r["fixed"]:
            out.line(Span("fixed", "green"), f" [{f['check']}] {f['problem']}")
        looked = ", ".join(plural(n, word) for key, word in (("blobs", "blob"), ("serving_links", "serving link"),
                                                             ("temp_files", "temp file"))
                           if (n := r["checked"].get(key)) is not None)
        if r["ok"]:
            out.line(Span("ok", "green"), f": {r['home']} is healthy ({looked or 'nothing recorded yet'})")
        else:
            out.line(Span(f"{plural(len(r['findings']), 'finding')} in {r['home']}:", "bold red"))
            t = table("check", "problem", "fix")
            for f in r["findings"]:
                t.add_row(f["check"], f["problem"], f["fix"])
            out.table(t)
            if any(f["fixable"] for f in r["findings"]) and not fix:
                out.line(Span("`modelreg doctor --fix` applies the fixes marked as its own", "dim"))
        if r["daemon_running"]:
            out.line(Span("a daemon is running: temp files and unrecorded blobs newer than its start were not counted",
                          "dim"))
    if not r["ok"]:
        sys.exit(1)


COMMANDS = [backup, restore, doctor]
