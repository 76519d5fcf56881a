"""Watches that outlive their folder and the daemon; copy mode (issue 4, PRODUCT.md §6)."""

from __future__ import annotations

import json
import os
import shutil
import time

from daemon_process import start_daemon
from drops_support import Registry, wait_until, write_safetensors


def drop_by_rename(folder, name: str, seed: int) -> None:
    write_safetensors(folder / f"{name}.part", seed)
    os.rename(folder / f"{name}.part", folder / name)


def test_a_watched_folder_deleted_and_recreated_keeps_working(reg, inbox):
    reg.watch(inbox, settle=1.0)
    drop_by_rename(inbox, "before.safetensors", 1)
    reg.entry_event("drop.registered", "before.safetensors", timeout=5)  # below the 10 s periodic rescan

    shutil.rmtree(inbox)
    time.sleep(1.0)  # the watcher notices the folder is gone
    inbox.mkdir()
    after = reg.last_event_id()
    drop_by_rename(inbox, "after.safetensors", 2)
    dropped = time.monotonic()
    reg.entry_event("drop.registered", "after.safetensors", timeout=10, after=after)
    latency = time.monotonic() - dropped
    print(f"\nre-created folder: drop registered {latency:.2f}s after it landed")
    assert latency < 5
    assert [v["version"] for v in reg.versions("after")] == [1]
    assert reg.client.watches()[0]["active"] is True


def test_watch_add_persists_across_restarts_and_copy_mode_keeps_the_drop_without_registering_it_again(
        daemon, reg, modelreg, inbox, home):
    out = modelreg("watch", "add", str(inbox), "--mode", "copy", "--settle", "0.5", check=True)
    assert f"watching {inbox} (copy mode, settle 0.5s" in out.stdout
    drop_by_rename(inbox, "kept.safetensors", 3)
    reg.entry_event("drop.registered", "kept.safetensors", timeout=10)
    time.sleep(1.5)  # several settle periods: copy mode must not take it again
    assert [v["version"] for v in reg.versions("kept")] == [1]
    assert os.listdir(inbox) == ["kept.safetensors"], "copy mode leaves the drop in place"
    reg.close()
    daemon.stop()

    d = start_daemon(home)
    r = Registry(d)
    try:
        listed = json.loads(modelreg("watch", "list", "--json", check=True).stdout)
        assert [(w["path"], w["mode"], w["settle"], w["active"]) for w in listed] == [(str(inbox), "copy", 0.5, True)]
        table = modelreg("watch", "list", check=True).stdout
        assert str(inbox) in table and "watching" in table
        restarted = r.last_event_id()
        # A drop made after the restart is registered: by then the start-up scan has seen kept.safetensors.
        drop_by_rename(inbox, "fresh.safetensors", 4)
        r.entry_event("drop.registered", "fresh.safetensors", timeout=10, after=restarted)
        time.sleep(1.0)
        assert [v["version"] for v in r.versions("kept")] == [1], "not registered again after the restart"
        assert [e["data"]["entry"] for e in r.events("drop.detected", after=restarted)] == ["fresh.safetensors"]
        assert sorted(os.listdir(inbox)) == ["fresh.safetensors", "kept.safetensors"]

        assert modelreg("watch", "rm", str(inbox), check=True).returncode == 0
        assert json.loads(modelreg("watch", "list", "--json", check=True).stdout) == []
    finally:
        r.close()
        d.stop()


def test_daemon_watch_shortcut_adds_the_watch_to_the_running_daemon_once(daemon, reg, modelreg, inbox):
    for _ in range(2):
        info = json.loads(modelreg("daemon", "--watch", str(inbox), "--json", check=True).stdout)
        assert (info["already_running"], info["url"], info["watching"]) == (True, daemon.url, [str(inbox)])
    assert [(w["path"], w["mode"]) for w in reg.client.watches()] == [(str(inbox), "move")]
    drop_by_rename(inbox, "shortcut.safetensors", 5)
    reg.entry_event("drop.registered", "shortcut.safetensors", timeout=10)
    # Move mode deletes the file only after the commit that references its blobs is durable:
    # the event (published at commit) can arrive a moment before the folder is empty.
    wait_until(lambda: os.listdir(inbox) == [], 10, "the moved drop to leave the folder")
