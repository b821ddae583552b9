"""Short-lived, installation-bound session tokens for the sidebar (no third-party cookies)."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

SESSION_SECONDS = 30 * 60


class SessionRejected(Exception):
    """A missing, forged, expired or foreign session token."""


@dataclass(frozen=True)
class SidebarSession:
    """What a verified session token says: which installation, which generation, its CSRF value."""

    installation_id: int
    installation_key: str
    generation: int
    csrf: str
    # The agent who signed in to the helpdesk from this sidebar (their own OAuth grant), if any.
    agent_id: str | None = None
    agent_name: str = ""
    # Which sign-in (grant) named the agent: signing out ends it, and this session with it.
    agent_grant: str | None = None


class SessionTokens:
    """Issues and checks the bearer tokens the widget sends with its API calls."""

    def __init__(self, secret_key: str, max_age: int = SESSION_SECONDS) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="order-truth.sidebar-session")
        self.max_age = max_age

    def issue(self, installation_id: int, installation_key: str, generation: int, *,
              agent_id: str | None = None, agent_name: str = "",
              agent_grant: str | None = None) -> tuple[str, str]:
        """A new (token, csrf) pair for one launch (and, once they sign in, its agent)."""
        csrf = secrets.token_urlsafe(24)
        data: dict[str, object] = {"i": installation_id, "k": installation_key, "g": generation,
                                   "c": csrf}
        if agent_id is not None:
            data.update(a=agent_id, an=agent_name, ag=agent_grant)
        return self._serializer.dumps(data), csrf

    def verify(self, token: str | None) -> SidebarSession:
        if not token:
            raise SessionRejected("No session: reopen the ticket in your helpdesk.")
        try:
            data = self._serializer.loads(token, max_age=self.max_age)
        except SignatureExpired:
            raise SessionRejected("Session expired: reopen the ticket in your helpdesk.") from None
        except BadSignature:
            raise SessionRejected("Invalid session.") from None
        try:
            agent, grant = data.get("a"), data.get("ag")
            return SidebarSession(int(data["i"]), str(data["k"]), int(data["g"]), str(data["c"]),
                                  str(agent) if agent is not None else None,
                                  str(data.get("an", "")),
                                  str(grant) if grant is not None else None)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise SessionRejected("Invalid session.") from None


def csrf_ok(session: SidebarSession, header_value: str | None) -> bool:
    """Constant-time check of the CSRF header sent with a write."""
    # Bytes, not str: compare_digest raises on non-ASCII text (a 500 instead of a 403).
    return bool(header_value) and hmac.compare_digest(session.csrf.encode(),
                                                      (header_value or "").encode())
