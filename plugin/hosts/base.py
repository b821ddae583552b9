"""What Order Truth needs from any helpdesk: verify a launch, read a ticket, write back to it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class LaunchRejected(Exception):
    """A sidebar launch that must not render; `reason` is safe to show, `status` is the HTTP code."""

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Launch:
    """A verified launch: which installation of which helpdesk account opened the sidebar."""

    host: str
    account: str
    host_installation_id: str
    installation_key: str
    claims: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HostTicket:
    """The ticket fields the sidebar uses."""

    id: str
    subject: str
    description: str
    updated_at: str
    tags: tuple[str, ...] = ()
    custom_fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HostUser:
    """A helpdesk user as the helpdesk itself reports them (never from client-side claims)."""

    id: str
    name: str
    email: str | None
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class HostApi(Protocol):
    """Calls back into one installation's helpdesk account."""

    def get_ticket(self, ticket_id: str) -> HostTicket: ...

    def post_internal_note(self, ticket_id: str, body: str) -> None: ...

    def note_exists(self, ticket_id: str, marker: str) -> bool: ...

    def add_tags(self, ticket_id: str, tags: list[str]) -> list[str]: ...

    def current_user(self) -> HostUser: ...
