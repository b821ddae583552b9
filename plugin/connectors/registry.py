"""Which connector class speaks for each upstream system, and how to build one."""

from __future__ import annotations

import requests

from plugin.core.model import SourceName

from .base import BaseClient, ConfigError, ConnectorConfig
from .loop import LoopClient
from .netsuite import NetSuiteClient
from .shopify_pos import ShopifyPosClient
from .stripe import StripeClient

CONNECTORS: dict[str, type[BaseClient]] = {
    "loop": LoopClient,
    "stripe": StripeClient,
    "netsuite": NetSuiteClient,
    "shopify_pos": ShopifyPosClient,
}

DEFAULT_SYSTEM: dict[SourceName, str] = {
    SourceName.PORTAL: "loop",
    SourceName.PROCESSOR: "stripe",
    SourceName.ERP: "netsuite",
    SourceName.POS: "shopify_pos",
}


def systems_for(source: SourceName) -> tuple[str, ...]:
    """The registered systems that can play a source role."""
    return tuple(name for name, cls in CONNECTORS.items() if cls.source is source)


def build_client(
    system: str, config: ConnectorConfig, session: requests.Session | None = None
) -> BaseClient:
    """A configured client for `system`; unknown systems and bad config are ConfigError."""
    try:
        cls = CONNECTORS[system]
    except KeyError as e:
        raise ConfigError(f"unknown upstream system {system!r}", system=str(system)) from e
    return cls(config, session=session)
