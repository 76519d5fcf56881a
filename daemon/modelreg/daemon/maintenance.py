"""``python -m modelreg.daemon.maintenance backup|restore|doctor|migrate``: work on a home's files (issue 11).

The CLI runs this (it never imports the daemon's code): backup, restore and doctor read and
write the home's files directly, so they work the same with no daemon and beside a running one
(SQLite's online backup is a WAL reader, which never blocks the daemon's writer). What needs
the home to itself (restore, ``doctor --fix``) takes the daemon's lock. Prints one JSON
document on stdout: the result, or the error envelope with the error's exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from modelreg.shared.config import default_home
from modelreg.shared.errors import InvalidInput, ModelregError

from .services import backup, doctor
from .store import open_store


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="modelreg-maintenance", description=__doc__.splitlines()[0])
    p.add_argument("--home", type=Path, default=None, help="registry home (default: $MODELREG_HOME)")
    p.add_argument("--progress", action="store_true",
                   help='report the bytes copied on stderr, one JSON line each: {"done": N, "total": M}')
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("backup", help="back the home up into DEST (a new or empty folder)")
    b.add_argument("dest", type=Path)
    b.add_argument("--include-token", action="store_true", help="also copy the admin token")
    r = sub.add_parser("restore", help="restore the backup SRC into the home (new or empty)")
    r.add_argument("src", type=Path)
    d = sub.add_parser("doctor", help="check the home; --fix repairs what is safe")
    d.add_argument("--fix", action="store_true")
    m = sub.add_parser("migrate", help="copy the home's registry into PostgreSQL (and its blobs into S3)")
    # The URL may hold a password: the CLI hands it over in the environment, out of `ps`.
    m.add_argument("--to", default=os.environ.get("MODELREG_MIGRATE_TO"),
                   help="postgresql://… of an empty database (default: $MODELREG_MIGRATE_TO)")
    m.add_argument("--artifacts", default=None, help="s3://bucket/prefix for the blobs")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    home = (args.home or default_home()).expanduser().absolute()
    progress = _report_progress if args.progress else None
    if args.command == "migrate":  # its source is the home's SQLite even when MODELREG_DATABASE names the target
        from .services import migrate  # asyncpg and botocore load only here

        return migrate.run(home, args.to, args.artifacts, progress=progress)
    # The database the daemon would open (MODELREG_DATABASE may put it outside the home).
    store = open_store(os.environ.get("MODELREG_DATABASE") or None, home)
    if store.backend != "sqlite":
        instead = {"backup": "back it up with pg_dump and the bucket's own versioning or replication",
                   "restore": "restore it with pg_restore and the bucket's copy",
                   "doctor": "check it with `modelreg verify` and `modelreg audit verify` through a daemon"}
        raise InvalidInput(f"modelreg {args.command} works on an embedded registry (SQLite and the home's blobs); "
                           f"this one is in {store.backend} ({store.where}): {instead[args.command]} "
                           "(docs/team.md#backups)")
    db_path = store.engine.path
    if args.command == "backup":
        return backup.backup(home, db_path, args.dest, include_token=args.include_token, progress=progress)
    if args.command == "restore":
        return backup.restore(args.src, home, progress=progress)
    return doctor.run(home, db_path, fix=args.fix)


def _report_progress(done: int, total: int) -> None:
    sys.stderr.write(json.dumps({"done": done, "total": total}) + "\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result, code = run(args), 0
    except ModelregError as exc:
        result, code = exc.envelope(), exc.exit_code
    except OSError as exc:  # a full disk, a folder we may not write: said plainly, no traceback
        where = f" ({exc.filename})" if exc.filename else ""
        result, code = ModelregError(f"{args.command} failed: {exc.strerror or exc}{where}").envelope(), 1
    except Exception as exc:  # noqa: BLE001 - the user gets a message, never a traceback
        result, code = ModelregError(f"{args.command} failed: {type(exc).__name__}: {exc}").envelope(), 1
    sys.stdout.write(json.dumps(result, default=str) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
