"""Agents signed in to their own helpdesk account, so writes to tickets go out as them.

A sidebar session proves only which installation opened it, never who is looking: the
launch carries no identity we may trust. So before the first write an agent signs in once
with the helpdesk's own OAuth, in a pop-up, and the helpdesk says who they are (with their
own token). Writes then use that token: the helpdesk applies the agent's own permissions
(a ticket they can't see or edit refuses the write), and the note's author is the agent.

The steps: the sidebar asks for a sign-in and gets a state and a claim; the pop-up opens at
`/<host>/agent/start` (which ties the state to that browser) and goes to the helpdesk, which
sends it back to `/<host>/agent/callback`; the callback trades the code for tokens and
records who signed in; the sidebar, asking with its claim, gets a new session that names
the agent, and a remember token so the next ticket's sidebar needn't ask again.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ..logs import remember_secrets
from ..store.crypto import SecretBox, SecretBoxError
from ..store.models import AgentGrant, AgentSignIn, micros
from .base import HostUser

SIGN_IN_SECONDS = 600
# Refresh an access token this long before it expires, not after a write was refused.
REFRESH_MARGIN_SECONDS = 60
# Roles that may sign in: the helpdesk's staff, never its customers.
STAFF_ROLES = ("agent", "admin")


class SignInRequired(Exception):
    """The agent must sign in (again) before writing; `reason` is safe to show them."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Agent:
    """One agent's sign-in: who the helpdesk says they are, and their tokens."""

    grant_id: int
    installation_id: int
    host_user_id: str
    name: str
    role: str
    credentials: dict[str, Any] = field(repr=False)
    # This sign-in and no other (ids can be reused after a sign-out): sessions and remember
    # tokens carry it, so signing out ends them.
    stamp: str = ""


@dataclass(frozen=True)
class PendingSignIn:
    """A sign-in the callback may finish: the PKCE verifier and where the helpdesk returns."""

    id: int
    installation_id: int
    verifier: str = field(repr=False)
    redirect_uri: str = ""
    browser: str = ""


@dataclass(frozen=True)
class Claim:
    """What a sidebar's claim found: "pending" (not finished yet), "done" or "refused"."""

    status: str
    agent: Agent | None = None
    reason: str = ""


def digest(value: str) -> str:
    """How a sign-in's state and claim are stored and compared (never as themselves)."""
    return hashlib.sha256(value.encode()).hexdigest()


def pkce_challenge(verifier: str) -> str:
    """The S256 PKCE code_challenge for a code_verifier (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def pkce_pair() -> tuple[str, str]:
    """A PKCE (verifier, S256 challenge) pair."""
    verifier = secrets.token_urlsafe(48)
    return verifier, pkce_challenge(verifier)


class Agents:
    """The agents' sign-ins for every installation, their tokens encrypted at rest."""

    def __init__(self, db: Session, box: SecretBox,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.db = db
        self.box = box
        self.now = now

    # -- signing in

    def start(self, installation_id: int, redirect_uri: str,
              browser: str = "") -> tuple[str, str, str]:
        """A new sign-in for one sidebar: (state for the helpdesk, claim for the sidebar,
        PKCE challenge). `browser` fingerprints the sidebar's browser (address and user
        agent): the sign-in may only be finished from the same one."""
        now = self.now()
        self.db.execute(delete(AgentSignIn).where(AgentSignIn.expires_at < now))
        state, claim = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier, challenge = pkce_pair()
        self.db.add(AgentSignIn(
            installation_id=installation_id, state_hash=digest(state), claim_hash=digest(claim),
            secret_encrypted=self.box.seal({"verifier": verifier, "redirect_uri": redirect_uri,
                                            "browser": browser}),
            expires_at=now + timedelta(seconds=SIGN_IN_SECONDS)))
        self.db.commit()
        return state, claim, challenge

    def pending(self, state: str) -> PendingSignIn | None:
        """The unfinished, unexpired sign-in a state names."""
        row = self.db.scalar(select(AgentSignIn).where(AgentSignIn.state_hash == digest(state)))
        if row is None or row.host_user_id is not None or row.error is not None \
                or row.expires_at < self.now():
            return None
        try:
            secret = self.box.open(row.secret_encrypted)
        except SecretBoxError:
            return None
        return PendingSignIn(row.id, row.installation_id, str(secret["verifier"]),
                             str(secret["redirect_uri"]), str(secret.get("browser", "")))

    def finish(self, pending: PendingSignIn, user: HostUser,
               credentials: dict[str, Any]) -> Agent:
        """Record who signed in (once per sign-in) and keep their tokens."""
        if user.role not in STAFF_ROLES:
            reason = "Only agents and admins can sign in to Order Truth."
            self.fail(pending, reason)
            raise SignInRequired(reason)
        won = self.db.execute(
            update(AgentSignIn)
            .where(AgentSignIn.id == pending.id, AgentSignIn.host_user_id.is_(None),
                   AgentSignIn.error.is_(None))
            .values(host_user_id=user.id)
            .execution_options(synchronize_session=False))
        if won.rowcount != 1:  # type: ignore[attr-defined]
            self.db.rollback()
            raise SignInRequired("This sign-in was already used; start again from the sidebar.")
        row = self.db.scalar(select(AgentGrant).where(
            AgentGrant.installation_id == pending.installation_id,
            AgentGrant.host_user_id == user.id))
        if row is None:
            row = AgentGrant(installation_id=pending.installation_id, host_user_id=user.id)
            self.db.add(row)
        row.name, row.role, row.revoked_at = user.name[:200], user.role[:40], None
        row.credentials_encrypted = self.box.seal(credentials)
        self.db.commit()
        return self._agent(row, credentials)

    def fail(self, pending: PendingSignIn, reason: str) -> None:
        """End a sign-in that the helpdesk or the agent refused; the sidebar shows why."""
        self.db.execute(update(AgentSignIn).where(AgentSignIn.id == pending.id,
                                                  AgentSignIn.host_user_id.is_(None))
                        .values(error=reason[:500]).execution_options(synchronize_session=False))
        self.db.commit()

    def claim(self, installation_id: int, claim: str) -> Claim:
        """What became of the sign-in this sidebar started; a finished one is claimed once."""
        row = self.db.scalar(select(AgentSignIn).where(AgentSignIn.claim_hash == digest(claim)))
        if row is None or row.installation_id != installation_id or row.claimed:
            return Claim("refused", reason="This sign-in isn't known here, or was already used.")
        if row.error is not None:
            return Claim("refused", reason=row.error)
        if row.host_user_id is None:
            if row.expires_at < self.now():
                return Claim("refused", reason="The sign-in took too long; start again.")
            return Claim("pending")
        won = self.db.execute(update(AgentSignIn)
                              .where(AgentSignIn.id == row.id, AgentSignIn.claimed.is_(False))
                              .values(claimed=True).execution_options(synchronize_session=False))
        self.db.commit()
        agent = self.get(installation_id, row.host_user_id)
        if won.rowcount != 1 or agent is None:  # type: ignore[attr-defined]
            return Claim("refused", reason="This sign-in isn't known here, or was already used.")
        return Claim("done", agent)

    # -- signed-in agents

    def get(self, installation_id: int, host_user_id: str) -> Agent | None:
        """An agent's live sign-in for one installation, if they have one."""
        row = self.db.scalar(select(AgentGrant).where(
            AgentGrant.installation_id == installation_id,
            AgentGrant.host_user_id == host_user_id, AgentGrant.revoked_at.is_(None)))
        if row is None:
            return None
        try:
            credentials = self.box.open(row.credentials_encrypted)
        except SecretBoxError:
            return None
        return self._agent(row, credentials)

    def sign_out(self, installation_id: int, host_user_id: str) -> bool:
        """Forget an agent's sign-in: their remember tokens stop working with it."""
        gone = self.db.execute(delete(AgentGrant).where(
            AgentGrant.installation_id == installation_id,
            AgentGrant.host_user_id == host_user_id))
        self.db.commit()
        return bool(gone.rowcount)  # type: ignore[attr-defined]

    def fresh(self, agent: Agent, refresh: Callable[[dict[str, Any]], dict[str, Any]]) -> Agent:
        """The agent with an access token good for a while, refreshed first if it's expiring.

        The helpdesk rotates the pair on refresh, so two workers must not both refresh: the
        grant's row is locked while one does (PostgreSQL), and the other then finds the new
        tokens. A refusal means the agent must sign in again; a helpdesk that didn't answer
        raises its UpstreamError (nothing is changed: try again).
        """
        if not _expiring(agent.credentials, self.now()):
            return agent
        row = self.db.scalar(select(AgentGrant).where(AgentGrant.id == agent.grant_id)
                             .with_for_update())
        if row is None or row.revoked_at is not None:
            self.db.rollback()
            raise SignInRequired("Your sign-in has ended; sign in again.")
        try:
            stored = self.box.open(row.credentials_encrypted)
        except SecretBoxError:
            stored = {}
        if not _expiring(stored, self.now()):  # another worker refreshed while we waited
            self.db.commit()
            return self._agent(row, stored)
        if not stored.get("refresh_token"):
            self.db.rollback()
            self.sign_out(agent.installation_id, agent.host_user_id)
            raise SignInRequired("Your sign-in has expired; sign in again.")
        try:
            credentials = refresh(stored)
        except SignInRequired:
            self.db.rollback()
            self.sign_out(agent.installation_id, agent.host_user_id)
            raise
        except Exception:
            self.db.rollback()
            raise
        row.credentials_encrypted = self.box.seal(credentials)
        row.updated_at = self.now()
        self.db.commit()
        return self._agent(row, credentials)

    def set_role(self, agent: Agent, role: str) -> Agent:
        """The role the helpdesk gives the agent now (it may have changed since sign-in)."""
        self.db.execute(update(AgentGrant).where(AgentGrant.id == agent.grant_id)
                        .values(role=role[:40]).execution_options(synchronize_session=False))
        self.db.commit()
        return Agent(agent.grant_id, agent.installation_id, agent.host_user_id, agent.name,
                     role, agent.credentials, agent.stamp)

    @staticmethod
    def _agent(row: AgentGrant, credentials: dict[str, Any]) -> Agent:
        remember_secrets(v for k, v in credentials.items() if k.endswith("token"))
        return Agent(row.id, row.installation_id, row.host_user_id, row.name, row.role,
                     credentials, f"{row.id}:{micros(row.created_at)}")


def _expiring(credentials: dict[str, Any], now: datetime) -> bool:
    expires_at = credentials.get("expires_at")
    return isinstance(expires_at, int | float) and \
        expires_at - REFRESH_MARGIN_SECONDS <= now.timestamp()


class RememberTokens:
    """Lets a later sidebar in the same browser resume an agent's sign-in without the pop-up.

    Signed, installation- and grant-bound, and short-lived (a shift): signing out deletes the
    grant, which ends every remember token made for it.
    """

    def __init__(self, secret_key: str, max_age: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="order-truth.agent-remember")
        self.max_age = max_age

    def issue(self, agent: Agent) -> str:
        return self._serializer.dumps({"i": agent.installation_id, "u": agent.host_user_id,
                                       "g": agent.stamp})

    def verify(self, token: str) -> tuple[int, str, str] | None:
        """(installation id, helpdesk user id, sign-in stamp), or None for anything not ours."""
        try:
            data = self._serializer.loads(token, max_age=self.max_age)
            return int(data["i"]), str(data["u"]), str(data["g"])
        except (BadSignature, KeyError, TypeError, ValueError):
            return None
