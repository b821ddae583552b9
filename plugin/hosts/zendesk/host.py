"""Zendesk as a host: where an installation's Zendesk lives, its keys, launches and API client."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import requests

from ...connectors.base import AuthError, ConnectorConfig
from ...installations import HELPDESK, Installations, Tenant
from ..agents import SignInRequired
from ..base import HostUser, Launch, LaunchRejected
from .client import ZendeskClient
from .launch import LaunchTarget, SeenTokens, installation_key, verify_launch

if TYPE_CHECKING:
    import click
    from flask import Blueprint, Request

log = logging.getLogger(__name__)

PUBLIC_KEY_SECONDS = 3600
# What an agent's sign-in may do: read, and write tickets (notes and tags) - nothing else.
AGENT_SCOPE = "read tickets:write"
# A forged token must not turn every request into a key download.
KEY_REFETCH_MIN_SECONDS = 60


def default_base_url(subdomain: str) -> str:
    return f"https://{subdomain}.zendesk.com"


class ZendeskHost:
    """Everything Zendesk-specific, bound to this deployment's config."""

    name = "zendesk"
    title = "Zendesk"
    api_hosts = (".zendesk.com",)

    def __init__(self, config: dict[str, Any], cache: Any, http: requests.Session) -> None:
        self.config = config
        self.cache = cache
        self.http = http

    # -- where things are

    def base_url(self, tenant: Tenant | None, subdomain: str) -> str:
        """The installation's Zendesk API base: its stored base URL, else the account's."""
        zd = tenant.host_settings(self.name) if tenant else {}
        return str(zd.get("base_url") or default_base_url(subdomain))

    def app_id(self, tenant: Tenant | None) -> str | None:
        value = (tenant.host_settings(self.name).get("app_id") if tenant else None) \
            or self.config.get("ZENDESK_APP_ID")
        return str(value) if value else None

    def _client(self, base_url: str, credentials: dict[str, str] | None = None) -> ZendeskClient:
        return ZendeskClient(ConnectorConfig(
            base_url=base_url, credentials=credentials or {},
            connect_timeout=self.config["UPSTREAM_CONNECT_TIMEOUT"],
            read_timeout=self.config["ZENDESK_READ_TIMEOUT"],
        ), self.http)

    def credentials(self, tenant: Tenant) -> dict[str, str] | None:
        """How the server authenticates to this installation's Zendesk, if it can."""
        stored = tenant.connections.get(HELPDESK)
        return stored.credentials if stored is not None else None

    def api(self, tenant: Tenant) -> ZendeskClient | None:
        """An authenticated client for the installation's Zendesk, or None when not connected."""
        creds = self.credentials(tenant)
        if not creds:
            return None
        return self._client(self.base_url(tenant, self.subdomain(tenant)), creds)

    def client_for(self, base_url: str, credentials: dict[str, str] | None = None) -> ZendeskClient:
        return self._client(base_url, credentials)

    @staticmethod
    def subdomain(tenant: Tenant) -> str:
        return str(tenant.host_settings("zendesk").get("subdomain", ""))

    def account_label(self, tenant: Tenant) -> str:
        return f"{self.subdomain(tenant)}.zendesk.com"

    def setup_url(self, tenant: Tenant, root_url: str) -> str:
        zd = tenant.host_settings(self.name)
        return (f"{root_url.rstrip('/')}/zendesk/install?subdomain={zd.get('subdomain', '')}"
                f"&installation_id={zd.get('installation_id', '')}")

    # -- the sidebar page

    def frame_ancestors(self, tenant: Tenant | None) -> str:
        zd = tenant.host_settings(self.name) if tenant else {}
        if zd.get("origin") == "self":
            return "'self'"
        if zd.get("subdomain"):
            return f"https://{zd['subdomain']}.zendesk.com"
        # A refused launch names no installation; its page carries no data, so let any
        # Zendesk frame it rather than leave the agent a blank sidebar.
        return "'self' https://*.zendesk.com"

    def _sdk_url(self, tenant: Tenant | None) -> str:
        zd = tenant.host_settings(self.name) if tenant else {}
        return str(zd.get("zaf_sdk_url") or self.config["ZENDESK_ZAF_SDK_URL"])

    def sidebar_scripts(self, tenant: Tenant) -> list[str]:
        """Zendesk's ZAF SDK (or the installation's stand-in), then our ZAF adapter."""
        return [self._sdk_url(tenant), "/static/hosts/zendesk.js"]

    def script_sources(self, tenant: Tenant | None) -> list[str]:
        url = self._sdk_url(tenant)
        if url.startswith("https://"):
            return ["https://" + url.removeprefix("https://").split("/", 1)[0]]
        return []

    # -- launches

    def fetch_key(self, base_url: str, app_id: str, refresh: bool) -> str:
        """The app's public key, cached; refetched at most once a minute on a bad signature."""
        key = f"zendesk:pubkey:{base_url}:{app_id}"
        if not refresh:
            pem = self.cache.get(key)
            if pem:
                return str(pem)
        elif not self.cache.add(f"{key}:refetched", 1, timeout=KEY_REFETCH_MIN_SECONDS):
            pem = self.cache.get(key)
            if pem:
                return str(pem)
        pem = self._client(base_url).public_key_pem(app_id)
        self.cache.set(key, pem, timeout=PUBLIC_KEY_SECONDS)
        return pem

    def verify_launch(self, repo: Installations, request: Request) -> Launch:
        """Verify the POSTed ZAF token against the installation it names."""
        own_origin = request.host_url

        def target_for(subdomain: str, host_installation_id: str) -> LaunchTarget:
            tenant = repo.find(installation_key(subdomain, host_installation_id))
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
            if tenant is not None and tenant.host_settings(self.name).get("origin") == "self":
                origins.add(own_origin.rstrip("/").lower())
            return LaunchTarget(self.base_url(tenant, subdomain), app_id, frozenset(origins))

        # What the browser says (the Origin of the form POST Zendesk's page makes) and what
        # the framework adds to the URL (?origin=): every one given must be this account's.
        header = request.headers.get("Origin")
        claimed = tuple(o for o in (header if header and header != "null" else None,
                                    request.args.get("origin")) if o)
        return verify_launch(request.form.get("token"), origins=claimed,
                             target_for=target_for, fetch_key=self.fetch_key,
                             seen=SeenTokens(repo.session))

    def register(self, repo: Installations, launch: Launch) -> Tenant | None:
        """The installation a genuine launch names, registered unless auto-registration is off."""
        if not self.config["ZENDESK_AUTO_REGISTER"]:
            return None
        return register(repo, launch.account, launch.host_installation_id,
                        app_id=self.config.get("ZENDESK_APP_ID"))

    # -- agents signing in as themselves (writes go out with their own rights)

    def oauth_client(self) -> tuple[str, str] | None:
        """This deployment's Zendesk OAuth client (id, secret), if configured."""
        cid = self.config.get("ZENDESK_OAUTH_CLIENT_ID")
        secret = self.config.get("ZENDESK_OAUTH_CLIENT_SECRET")
        return (str(cid), str(secret)) if cid and secret else None

    def agent_sign_in_url(self, tenant: Tenant, *, state: str, code_challenge: str,
                          redirect_uri: str) -> str | None:
        """Zendesk's consent page for an agent (None: no OAuth client is configured)."""
        client = self.oauth_client()
        if client is None:
            return None
        query = urlencode({"response_type": "code", "client_id": client[0],
                           "redirect_uri": redirect_uri, "scope": AGENT_SCOPE, "state": state,
                           "code_challenge": code_challenge, "code_challenge_method": "S256"})
        return f"{self.base_url(tenant, self.subdomain(tenant))}/oauth/authorizations/new?{query}"

    def finish_agent_sign_in(self, tenant: Tenant, *, code: str, verifier: str,
                             redirect_uri: str) -> tuple[HostUser, dict[str, Any]]:
        """Trade the agent's code for their tokens, and ask Zendesk who they are."""
        client_id, client_secret = self.oauth_client() or ("", "")
        base = self.base_url(tenant, self.subdomain(tenant))
        credentials = self._client(base).grant_code(
            code=code, client_id=client_id, client_secret=client_secret,
            redirect_uri=redirect_uri, code_verifier=verifier, scope=AGENT_SCOPE)
        return self._client(base, credentials).current_user(), credentials

    def refresh_agent(self, tenant: Tenant, credentials: dict[str, Any]) -> dict[str, Any]:
        """New tokens for an agent whose access token is expiring."""
        client_id, client_secret = self.oauth_client() or ("", "")
        try:
            return self._client(self.base_url(tenant, self.subdomain(tenant))).refresh_grant(
                refresh_token=str(credentials.get("refresh_token", "")), client_id=client_id,
                client_secret=client_secret)
        except AuthError:
            raise SignInRequired("Your Zendesk sign-in has expired or was revoked; "
                                 "sign in again.") from None

    def agent_api(self, tenant: Tenant, credentials: dict[str, Any]) -> ZendeskClient:
        """A client that acts as the agent: Zendesk applies their own permissions."""
        return self._client(self.base_url(tenant, self.subdomain(tenant)),
                            {"access_token": str(credentials.get("access_token", ""))})

    # -- the rest

    def blueprints(self) -> list[Blueprint]:
        from .views import bp

        return [bp]

    def cli(self) -> click.Group | None:
        from .cli import zendesk_cli

        return zendesk_cli

    def package(self, base_url: str, output: Path, *, allow_localhost: bool = False) -> Path:
        from .package import build_package

        return build_package(base_url, output, allow_localhost=allow_localhost)


def register(repo: Installations, subdomain: str, host_installation_id: str, *,
             app_id: str | None = None, base_url: str | None = None,
             name: str | None = None, extra: dict[str, Any] | None = None) -> Tenant:
    """Create (or reactivate after a disconnect) a Zendesk installation."""
    zendesk: dict[str, Any] = {"subdomain": subdomain, "installation_id": host_installation_id,
                               **(extra or {})}
    if app_id:
        zendesk["app_id"] = app_id
    if base_url:
        zendesk["base_url"] = base_url.rstrip("/")
    return repo.register(installation_key(subdomain, host_installation_id), host="zendesk",
                         name=name or f"{subdomain}.zendesk.com", settings={"zendesk": zendesk})
