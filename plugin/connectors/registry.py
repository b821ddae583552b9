"""The connectors this build knows: one line per vendor module, the rest read from descriptors."""

from __future__ import annotations

from importlib import import_module

import requests

from plugin.core.model import SourceName

from .base import BaseClient, ConfigError, ConnectorConfig
from .descriptor import Connector

# One entry per vendor module in this package; the first of each source role is its default.
VENDORS = ("loop", "stripe", "shopify_payments", "netsuite", "shopify_pos")

CONNECTORS: dict[str, Connector] = {
    d.system: d for d in (import_module(f"{__package__}.{m}").DESCRIPTOR for m in VENDORS)
}


def default_system(source: SourceName) -> str:
    """The system shown for a source nobody configured (the first registered for it)."""
    return next(d.system for d in CONNECTORS.values() if d.source is source)


def for_source(source: SourceName) -> list[Connector]:
    """The connectors that can play a source role, in registry order."""
    return [d for d in CONNECTORS.values() if d.source is source]


def descriptor(system: str) -> Connector:
    """The descriptor of a system, or ConfigError for one this build doesn't know."""
    try:
        return CONNECTORS[system]
    except KeyError as e:
        raise ConfigError(f"unknown upstream system {system!r}", system=str(system)) from e


def build_client(
    system: str, config: ConnectorConfig, session: requests.Session | None = None
) -> BaseClient:
    """A configured client for `system`; unknown systems and bad config are ConfigError."""
    return descriptor(system).client(config, session=session)
