"""The daemon's https side (PRODUCT.md §10): the server context from a certificate and key file,
checked before anything else starts, so a bad path or a key of another certificate is a clear
start-up error (exit 2), not a traceback or a daemon nobody can reach."""

from __future__ import annotations

import ssl

from modelreg.shared.config import ServerTls
from modelreg.shared.errors import InvalidInput


def server_context(tls: ServerTls) -> ssl.SSLContext:
    """An https server context (TLS 1.2 and later) serving ``tls.cert`` with ``tls.key``."""
    for what, path in (("--tls-cert", tls.cert), ("--tls-key", tls.key)):
        if not path.is_file():
            raise InvalidInput(f"{what} {path}: no such file")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        # A passphrase-protected key would make OpenSSL prompt on the terminal; refuse it instead.
        context.load_cert_chain(tls.cert, tls.key, password=_no_passphrase)
    except _Encrypted:
        raise InvalidInput(f"--tls-key {tls.key} is encrypted with a passphrase; give the daemon an "
                           "unencrypted key file readable only by its user (chmod 600)") from None
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise InvalidInput(f"--tls-key {tls.key} is not the private key of the certificate in "
                               f"--tls-cert {tls.cert}") from None
        raise InvalidInput(f"cannot load the TLS certificate {tls.cert} with the key {tls.key}: expected a PEM "
                           f"certificate (chain) and its PEM private key (OpenSSL: {exc.reason or exc})") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read the TLS certificate or key: {exc.strerror or exc}") from None
    return context


class _Encrypted(Exception):
    pass


def _no_passphrase() -> bytes:
    raise _Encrypted
