"""Who is acting (issue 12, PRODUCT.md §10): the identity a request's token proves.

Every request carries a bearer token; the middleware turns it into an ``Identity``: the
home's token is the local admin (``admin``), a named token is its name with its scope and
optional model glob. Scopes are ordered: ``read`` < ``write`` < ``promote`` < ``admin``; a
scope includes the ones before it. ``require`` is the one check every layer calls.

``actor`` is what events and history record. For a named token it is the token's name, and
nothing the client says can change it. For the home's token it is what the local client
names (``alice@laptop``), as before tokens had names: the home's owner is trusted to say
who they are, and gate rules (``by``, approvals) look at ``name``, never at ``actor``.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from modelreg.shared.errors import Forbidden

SCOPES = ("read", "write", "promote", "admin")
HOME_ADMIN = "admin"  # the identity of HOME/token; no named token may take this name
WHAT_SCOPES_ALLOW = {
    "read": "read models, versions, events and files",
    "write": "register versions, record metrics, edit descriptions and tags, move unprotected aliases",
    "promote": "change stages, roll back and move protected aliases",
    "admin": "manage tokens, gates, hooks, watches, watchdogs and trusted keys",
}


@dataclass(frozen=True)
class Identity:
    name: str                 # the token's name; "admin" for the home's token
    scope: str                # read | write | promote | admin
    models: str | None = None  # a glob of model names the token covers; None: every model
    token_id: int | None = None  # None: the home's token (or the daemon itself)
    claimed: str = ""         # what the home's local client says it is (user@host)

    @property
    def actor(self) -> str:
        """The name events record (see the module docstring)."""
        if self.token_id is None and self.claimed:
            return self.claimed
        return self.name

    def covers(self, model: str | None) -> bool:
        """Whether the token's model glob covers ``model`` (names compare case-insensitively)."""
        if self.models is None or model is None:
            return True
        return fnmatch.fnmatchcase(model.lower(), self.models.lower())

    def may(self, scope: str, model: str | None = None) -> bool:
        return SCOPES.index(self.scope) >= SCOPES.index(scope) and self.covers(model)

    def require(self, scope: str, model: str | None = None, doing: str = "") -> None:
        """Raise Forbidden (403) unless this identity may act with ``scope`` on ``model``."""
        if SCOPES.index(self.scope) < SCOPES.index(scope):
            raise Forbidden(f"token {self.name!r} has scope {self.scope!r}; {doing or 'this'} needs {scope!r} "
                            f"({scope} may {WHAT_SCOPES_ALLOW[scope]})",
                            {"identity": self.name, "scope": self.scope, "needs": scope})
        if not self.covers(model):
            raise Forbidden(f"token {self.name!r} covers models {self.models!r}, not {model!r}",
                            {"identity": self.name, "models": self.models, "model": model})


def home_admin(claimed: str = "") -> Identity:
    """The home's token: the local admin."""
    return Identity(HOME_ADMIN, "admin", claimed=claimed)


# The daemon acting on its own configured rules (a drop folder's auto-promotion, a watchdog's
# rollback): full rights, and gate rules naming identities (``by ci``) do not count it as one.
DAEMON = Identity("daemon", "admin")
