"""service install / uninstall: a systemd unit that runs this home's daemon (docs/service.md).

The unit runs `modelreg daemon --foreground`, which becomes the daemon and speaks systemd's
readiness protocol, so the unit is ``Type=notify``. Nothing here runs systemctl: the commands
print what to run, because enabling a service is the operator's decision.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import click

from modelreg.shared.config import DEFAULT_HOST, DEFAULT_PORT, is_loopback, parse_listen
from modelreg.shared.errors import InvalidInput, ModelregError, NotFound
from modelreg.shared.launcher import daemon_info, pid_alive, stop_command

from .context import Context, json_option, pass_ctx
from .render import Span, emit_json, out

SYSTEM_DIR = Path("/etc/systemd/system")
ENV_FILE = "service.env"  # HOME/service.env: the settings (and secrets) the service starts with, mode 0600
# Client-side variables: they say how to reach a daemon, not how to run one.
CLIENT_ONLY = {"MODELREG_HOME", "MODELREG_URL", "MODELREG_TOKEN", "MODELREG_CA_FILE", "MODELREG_NO_AUTOSTART",
               "MODELREG_LISTEN"}
_PLAIN = re.compile(r"[A-Za-z0-9_@+=:,./-]+")


@click.group()
def service() -> None:
    """Run this home's daemon as a systemd service (see docs/service.md)."""


@service.command("install")
@click.option("--user", "user_unit", is_flag=True, help="A user unit (~/.config/systemd/user): no root needed.")
@click.option("--listen", default=None,
              help=f"HOST:PORT the service listens on (default $MODELREG_LISTEN, else {DEFAULT_HOST}:{DEFAULT_PORT}).")
@click.option("--allow-remote", is_flag=True, help="Permit a non-loopback --listen address (needs TLS).")
@click.option("--tls-cert", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Serve https with this certificate (PEM).")
@click.option("--tls-key", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The unencrypted private key (PEM) of --tls-cert.")
@click.option("--insecure-http", is_flag=True, help="With --allow-remote: plain http behind a TLS proxy on this host.")
@click.option("--name", default="modelreg", show_default=True, help="The unit's name (one per home).")
@click.option("--unit-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write the unit into this folder instead (packaging).")
@json_option
@pass_ctx
def install(ctx: Context, user_unit: bool, listen: str | None, allow_remote: bool, tls_cert: Path | None,
            tls_key: Path | None, insecure_http: bool, name: str, unit_dir: Path | None) -> None:
    """Write a systemd unit for this home's daemon and print how to enable it."""
    listen = listen or os.environ.get("MODELREG_LISTEN") or f"{DEFAULT_HOST}:{DEFAULT_PORT}"
    host, _port = parse_listen(listen)
    if not is_loopback(host) and not allow_remote:
        raise InvalidInput(f"{listen} is not loopback; add --allow-remote (and --tls-cert/--tls-key) if you mean it")
    if (tls_cert is None) != (tls_key is None):
        raise InvalidInput("--tls-cert and --tls-key go together")
    path = _unit_path(name, user_unit, unit_dir)
    home = ctx.home.expanduser().absolute()
    args = ["daemon", "--foreground", "--home", str(home), "--listen", listen]
    args += ["--allow-remote"] * allow_remote + ["--insecure-http"] * insecure_http
    for option, file in (("--tls-cert", tls_cert), ("--tls-key", tls_key)):
        if file is not None:
            args += [option, str(file.expanduser().absolute())]
    env_file = home / ENV_FILE
    settings = _write_env_file(env_file)
    replaced = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(unit_text(home, modelreg_command() + args, user_unit))
    except PermissionError:
        raise ModelregError(f"cannot write {path}: a system unit needs root (sudo), or use --user") from None
    steps = _enable_steps(path.name, user_unit)
    if ctx.as_json:
        return emit_json({"unit": str(path), "home": str(home), "listen": listen, "user": user_unit,
                          "replaced": replaced, "environment_file": str(env_file), "settings": settings,
                          "enable": steps})
    out.line(f"{'replaced' if replaced else 'wrote'} {path} (home {home}, listening on {listen})")
    if settings:
        out.line(f"this shell's daemon settings ({', '.join(settings)}) are in {env_file} (mode 0600)")
    out.line("enable and start it with:")
    for step in steps:
        out.line(Span(f"  {step}", "bold"))
    if user_unit:
        out.line(Span(f"to keep it running after you log out: loginctl enable-linger {_login()}", "dim"))
    running = daemon_info(home)
    if running and isinstance(running.get("pid"), int) and pid_alive(running["pid"]):
        out.line(Span(f"a daemon runs for this home now (pid {running['pid']}): stop it first with "
                      f"`{stop_command(home)}`, or the service cannot take the home's lock", "yellow"))
    out.line(Span(f"its log: journalctl {'--user ' if user_unit else ''}-u {path.stem}", "dim"))


@service.command("uninstall")
@click.option("--user", "user_unit", is_flag=True, help="The user unit (~/.config/systemd/user).")
@click.option("--name", default="modelreg", show_default=True, help="The unit's name.")
@click.option("--unit-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The folder the unit was written into with --unit-dir.")
@json_option
@pass_ctx
def uninstall(ctx: Context, user_unit: bool, name: str, unit_dir: Path | None) -> None:
    """Remove the unit `service install` wrote (stop and disable it first)."""
    path = _unit_path(name, user_unit, unit_dir)
    if not path.exists():
        raise NotFound(f"no unit at {path}" + ("" if user_unit or unit_dir else " (a user unit? add --user)"))
    systemctl = "systemctl --user" if user_unit else "sudo systemctl"
    try:
        path.unlink()
    except PermissionError:
        raise ModelregError(f"cannot remove {path}: a system unit needs root (sudo)") from None
    if ctx.as_json:
        return emit_json({"removed": str(path)})
    out.line(f"removed {path}")
    out.line(f"if it was enabled, stop it and forget it: {systemctl} disable --now {path.name} && "
             f"{systemctl} daemon-reload")


def modelreg_command() -> list[str]:
    """How the unit starts modelreg: this installation's own `modelreg` script, else this Python."""
    script = Path(sys.executable).with_name("modelreg")  # the venv's bin/, not the interpreter's real home
    if os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "modelreg.tui.cli"]


def unit_text(home: Path, command: list[str], user_unit: bool) -> str:
    """The unit file: Type=notify (the daemon says READY=1 once it answers health), restarted on
    failure but not after a usage error (exit 2: a restart would only fail again)."""
    service: list[str] = ["Type=notify", "NotifyAccess=main", f"ExecStart={' '.join(map(_exec_arg, command))}"]
    # Optional ("-"): it exists when this shell had settings, or once the operator adds secrets to it.
    service.append(f"EnvironmentFile=-{_escape(str(home / ENV_FILE))}")
    user = _login()
    if not user_unit and user != "root":
        service.append(f"User={user}")
    service += ["Restart=on-failure", "RestartSec=2", "RestartPreventExitStatus=2",
                "TimeoutStartSec=300",  # migrations and start-up recovery of a large registry take a while
                "TimeoutStopSec=30", "UMask=0077"]
    lines = ["# Written by `modelreg service install`; remove it with `modelreg service uninstall`.",
             "[Unit]", f"Description=modelreg model registry daemon ({_escape(str(home))})",
             *([] if user_unit else ["After=network-online.target", "Wants=network-online.target"]),
             "", "[Service]", *service,
             "", "[Install]", f"WantedBy={'default.target' if user_unit else 'multi-user.target'}"]
    return "\n".join(lines) + "\n"


def _unit_path(name: str, user_unit: bool, unit_dir: Path | None) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{1,200}", name):
        raise InvalidInput(f"a unit name has letters, digits and _ . @ - only, not {name[:40]!r}")
    if unit_dir is not None:
        folder = unit_dir.expanduser().absolute()
    elif user_unit:
        config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        folder = Path(config) / "systemd" / "user"
    else:
        folder = SYSTEM_DIR
    return folder / f"{name.removesuffix('.service')}.service"


def _write_env_file(path: Path) -> list[str]:
    """The daemon settings of this shell (MODELREG_DATABASE, MODELREG_ARTIFACTS, AWS_* …) written to
    HOME/service.env, mode 0600 (a unit file is world-readable, and these may hold secrets); their
    names. Without any, a file written before (or by hand) is left as it is."""
    settings = {k: v for k, v in sorted(os.environ.items())
                if (k.startswith("MODELREG_") and k not in CLIENT_ONLY) or k.startswith("AWS_")}
    if not settings:
        return []
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a file made by hand before may be readable by others
    with os.fdopen(fd, "w") as f:
        f.write("# The daemon's settings for its systemd service (`modelreg service install`).\n")
        f.writelines(f'{k}="{_env_value(v)}"\n' for k, v in settings.items())
    return list(settings)


def _env_value(value: str) -> str:
    """A value inside double quotes of an EnvironmentFile (shell-like backslash escapes)."""
    return re.sub(r'(["\\`$])', r"\\\1", value).replace("\n", "\\n")


def _escape(text: str) -> str:
    """systemd expands % specifiers in most settings: a literal % is %%."""
    return text.replace("%", "%%")


def _exec_arg(arg: str) -> str:
    """One word of ExecStart: quoted unless plain; % and $ are systemd's, so doubled."""
    text = _escape(arg).replace("$", "$$")
    if _PLAIN.fullmatch(arg):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _login() -> str:
    """Who the service runs as: the user behind sudo, else this one."""
    import getpass

    return os.environ.get("SUDO_USER") or getpass.getuser()


def _enable_steps(unit: str, user_unit: bool) -> list[str]:
    systemctl = "systemctl --user" if user_unit else "sudo systemctl"
    return [f"{systemctl} daemon-reload", f"{systemctl} enable --now {unit}"]


COMMANDS: list[Any] = [service]
