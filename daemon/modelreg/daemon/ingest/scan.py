"""Scanning a watched folder: what each top-level entry holds and whether it looks finished.

Events are only hints; these scans are the truth. Everything here blocks (runs in a thread).
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

SUCCESS_MARKER = "_SUCCESS"
SIDECARS = ("modelreg.toml", "modelreg.json", "modelreg.yaml", "modelreg.yml")
SIGNATURE_BUNDLE = "model.sig"  # at a folder drop's root: its OpenSSF Model Signing bundle (issue 12)
# Names writers use while a file is incomplete: the one table the scan (never take one) and the
# watcher (a temp name renamed to a final one) both read. Longer prefixes first: ".syncthing."
# before "." (dotfiles, rsync's ".x.safetensors.Ab12Cd", vim's ".x.swp").
TEMP_PREFIXES = ("~syncthing~", ".syncthing.", ".")
TEMP_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".swp", "~")
_TEMP_DIRS = ("_temporary",)
MAX_FILES = 100_000


def is_temporary(name: str) -> bool:
    """Names writers use while a file is incomplete (and dotfiles): never taken."""
    return name.startswith(TEMP_PREFIXES) or name.endswith(TEMP_SUFFIXES)


def temp_base(name: str) -> str:
    """A temporary name without its temp prefix and suffix (one of each): what the finished
    file is called, give or take an extension. ``x.part`` → ``x``; ``.x.safetensors.Ab12Cd``
    → ``x.safetensors.Ab12Cd``; ``~syncthing~x.tmp`` → ``x``."""
    base = name
    prefix = next((p for p in TEMP_PREFIXES if base.startswith(p)), "")
    base = base[len(prefix):]
    suffix = next((s for s in TEMP_SUFFIXES if base.endswith(s)), "")
    return base[: len(base) - len(suffix)]


@dataclass
class EntryScan:
    name: str
    is_dir: bool
    files: list[tuple[str, int, int]] = field(default_factory=list)  # (relpath, size, mtime_ns)
    has_marker: bool = False
    has_temporary: bool = False
    renamed_in: bool = False   # ctime after the last write: moved or renamed in, not being written
    escapes: list[str] = field(default_factory=list)  # symlinks leading outside the drop
    error: str | None = None

    @property
    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for rel, size, mtime in sorted(self.files):
            h.update(f"{rel}\0{size}\0{mtime}\n".encode())
        h.update(b"marker" if self.has_marker else b"")
        return h.hexdigest()

    @property
    def payload(self) -> list[str]:
        """Files that make up the version (the marker, the sidecar and the signature bundle are not artifacts)."""
        return [rel for rel, _, _ in self.files if rel != SUCCESS_MARKER and rel not in SIDECARS
                and not (self.is_dir and rel == SIGNATURE_BUNDLE)]


def list_entries(folder: Path) -> list[str] | None:
    """Top-level entry names worth looking at; None when the folder itself is gone."""
    try:
        return sorted(n for n in os.listdir(folder) if not is_temporary(n) and n != SUCCESS_MARKER)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None


def scan_entry(folder: Path, name: str) -> EntryScan | None:
    """One entry's files, sizes and times; None when it vanished."""
    path = folder / name
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        target = Path(os.path.realpath(path))
        return EntryScan(name, False, escapes=[f"{name} → {target}"],
                         files=[(name, 0, st.st_mtime_ns)])
    if stat.S_ISREG(st.st_mode):
        return EntryScan(name, False, files=[(name, st.st_size, st.st_mtime_ns)],
                         renamed_in=st.st_ctime_ns > st.st_mtime_ns)
    if not stat.S_ISDIR(st.st_mode):
        return EntryScan(name, False, error=f"{name} is not a regular file or folder")
    scan = EntryScan(name, True, renamed_in=st.st_ctime_ns > st.st_mtime_ns)
    real_root = os.path.realpath(path)
    newest_child = 0
    try:
        for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
            rel_dir = os.path.relpath(dirpath, path)
            for d in list(dirnames):
                if d in _TEMP_DIRS:
                    scan.has_temporary = True
                full = os.path.join(dirpath, d)
                if os.path.islink(full):
                    dirnames.remove(d)
                    _check_link(scan, full, real_root, path)
            for f in filenames:
                full = os.path.join(dirpath, f)
                rel = f if rel_dir == "." else f"{rel_dir}/{f}".replace(os.sep, "/")
                if rel == SUCCESS_MARKER:
                    scan.has_marker = True
                if is_temporary(f):
                    scan.has_temporary = True
                    continue
                try:
                    fst = os.lstat(full)
                except FileNotFoundError:
                    scan.has_temporary = True  # changing under us: not finished
                    continue
                if stat.S_ISLNK(fst.st_mode):
                    if not _check_link(scan, full, real_root, path):
                        continue
                    fst = os.stat(full)
                newest_child = max(newest_child, fst.st_ctime_ns)
                scan.files.append((rel, fst.st_size, fst.st_mtime_ns))
                if len(scan.files) > MAX_FILES:
                    scan.error = f"{name} holds more than {MAX_FILES} files"
                    return scan
    except OSError as exc:
        scan.error = f"cannot read {name}: {exc.strerror}"
    # A folder renamed in has a ctime (the rename) after everything inside was written.
    scan.renamed_in = scan.renamed_in and newest_child <= st.st_ctime_ns
    return scan


def _check_link(scan: EntryScan, full: str, real_root: str, root: Path) -> bool:
    target = os.path.realpath(full)
    if target != real_root and not target.startswith(real_root + os.sep):
        scan.escapes.append(f"{os.path.relpath(full, root)} → {target}")
        return False
    return os.path.isfile(target)
