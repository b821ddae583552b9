"""Installations (tenants): the built-in sandbox, a self-hosted brand from env vars, helpdesks."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .config import STANDALONE_SOURCES, standalone_configured
from .connectors.base import ConnectorConfig
from .connectors.registry import CONNECTORS
from .core.model import SourceName
from .core.orderid import DEFAULT_SHAPE
from .core.settings import ReconcileSettings
from .fanout import DEADLINE_GRACE
from .store.crypto import SecretBox, SecretBoxError
from .store.models import Connection, Installation, TicketAction

log = logging.getLogger(__name__)

SANDBOX_KEY = "sandbox"
STANDALONE_KEY = "standalone"

# Admin-toggled features, with their defaults.
DEFAULT_FEATURES: dict[str, bool] = {
    "pos_source": True,  # ask the store POS as a fourth source
    "post_notes": True,  # agents may post the summary as an internal note
    "add_tags": True,  # agents may tag the ticket with the flags found
}


@dataclass(frozen=True)
class Tenant:
    """A detached, read-only view of an installation for one request."""

    id: int
    key: str
    host: str
    name: str
    status: str
    settings: dict[str, Any] = field(default_factory=dict)
    generation: int = 0
    uninstalled_at: datetime | None = None
    # Decrypted upstream and helpdesk credentials: kept out of repr so they never reach a log.
    connections: dict[str, StoredConnection] = field(default_factory=dict, repr=False)

    @property
    def features(self) -> dict[str, bool]:
        return {**DEFAULT_FEATURES, **self.settings.get("features", {})}

    @property
    def order_name_prefix(self) -> str:
        return str(self.settings.get("order_name_prefix", "#"))

    @property
    def order_id_shape(self) -> str:
        """What this shop's order numbers look like (checked when an admin sets it)."""
        return str(self.settings.get("order_id_shape") or DEFAULT_SHAPE)

    @property
    def reconcile_settings(self) -> ReconcileSettings:
        return ReconcileSettings.from_mapping(self.settings.get("reconcile"))

    @property
    def cache_prefix(self) -> str:
        return f"inst:{self.id}:g{self.generation}"

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def zendesk(self) -> dict[str, Any]:
        return dict(self.settings.get("zendesk", {}))

    @property
    def uses_sandbox_upstreams(self) -> bool:
        return self.host == "sandbox" or bool(self.settings.get("sandbox_upstreams"))


@dataclass(frozen=True)
class StoredConnection:
    """One decrypted connection: which system, where, and its credentials."""

    source: str
    system: str
    base_url: str
    credentials: dict[str, str] = field(repr=False)
    options: dict[str, Any] = field(default_factory=dict)


def to_tenant(inst: Installation, box: SecretBox | None = None) -> Tenant:
    """Detach an installation; decrypt its connections when a SecretBox is given."""
    connections: dict[str, StoredConnection] = {}
    if box is not None:
        for c in inst.connections:
            try:
                creds = box.open(c.credentials_encrypted)
            except SecretBoxError:
                # Wrong or rotated-away ENCRYPTION_KEY: treat as not connected, don't crash.
                log.error("credentials for %s/%s can't be decrypted; reconnect it", inst.key, c.source)
                continue
            connections[c.source] = StoredConnection(
                c.source, c.system, c.base_url, creds, dict(c.options or {}))
    return Tenant(inst.id, inst.key, inst.host, inst.name, inst.status, dict(inst.settings or {}),
                  inst.cache_generation or 0, inst.uninstalled_at, connections)


def ensure_builtin(session: Session, config: dict[str, Any]) -> None:
    """Create the sandbox and env-configured installations if they are missing."""
    wanted = []
    if config.get("SANDBOX_ENABLED"):
        wanted.append((SANDBOX_KEY, "sandbox", "Sandbox (simulated upstreams)"))
    if standalone_configured(config):
        wanted.append((STANDALONE_KEY, "standalone", "Self-hosted"))
    for key, host, name in wanted:
        if session.scalar(select(Installation).where(Installation.key == key)) is None:
            session.add(Installation(key=key, host=host, name=name, status="active", settings={}))
    session.commit()
    if config.get("SANDBOX_ENABLED"):
        _ensure_sandbox_zendesk(session)


def _ensure_sandbox_zendesk(session: Session) -> None:
    """The sandbox's own Zendesk installation: launched by the sandbox helpdesk pages."""
    from .hosts.zendesk.launch import installation_key
    from .sandbox.zendesk import (
        SANDBOX_ZENDESK_APP_ID,
        SANDBOX_ZENDESK_INSTALLATION_ID,
        SANDBOX_ZENDESK_SUBDOMAIN,
    )

    key = installation_key(SANDBOX_ZENDESK_SUBDOMAIN, SANDBOX_ZENDESK_INSTALLATION_ID)
    if session.scalar(select(Installation).where(Installation.key == key)) is not None:
        return
    session.add(Installation(
        key=key, host="zendesk", name="Sandbox Zendesk", status="active",
        settings={"zendesk": {"subdomain": SANDBOX_ZENDESK_SUBDOMAIN,
                              "installation_id": SANDBOX_ZENDESK_INSTALLATION_ID,
                              "app_id": SANDBOX_ZENDESK_APP_ID, "sandbox": True, "origin": "self"},
                  "sandbox_upstreams": True}))
    session.commit()


def default_key(config: dict[str, Any]) -> str:
    """The installation the CLI uses when none is named."""
    return STANDALONE_KEY if standalone_configured(config) else SANDBOX_KEY


def find(session: Session, key: str, box: SecretBox | None = None) -> Tenant | None:
    """The installation with this key, detached (with decrypted connections if `box`)."""
    inst = session.scalar(select(Installation).where(Installation.key == key))
    return to_tenant(inst, box) if inst else None


def get(session: Session, installation_id: int, box: SecretBox | None = None) -> Tenant | None:
    inst = session.get(Installation, installation_id)
    return to_tenant(inst, box) if inst else None


def register_zendesk(session: Session, subdomain: str, host_installation_id: str, *,
                     app_id: str | None = None, base_url: str | None = None,
                     name: str | None = None, extra: dict[str, Any] | None = None) -> Tenant:
    """Create (or reactivate after a disconnect) a Zendesk installation."""
    from .hosts.zendesk.launch import installation_key

    key = installation_key(subdomain, host_installation_id)
    inst = session.scalar(select(Installation).where(Installation.key == key))
    zendesk = {"subdomain": subdomain, "installation_id": host_installation_id}
    if app_id:
        zendesk["app_id"] = app_id
    if base_url:
        zendesk["base_url"] = base_url.rstrip("/")
    if inst is None:
        inst = Installation(key=key, host="zendesk", name=name or f"{subdomain}.zendesk.com",
                            status="active", settings={"zendesk": zendesk, **(extra or {})})
        session.add(inst)
    else:
        settings = dict(inst.settings or {})
        settings["zendesk"] = {**settings.get("zendesk", {}), **zendesk}
        settings.update(extra or {})
        inst.settings = settings
        inst.status = "active"
        inst.uninstalled_at = None
    session.commit()
    return to_tenant(inst)


def update_settings(session: Session, installation_id: int, changes: dict[str, Any]) -> None:
    """Merge `changes` into an installation's settings (one level deep for dict values)."""
    inst = session.get(Installation, installation_id)
    if inst is None:
        raise LookupError(installation_id)
    settings = dict(inst.settings or {})
    for k, v in changes.items():
        if isinstance(v, dict) and isinstance(settings.get(k), dict):
            settings[k] = {**settings[k], **v}
        else:
            settings[k] = v
    inst.settings = settings
    session.commit()


def save_connection(session: Session, box: SecretBox, installation_id: int, *, source: str,
                    system: str, base_url: str, credentials: dict[str, str],
                    options: dict[str, Any] | None = None) -> None:
    """Store (replace) one connection, credentials encrypted."""
    row = session.scalar(select(Connection).where(
        Connection.installation_id == installation_id, Connection.source == source))
    if row is None:
        row = Connection(installation_id=installation_id, source=source)
        session.add(row)
    row.system = system
    row.base_url = base_url
    row.credentials_encrypted = box.seal(credentials)
    row.options = options or {}
    session.commit()


def delete_connection(session: Session, installation_id: int, source: str) -> bool:
    row = session.scalar(select(Connection).where(
        Connection.installation_id == installation_id, Connection.source == source))
    if row is None:
        return False
    session.delete(row)
    session.commit()
    return True


def disconnect(session: Session, installation_id: int) -> None:
    """Uninstall: drop every secret and queued write, and orphan every cached answer."""
    inst = session.get(Installation, installation_id)
    if inst is None:
        raise LookupError(installation_id)
    for row in list(inst.connections):
        session.delete(row)
    session.execute(delete(TicketAction).where(TicketAction.installation_id == installation_id))
    inst.status = "uninstalled"
    inst.uninstalled_at = datetime.now(UTC)
    inst.cache_generation = (inst.cache_generation or 0) + 1
    session.commit()


def reactivate(session: Session, installation_id: int) -> None:
    """Mark a (re)connected installation active again."""
    inst = session.get(Installation, installation_id)
    if inst is not None and inst.status != "active":
        inst.status = "active"
        inst.uninstalled_at = None
        session.commit()


def remove(session: Session, installation_id: int) -> None:
    """Delete an installation and everything it owns."""
    inst = session.get(Installation, installation_id)
    if inst is not None:
        session.delete(inst)
        session.commit()


def connector_configs(
    tenant: Tenant, config: dict[str, Any]
) -> dict[SourceName, tuple[str, ConnectorConfig] | None]:
    """Which system and settings each source uses for this tenant (None: not configured)."""
    timeouts = {
        "connect_timeout": float(config["UPSTREAM_CONNECT_TIMEOUT"]),
        # Each request is capped by what is left of the lookup's deadline (plus the fan-out's
        # grace, so the deadline, not a racing socket timeout, reports a late source).
        "read_timeout": float(config["FANOUT_DEADLINE_SECONDS"]) + DEADLINE_GRACE,
    }
    out: dict[SourceName, tuple[str, ConnectorConfig] | None] = {s: None for s in SourceName}
    if tenant.uses_sandbox_upstreams:
        from .sandbox.server import (
            SANDBOX_CREDENTIALS,
            SANDBOX_OPTIONS,
            connector_base_urls,
            get_sandbox,
        )

        # SANDBOX_URL points at a sandbox served elsewhere (tests, bench); else in-process.
        urls = connector_base_urls(config.get("SANDBOX_URL") or get_sandbox().url)
        for system, cls in CONNECTORS.items():
            out[cls.source] = (system, ConnectorConfig(
                base_url=urls[system], credentials=SANDBOX_CREDENTIALS[system],
                options=SANDBOX_OPTIONS.get(system, {}), **timeouts))
    elif tenant.host == "standalone":
        for system, spec in STANDALONE_SOURCES.items():
            creds = {k: _str(config.get(v)) for k, v in spec["credentials"].items()}
            if not all(creds.values()):
                continue
            url_var, url_default = spec["base_url"]
            options = {k: _str(config.get(v)) for k, v in spec.get("options", {}).items()
                       if config.get(v)}
            out[CONNECTORS[system].source] = (system, ConnectorConfig(
                base_url=_str(config.get(url_var)) or (url_default or ""),
                credentials=creds, options=options, **timeouts))
    else:
        for stored in tenant.connections.values():
            cls = CONNECTORS.get(stored.system)
            if cls is None or stored.source != cls.source.value:
                continue
            out[cls.source] = (stored.system, ConnectorConfig(
                base_url=stored.base_url, credentials=stored.credentials,
                options={k: str(v) for k, v in stored.options.items()}, **timeouts))
    if not tenant.features.get("pos_source", True):
        out[SourceName.POS] = None
    return out


def _str(value: Any) -> str:
    # from_prefixed_env JSON-decodes values, so a numeric key arrives as an int.
    return "" if value is None else str(value)
