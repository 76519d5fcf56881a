"""A pickle that would run os.system is registered, flagged unsafe, and never run (issue 4, acceptance 6)."""

from __future__ import annotations

import hashlib
import os
import pickle
import time

from drops_support import blob_path, sha256_of


class Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_importing_os_system_is_registered_flagged_unsafe_and_never_run(reg, inbox, tmp_path):
    marker = tmp_path / "MARKER"
    payload = pickle.dumps({"weights": [0.1, 0.2], "hook": Exploit(str(marker))})
    assert b"system" in payload and not marker.exists()
    reg.watch(inbox, settle=0.5)
    (tmp_path / "evil.pkl").write_bytes(payload)
    time.sleep(0.05)
    os.rename(tmp_path / "evil.pkl", inbox / "evil.pkl")

    event = reg.entry_event("drop.registered", "evil.pkl", timeout=10)
    v = reg.version("evil@1")
    assert event["data"]["unsafe"] is True
    assert v["facts"]["unsafe"] is True, "the version says it is unsafe to load"
    file_facts = v["facts"]["files"]["evil.pkl"]
    assert file_facts["format"] == "pickle" and file_facts["unsafe"] is True
    assert file_facts["unsafe_globals"] == [f"{os.name}.system"], "it names what the pickle would import"
    sha = hashlib.sha256(payload).hexdigest()
    assert v["files"] == [{"path": "evil.pkl", "sha256": sha, "size": len(payload)}]
    assert sha256_of(blob_path(reg.home, sha)) == sha, "stored as it was"
    time.sleep(0.5)
    assert not marker.exists(), "nothing in the pickle ran"
