"""Generated relative paths wherever the daemon takes one (issue 11, acceptance 2; PRODUCT.md §10).

A registration's ``files``, an MLflow artifact path, a version file to download: hypothesis builds
paths from the parts that have broken path handling before (``..``, ``.``, empty parts, absolute,
backslashes, NUL and other control characters, non-UTF-8 bytes, 1024+ characters) and the
daemon must answer as docs/api.md says ("artifact path": relative POSIX, at most 1024
characters, no leading ``/``, no ``\\``, no NUL, no empty, ``.`` or ``..`` part, no part over 255
bytes): taken when the
path is valid, a 4xx when not, and never a byte written or read outside the home. Registration
by ``path`` of things that are not files (a FIFO, a device, a symlink out of the folder, a name
that is not UTF-8) is refused too, without hanging.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, note
from hypothesis import strategies as st

from daemon_process import start_daemon
from hostile_support import Reply, Wire, budget, no_traceback, seed_note, segment

__all__ = ["seed_note"]

PARTS = ["..", ".", "", "a", "b.bin", "é", "\\", "a\\..", "\x00", "\x01", "\n", "%2e%2e", "x" * 300, "..a", "a..",
         " ", "~", "$HOME", "_registry"]
SECRET = b"outside the home: never served, never overwritten"
BLOB = b"model bytes for the hostile path tests"


def documented_valid(path: str) -> bool:
    """docs/api.md, "artifact path", spelled out here (not imported) so the test checks the code."""
    return (0 < len(path) <= 1024 and not path.startswith("/") and "\\" not in path and "\x00" not in path
            and all(part not in ("", ".", "..") and len(part.encode("utf-8", "surrogatepass")) <= 255
                    for part in path.split("/")))


PATHS = st.one_of(
    st.lists(st.sampled_from(PARTS), min_size=1, max_size=6).map("/".join),
    st.lists(st.sampled_from(PARTS), min_size=1, max_size=3).map(lambda p: "/" + "/".join(p)),
    st.text(max_size=30),
    st.integers(1000, 1100).map(lambda n: "a/" * (n // 2) + "b"[: n % 2]),
)


class Box:
    """One daemon, its home, and a folder beside the home that must stay exactly as it was."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.daemon = start_daemon(root / "home")
        self.home = self.daemon.home
        self.wire = Wire(self.daemon.url, self.daemon.token)
        self.uploads = 0
        self.outside = root / "outside"
        self.outside.mkdir()
        (self.outside / "secret.txt").write_bytes(SECRET)
        r = self.wire.send("POST", "/v1/blobs", BLOB, {"Content-Type": "application/octet-stream"})
        assert r.status == 201, r.body
        self.sha = hashlib.sha256(BLOB).hexdigest()
        r = self.wire.json("POST", "/v1/models/paths/versions?wait=1",
                           {"files": [{"path": "model.bin", "sha256": self.sha, "size": len(BLOB)}]})
        assert r.status == 201, r.body

    def outside_state(self) -> dict[str, bytes]:
        """Every file under the test's root but outside the home, with its content."""
        found = {}
        for dirpath, dirnames, names in os.walk(self.root):
            if Path(dirpath) == self.root:
                dirnames[:] = [d for d in dirnames if d != "home"]
            for name in names:
                path = Path(dirpath, name)
                found[str(path.relative_to(self.root))] = path.read_bytes()
        return found

    def inside_only(self) -> None:
        """Nothing in the home points out of it (a symlink written from a generated path)."""
        home = self.home.resolve()
        for dirpath, dirnames, names in os.walk(self.home):
            for name in names + dirnames:
                path = Path(dirpath, name)
                if path.is_symlink():
                    assert Path(os.path.realpath(path)).is_relative_to(home), f"{path} -> {os.readlink(path)}"


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory):
    b = Box(tmp_path_factory.mktemp("hostile-paths"))
    yield b
    b.wire.close()
    b.daemon.stop()
    log = (b.home / "test-daemon.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-5000:]


def answer(box: Box, reply: Any, valid: bool, before: dict[str, bytes], generated: bool = True) -> None:
    if generated:
        note(f"-> {reply.status}: {reply.body[:300]!r}")
    no_traceback(reply)
    assert reply.status < 500, reply.body[:500]
    if valid:
        assert reply.status in (200, 201), reply.body[:500]
    else:
        assert 400 <= reply.status < 500, f"an invalid path was taken: {reply.status} {reply.body[:300]!r}"
    assert box.outside_state() == before, "a request wrote or changed a file outside the home"
    box.inside_only()


@budget(80)
@given(path=PATHS)
@example(path="../outside/secret.txt")
@example(path="a/../../b")
@example(path="/etc/passwd")
@example(path="x" * 1025)
@example(path="a\\..\\..\\b")
@example(path="x" * 300)  # was a 500: ENAMETOOLONG laying the file out for the sniffers
def test_registration_files_paths(box: Box, path: str) -> None:
    before = box.outside_state()
    r = box.wire.json("POST", "/v1/models/paths/versions?wait=1",
                      {"files": [{"path": path, "sha256": box.sha, "size": len(BLOB)}]})
    answer(box, r, documented_valid(path), before)


@budget(60)
@given(raw=st.binary(min_size=1, max_size=20))
@example(raw=b"\xff.bin")
@example(raw=b"a/\xc0\xaf../b")
def test_registration_files_paths_that_are_not_utf8(box: Box, raw: bytes) -> None:
    """msgpack can carry a str whose bytes are not UTF-8 (0xa? + raw bytes)."""
    import msgpack

    body = msgpack.packb({"files": [{"path": "PLACEHOLDER", "sha256": box.sha, "size": len(BLOB)}]})
    body = body.replace(b"\xabPLACEHOLDER", bytes([0xA0 | len(raw)]) + raw)  # a fixstr: at most 31 bytes
    try:
        valid = documented_valid(raw.decode("utf-8"))
    except UnicodeDecodeError:
        valid = False
    before = box.outside_state()
    r = box.wire.send("POST", "/v1/models/paths/versions?wait=1", body, {"Content-Type": "application/msgpack"})
    answer(box, r, valid, before)


def mlflow_valid(path: str) -> bool:
    """The artifact path rule plus MLflow's: no control characters; _registry/ is read-only."""
    return documented_valid(path) and not any(ord(c) < 32 for c in path) and path.split("/")[0] != "_registry"


@budget(80)
@given(path=PATHS, data=st.binary(max_size=64))
@example(path="../../outside/secret.txt", data=b"overwritten")
@example(path="a/%2e%2e/%2e%2e/b", data=b"x")
def test_mlflow_artifact_paths(box: Box, path: str, data: bytes) -> None:
    # Each example in a folder of its own ("a" may not be a file and a folder at once), unless it
    # is the first part that matters (absolute, empty, _registry/).
    box.uploads += 1
    if not path.startswith(("/", "_registry")) and path:
        path = f"t{box.uploads}/{path}"
    before = box.outside_state()
    r = box.wire.send("PUT", "/api/2.0/mlflow-artifacts/artifacts/" + segment(path, slashes=True), data,
                      {"Content-Type": "application/octet-stream"})
    answer(box, r, mlflow_valid(path), before)
    if mlflow_valid(path):
        back = box.wire.send("GET", "/api/2.0/mlflow-artifacts/artifacts/" + segment(path, slashes=True))
        if back.status == 307:  # artifacts in S3: the bytes come from the presigned URL, fetched without the token
            with urllib.request.urlopen(back.headers["location"], timeout=60) as got:
                back = Reply(got.status, dict(got.headers), got.read())
        assert back.status == 200 and back.body == data


@budget(60)
@given(path=PATHS)
@example(path="../../../outside/secret.txt")
@example(path="..%2F..%2F..%2Foutside%2Fsecret.txt")
def test_version_file_downloads_stay_inside(box: Box, path: str) -> None:
    r = box.wire.send("GET", "/v1/models/paths/versions/1/files/" + segment(path, slashes=True))
    no_traceback(r)
    assert r.status < 500 and SECRET not in r.body
    assert r.status != 200 or (path == "model.bin" and r.body == BLOB), (path, r.status, r.body[:200])


# -- registration by path of things that are not files -----------------------------------------------


def _fifo(folder: Path) -> Path:
    os.mkfifo(folder / "pipe")
    return folder / "pipe"


def _folder_with(folder: Path, make) -> Path:  # noqa: ANN001
    inner = folder / "drop"
    inner.mkdir()
    (inner / "model.bin").write_bytes(BLOB)
    make(inner)
    return inner


SPECIAL: dict[str, Any] = {
    "fifo": _fifo,
    "device": lambda f: Path("/dev/zero"),
    "folder-with-fifo": lambda f: _folder_with(f, lambda d: os.mkfifo(d / "pipe")),
    "folder-with-link-out": lambda f: _folder_with(f, lambda d: os.symlink("/etc", d / "etc")),
    "folder-with-file-link-out": lambda f: _folder_with(f, lambda d: os.symlink(f.parent / "outside" / "secret.txt",
                                                                                  d / "s")),
    "folder-with-loop": lambda f: _folder_with(f, lambda d: os.symlink(d / "loop", d / "loop")),
    "folder-with-non-utf8-name": lambda f: _folder_with(f, lambda d: (d / os.fsdecode(b"\xff.bin")).write_bytes(b"x")),
    "nul": lambda f: str(f) + "/a\x00b",
    "relative": lambda f: "model.bin",
    "over-long": lambda f: "/" + "a" * 5000,
    "the-home": lambda f: f.parent / "home",
    "the-database": lambda f: f.parent / "home" / "registry.db",
}


@pytest.mark.parametrize("case", sorted(SPECIAL))
def test_registration_by_path_refuses_what_is_not_a_model(box: Box, tmp_path: Path, case: str) -> None:
    folder = tmp_path / case
    folder.mkdir()
    (folder.parent / "outside").mkdir(exist_ok=True)
    (folder.parent / "outside" / "secret.txt").write_bytes(SECRET)
    target = SPECIAL[case](folder)
    before = box.outside_state()
    r = box.wire.json("POST", "/v1/models/paths/versions?wait=1", {"path": str(target)})
    answer(box, r, False, before, generated=False)
