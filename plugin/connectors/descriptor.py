"""What a connector declares about itself; the registry, forms, env config and docs read it.

A vendor module ends with one `DESCRIPTOR = Connector(...)`: its source role, the hosts its
API lives on, its credentials and options (names, labels, help, env variable, secret or
not), the gateway names a shop records its payments under, its vendor → canonical state
tables (for the docs), the sandbox module that simulates it and the sidebar actions its
client can carry out. Nothing outside the module
names the vendor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from plugin.core.model import OrderRef, SourceName

from .base import AuthError, BaseClient, ConfigError, ConnectorConfig, UpstreamError


@dataclass(frozen=True)
class Field:
    """One credential or option a connector needs."""

    name: str
    label: str
    help: str = ""
    secret: bool = False
    required: bool = True
    # The standalone environment variable, without the ORDER_TRUTH_ prefix.
    env: str | None = None
    default: str | None = None


@dataclass(frozen=True)
class Connector:
    """A connector's declaration."""

    system: str
    title: str
    source: SourceName
    client: type[BaseClient]
    # Hosts an admin may point it at; a leading "." means any subdomain of that domain.
    hosts: tuple[str, ...]
    credentials: tuple[Field, ...]
    options: tuple[Field, ...] = ()
    base_url_env: str | None = None
    # How a shop (Shopify) names this system's payments and refunds: its copy isn't counted.
    shop_gateways: frozenset[str] = frozenset()
    # What other systems' ids it reads, and what identifies it in theirs (for the docs).
    quotes: str = ""
    states: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The module (under plugin.sandbox.vendors) that simulates it, if any.
    sandbox: str | None = None
    # The sidebar actions its client can carry out ("refund", "cancel_refund" …): an action
    # asks for the installation's client only when its system lists the action here.
    writes: frozenset[str] = frozenset()

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.credentials if f.secret)

    @property
    def default_base_url(self) -> str:
        return self.client.default_base_url

    def env_names(self) -> list[str]:
        """Every environment variable this connector reads for a standalone install."""
        names = [f.env for f in (*self.credentials, *self.options) if f.env]
        return [*names, *([self.base_url_env] if self.base_url_env else [])]

    def check(self, config: ConnectorConfig, session: Any = None) -> str | None:
        """Test a connection: ask about an order that can't exist; "not found" proves it works.

        Returns None when the credentials work, else a message fit for an admin (the
        upstream's body is never echoed back).
        """
        try:
            client = self.client(config, session=session)
            client.fetch(OrderRef("ot-connection-test", "#ot-connection-test"))
        except AuthError:
            return "the credentials were refused"
        except ConfigError as exc:
            return str(exc)
        except UpstreamError as exc:
            status = f", HTTP {exc.http_status}" if exc.http_status else ""
            return f"couldn't check them ({exc.kind.value}{status})"
        return None


def state_table(mapping: Mapping[str, Enum]) -> dict[str, str]:
    """A vendor → canonical state table as plain strings, for the docs."""
    return {vendor: canonical.value for vendor, canonical in mapping.items()}
