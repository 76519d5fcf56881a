"""Which entries of a drop folder are models (PRODUCT.md §6): a watch's globs and the defaults.

Globs match a top-level entry's name, case-insensitively. ``--exclude`` always wins. With
``--include`` globs an entry must match one of them, and the defaults do not apply to it (an
explicit include is the user's word). Without them, obvious non-models are ignored: a file
named like text, a log, a spreadsheet or an image, and a folder holding nothing else. A
folder is judged by its content, so a model folder with a README is taken.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from fnmatch import fnmatchcase

from modelreg.shared.errors import InvalidInput

from .scan import EntryScan

NOT_MODELS = (
    "*.txt", "*.log", "*.out", "*.err", "*.md", "*.rst", "*.pdf", "*.doc", "*.docx", "*.html", "*.htm",
    "*.csv", "*.tsv", "*.xls", "*.xlsx", "*.ods",
    "*.png", "*.jpg", "*.jpeg", "*.gif", "*.bmp", "*.svg", "*.webp", "*.tif", "*.tiff",
)
MAX_GLOBS = 100
MAX_GLOB_LEN = 256


def _match(name: str, globs: tuple[str, ...]) -> str | None:
    lower = name.lower()
    return next((g for g in globs if fnmatchcase(lower, g.lower())), None)


def parse_globs(value: object, what: str) -> tuple[str, ...]:
    """A watch's --include / --exclude list from a request body."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or len(value) > MAX_GLOBS:
        raise InvalidInput(f"{what} must be a list of at most {MAX_GLOBS} glob patterns")
    for g in value:
        if not isinstance(g, str) or not g or len(g) > MAX_GLOB_LEN or "/" in g or "\x00" in g:
            raise InvalidInput(f"{what}: {g!r} is not a glob for an entry name (1-{MAX_GLOB_LEN} characters, no '/')")
    return tuple(dict.fromkeys(value))


@dataclass(frozen=True)
class DropFilter:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def ignored(self, scan: EntryScan) -> str | None:
        """Why the entry is not a model (naming the rule), or None when it is a drop to take."""
        glob = _match(scan.name, self.exclude)
        if glob:
            return f"matches --exclude {glob}"
        if self.include:
            if _match(scan.name, self.include):
                return None
            return f"matches no --include ({', '.join(self.include)})"
        if not scan.is_dir:
            glob = _match(scan.name, NOT_MODELS)
            return f"not a model file (default ignore rule {glob}; --include it to take it)" if glob else None
        payload = scan.payload
        globs = [_match(posixpath.basename(rel), NOT_MODELS) for rel in payload]
        if payload and all(globs):
            return (f"a folder holding only non-model files (default ignore rules {', '.join(sorted(set(globs)))}; "
                    "--include it to take it)")
        return None
