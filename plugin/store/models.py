"""SQLAlchemy models: an installation is a tenant; connections hold its upstream credentials."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


def micros(moment: datetime | None) -> int:
    """A stored time as µs since the epoch (0 for none): a stamp that tells rows apart."""
    return 0 if moment is None else int(moment.timestamp() * 1_000_000)


class UTCDateTime(TypeDecorator[datetime]):
    """A UTC time, handed back aware by every database (SQLite drops the zone on the way in)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.astimezone(UTC) if value is not None and value.tzinfo else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class Base(DeclarativeBase):
    """Declarative base for every table."""


class Installation(Base):
    """One helpdesk account (or self-hosted brand) using the app."""

    __tablename__ = "installations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    host: Mapped[str] = mapped_column(String(40), nullable=False)  # sandbox | standalone | zendesk
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="active")
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow
    )
    uninstalled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Bumped on disconnect: every cache key embeds it, so purged data is unreachable at once.
    cache_generation: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Bumped by every change to the installation or its connections: processes that keep a
    # decrypted copy compare it (one cheap read) and cached answers are keyed by it.
    revision: Mapped[int] = mapped_column(Integer, nullable=False, default=0)

    connections: Mapped[list[Connection]] = relationship(
        back_populates="installation", cascade="all, delete-orphan"
    )


class Connection(Base):
    """How an installation reaches one upstream: system, base URL, encrypted credentials."""

    __tablename__ = "connections"
    __table_args__ = (UniqueConstraint("installation_id", "source"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    installation_id: Mapped[int] = mapped_column(
        ForeignKey("installations.id", ondelete="CASCADE"), nullable=False
    )
    source: Mapped[str] = mapped_column(String(20), nullable=False)  # portal | processor | …
    system: Mapped[str] = mapped_column(String(40), nullable=False)  # loop | stripe | …
    base_url: Mapped[str] = mapped_column(String(500), nullable=False)
    credentials_encrypted: Mapped[str] = mapped_column(Text, nullable=False, default="")
    options: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow
    )

    installation: Mapped[Installation] = relationship(back_populates="connections")


class TicketAction(Base):
    """A write back into a helpdesk ticket (note, tags), kept so a retry never repeats it."""

    __tablename__ = "ticket_actions"
    __table_args__ = (
        UniqueConstraint("installation_id", "idempotency_key"),
        Index("ix_ticket_actions_pending", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    installation_id: Mapped[int] = mapped_column(
        ForeignKey("installations.id", ondelete="CASCADE"), nullable=False
    )
    ticket_id: Mapped[str] = mapped_column(String(40), nullable=False)
    order_number: Mapped[str] = mapped_column(String(60), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)  # note | tags
    idempotency_key: Mapped[str] = mapped_column(String(120), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # A note write whose outcome is unknown may still land: nothing is posted before this.
    unconfirmed_until: Mapped[datetime | None] = mapped_column(UTCDateTime(),
                                                               nullable=True)
    # Whoever holds an unexpired lease is the only one allowed to send this write.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Who asked for it (the helpdesk's own user id and name): the write goes out as them.
    actor_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    actor_name: Mapped[str | None] = mapped_column(String(200), nullable=True)


class UsedLaunchToken(Base):
    """A launch token already presented; kept until it expires so it can't be replayed."""

    __tablename__ = "used_launch_tokens"
    __table_args__ = (Index("ix_used_launch_tokens_expires", "expires_at"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class AgentGrant(Base):
    """One agent's own helpdesk sign-in (OAuth), so writes go out as them with their rights."""

    __tablename__ = "agent_grants"
    __table_args__ = (UniqueConstraint("installation_id", "host_user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    installation_id: Mapped[int] = mapped_column(
        ForeignKey("installations.id", ondelete="CASCADE"), nullable=False
    )
    host_user_id: Mapped[str] = mapped_column(String(40), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    role: Mapped[str] = mapped_column(String(40), nullable=False, default="")
    # Access and refresh tokens with their expiry, encrypted like connection credentials.
    credentials_encrypted: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow
    )
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AgentSignIn(Base):
    """A sign-in started from one sidebar: its OAuth state, and who finished it (single use)."""

    __tablename__ = "agent_sign_ins"
    __table_args__ = (Index("ix_agent_sign_ins_expires", "expires_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    installation_id: Mapped[int] = mapped_column(
        ForeignKey("installations.id", ondelete="CASCADE"), nullable=False
    )
    state_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    claim_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    # The PKCE verifier and redirect URI, encrypted.
    secret_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    host_user_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    claimed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class AuditEntry(Base):
    """One action an agent took from the sidebar, written before the upstream call (pending)
    and completed after it: who, where, what, with which upstream ids, and how it ended."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        UniqueConstraint("installation_id", "idempotency_key"),
        Index("ix_audit_entries_when", "installation_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    installation_id: Mapped[int] = mapped_column(
        ForeignKey("installations.id", ondelete="CASCADE"), nullable=False
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow,
                                                 nullable=False)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    actor_id: Mapped[str] = mapped_column(String(40), nullable=False)
    actor_name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    actor_role: Mapped[str] = mapped_column(String(40), nullable=False, default="")
    ticket_id: Mapped[str] = mapped_column(String(40), nullable=False)
    order_number: Mapped[str] = mapped_column(String(60), nullable=False)
    action: Mapped[str] = mapped_column(String(40), nullable=False)  # refund | …
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    amount_minor: Mapped[int | None] = mapped_column(Integer, nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    idempotency_key: Mapped[str] = mapped_column(String(120), nullable=False)
    # pending (before / during the upstream call) | done | failed (the upstream refused; nothing
    # happened) | unknown (no answer: `audit reconcile` asks the upstream, never redoes it)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="pending")
    upstream_ids: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Whoever holds an unexpired lease is the only one allowed to call the upstream for it.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class InsightCount(Base):
    """How often something happened for an installation on a day (UTC): lookups, flags by
    code, refunds the checks prevented. Counts and codes only: never a customer's details."""

    __tablename__ = "insight_counts"
    __table_args__ = (UniqueConstraint("installation_id", "day", "metric"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    installation_id: Mapped[int] = mapped_column(
        ForeignKey("installations.id", ondelete="CASCADE"), nullable=False
    )
    day: Mapped[str] = mapped_column(String(10), nullable=False)  # YYYY-MM-DD, UTC
    metric: Mapped[str] = mapped_column(String(80), nullable=False)
    count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
