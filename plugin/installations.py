"""Installations (tenants): the repository that stores them and the connections they use."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .connectors.base import ConnectorConfig
from .connectors.registry import CONNECTORS, build_client, descriptor
from .core.model import SourceName
from .core.orderid import DEFAULT_SHAPE
from .core.settings import ReconcileSettings
from .logs import remember_secrets
from .store.crypto import SecretBox, SecretBoxError
from .store.models import (
    AgentGrant,
    AgentSignIn,
    Connection,
    Installation,
    TicketAction,
    micros,
)

log = logging.getLogger(__name__)

STANDALONE_KEY = "standalone"
# The connection a helpdesk installation uses to call back into its helpdesk.
HELPDESK = "helpdesk"

# Admin-toggled features, with their defaults.
DEFAULT_FEATURES: dict[str, bool] = {
    "pos_source": True,  # ask the store POS as a fourth source
    "post_notes": True,  # agents may post the summary as an internal note
    "add_tags": True,  # agents may tag the ticket with the flags found
    "refunds": False,  # agents may refund at the processor (roles and caps in the settings)
    "draft_reply": True,  # agents may put the customer sentence into their reply editor
    "cancel_refunds": False,  # agents may cancel a flagged refund still waiting on the customer
    "resolve_ticket": False,  # agents may apply the admin's ticket changes for the outcome
    "erp_return_authorizations": False,  # agents may create the ERP RA a portal return lacks
    "erp_item_receipts": False,  # agents may receive a store return into ERP inventory
}


@dataclass(frozen=True)
class StoredConnection:
    """One decrypted connection: which system, where, and its credentials."""

    source: str
    system: str
    base_url: str
    credentials: dict[str, str] = field(repr=False)
    options: dict[str, Any] = field(default_factory=dict)


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
    revision: int = 0
    # When the row was created (µs since the epoch): an id reused after a delete on SQLite
    # is a different installation, with keys of its own.
    created: int = 0
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
        """Cache keys of this installation: a disconnect or any settings/connection change
        moves to new keys, so nothing cached under the old ones is read again."""
        return f"inst:{self.id}:{self.created}:g{self.generation}:r{self.revision}"

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def public_api(self) -> bool:
        """Whether its JSON API answers without the API token (a demo installation)."""
        return bool(self.settings.get("public_api"))

    def host_settings(self, host: str) -> dict[str, Any]:
        """The settings a helpdesk host keeps for this installation (subdomain, app id …)."""
        return dict(self.settings.get(host, {}))


class TenantCache:
    """Decrypted tenants kept per process, each valid while its row's revision is unchanged.

    Loading a tenant decrypts every connection; a request instead reads one small
    (id, revision) row and reuses the copy when nothing changed since.
    """

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._tenants: OrderedDict[int, Tenant] = OrderedDict()
        self.hits = 0
        self.loads = 0

    def get(self, installation_id: int, revision: int, key: str, created: int) -> Tenant | None:
        with self._lock:
            tenant = self._tenants.get(installation_id)
            if tenant is None or tenant.revision != revision:
                return None
            if tenant.key != key or tenant.created != created:
                return None  # the id now belongs to another installation
            self._tenants.move_to_end(installation_id)
            self.hits += 1
            return tenant

    def put(self, tenant: Tenant) -> None:
        with self._lock:
            self.loads += 1
            self._tenants[tenant.id] = tenant
            self._tenants.move_to_end(tenant.id)
            while len(self._tenants) > self.size:
                self._tenants.popitem(last=False)


class Installations:
    """The installations store: every tenant it returns has its connections decrypted."""

    def __init__(self, session: Session, box: SecretBox, *,
                 tenants: TenantCache | None = None) -> None:
        self.session = session
        self.box = box
        self.tenants = tenants

    # -- reading

    def find(self, key: str) -> Tenant | None:
        """The installation with this key."""
        return self._by(Installation.key == key)

    def get(self, installation_id: int) -> Tenant | None:
        """The installation with this id."""
        return self._by(Installation.id == installation_id)

    def _by(self, condition: Any) -> Tenant | None:
        """One installation: from the process's decrypted copy while its revision holds (one
        small row read), else loaded and decrypted."""
        if self.tenants is not None:
            row = self.session.execute(
                select(Installation.id, Installation.revision, Installation.key,
                       Installation.created_at).where(condition)).first()
            return self._cached(row.id, row.revision, row.key, micros(row.created_at)) \
                if row else None
        inst = self.session.scalar(select(Installation).where(condition))
        return self._tenant(inst) if inst else None

    def _cached(self, installation_id: int, revision: int, key: str,
                created: int) -> Tenant | None:
        assert self.tenants is not None
        tenant = self.tenants.get(installation_id, revision, key, created)
        if tenant is not None:
            return tenant
        inst = self.session.get(Installation, installation_id)
        if inst is None:
            return None
        tenant = self._tenant(inst)
        self.tenants.put(tenant)
        return tenant

    def all(self) -> list[Installation]:
        """Every installation row, oldest first (for listings)."""
        return list(self.session.scalars(select(Installation).order_by(Installation.id)))

    def default_key(self, config: Mapping[str, Any]) -> str | None:
        """The installation the CLI and JSON API use when none is named."""
        if standalone_configured(config):
            return STANDALONE_KEY
        rows = self.all()
        flagged = next((inst for inst in rows if (inst.settings or {}).get("default")), None)
        chosen = flagged or (rows[0] if rows else None)
        return chosen.key if chosen else None

    def _tenant(self, inst: Installation) -> Tenant:
        connections: dict[str, StoredConnection] = {}
        for c in inst.connections:
            try:
                creds = self.box.open(c.credentials_encrypted)
            except SecretBoxError:
                # Wrong or rotated-away ENCRYPTION_KEY: treat as not connected, don't crash.
                log.error("credentials for %s/%s can't be decrypted; reconnect it",
                          inst.key, c.source)
                continue
            remember_secrets(creds.values())
            connections[c.source] = StoredConnection(
                c.source, c.system, c.base_url, creds, dict(c.options or {}))
        return Tenant(inst.id, inst.key, inst.host, inst.name, inst.status,
                      dict(inst.settings or {}), inst.cache_generation or 0, inst.uninstalled_at,
                      inst.revision or 0, micros(inst.created_at), connections)

    # -- writing

    def ensure(self, key: str, *, host: str, name: str,
               settings: dict[str, Any] | None = None) -> Tenant:
        """Create the installation if it is missing; merge `settings` into it either way."""
        inst = self.session.scalar(select(Installation).where(Installation.key == key))
        if inst is None:
            inst = Installation(key=key, host=host, name=name, status="active",
                                settings=dict(settings or {}))
            self.session.add(inst)
            self.session.commit()
        elif settings:
            self.update_settings(inst.id, settings)
        return self._tenant(inst)

    def register(self, key: str, *, host: str, name: str, settings: dict[str, Any]) -> Tenant:
        """Create, or reactivate after a disconnect, a helpdesk installation."""
        inst = self.session.scalar(select(Installation).where(Installation.key == key))
        if inst is None:
            inst = Installation(key=key, host=host, name=name, status="active",
                                settings=dict(settings))
            self.session.add(inst)
        else:
            merged = dict(inst.settings or {})
            for k, v in settings.items():
                merged[k] = {**merged.get(k, {}), **v} if isinstance(v, dict) else v
            inst.settings = merged
            inst.status = "active"
            inst.uninstalled_at = None
            _touch(inst)
        self.session.commit()
        return self._tenant(inst)

    def update_settings(self, installation_id: int, changes: dict[str, Any]) -> None:
        """Merge `changes` into an installation's settings (dicts merge at every depth, so
        setting one nested value keeps its siblings)."""
        inst = self._row(installation_id)
        settings = _merged(dict(inst.settings or {}), changes)
        if settings != (inst.settings or {}):
            inst.settings = settings
            _touch(inst)
            self.session.commit()

    def save_connection(self, installation_id: int, *, source: str, system: str, base_url: str,
                        credentials: dict[str, str], options: dict[str, Any] | None = None) -> None:
        """Store (replace) one connection, credentials encrypted."""
        row = self.session.scalar(select(Connection).where(
            Connection.installation_id == installation_id, Connection.source == source))
        if row is None:
            row = Connection(installation_id=installation_id, source=source)
            self.session.add(row)
        elif (row.system, row.base_url, row.options or {}) == (system, base_url, options or {}) \
                and self._opens_to(row.credentials_encrypted, credentials):
            return  # unchanged: keep the revision (and everything cached under it)
        row.system = system
        row.base_url = base_url
        row.credentials_encrypted = self.box.seal(credentials)
        row.options = options or {}
        _touch(self._row(installation_id))
        self.session.commit()

    def _opens_to(self, sealed: str, credentials: dict[str, str]) -> bool:
        try:
            return self.box.open(sealed) == credentials
        except SecretBoxError:
            return False

    def delete_connection(self, installation_id: int, source: str) -> bool:
        row = self.session.scalar(select(Connection).where(
            Connection.installation_id == installation_id, Connection.source == source))
        if row is None:
            return False
        self.session.delete(row)
        _touch(self._row(installation_id))
        self.session.commit()
        return True

    def disconnect(self, installation_id: int) -> None:
        """Uninstall: drop every secret and queued write, and orphan every cached answer."""
        inst = self._row(installation_id)
        for row in list(inst.connections):
            self.session.delete(row)
        for table in (TicketAction, AgentGrant, AgentSignIn):  # agents' tokens are secrets too
            self.session.execute(delete(table).where(table.installation_id == installation_id))
        inst.status = "uninstalled"
        inst.uninstalled_at = datetime.now(UTC)
        inst.cache_generation = (inst.cache_generation or 0) + 1
        _touch(inst)
        self.session.commit()

    def reactivate(self, installation_id: int) -> None:
        """Mark a (re)connected installation active again."""
        inst = self.session.get(Installation, installation_id)
        if inst is not None and inst.status != "active":
            inst.status = "active"
            inst.uninstalled_at = None
            _touch(inst)
            self.session.commit()

    def remove(self, installation_id: int) -> None:
        """Delete an installation and everything it owns."""
        inst = self.session.get(Installation, installation_id)
        if inst is not None:
            self.session.delete(inst)
            self.session.commit()

    def _row(self, installation_id: int) -> Installation:
        inst = self.session.get(Installation, installation_id)
        if inst is None:
            raise LookupError(installation_id)
        return inst


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in changes.items():
        out[k] = _merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _touch(inst: Installation) -> None:
    """A new revision: other processes' decrypted copies and cached answers are stale.

    Incremented in SQL, so two writers at once both count (neither bump is lost).
    """
    inst.revision = Installation.revision + 1  # type: ignore[assignment]


# ---------------------------------------------------------------- standalone (env-configured)


def standalone_configured(config: Mapping[str, Any]) -> bool:
    """True when env vars configure at least one upstream for a self-hosted brand."""
    return any(_standalone_credentials(d.system, config) for d in CONNECTORS.values())


def ensure_standalone(repo: Installations, config: Mapping[str, Any]) -> None:
    """The self-hosted installation, when env vars configure any upstream."""
    if standalone_configured(config):
        repo.ensure(STANDALONE_KEY, host="standalone", name="Self-hosted")


def _standalone_credentials(system: str, config: Mapping[str, Any]) -> dict[str, str] | None:
    d = CONNECTORS[system]
    creds = {f.name: _str(config.get(f.env)) for f in d.credentials if f.env}
    return creds if creds and all(creds.values()) else None


def _standalone(config: Mapping[str, Any]) -> dict[SourceName, tuple[str, dict[str, Any]]]:
    """Per source, the first registered system the environment configures."""
    out: dict[SourceName, tuple[str, dict[str, Any]]] = {}
    for d in CONNECTORS.values():
        creds = _standalone_credentials(d.system, config)
        if creds is None or d.source in out:
            continue
        options = {f.name: _str(config.get(f.env)) for f in d.options
                   if f.env and config.get(f.env)}
        base = _str(config.get(d.base_url_env)) if d.base_url_env else ""
        out[d.source] = (d.system, {"credentials": creds, "options": options, "base_url": base})
    return out


def connector_configs(
    tenant: Tenant, config: Mapping[str, Any]
) -> dict[SourceName, tuple[str, ConnectorConfig] | None]:
    """Which system and settings each source uses for this tenant (None: not configured)."""
    timeouts = {
        "connect_timeout": config["UPSTREAM_CONNECT_TIMEOUT"],
        "max_body_bytes": config["UPSTREAM_MAX_BODY_BYTES"],
        # Each request is capped by what is left of the lookup's deadline anyway.
        "read_timeout": config["FANOUT_DEADLINE_SECONDS"] + config["FANOUT_DEADLINE_GRACE"],
    }
    out: dict[SourceName, tuple[str, ConnectorConfig] | None] = {s: None for s in SourceName}
    if tenant.host == "standalone":
        for source, (system, spec) in _standalone(config).items():
            out[source] = (system, ConnectorConfig(
                base_url=spec["base_url"], credentials=spec["credentials"],
                options=spec["options"], **timeouts))
    else:
        for stored in tenant.connections.values():
            d = CONNECTORS.get(stored.system)
            if d is None or stored.source != d.source.value:
                continue
            out[d.source] = (stored.system, ConnectorConfig(
                base_url=stored.base_url, credentials=stored.credentials,
                options={k: str(v) for k, v in stored.options.items()}, **timeouts))
    if not tenant.features.get("pos_source", True):
        out[SourceName.POS] = None
    return out


def _str(value: Any) -> str:
    # from_prefixed_env JSON-decodes values, so a numeric key arrives as an int.
    return "" if value is None else str(value)


def writing_client(tenant: Tenant, config: Mapping[str, Any], session: Any,
                   source: SourceName, action: str, system: str | None = None) -> Any | None:
    """The client `action` writes through: this tenant's `source`, when its system can carry
    the action out (its descriptor lists it) and is `system` if one is named; else None."""
    entry = connector_configs(tenant, config).get(source)
    if entry is None or action not in descriptor(entry[0]).writes \
            or (system and entry[0] != system):
        return None
    return build_client(entry[0], entry[1], session)
