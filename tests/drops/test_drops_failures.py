"""Drops that cannot be registered end in DIR/.failed/ with a readable reason (issue 4, acceptance 5)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from drops_support import write_safetensors


def folder_drop(path: Path, sidecar: str) -> None:
    path.mkdir()
    write_safetensors(path / "weights.safetensors", 7)
    (path / "modelreg.toml").write_text(sidecar)


@pytest.mark.slow
def test_bad_drops_go_to_failed_with_an_error_text_and_ingest_goes_on(reg, inbox, tmp_path):
    reg.watch(inbox, settle=0.5)
    passwd_before = Path("/etc/passwd").read_bytes()
    src = tmp_path / "src"
    src.mkdir()

    folder_drop(src / "broken-sidecar", 'name = "ranker\ndescription = "unterminated string"\n')
    folder_drop(src / "escaping-name", 'name = "../x"\n')
    write_safetensors(src / "bad name!.bin", 8)
    write_safetensors(src / "truncated.safetensors", 9, {"w": (256, 256)})
    whole = (src / "truncated.safetensors").read_bytes()
    (src / "truncated.safetensors").write_bytes(whole[: len(whole) // 2])
    (src / "linked").mkdir()
    write_safetensors(src / "linked" / "weights.safetensors", 10)
    os.symlink("/etc/passwd", src / "linked" / "tokenizer.json")
    for name in os.listdir(src):
        os.rename(src / name, inbox / name)
    os.symlink("/etc/passwd", inbox / "passwd.safetensors")

    expected = {  # entry → words a person needs to see in its .error.txt
        "broken-sidecar": ["modelreg.toml", "not valid TOML"],
        "escaping-name": ["'../x'", "not a valid model name", "modelreg.toml"],
        "bad name!.bin": ["'bad name!'", "not a valid model name"],
        "truncated.safetensors": ["truncated.safetensors", "incomplete or broken"],
        "linked": ["tokenizer.json", "/etc/passwd", "symlink", "outside the drop"],
        "passwd.safetensors": ["/etc/passwd", "symlink", "outside the drop"],
    }
    failed = reg.wait_event("drop.failed", timeout=20, count=len(expected))
    assert sorted(e["data"]["entry"] for e in failed) == sorted(expected)

    for entry, words in expected.items():
        quarantined = inbox / ".failed" / entry
        assert quarantined.exists() or quarantined.is_symlink(), f"{entry} was moved to .failed/"
        assert not (inbox / entry).exists() and not (inbox / entry).is_symlink()
        text = (inbox / ".failed" / f"{entry}.error.txt").read_text()
        for word in [repr(entry), *words]:
            assert word in text, f"{entry}.error.txt should mention {word!r}:\n{text}"
        event = next(e for e in failed if e["data"]["entry"] == entry)
        assert event["data"]["message"] in text
    assert os.readlink(inbox / ".failed" / "passwd.safetensors") == "/etc/passwd"
    assert Path("/etc/passwd").read_bytes() == passwd_before
    assert reg.model_names() == [], "none of them became a version"

    # The daemon goes on with the next drop.
    after = reg.last_event_id()
    params = write_safetensors(inbox / "good.part", 11)
    os.rename(inbox / "good.part", inbox / "good.safetensors")
    event = reg.entry_event("drop.registered", "good.safetensors", timeout=10, after=after)
    assert (event["model"], event["version"]) == ("good", 1)
    assert reg.version("good@1")["facts"]["parameter_count"] == params

    # Fixing a failed drop and moving it back retries it.
    (inbox / ".failed" / "broken-sidecar" / "modelreg.toml").write_text('name = "ranker"\n')
    os.rename(inbox / ".failed" / "broken-sidecar", inbox / "broken-sidecar")
    event = reg.entry_event("drop.registered", "broken-sidecar", timeout=10, after=after)
    assert (event["model"], event["version"]) == ("ranker", 1)
    assert reg.model_names() == ["good", "ranker"]
