"""doctor: what is wrong with a registry home, each finding with a one-line fix (issue 11).

Checks: the database (readable, schema, ``integrity_check``, ``foreign_key_check``); the blobs
(every recorded blob present with its size, every file a version or MLflow artifact names
recorded, blob files nothing records); temp files an interrupted write left; the serving links
(each points at its stage's version, whose folder is complete); the permissions of the home
(not world-writable) and of the token (0600).

``fix`` applies only what cannot lose data: removing temp files, rebuilding serving links
(materialised folders are hardlinks to blobs, rebuilt from the database), chmod. It needs the
home to itself (the daemon's lock): a running daemon's temp files are writes in flight. Without
``fix`` doctor runs beside a daemon too; then only temp files and unrecorded blob files older
than the daemon's start count, since newer ones may belong to a write in progress.
Everything here blocks; it runs in the maintenance process.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelreg.shared.config import LOCK_FILE, TOKEN_FILE
from modelreg.shared.errors import Conflict

from ..artifacts import serving
from ..artifacts.blobs import BlobStore
from ..lock import HomeLock
from ..store import maintenance
from .mlflow.artifacts import UPLOADS_DIR

RESTORE = "restore the latest backup into a new home (`modelreg restore BACKUP --home NEW`)"
Served = dict[str, dict[str, tuple[int, list[tuple[str, str]]] | None]]


@dataclass
class Finding:
    check: str
    problem: str
    fix: str
    repair: Callable[[], None] | None = field(default=None, repr=False)  # set: doctor --fix applies it

    def view(self) -> dict[str, Any]:
        return {"check": self.check, "problem": self.problem, "fix": self.fix, "fixable": self.repair is not None}


def run(home: Path, db_path: Path, *, fix: bool = False) -> dict[str, Any]:
    """Examine ``home`` (and repair what is safe when ``fix``); the report."""
    lock = HomeLock(home) if home.is_dir() else None
    try:
        if lock is not None:
            lock.acquire()
    except Conflict as exc:
        lock = None
        if fix:
            running = exc.message.split(";")[0].replace("another modelreg daemon", "a modelreg daemon", 1)
            raise Conflict(f"doctor --fix needs the home to itself, and {running}; stop it "
                           "(`modelreg daemon --stop`), then run `modelreg doctor --fix` again") from None
    daemon_started = None if lock is not None or not (home / LOCK_FILE).exists() else (home / LOCK_FILE).stat().st_mtime
    try:
        findings, checked = examine(home, db_path, daemon_started)
        fixed: list[dict[str, Any]] = []
        if fix and any(f.repair for f in findings):
            for f in findings:
                if f.repair is not None:
                    f.repair()
                    fixed.append(f.view())
            findings, checked = examine(home, db_path, None)  # what is left, seen afresh
    finally:
        if lock is not None:
            lock.release()
    return {"ok": not findings, "home": str(home), "daemon_running": daemon_started is not None, "checked": checked,
            "findings": [f.view() for f in findings], "fixed": fixed}


def examine(home: Path, db_path: Path, daemon_started: float | None) -> tuple[list[Finding], dict[str, int]]:
    """Every finding, and how many things of each kind were looked at."""
    findings: list[Finding] = []
    checked: dict[str, int] = {}
    if not home.is_dir():
        return [Finding("home", f"{home} does not exist", "start the daemon once (`modelreg daemon`) to create it")], checked
    findings += _permissions(home)
    blobs = BlobStore(home / "blobs")
    findings += _temp_files(home, blobs, daemon_started, checked)
    if not db_path.is_file():
        return findings, checked  # a home whose daemon never started: nothing recorded yet
    health = maintenance.database_health(db_path)
    findings += database_findings(health, db_path)
    if health.opened is None and health.schema is not None and 0 < health.schema <= health.latest:
        findings += _blobs(blobs, health, db_path, daemon_started, checked)
        findings += _serving(home, blobs, health.served, checked)
    return findings, checked


# -- the database ----------------------------------------------------------------------------------


def database_findings(h: maintenance.DatabaseHealth, path: Path) -> list[Finding]:
    """What is wrong with the database file itself: unreadable, too new, integrity, foreign keys."""
    if h.opened is not None:
        return [Finding("database", f"{path} cannot be read: {h.opened}", RESTORE)]
    out = []
    if h.schema is not None and h.schema > h.latest:
        out.append(Finding("database", f"{path} was written by a newer modelreg (schema {h.schema}; this one "
                                       f"knows up to {h.latest})", "upgrade modelreg; never open it with this one"))
    if h.integrity != ["ok"]:
        out += [Finding("integrity", f"integrity_check: {message}", RESTORE) for message in h.integrity]
    out += [Finding("foreign_keys", f"{n} row(s) of {table} name a row that does not exist", RESTORE)
            for table, n in sorted(h.foreign_keys.items())]
    return out


# -- blobs -----------------------------------------------------------------------------------------


def _blobs(blobs: BlobStore, h: maintenance.DatabaseHealth, db_path: Path, daemon_started: float | None,
           checked: dict[str, int]) -> list[Finding]:
    checked["blobs"] = len(h.blobs)
    missing, wrong_size = [], []
    for sha, size in h.blobs:
        try:
            actual = blobs.path(sha).stat().st_size
        except FileNotFoundError:
            missing.append((sha, size))
            continue
        if actual != size:
            wrong_size.append((sha, size, actual))
    users = maintenance.blob_users(db_path, [b[0] for b in missing + wrong_size] + h.unrecorded)
    out = [Finding("blobs", f"blob {sha[:16]}… ({size} bytes) is missing{_who(users[sha])}",
                   f"{RESTORE}, or register those versions again") for sha, size in missing]
    out += [Finding("blobs", f"blob {sha[:16]}… is {actual} bytes, the database says {size}{_who(users[sha])}",
                    f"`modelreg verify` names the versions; {RESTORE}") for sha, size, actual in wrong_size]
    out += [Finding("blobs", f"blob {sha[:16]}… is named{_who(users[sha])} but not recorded as stored", RESTORE)
            for sha in h.unrecorded]
    recorded = {sha for sha, _ in h.blobs}
    strays = [sha for sha in (blobs.iter_digests() if blobs.objects.is_dir() else [])
              if sha not in recorded and _before(blobs.path(sha), daemon_started)]
    if strays:
        total = sum(blobs.path(sha).stat().st_size for sha in strays)
        out.append(Finding("blobs", f"{len(strays)} blob file(s) ({total} bytes) that no version, artifact or upload "
                                    f"records, e.g. {strays[0][:16]}…",
                           "`modelreg gc` removes them (after a day's grace: a blob is stored before its record)"))
    return out


def _who(users: list[str]) -> str:
    if not users:
        return ""
    return " (held by " + ", ".join(users[:3]) + (f" and {len(users) - 3} more" if len(users) > 3 else "") + ")"


# -- temp files ------------------------------------------------------------------------------------


def _temp_files(home: Path, blobs: BlobStore, daemon_started: float | None, checked: dict[str, int]) -> list[Finding]:
    leftovers = []
    if blobs.tmp.is_dir():
        leftovers += list(blobs.tmp.iterdir())
    if (home / "versions").is_dir():
        leftovers += list((home / "versions").glob(".tmp-*"))
    if (home / "serving").is_dir():
        leftovers += [p for p in (home / "serving").glob("*/.*.*") if p.is_symlink()]
    if (home / UPLOADS_DIR).is_dir():
        leftovers += list((home / UPLOADS_DIR).iterdir())
    leftovers = [p for p in leftovers if _before(p, daemon_started)]
    checked["temp_files"] = len(leftovers)
    if not leftovers:
        return []

    def remove() -> None:
        for p in leftovers:
            if p.is_dir() and not p.is_symlink():
                serving.remove_tree(p)
            else:
                p.unlink(missing_ok=True)

    shown = ", ".join(str(p.relative_to(home)) for p in leftovers[:3]) + (", …" if len(leftovers) > 3 else "")
    return [Finding("temp_files", f"{len(leftovers)} temp file(s) left by an interrupted write: {shown}",
                    "`modelreg doctor --fix` removes them (so does the daemon's next start)", remove)]


def _before(path: Path, daemon_started: float | None) -> bool:
    """Whether ``path`` is surely not a running daemon's write in flight."""
    if daemon_started is None:
        return True
    try:
        return path.lstat().st_ctime < daemon_started
    except FileNotFoundError:
        return False


# -- serving links ---------------------------------------------------------------------------------


def _serving(home: Path, blobs: BlobStore, served: Served, checked: dict[str, int]) -> list[Finding]:
    out = []
    checked["serving_links"] = 0
    for model, stage, want in _expected_links(home, served):
        link = home / "serving" / model / stage
        checked["serving_links"] += 1
        problem = _link_problem(home, link, want)
        if problem:
            out.append(Finding("serving", f"serving/{model}/{stage} {problem}",
                               "`modelreg doctor --fix` rebuilds it from the database (so does the daemon's next start)",
                               lambda m=model: rebuild_serving(home, blobs, served, only=m)))
    return out


def _expected_links(home: Path, served: Served):
    """(model, stage, (number, files) or None) for every served model and every folder under serving/."""
    models = set(served)
    if (home / "serving").is_dir():
        models |= {p.name for p in (home / "serving").iterdir() if p.is_dir() and not p.name.startswith(".")}
    for model in sorted(models):
        for stage in maintenance.SERVED_STAGES:
            yield model, stage, served.get(model, {}).get(stage)


def _link_problem(home: Path, link: Path, want: tuple[int, list[tuple[str, str]]] | None) -> str | None:
    if want is None:
        return "points at a version no longer in that stage" if link.is_symlink() or link.exists() else None
    number, files = want
    folder = serving.version_dir(home, link.parent.name, number)
    if not link.is_symlink():
        return f"is missing (the stage's version is {number})"
    if os.path.realpath(link) != os.path.realpath(folder):
        return f"points at {os.readlink(link)}, not at version {number}"
    missing = [rel for rel, _ in files if not (folder / rel).is_file()]
    if missing:
        return f"leads to version {number}'s folder, which lacks {len(missing)} file(s), e.g. {missing[0]}"
    return None


def rebuild_serving(home: Path, blobs: BlobStore, served: Served, only: str | None = None) -> int:
    """Point every serving link at what the database says (``only``: one model's); how many now point."""
    pointed = 0
    for model, stage, want in _expected_links(home, served):
        if only is not None and model != only:
            continue
        target = None
        if want is not None:
            number, files = want
            folder = serving.version_dir(home, model, number)
            if folder.is_dir() and any(not (folder / rel).is_file() for rel, _ in files):
                serving.remove_tree(folder)  # incomplete: built again from the blobs
            target = serving.materialise(home, blobs, model, number, files)
            pointed += 1
        serving.point_serving(home, model, stage, target)
    return pointed


# -- permissions -----------------------------------------------------------------------------------


def _permissions(home: Path) -> list[Finding]:
    out = []
    mode = stat.S_IMODE(home.stat().st_mode)
    if mode & 0o002:
        out.append(Finding("permissions", f"the home {home} is world-writable (mode {mode:04o})",
                           f"`chmod o-w {home}` (doctor --fix does)", lambda: home.chmod(mode & ~0o022)))
    token = home / TOKEN_FILE
    if token.is_file():
        tmode = stat.S_IMODE(token.stat().st_mode)
        if tmode != 0o600:
            out.append(Finding("permissions", f"the token {token} has mode {tmode:04o}, not 0600"
                               + (": others can act as the admin" if tmode & 0o077 else ""),
                               f"`chmod 600 {token}` (doctor --fix does)", lambda: token.chmod(0o600)))
    return out
