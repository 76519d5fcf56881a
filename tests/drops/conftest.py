"""Fixtures for the drop-folder tests: a client for the real daemon process, and drop folders.

``home``, ``daemon`` and ``modelreg`` come from ``tests/conftest.py`` (a real
``python -m modelreg.daemon`` over a real SQLite file, and the real CLI).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from drops_support import Registry


@pytest.fixture
def reg(daemon) -> Iterator[Registry]:
    r = Registry(daemon)
    yield r
    r.close()


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    """A folder to watch (on the same filesystem as the registry home, as move mode expects)."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder
