"""What every command shares: where the registry is, and a connected client."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import click

from modelreg.shared.config import default_home, resolve_endpoint
from modelreg.shared.launcher import ensure_daemon_sync
from modelreg.shared.sync_client import SyncClient


@dataclass
class Context:
    home: Path
    url: str | None
    as_json: bool = False
    _client: SyncClient | None = field(default=None, repr=False)

    def client(self, start: bool = True) -> SyncClient:
        """A client for the home's daemon; starts one in the background unless a URL was given."""
        if self._client is None:
            if start and not (self.url or resolve_endpoint(home=self.home).explicit_url):
                endpoint = ensure_daemon_sync(self.home)
                self._client = SyncClient(endpoint)
            else:
                self._client = SyncClient(resolve_endpoint(home=self.home, url=self.url))
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def make_context(home: str | None, url: str | None) -> Context:
    return Context(home=Path(home).expanduser().absolute() if home else default_home(), url=url)


pass_ctx = click.make_pass_decorator(Context)


def json_option(f):
    """Every command takes --json (PRODUCT.md §8), before or after its arguments."""

    def callback(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        if value:
            ctx.find_object(Context).as_json = True
        return value

    return click.option("--json", "as_json_flag", is_flag=True, expose_value=False, callback=callback,
                        help="Print machine-readable JSON.")(f)
