"""External command gates (issue 3, acceptance 2): timeout kills the whole process group;
the command sees the version through its environment and a read-only artifacts folder."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

from lifecycle_support import Versions, alive, weights_for


async def test_command_gate_past_its_timeout_fails_and_leaves_no_process(daemon, modelreg, versions: Versions,
                                                                         tmp_path: Path):
    probe = subprocess.Popen(["sleep", "30"])
    assert alive(probe.pid)  # the liveness check can see a running process…
    probe.kill()
    probe.wait()
    assert not alive(probe.pid)  # …and a gone one
    await versions.add(1)
    pids = tmp_path / "pids"
    pids.mkdir()
    # The gate starts a long child in the background, records both pids, then waits on it.
    script = tmp_path / "slow-gate.sh"
    script.write_text(f'echo $$ > {pids}/shell\nsleep 300 &\necho $! > {pids}/child\necho "started the soak"\nwait\n')
    modelreg("gate", "add", "fraud", f"command: sh {script}", "--stage", "production", "--timeout", "1", check=True)

    started = time.monotonic()
    refused = modelreg("promote", "fraud@1", "--reason", "ship it")
    elapsed = time.monotonic() - started
    assert refused.returncode == 3, refused
    assert "timed out" in refused.stdout and "started the soak" in refused.stdout
    assert elapsed < 15, f"the gate had a 1 s timeout but the promotion took {elapsed:.1f} s"
    shell, child = int((pids / "shell").read_text()), int((pids / "child").read_text())
    deadline = time.monotonic() + 5
    while (alive(shell) or alive(child)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(shell), f"the gate's shell {shell} is still running"
    assert not alive(child), f"the gate's background child {child} is still running"
    assert await versions.stages() == {1: "none"}

    # The plain form from the issue: a command that just sleeps too long.
    gates = json.loads(modelreg("gate", "list", "fraud", "--json", check=True).stdout)
    modelreg("gate", "rm", str(gates[0]["id"]), check=True)
    modelreg("gate", "add", "fraud", "command: sleep 30", "--stage", "production", "--timeout", "1", check=True)
    started = time.monotonic()
    verdict = json.loads(modelreg("check", "fraud@1", "--to", "production", "--json").stdout)
    assert time.monotonic() - started < 15
    (rule,) = verdict["rules"]
    assert rule["status"] == "fail" and "timed out" in rule["message"]
    assert verdict["passed"] is False


async def test_command_gate_sees_the_version_and_its_read_only_files(daemon, client, versions: Versions,
                                                                     tmp_path: Path):
    await versions.add(1)
    await versions.add(2)
    report = tmp_path / "report"
    script = tmp_path / "inspect-gate.sh"
    # Lots of output first: only the tail is kept with the verdict, and it must hold the end.
    script.write_text(f"""
i=0; while [ $i -lt 2000 ]; do echo "noise line $i"; i=$((i+1)); done
{{
  echo "model=$MODELREG_MODEL"
  echo "version=$MODELREG_VERSION"
  echo "url=$MODELREG_URL"
  echo "artifacts=$MODELREG_ARTIFACTS"
  echo "marker=$(cat "$MODELREG_ARTIFACTS/version.txt")"
  # Root ignores mode bits (and these files are hardlinks to the blobs): only try as a normal user.
  if [ "$(id -u)" != 0 ]; then
    if (echo tampered > "$MODELREG_ARTIFACTS/version.txt") 2>/dev/null; then echo "overwrite=ok"; else echo "overwrite=refused"; fi
    if (touch "$MODELREG_ARTIFACTS/new-file") 2>/dev/null; then echo "create=ok"; else echo "create=refused"; fi
  fi
}} > {report}
echo "gate finished for $MODELREG_MODEL@$MODELREG_VERSION"
""")
    await client.add_gate(f"command: sh {script}", stage="production", model="fraud", timeout=30)

    result = await client.promote("fraud@2", reason="gate inspects the files")
    assert result["version"]["stage"] == "production"
    (rule,) = result["verdict"]["rules"]
    assert rule["status"] == "pass" and rule["observed"] == 0
    seen = dict(line.split("=", 1) for line in report.read_text().splitlines())
    assert (seen["model"], seen["version"], seen["url"]) == ("fraud", "2", daemon.url)
    assert seen["marker"] == "2"
    artifacts = Path(seen["artifacts"])
    assert sorted(p.name for p in artifacts.iterdir()) == ["version.txt", "weights.bin"]
    assert (artifacts / "weights.bin").read_bytes() == weights_for(2)
    assert (artifacts / "version.txt").read_text() == "2\n"
    # Read-only: no write bits anywhere; a non-root gate cannot write (root ignores mode bits).
    assert not artifacts.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert all(not p.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) for p in artifacts.iterdir())
    if os.geteuid() != 0:
        assert (seen["overwrite"], seen["create"]) == ("refused", "refused")

    # The output tail is kept with the verdict, in the stored event too.
    assert rule["output"].rstrip().endswith("gate finished for fraud@2")
    assert len(rule["output"]) <= 4000 and "noise line 0\n" not in rule["output"]
    assert "noise line 1999" in rule["output"]
    events = (await client.events(model="fraud", kind="stage.changed"))["items"]
    stored = events[-1]["data"]["verdict"]["rules"][0]
    assert events[-1]["version"] == 2 and stored["output"] == rule["output"]
