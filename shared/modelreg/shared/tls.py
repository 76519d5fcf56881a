"""How clients verify a daemon's certificate (PRODUCT.md §10): the system's trust store, or the
CA file given with ``--ca-file`` / ``MODELREG_CA_FILE``; and the one wording of a refusal.
"""

from __future__ import annotations

import ssl
from functools import lru_cache
from pathlib import Path

from .errors import InvalidInput, Unavailable


def client_context(ca_file: Path | None) -> ssl.SSLContext:
    """A context that verifies the daemon's certificate and host name against ``ca_file``
    (PEM, one or more CA certificates), else the system's trust store. A CA file that cannot be
    read or holds no certificate is InvalidInput (exit 2)."""
    return _context(str(Path(ca_file).expanduser()) if ca_file else None)


@lru_cache(maxsize=8)
def _context(ca_file: str | None) -> ssl.SSLContext:
    # One context per CA file for the process: loading a trust store takes milliseconds.
    try:
        return ssl.create_default_context(cafile=ca_file)
    except FileNotFoundError:
        raise InvalidInput(f"the CA file {ca_file} does not exist (--ca-file / MODELREG_CA_FILE)") from None
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise InvalidInput(f"cannot use the CA file {ca_file}: {reason} (expected PEM certificates; "
                           "--ca-file / MODELREG_CA_FILE)") from None


def check_ca_file(ca_file: Path) -> Path:
    """``ca_file`` if it can be used (``--ca-file``'s check, so a typo fails before any request)."""
    client_context(ca_file)
    return Path(ca_file).expanduser()


def not_verified(url: str, error: BaseException) -> Unavailable:
    """The daemon at ``url`` presented a certificate that does not verify: exit 5, like an
    unreachable daemon (a client must not talk to it), with what to do about it."""
    reason = getattr(error, "verify_message", None) or getattr(error, "reason", None) or str(error)
    return Unavailable(f"cannot trust the modelreg daemon at {url}: certificate verify failed ({reason}); "
                       "if it uses a private CA, pass that CA's certificate with --ca-file or MODELREG_CA_FILE",
                       {"url": url, "reason": "certificate verify failed"})


def plain_to_tls_hint(url: str) -> str:
    """Said when an http:// connection is closed before any answer: a TLS daemon does that."""
    return " (if the daemon serves TLS, use an https:// URL)" if url.startswith("http://") else ""
