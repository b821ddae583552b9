"""What Order Truth needs from any helpdesk, as one small protocol every host implements.

A host verifies the sidebar's launch and registers the installation it names, says how the
sidebar may be framed and which scripts talk to the helpdesk in the browser (a thin adapter
per host, e.g. ZAF for Zendesk), and gives a server-side API for one installation: read a
ticket, post an internal note, add tags. Views, the outbox and the CLI speak only this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import click
    from flask import Blueprint, Request

    from ..installations import Installations, Tenant


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
    status: str = ""


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

    def update_ticket(self, ticket_id: str, *, status: str | None, add_tags: list[str],
                      custom_fields: dict[int, str], note: str) -> str:
        """Apply status, tags and custom field values with an internal note; the host's id
        for the change."""
        ...

    def current_user(self) -> HostUser: ...


class Host(Protocol):
    """One helpdesk (Zendesk …), bound to this deployment's config."""

    name: str
    title: str
    # Hosts an admin may point this helpdesk's API at (a leading "." means any subdomain).
    api_hosts: tuple[str, ...]

    def verify_launch(self, repo: Installations, request: Request) -> Launch:
        """The verified launch a sidebar request carries, or LaunchRejected."""
        ...

    def register(self, repo: Installations, launch: Launch) -> Tenant | None:
        """Create the installation a genuine first launch names (None: registration is off)."""
        ...

    def frame_ancestors(self, tenant: Tenant | None) -> str:
        """The CSP frame-ancestors that may embed this installation's sidebar."""
        ...

    def sidebar_scripts(self, tenant: Tenant) -> list[str]:
        """Script URLs the sidebar page loads before the widget (SDK, host adapter)."""
        ...

    def script_sources(self, tenant: Tenant | None) -> list[str]:
        """Origins those scripts come from, for the CSP."""
        ...

    def api(self, tenant: Tenant) -> HostApi | None:
        """A server-side API client for the installation's helpdesk, None when not connected."""
        ...

    def setup_url(self, tenant: Tenant, root_url: str) -> str:
        """Where an admin connects this installation."""
        ...

    def account_label(self, tenant: Tenant) -> str:
        """How admins know the installation ("acme.zendesk.com")."""
        ...

    # Agents sign in with the helpdesk's own OAuth so writes go out as them (hosts/agents.py).

    def agent_sign_in_url(self, tenant: Tenant, *, state: str, code_challenge: str,
                          redirect_uri: str) -> str | None:
        """The helpdesk's consent page for an agent (PKCE S256), None if it can't be offered."""
        ...

    def finish_agent_sign_in(self, tenant: Tenant, *, code: str, verifier: str,
                             redirect_uri: str) -> tuple[HostUser, dict[str, Any]]:
        """The agent the helpdesk vouches for, and their credentials (UpstreamError if refused)."""
        ...

    def refresh_agent(self, tenant: Tenant, credentials: dict[str, Any]) -> dict[str, Any]:
        """Fresh credentials for an expiring sign-in (SignInRequired if the helpdesk refuses)."""
        ...

    def agent_api(self, tenant: Tenant, credentials: dict[str, Any]) -> HostApi:
        """The helpdesk API acting as the agent, with the agent's own permissions."""
        ...

    def blueprints(self) -> list[Blueprint]:
        """The host's own pages: install, sign-in and connect flows."""
        ...

    def cli(self) -> click.Group | None:
        """The host's operator commands (`flask <host> …`)."""
        ...

    def package(self, base_url: str, output: Path, *, allow_localhost: bool = False) -> Path:
        """Build the app package to upload to the helpdesk."""
        ...
