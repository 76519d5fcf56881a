"""migrate: move the home's embedded registry to the team backends (issue 13, docs/team.md).

It reads the home's files and needs the home to itself, so it runs in the daemon package's
maintenance process on this machine (``python -m modelreg.daemon.maintenance migrate``), as
backup and restore do; the CLI never imports the daemon.
"""

from __future__ import annotations

import os

import click

from .backup_cmds import _maintenance
from .context import Context, json_option, pass_ctx
from .render import Span, emit_json, out, plural, size

MIGRATE_HELP = """Copy this home's registry into PostgreSQL (and its files into S3), and verify the copy.

\b
The daemon must be stopped. The database must be new and empty (CREATE DATABASE …); its
schema is created, then every table is copied in one transaction (ids, the audit chain and
its head kept), checked (row counts, `audit verify` over the copied log) and only then
committed: all rows or none. With --artifacts every blob the registry references is uploaded
first (credentials and endpoint from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_ENDPOINT_URL_S3), skipping blobs already there, so a run that failed is finished by running
it again; then each is checked in the bucket. Prints the MODELREG_DATABASE and
MODELREG_ARTIFACTS to give the daemons. The home itself is left as it was.
"""


@click.command(help=MIGRATE_HELP)
@click.option("--to", "to", required=True, metavar="postgresql://…",
              help="The target database, postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE (PGPASSWORD works too).")
@click.option("--artifacts", default=None, metavar="s3://BUCKET/PREFIX",
              help="Also upload the blobs into this bucket (which must exist).")
@json_option
@pass_ctx
def migrate(ctx: Context, to: str, artifacts: str | None) -> None:
    os.environ["MODELREG_MIGRATE_TO"] = to  # inherited by the maintenance process: a password stays out of `ps`
    r = _maintenance(ctx, "migrate", *(["--artifacts", artifacts] if artifacts else []), label="uploading blobs")
    if ctx.as_json:
        return emit_json(r)
    again = " (the rows were already there: blobs finished and checked)" if r["resumed"] else ""
    out.line(Span("migrated", "green"), f" {r['source']} to {r['database']}{again}: {plural(r['tables'], 'table')}, "
             f"{plural(r['rows'], 'row')}, audit chain intact ({plural(r['chain']['checked'], 'event')}), "
             f"{plural(r['blobs'], 'blob')} ({size(r['bytes'])})"
             + (f" in {r['artifacts']} ({r['uploaded']} uploaded)" if r["artifacts"] else " left in the home")
             + f", {r['seconds']:.1f} s")
    out.line("Give every daemon of the team these variables"
             + (" (and the AWS_* ones this run used):" if r["artifacts"] else ":"))
    for name, value in r["env"].items():
        out.line(f"  {name}={value}")
    if not r["artifacts"]:
        out.line(Span("without --artifacts the files stay in this home's blobs/: only a daemon on this home "
                      "can serve them", "dim"))


COMMANDS = [migrate]
