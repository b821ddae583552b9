"""SQLAlchemy models: an installation is a tenant; connections hold its upstream credentials."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

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
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    installation: Mapped[Installation] = relationship(back_populates="connections")
