"""import mlflow: copy a running MLflow server's model registry into modelreg."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import click

from .context import Context, json_option, pass_ctx
from .render import Span, emit_json, err, out, plural, size

IMPORT_HELP = """Copy the model registry of the MLflow server at URL into modelreg.

\b
Copies registered models (description, tags), READY versions (number kept where possible,
description, tags, run with its params and metrics, files byte for byte), aliases and stages.
Each version records its origin, mlflow:URL/NAME/VERSION, in its lineage; a second run copies
only what is new and applies what changed (tags, descriptions, moved aliases, stages).

Stages and aliases are applied FORCED, past any gate, with the audited reason "imported from
mlflow at URL": an import reproduces the registry, it does not re-decide its promotions.
MLflow may hold several Production versions of a model; modelreg keeps one (the most recently
changed) and archives the others. Nothing is ever deleted in modelreg.

A version whose files live elsewhere (an s3:// source) becomes a reference version without
files, as MLflow holds it. Versions that are not READY are listed and skipped. Exit 0 when
everything was copied, 1 with the failures listed.
The MLflow server needs no credentials, a token (--token, MLFLOW_TRACKING_TOKEN), or basic
auth (MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD).
"""


@click.group("import")
def import_group() -> None:
    """Bring models in from another registry."""


@import_group.command("mlflow", help=IMPORT_HELP)
@click.option("--from", "source_url", required=True, metavar="URL", help="The MLflow tracking server, e.g. http://mlflow:5000.")
@click.option("--token", envvar="MLFLOW_TRACKING_TOKEN", default=None, show_envvar=True, metavar="TOKEN",
              help="Bearer token for the MLflow server.")
@click.option("--models", "pattern", default=None, metavar="GLOB", help="Only models whose name matches, e.g. 'fraud*'.")
@click.option("--dry-run", is_flag=True, help="Say what would be copied; change nothing.")
@json_option
@pass_ctx
def import_mlflow(ctx: Context, source_url: str, token: str | None, pattern: str | None, dry_run: bool) -> None:
    from modelreg.shared.mlflow_rest import MlflowRest

    from .mlflow_import import Importer

    mlflow = MlflowRest(source_url, token=token)
    mlflow.check()  # an unreachable or wrong URL fails before a daemon is started
    client = ctx.client()
    with _bar(not ctx.as_json) as progress:
        summary = Importer(mlflow, client, models=pattern, dry_run=dry_run, progress=progress).run()
    if ctx.as_json:
        emit_json(summary.as_dict())
    else:
        _report(summary)
    if summary.failures:
        raise click.exceptions.Exit(1)


def _report(s: Any) -> None:
    for line in s.notes:
        out.line(Span("note:", "yellow"), " ", line)
    for line in s.failures:
        out.line(Span("failed:", "bold red"), " ", line)
    would = "would copy" if s.dry_run else "copied"
    out.line(Span(f"{'dry run: ' if s.dry_run else ''}import from {s.source}", "bold"))
    out.line(f"  models    {s.models} ({s.models_created} new)")
    out.line(f"  versions  {s.copied} {would}, {s.present} already here, {s.skipped} skipped (not READY)")
    if s.failures:
        out.line(Span(f"  failures  {len(s.failures)} (listed above)", "bold red"))
    done = "to apply" if s.dry_run else "applied"
    out.line(f"  aliases   {s.aliases} {'to set' if s.dry_run else 'set'} · stages {s.stages} {done} · "
             f"{plural(s.updated, 'update')} of tags or descriptions {done}")
    out.line(f"  bytes     {size(s.bytes)}")


@contextmanager
def _bar(enabled: bool):
    """A rich progress bar on stderr, on a terminal only: versions done, current version, bytes."""
    from .mlflow_import import Progress

    if not enabled or not err.is_terminal:
        yield Progress()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn

    with Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("versions ·"),
             TextColumn("{task.fields[moved]}"), console=err.console(), transient=True) as bar:
        task = bar.add_task("reading the MLflow registry", total=None, moved="0 B")
        moved = [0]

        class Shown(Progress):
            def start(self, versions: int) -> None:
                bar.update(task, total=versions)

            def version(self, label: str) -> None:
                bar.update(task, description=label)

            def advance(self) -> None:
                bar.advance(task)

            def bytes(self, n: int) -> None:
                moved[0] += n
                bar.update(task, moved=size(moved[0]))

        yield Shown()


COMMANDS = [import_group]
