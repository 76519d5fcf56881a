"""Drop folders take models, not notes (issue 8 item 9, PRODUCT.md §6): default ignore rules,
per-watch --include / --exclude, one drop.ignored event per entry content, never moved."""

from __future__ import annotations

import json
import os
from pathlib import Path

from daemon_process import start_daemon
from drops_support import Registry, write_safetensors
from modelreg.shared.errors import InvalidInput


def put(folder: Path, name: str, text: str) -> None:
    """Write a small file elsewhere and rename it in (a finished file, taken without the settle wait)."""
    tmp = folder / f".{name}.part"
    tmp.write_text(text)
    os.rename(tmp, folder / name)


def test_notes_logs_images_and_a_folder_of_docs_are_ignored_once_and_never_moved(daemon, reg, inbox, home, tmp_path):
    reg.watch(inbox, settle=0.5)
    put(inbox, "notes.txt", "hello\n")
    put(inbox, "README.md", "# about these drops\n")
    put(inbox, "train.log", "epoch 1 loss 0.3\n")
    put(inbox, "results.CSV", "auc\n0.9\n")
    (inbox / "plot.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "README.md").write_text("# a report\n")
    (docs / "curve.jpg").write_bytes(b"\xff\xd8\xff" + b"\0" * 100)
    os.rename(docs, inbox / "docs")
    # A model folder with a README is judged by its content: taken.
    model = tmp_path / "ranker"
    model.mkdir()
    write_safetensors(model / "model.safetensors", 1)
    (model / "README.md").write_text("# ranker\n")
    os.rename(model, inbox / "ranker")

    ignored_names = ["README.md", "docs", "notes.txt", "plot.png", "results.CSV", "train.log"]
    ignored = reg.wait_event("drop.ignored", timeout=20, count=len(ignored_names))
    assert sorted(e["data"]["entry"] for e in ignored) == ignored_names
    reasons = {e["data"]["entry"]: e["data"]["reason"] for e in ignored}
    assert "*.txt" in reasons["notes.txt"] and "*.log" in reasons["train.log"] and "*.csv" in reasons["results.CSV"]
    assert "only non-model files" in reasons["docs"] and "*.jpg" in reasons["docs"] and "*.md" in reasons["docs"]
    assert all(e["data"]["watch"] == str(inbox) for e in ignored)
    reg.entry_event("drop.registered", "ranker", timeout=20)
    assert [v["version"] for v in reg.versions("ranker")] == [1]
    assert reg.version("ranker@1")["facts"]["format"] == "safetensors"

    # Never moved, never registered, nothing in .failed/.
    assert sorted(os.listdir(inbox)) == sorted(ignored_names)
    assert reg.model_names() == ["ranker"]
    assert not reg.events("drop.failed")
    assert [e["data"]["entry"] for e in reg.events("drop.detected")] == ["ranker"]
    watch = reg.client.watches()[0]
    assert watch["drops"].get("ignored") == len(ignored_names)
    log = (home / "test-daemon.log").read_text()
    assert sum(f"drop {name} ignored" in log for name in ignored_names) == len(ignored_names)

    # A restart rescans everything: the same content is not reported again.
    reg.close()
    daemon.stop()
    d = start_daemon(home)
    r = Registry(d)
    try:
        after = r.last_event_id()
        write_safetensors(tmp_path / "late.safetensors", 2)
        os.rename(tmp_path / "late.safetensors", inbox / "late.safetensors")
        r.entry_event("drop.registered", "late.safetensors", timeout=20, after=after)
        assert r.events("drop.ignored", after=after) == []
        # New content under an ignored name is judged (and reported) again.
        put(inbox, "notes.txt", "hello again\n")
        again = r.entry_event("drop.ignored", "notes.txt", timeout=20, after=after)
        assert "*.txt" in again["data"]["reason"]
        assert (inbox / "notes.txt").read_text() == "hello again\n"
    finally:
        r.close()
        d.stop()


def test_include_and_exclude_globs_are_stored_shown_and_obeyed(daemon, reg, modelreg, inbox):
    out = modelreg("watch", "add", str(inbox), "--settle", "0.5", "--include", "*.safetensors",
                   "--include", "notes.txt", "--exclude", "skip*", check=True)
    assert "include *.safetensors notes.txt" in out.stdout and "exclude skip*" in out.stdout
    (listed,) = json.loads(modelreg("watch", "list", "--json", check=True).stdout)
    assert (listed["include"], listed["exclude"]) == (["*.safetensors", "notes.txt"], ["skip*"])
    table = modelreg("watch", "list", check=True).stdout
    assert "include *.safetensors notes.txt, exclude skip*" in table

    put(inbox, "notes.txt", "an explicit include beats the default ignore list\n")
    for name, seed in (("keep.safetensors", 1), ("skip-me.safetensors", 2)):
        write_safetensors(inbox.parent / name, seed)
        os.rename(inbox.parent / name, inbox / name)
    put(inbox, "model.onnx", "not matched by any include\n")

    reg.entry_event("drop.registered", "keep.safetensors", timeout=20)
    reg.entry_event("drop.registered", "notes.txt", timeout=20)
    ignored = {e["data"]["entry"]: e["data"]["reason"] for e in reg.wait_event("drop.ignored", timeout=20, count=2)}
    assert ignored == {"skip-me.safetensors": "matches --exclude skip*",
                       "model.onnx": "matches no --include (*.safetensors, notes.txt)"}
    assert sorted(os.listdir(inbox)) == ["model.onnx", "skip-me.safetensors"]
    assert sorted(reg.model_names()) == ["keep", "notes.txt"]


def test_bad_globs_are_refused(reg, inbox):
    for bad in (["a/b"], [""], "x" * 300, [3]):
        try:
            reg.watch(inbox, include=bad)
        except InvalidInput as exc:
            assert "glob" in exc.message
        else:
            raise AssertionError(f"include={bad!r} was accepted")
    assert reg.client.watches() == []
