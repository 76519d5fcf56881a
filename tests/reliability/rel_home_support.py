"""Shared by the upgrade, backup and doctor tests (issue 11): the committed fixture home and
small readers of a home's files."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

# A registry written by the release before issue 11 (tests/fixtures/build_registry_fixture.py).
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "registry_schema8"
FIXTURE_SCHEMA = 8


def copy_fixture(home: Path) -> Path:
    shutil.copytree(FIXTURE, home)
    return home


def schema_of(db: Path) -> tuple[int, list[tuple[str, str, str]]]:
    """user_version and every schema object (type, name, sql) of a database file."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        objects = conn.execute("SELECT type, name, coalesce(sql, '') FROM sqlite_master ORDER BY type, name").fetchall()
    finally:
        conn.close()
    return version, objects


def as_json(result) -> dict:
    assert result.returncode == 0, f"exit {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout)
