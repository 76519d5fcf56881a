"""Issue 15, acceptance 3: `modelreg service install --user` writes a Type=notify unit that
`systemd-analyze verify` accepts, naming the right home and address; the unit's own command
line, run as systemd would run it, starts that daemon and reports READY=1. systemctl itself
is never run here."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from svc_support import NotifySocket, free_port, start_foreground

ANALYZE = shutil.which("systemd-analyze")


def unit_settings(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def verify(unit: Path, tmp_path: Path, user: bool) -> subprocess.CompletedProcess:
    runtime = tmp_path / "runtime"  # a user manager's runtime folder, which this shell may not have
    runtime.mkdir(mode=0o700, exist_ok=True)
    return subprocess.run([ANALYZE, *(["--user"] if user else []), "verify", str(unit)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)})


@pytest.fixture
def config_home(tmp_path: Path) -> Path:
    return tmp_path / "xdg-config"


def test_service_install_user_writes_a_notify_unit_for_this_home_and_address(home, modelreg, config_home, tmp_path):
    port = free_port()
    done = modelreg("service", "install", "--user", "--listen", f"127.0.0.1:{port}", check=True,
                    env={"XDG_CONFIG_HOME": str(config_home)})
    unit = config_home / "systemd" / "user" / "modelreg.service"
    assert f"wrote {unit}" in done.stdout
    assert "systemctl --user daemon-reload" in done.stdout
    assert "systemctl --user enable --now modelreg.service" in done.stdout
    settings = unit_settings(unit.read_text())
    assert settings["Type"] == ["notify"] and settings["Restart"] == ["on-failure"]
    assert settings["WantedBy"] == ["default.target"]
    command = shlex.split(settings["ExecStart"][0])
    assert command[command.index("--home") + 1] == str(home)
    assert command[command.index("--listen") + 1] == f"127.0.0.1:{port}"
    assert command[-6:-4] == ["daemon", "--foreground"]
    if ANALYZE:
        checked = verify(unit, tmp_path, user=True)
        assert checked.returncode == 0 and checked.stderr.strip() == "", checked.stderr

    # The unit's command, run as systemd runs a Type=notify service: READY=1 comes from that daemon,
    # on that home and address, and SIGTERM (systemctl stop) ends it with status 0.
    manager = NotifySocket()
    fg = start_foreground(home, command=command, env={"NOTIFY_SOCKET": manager.address}, wait=False)
    try:
        ready = manager.receive(timeout=30)
        assert ready.get("READY") == "1" and ready["STATUS"] == f"listening on http://127.0.0.1:{port}", ready
        assert json.loads((home / "daemon.json").read_text())["pid"] == fg.proc.pid
        fg.proc.terminate()
        assert manager.receive(timeout=15).get("STOPPING") == "1"
        assert fg.proc.wait(15) == 0, fg.output
    finally:
        if fg.proc.poll() is None:
            fg.proc.kill()
        manager.close()

    removed = modelreg("service", "uninstall", "--user", check=True, env={"XDG_CONFIG_HOME": str(config_home)})
    assert f"removed {unit}" in removed.stdout and "disable --now modelreg.service" in removed.stdout
    assert not unit.exists()
    again = modelreg("service", "uninstall", "--user", env={"XDG_CONFIG_HOME": str(config_home)})
    assert again.returncode == 4 and f"no unit at {unit}" in again.stderr


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed on this machine")
def test_an_awkward_home_is_quoted_so_systemd_accepts_the_unit(tmp_path, modelreg):
    odd = tmp_path / "my models 100%"
    unit_dir = tmp_path / "units"
    modelreg("service", "install", "--home", str(odd), "--unit-dir", str(unit_dir), "--name", "registry", check=True)
    unit = unit_dir / "registry.service"
    text = unit.read_text()
    assert '"' in unit_settings(text)["ExecStart"][0] and "100%%" in text
    assert unit_settings(text)["WantedBy"] == ["multi-user.target"]  # a system unit
    checked = verify(unit, tmp_path, user=False)
    assert checked.returncode == 0 and checked.stderr.strip() == "", checked.stderr


def test_the_daemon_settings_of_this_shell_go_to_a_private_file_not_the_unit(home, modelreg, config_home):
    secret = "postgresql://registry:s3cret@db.internal/modelreg"
    env = {"XDG_CONFIG_HOME": str(config_home), "MODELREG_DATABASE": secret, "AWS_SECRET_ACCESS_KEY": "k$y\"1",
           "MODELREG_LISTEN": "127.0.0.1:7999"}
    done = json.loads(modelreg("service", "install", "--user", "--json", check=True, env=env).stdout)
    assert done["listen"] == "127.0.0.1:7999"  # MODELREG_LISTEN is the current configuration's address
    assert {"MODELREG_DATABASE", "AWS_SECRET_ACCESS_KEY"} <= set(done["settings"])
    unit = Path(done["unit"]).read_text()
    assert "s3cret" not in unit and f"EnvironmentFile=-{home}/service.env" in unit
    env_file = home / "service.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    lines = env_file.read_text().splitlines()
    assert f'MODELREG_DATABASE="{secret}"' in lines and 'AWS_SECRET_ACCESS_KEY="k\\$y\\"1"' in lines
    assert not any(line.startswith(("MODELREG_LISTEN", "MODELREG_HOME")) for line in lines)  # on the command line


def test_bad_input_is_one_line(modelreg, tmp_path):
    remote = modelreg("service", "install", "--unit-dir", str(tmp_path), "--listen", "0.0.0.0:7311")
    assert remote.returncode == 2 and "--allow-remote" in remote.stderr and "Traceback" not in remote.stderr
    named = modelreg("service", "install", "--unit-dir", str(tmp_path), "--name", "../evil")
    assert named.returncode == 2 and "unit name" in named.stderr
    assert list(tmp_path.glob("*.service")) == []
