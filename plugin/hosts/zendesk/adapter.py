"""Zendesk as a host: where an installation's Zendesk lives, its keys, and its API client."""

from __future__ import annotations

import logging
from typing import Any

import requests
from sqlalchemy.orm import Session

from ... import installations
from ...connectors.base import ConnectorConfig
from ...installations import Tenant
from ..base import Launch, LaunchRejected
from .client import ZendeskClient
from .launch import LaunchTarget, SeenTokens, installation_key, verify_launch

log = logging.getLogger(__name__)

PUBLIC_KEY_SECONDS = 3600
# A forged token must not turn every request into a key download.
KEY_REFETCH_MIN_SECONDS = 60


def default_base_url(subdomain: str) -> str:
    return f"https://{subdomain}.zendesk.com"


class ZendeskHost:
    """Everything Zendesk-specific the views need, bound to this deployment's config."""

    def __init__(self, config: dict[str, Any], cache: Any, http: requests.Session) -> None:
        self.config = config
        self.cache = cache
        self.http = http

    # -- where things are

    def base_url(self, tenant: Tenant | None, subdomain: str) -> str:
        """The installation's Zendesk API base: overridable (the sandbox, tests), else the account."""
        zd = tenant.zendesk if tenant else {}
        if zd.get("sandbox"):
            from ...sandbox.server import get_sandbox

            return (self.config.get("SANDBOX_URL") or get_sandbox().url) + "/zendesk"
        return zd.get("base_url") or default_base_url(subdomain)

    def app_id(self, tenant: Tenant | None) -> str | None:
        value = (tenant.zendesk.get("app_id") if tenant else None) or self.config.get("ZENDESK_APP_ID")
        return str(value) if value else None

    def _client(self, base_url: str, credentials: dict[str, str] | None = None) -> ZendeskClient:
        return ZendeskClient(ConnectorConfig(
            base_url=base_url, credentials=credentials or {},
            connect_timeout=float(self.config["UPSTREAM_CONNECT_TIMEOUT"]),
            read_timeout=float(self.config.get("ZENDESK_READ_TIMEOUT", 5.0)),
        ), self.http)

    def credentials(self, tenant: Tenant) -> dict[str, str] | None:
        """How the server authenticates to this installation's Zendesk, if it can."""
        stored = tenant.connections.get("helpdesk")
        if stored is not None:
            return stored.credentials
        if tenant.zendesk.get("sandbox"):
            from ...sandbox.zendesk import SANDBOX_API_EMAIL, SANDBOX_API_TOKEN

            return {"auth": "api_token", "email": SANDBOX_API_EMAIL, "api_token": SANDBOX_API_TOKEN}
        return None

    def api(self, tenant: Tenant) -> ZendeskClient | None:
        """An authenticated client for the installation's Zendesk, or None when not connected."""
        creds = self.credentials(tenant)
        if not creds:
            return None
        return self._client(self.base_url(tenant, tenant.zendesk.get("subdomain", "")), creds)

    def client_for(self, base_url: str, credentials: dict[str, str] | None = None) -> ZendeskClient:
        return self._client(base_url, credentials)

    # -- launches

    def fetch_key(self, base_url: str, app_id: str, refresh: bool) -> str:
        """The app's public key, cached; refetched at most once a minute on a bad signature."""
        key = f"zendesk:pubkey:{base_url}:{app_id}"
        if not refresh:
            pem = self.cache.get(key)
            if pem:
                return pem
        elif not self.cache.add(f"{key}:refetched", 1, timeout=KEY_REFETCH_MIN_SECONDS):
            pem = self.cache.get(key)
            if pem:
                return pem
        pem = self._client(base_url).public_key_pem(app_id)
        self.cache.set(key, pem, timeout=PUBLIC_KEY_SECONDS)
        return pem

    def verify(self, db: Session, token: str | None, *, origin: str | None,
               own_origin: str) -> Launch:
        """Verify a launch token against the installation it names."""

        def target_for(subdomain: str, host_installation_id: str) -> LaunchTarget:
            tenant = installations.find(db, installation_key(subdomain, host_installation_id))
            if tenant is not None and tenant.status == "uninstalled":
                when = tenant.uninstalled_at.strftime("%-d %b %Y") if tenant.uninstalled_at else ""
                return LaunchTarget("", "", frozenset(), disconnected_message=(
                    f"Order Truth was disconnected from this Zendesk{' on ' + when if when else ''}. "
                    "An admin can reconnect it from the app's settings."))
            app_id = self.app_id(tenant)
            if not app_id:
                raise LaunchRejected(
                    "This Order Truth server has no Zendesk app id configured (ZENDESK_APP_ID).")
            origins = {default_base_url(subdomain)}
            if tenant is not None and tenant.zendesk.get("origin") == "self":
                origins.add(own_origin.rstrip("/").lower())
            return LaunchTarget(self.base_url(tenant, subdomain), app_id, frozenset(origins))

        return verify_launch(token, origin=origin, target_for=target_for,
                             fetch_key=self.fetch_key, seen=SeenTokens(db))
