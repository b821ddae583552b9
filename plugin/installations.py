"""Installations (tenants): the built-in sandbox, a self-hosted brand from env vars, helpdesks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .config import STANDALONE_SOURCES, standalone_configured
from .connectors.base import ConnectorConfig
from .connectors.registry import CONNECTORS
from .core.model import SourceName
from .core.settings import ReconcileSettings
from .store.models import Installation

SANDBOX_KEY = "sandbox"
STANDALONE_KEY = "standalone"

# Admin-toggled features, with their defaults.
DEFAULT_FEATURES: dict[str, bool] = {
    "pos_source": True,  # ask the store POS as a fourth source
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

    @property
    def features(self) -> dict[str, bool]:
        return {**DEFAULT_FEATURES, **self.settings.get("features", {})}

    @property
    def order_name_prefix(self) -> str:
        return str(self.settings.get("order_name_prefix", "#"))

    @property
    def reconcile_settings(self) -> ReconcileSettings:
        return ReconcileSettings.from_mapping(self.settings.get("reconcile"))

    @property
    def cache_prefix(self) -> str:
        return f"inst:{self.id}"


def to_tenant(inst: Installation) -> Tenant:
    return Tenant(inst.id, inst.key, inst.host, inst.name, inst.status, dict(inst.settings or {}))


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


def default_key(config: dict[str, Any]) -> str:
    """The installation the CLI uses when none is named."""
    return STANDALONE_KEY if standalone_configured(config) else SANDBOX_KEY


def find(session: Session, key: str) -> Tenant | None:
    inst = session.scalar(select(Installation).where(Installation.key == key))
    return to_tenant(inst) if inst else None


def connector_configs(
    tenant: Tenant, config: dict[str, Any]
) -> dict[SourceName, tuple[str, ConnectorConfig] | None]:
    """Which system and settings each source uses for this tenant (None: not configured)."""
    timeouts = {
        "connect_timeout": float(config["UPSTREAM_CONNECT_TIMEOUT"]),
        # A read can't usefully outlast the fan-out deadline.
        "read_timeout": float(config["FANOUT_DEADLINE_SECONDS"]),
    }
    out: dict[SourceName, tuple[str, ConnectorConfig] | None] = {s: None for s in SourceName}
    if tenant.host == "sandbox":
        from .sandbox.server import SANDBOX_CREDENTIALS, connector_base_urls, get_sandbox

        # SANDBOX_URL points at a sandbox served elsewhere (tests, bench); else in-process.
        urls = connector_base_urls(config.get("SANDBOX_URL") or get_sandbox().url)
        for system, cls in CONNECTORS.items():
            out[cls.source] = (system, ConnectorConfig(
                base_url=urls[system], credentials=SANDBOX_CREDENTIALS[system], **timeouts))
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
    if not tenant.features.get("pos_source", True):
        out[SourceName.POS] = None
    return out


def _str(value: Any) -> str:
    # from_prefixed_env JSON-decodes values, so a numeric key arrives as an int.
    return "" if value is None else str(value)
