"""Where a registry lives and how clients find its daemon (PRODUCT.md §5, §10)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7311
TOKEN_FILE = "token"
DAEMON_FILE = "daemon.json"  # written by a running daemon: its URL and pid
LOCK_FILE = "daemon.lock"
API_PREFIX = "/v1"  # every path of the daemon's HTTP API starts with it
TOKEN_ENV = "MODELREG_TOKEN"
CA_FILE_ENV = "MODELREG_CA_FILE"  # the CA certificates clients verify an https daemon against
NAMED_TOKEN_PREFIX = "mr_"  # a named token's secret starts with it; the home's token never does

# The token this process acts as, from --token-file (``use_token_file``): it outranks
# MODELREG_TOKEN and the home's token for every client the process makes (CLI, TUI, launcher).
_token_from_file: str | None = None
# The CA file from --ca-file (``use_ca_file``): it outranks MODELREG_CA_FILE the same way.
_ca_file_option: Path | None = None


def default_home() -> Path:
    env = os.environ.get("MODELREG_HOME")
    if env:
        return Path(env).expanduser()
    # platformdirs costs more start-up time than a whole `modelreg resolve`; import it only
    # when the home is not given.
    from platformdirs import user_data_dir

    return Path(user_data_dir("modelreg", appauthor=False))


@dataclass(frozen=True)
class Endpoint:
    """How a client reaches a daemon: its URL, token, whether the URL was explicit, and the CA
    file an https daemon's certificate is verified against (None: the system's trust store)."""

    url: str
    token: str | None
    home: Path
    explicit_url: bool
    ca_file: Path | None = None


@dataclass(frozen=True)
class ServerTls:
    """The certificate (chain, PEM) and private key a daemon serves https with."""

    cert: Path
    key: Path

    @classmethod
    def from_options(cls, cert: Path | None, key: Path | None) -> ServerTls | None:
        """--tls-cert and --tls-key, which come together or not at all (the daemon checks the files)."""
        from .errors import InvalidInput

        if (cert is None) != (key is None):
            raise InvalidInput("--tls-cert and --tls-key go together: the certificate and its private key")
        if cert is None or key is None:
            return None
        return cls(Path(cert).expanduser().absolute(), Path(key).expanduser().absolute())


def read_token(home: Path) -> str | None:
    try:
        return (home / TOKEN_FILE).read_text().strip() or None
    except OSError:
        return None


def use_token_file(path: str | Path) -> str:
    """Act as the token in ``path`` from now on (``--token-file``); a missing, unreadable or
    empty file is a clear InvalidInput (exit 2), never a silent fall-back to the home's token."""
    from .errors import InvalidInput

    global _token_from_file
    try:
        token = Path(path).expanduser().read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read the token file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not token or any(c.isspace() for c in token):
        raise InvalidInput(f"the token file {path} must hold one token (as `modelreg token create` printed it)")
    _token_from_file = token
    return token


def use_ca_file(path: str | Path) -> Path:
    """Verify https daemons against the CA certificates in ``path`` from now on (``--ca-file``);
    a missing or unusable file is a clear InvalidInput (exit 2) before any request."""
    from .tls import check_ca_file

    global _ca_file_option
    _ca_file_option = check_ca_file(Path(path))
    return _ca_file_option


def configured_ca_file() -> Path | None:
    """--ca-file's file, else MODELREG_CA_FILE's, else None (the system's trust store)."""
    env = os.environ.get(CA_FILE_ENV, "").strip()
    return _ca_file_option or (Path(env).expanduser() if env else None)


def resolve_endpoint(home: Path | None = None, url: str | None = None) -> Endpoint:
    """MODELREG_URL / --url win; else the URL the home's daemon wrote; else the default. The
    token: --token-file's, else MODELREG_TOKEN, else the home's (the local admin). The CA file:
    ``configured_ca_file()``."""
    home = Path(home).expanduser() if home else default_home()
    explicit = url or os.environ.get("MODELREG_URL")
    if explicit:
        resolved = explicit.rstrip("/")
    else:
        resolved = running_daemon_url(home) or f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
    token = _token_from_file or os.environ.get(TOKEN_ENV) or read_token(home)
    return Endpoint(url=resolved, token=token, home=home, explicit_url=bool(explicit), ca_file=configured_ca_file())


def running_daemon_url(home: Path) -> str | None:
    try:
        info = json.loads((home / DAEMON_FILE).read_text())
        return str(info["url"]) if isinstance(info, dict) and "url" in info else None
    except (OSError, ValueError):
        return None


def overlaps_home(path: Path, home: Path) -> bool:
    """Whether ``path`` is the registry home, inside it, or contains it (both already resolved).

    Such a path is never a source to register or a folder to watch: ``--move`` or a drop
    would take the registry's own files.
    """
    path, home = Path(path), Path(home)
    return path == home or path.is_relative_to(home) or home.is_relative_to(path)


def home_overlap_message(path: object, home: Path, advice: str) -> str:
    """The refusal for a path ``overlaps_home`` caught, e.g. advice="register files from elsewhere"."""
    return f"{path} is inside (or contains) the registry home {home}; {advice}"


def default_actor() -> str:
    """Who a client says it is in the audit log: ``user@host``."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def parse_listen(value: str) -> tuple[str, int]:
    """'HOST:PORT', ':PORT' or 'PORT' → (host, port); IPv6 as '[::1]:7311'."""
    from .errors import InvalidInput

    value = value.strip()
    host, port_text = DEFAULT_HOST, value
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port_text = rest.lstrip(":")
    elif ":" in value:
        host, _, port_text = value.rpartition(":")
        host = host or DEFAULT_HOST
    try:
        port = int(port_text)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        raise InvalidInput(f"invalid --listen {value!r}: expected HOST:PORT, e.g. 127.0.0.1:7311") from None
    return host, port


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
