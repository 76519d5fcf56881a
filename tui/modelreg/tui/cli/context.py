"""What every command shares: where the registry is, and a connected client.

The global options (``--home``, ``--url``, ``--token-file``, ``--ca-file``, ``--json``, ``--no-autostart``) are
accepted before the command and after it (``modelreg show x@1 --home DIR``, PRODUCT.md §8): main.py adds
``global_options()`` to every command, and each option's callback updates this one Context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from modelreg.shared.sync_client import SyncClient


@dataclass
class Context:
    home_option: str | None = None
    url: str | None = None
    as_json: bool = False
    no_autostart: bool = False
    _home: Path | None = field(default=None, repr=False)
    _client: SyncClient | None = field(default=None, repr=False)

    @property
    def home(self) -> Path:
        if self._home is None:
            if self.home_option:
                self._home = Path(self.home_option).expanduser().absolute()
            else:
                from modelreg.shared.config import default_home

                self._home = default_home()
        return self._home

    def set_home(self, value: str) -> None:
        self.home_option, self._home = value, None

    def client(self, start: bool = True) -> SyncClient:
        """A client for the home's daemon; starts one in the background unless a URL was given
        or autostart is off (``--no-autostart``, ``MODELREG_NO_AUTOSTART=1``)."""
        if self._client is None:
            from modelreg.shared.config import resolve_endpoint
            from modelreg.shared.sync_client import SyncClient

            endpoint = resolve_endpoint(home=self.home, url=self.url)
            if start and not endpoint.explicit_url:
                from modelreg.shared.launcher import ensure_daemon_sync

                endpoint = ensure_daemon_sync(self.home, autostart=False if self.no_autostart else None,
                                              announce=announce)
            self._client = SyncClient(endpoint)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def announce(text: str) -> None:
    """Told once when a command started a background daemon: say so on stderr (PRODUCT.md §8)."""
    from .render import Span, err

    err.line(Span(text, "dim"))


def make_context(home: str | None, url: str | None) -> Context:
    return Context(home_option=home, url=url)


pass_ctx = click.make_pass_decorator(Context)


def _context(ctx: click.Context) -> Context:
    obj = ctx.find_object(Context)
    if obj is None:  # a command invoked on its own (tests, other programs): make one
        obj = ctx.ensure_object(Context)
    return obj


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        _context(ctx).as_json = True
    return value


def _set_home(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        _context(ctx).set_home(value)
    return value


def _set_url(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        _context(ctx).url = value
    return value


def _set_no_autostart(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        _context(ctx).no_autostart = True
    return value


def _set_token_file(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        from modelreg.shared.config import use_token_file

        use_token_file(value)  # the CLI, the TUI and every client of this process act as that token
    return value


def _set_ca_file(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        from modelreg.shared.config import use_ca_file

        use_ca_file(value)  # every client of this process verifies https daemons against it
    return value


def ca_file_param() -> click.Option:
    return click.Option(["--ca-file"], metavar="PATH", expose_value=False, callback=_set_ca_file,
                        help="Verify an https daemon's certificate against the CA certificates in this PEM file "
                             "(env MODELREG_CA_FILE); default: the system's trust store.")


def token_file_param() -> click.Option:
    return click.Option(["--token-file"], metavar="PATH", expose_value=False, callback=_set_token_file,
                        help="Act as the token in this file (a named token; env MODELREG_TOKEN); "
                             "default: the home's token.")


def json_param() -> click.Option:
    return click.Option(["--json", "as_json_flag"], is_flag=True, expose_value=False, callback=_set_json,
                        help="Print machine-readable JSON (one document).")


def global_params() -> list[click.Option]:
    """--home, --url, --token-file, --ca-file, --no-autostart as accepted after a command (no env fallback here: the
    group already read MODELREG_HOME / MODELREG_URL, and an explicit option must win)."""
    return [
        click.Option(["--home"], type=click.Path(file_okay=False), expose_value=False, callback=_set_home,
                     help="Registry home (env MODELREG_HOME)."),
        click.Option(["--url"], expose_value=False, callback=_set_url,
                     help="Daemon URL (env MODELREG_URL); default: the home's daemon."),
        token_file_param(),
        ca_file_param(),
        click.Option(["--no-autostart"], is_flag=True, expose_value=False, callback=_set_no_autostart,
                     help="Fail (exit 5) instead of starting a daemon (env MODELREG_NO_AUTOSTART=1)."),
    ]


def add_global_options(command: click.Command, seen: set[int] | None = None) -> click.Command:
    """Give a command (and every command of a group) --json and the global options, once."""
    seen = set() if seen is None else seen
    if id(command) in seen or getattr(command, "modelreg_global_options", True) is False:
        return command
    seen.add(id(command))
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_global_options(sub, seen)
        return command
    names = {p.name for p in command.params}
    extra: list[Any] = [] if "as_json_flag" in names else [json_param()]
    extra += [p for p in global_params() if p.name not in names]
    command.params.extend(extra)
    return command


def json_option(f):
    """Every command takes --json (PRODUCT.md §8), before or after its arguments."""
    return click.option("--json", "as_json_flag", is_flag=True, expose_value=False, callback=_set_json,
                        help="Print machine-readable JSON (one document).")(f)
