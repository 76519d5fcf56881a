"""systemd's readiness protocol (sd_notify(3)) without libsystemd: one datagram per state
change to the AF_UNIX socket named by NOTIFY_SOCKET, when a service manager set it."""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("modelreg.daemon")


class Notifier:
    """Sends READY=1, STOPPING=1, STATUS=… to the service manager; does nothing without one.

    The address is taken out of the environment at once, as sd_notify's ``unset_environment``
    does: command gates and hooks inherit the daemon's environment and must not speak for it.
    """

    def __init__(self) -> None:
        address = os.environ.pop("NOTIFY_SOCKET", "")
        # "@name" is Linux's abstract namespace: a leading NUL byte on the wire.
        self.address = "\0" + address[1:] if address.startswith("@") else address

    def notify(self, *states: str) -> None:
        """Send ``states`` (``"READY=1"``, ``"STATUS=…"``) as one message; a failure is logged, not raised
        (a daemon must not stop serving because its supervisor's socket went away)."""
        if not self.address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                # A datagram to a local socket never waits on the network; MSG_DONTWAIT keeps a
                # full receive queue from blocking the event loop.
                sock.sendto("\n".join(states).encode(), socket.MSG_DONTWAIT, self.address)
        except OSError as exc:
            log.warning("could not notify the service manager at %s: %s", self.address.replace("\0", "@"),
                        exc.strerror or exc)
