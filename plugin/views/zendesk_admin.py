"""Zendesk install, connect (OAuth with PKCE, or API token), settings and disconnect, for admins."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import time
from urllib.parse import urlencode

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from .. import installations
from ..connectors.base import AuthError, ConfigError, ConnectorConfig, UpstreamError
from ..connectors.registry import CONNECTORS, build_client
from ..connectors.shopify_pos import DEFAULT_API_VERSION
from ..core.model import OrderRef
from ..hosts.base import HostUser
from ..hosts.zendesk.launch import installation_key
from ..installations import DEFAULT_FEATURES, Tenant
from ..upstream_urls import check_upstream_url
from .context import db
from .zendesk import box, host

log = logging.getLogger(__name__)
bp = Blueprint("zendesk_admin", __name__, url_prefix="/zendesk")

_SUBDOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_INSTALLATION_ID = re.compile(r"[0-9]{1,20}")
OAUTH_STATE_SECONDS = 600
FEATURE_LABELS = {
    "pos_source": "Ask the store POS (Shopify POS) as a fourth source",
    "post_notes": "Let agents post the summary as an internal note",
    "add_tags": "Let agents tag tickets with the flags found",
}
SOURCE_FIELDS = {name: cls.required_credentials for name, cls in CONNECTORS.items()}
# Non-secret connector options an admin may set, with their hints.
OPTION_FIELDS: dict[str, dict[str, str]] = {
    "stripe": {"stripe_version": "pinned API version, e.g. 2025-04-30.basil"},
    "netsuite": {"ra_external_id_prefix": "RA externalid prefix (default loop-)",
                 "timezone": "integration user's time zone, e.g. America/New_York"},
    "shopify_pos": {"shop": "acme (acme.myshopify.com)", "api_version": f"default {DEFAULT_API_VERSION}",
                    "retail_locations": "shop locations, comma-separated (blank: all)"},
}


@bp.after_request
def _headers(resp):
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Content-Security-Policy"] = (
        "frame-ancestors 'none'; default-src 'self'; style-src 'self'; form-action 'self' https:")
    return resp


def _csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


def _check_csrf() -> None:
    sent = request.form.get("csrf", "")
    if not sent or not hmac.compare_digest(sent, session.get("csrf", "")):
        abort(403, description="The form expired; reload the page and try again.")


def _tenant_or_404(key: str | None) -> Tenant:
    tenant = installations.find(db(), key or "", box()) if key else None
    if tenant is None or tenant.host != "zendesk":
        abort(404, description="No such Zendesk installation.")
    return tenant


def _admin_for(tenant: Tenant) -> dict | None:
    admin = session.get("admin")
    return admin if admin and admin.get("installation") == tenant.key else None


def _oauth_client(tenant: Tenant) -> tuple[str, str] | None:
    if tenant.zendesk.get("sandbox"):
        from ..sandbox.zendesk import SANDBOX_OAUTH_CLIENT_ID, SANDBOX_OAUTH_CLIENT_SECRET

        return SANDBOX_OAUTH_CLIENT_ID, SANDBOX_OAUTH_CLIENT_SECRET
    cid = current_app.config.get("ZENDESK_OAUTH_CLIENT_ID")
    secret = current_app.config.get("ZENDESK_OAUTH_CLIENT_SECRET")
    return (str(cid), str(secret)) if cid and secret else None


def _base(tenant: Tenant) -> str:
    return host().base_url(tenant, tenant.zendesk.get("subdomain", ""))


def _sign_in(tenant: Tenant, user: HostUser) -> None:
    """Remember the Zendesk-verified admin; reactivate an installation that was disconnected."""
    installations.reactivate(db(), tenant.id)
    session.clear()  # no fixation: a fresh session and CSRF value after sign-in
    session.permanent = True
    session["admin"] = {"installation": tenant.key, "user_id": user.id, "name": user.name,
                        "role": user.role}


@bp.get("/install")
def install():
    """Zendesk's remote installation URL and the set-up page linked from the sidebar."""
    subdomain = (request.args.get("subdomain") or "").strip().lower()
    if not _SUBDOMAIN.fullmatch(subdomain):
        abort(400, description="A Zendesk subdomain (the 'acme' in acme.zendesk.com) is required.")
    iid = (request.args.get("installation_id") or "").strip()
    tenant = None
    if iid:
        if not _INSTALLATION_ID.fullmatch(iid):
            abort(400, description="installation_id must be numeric.")
        tenant = installations.find(db(), installation_key(subdomain, iid), box())
    return render_template(
        "zendesk/admin.html", page="install", subdomain=subdomain, tenant=tenant,
        connected=bool(tenant and host().credentials(tenant)), oauth=bool(tenant and _oauth_client(tenant)),
        csrf=_csrf_token(), admin=_admin_for(tenant) if tenant else None)


@bp.get("/oauth/start")
def oauth_start():
    """Send the admin to Zendesk to approve API access (authorization code + PKCE)."""
    tenant = _tenant_or_404(request.args.get("installation"))
    client = _oauth_client(tenant)
    if client is None:
        abort(400, description="OAuth isn't configured on this server (ZENDESK_OAUTH_CLIENT_ID/SECRET); "
                               "use an API token instead.")
    state = secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect_uri = url_for("zendesk_admin.oauth_callback", _external=True)
    # Kept in this browser's signed session cookie: only the browser that started the flow can
    # finish it (no login CSRF), and any worker can check it.
    session["oauth"] = {"state": state, "key": tenant.key, "verifier": verifier,
                        "redirect_uri": redirect_uri, "expires": time.time() + OAUTH_STATE_SECONDS}
    query = urlencode({"response_type": "code", "client_id": client[0], "redirect_uri": redirect_uri,
                       "scope": "read write", "state": state, "code_challenge": challenge,
                       "code_challenge_method": "S256"})
    return redirect(f"{_base(tenant)}/oauth/authorizations/new?{query}")


@bp.get("/oauth/callback")
def oauth_callback():
    """Finish OAuth: exchange the code, confirm the approver is a Zendesk admin, store the token."""
    state = request.args.get("state") or ""
    pending = session.pop("oauth", None)  # single use
    if (not pending or not state or not hmac.compare_digest(state, str(pending.get("state", "")))
            or time.time() > float(pending.get("expires", 0))):
        abort(400, description="This sign-in link expired, was already used, or was started in "
                               "another browser; start again.")
    tenant = _tenant_or_404(pending["key"])
    if request.args.get("error"):
        abort(403, description="Zendesk access was not granted.")
    client_id, client_secret = _oauth_client(tenant) or ("", "")
    try:
        token = host().client_for(_base(tenant)).exchange_code(
            code=request.args.get("code", ""), client_id=client_id, client_secret=client_secret,
            redirect_uri=pending["redirect_uri"], code_verifier=pending["verifier"])
        user = host().client_for(_base(tenant), {"access_token": token}).current_user()
    except UpstreamError as exc:
        log.warning("Zendesk OAuth exchange failed for %s: %s", tenant.key, exc)
        abort(502, description=f"Zendesk refused the sign-in: {exc}")
    if not user.is_admin:
        abort(403, description="Only a Zendesk admin can connect Order Truth.")
    installations.save_connection(db(), box(), tenant.id, source="helpdesk", system="zendesk",
                                  base_url=_base(tenant),
                                  credentials={"auth": "oauth", "access_token": token})
    _sign_in(tenant, user)
    flash(f"Connected to Zendesk as {user.name}.")
    return redirect(url_for("zendesk_admin.settings", installation=tenant.key))


@bp.post("/connect/api-token")
def connect_api_token():
    """The documented alternative to OAuth: an admin's email and API token."""
    _check_csrf()
    tenant = _tenant_or_404(request.form.get("installation"))
    email = (request.form.get("email") or "").strip()
    api_token = (request.form.get("api_token") or "").strip()
    if not email or not api_token:
        abort(400, description="Email and API token are both required.")
    creds = {"auth": "api_token", "email": email, "api_token": api_token}
    try:
        user = host().client_for(_base(tenant), creds).current_user()
    except AuthError:
        abort(400, description="Zendesk didn't accept that email and API token.")
    except UpstreamError as exc:
        abort(502, description=f"Couldn't reach Zendesk: {exc}")
    if not user.is_admin:
        abort(403, description="That API token belongs to a non-admin; use an admin's token.")
    installations.save_connection(db(), box(), tenant.id, source="helpdesk", system="zendesk",
                                  base_url=_base(tenant), credentials=creds)
    _sign_in(tenant, user)
    flash(f"Connected to Zendesk with {user.name}'s API token.")
    return redirect(url_for("zendesk_admin.settings", installation=tenant.key))


def _require_admin(tenant: Tenant) -> dict:
    admin = _admin_for(tenant)
    if admin is None:
        abort(403, description="Sign in with Zendesk as an admin of this account first.")
    if not tenant.active:
        abort(403, description="This installation is disconnected; connect Zendesk again first.")
    return admin


@bp.get("/settings")
def settings():
    """Feature toggles and upstream connections for one installation (admins only)."""
    tenant = _tenant_or_404(request.args.get("installation"))
    admin = _require_admin(tenant)
    sources = []
    for system, cls in CONNECTORS.items():
        stored = tenant.connections.get(cls.source.value)
        sources.append({"source": cls.source.value, "system": system,
                        "fields": SOURCE_FIELDS[system], "options": OPTION_FIELDS.get(system, {}),
                        "values": stored.options if stored else {},
                        "base_url": stored.base_url if stored else "",
                        "configured": stored is not None and stored.system == system,
                        "sandbox": tenant.uses_sandbox_upstreams})
    return render_template("zendesk/admin.html", page="settings", tenant=tenant, admin=admin,
                           features=tenant.features, feature_labels=FEATURE_LABELS,
                           sources=sources, csrf=_csrf_token(),
                           connected=bool(host().credentials(tenant)),
                           subdomain=tenant.zendesk.get("subdomain"))


@bp.post("/settings/features")
def save_features():
    _check_csrf()
    tenant = _tenant_or_404(request.form.get("installation"))
    _require_admin(tenant)
    features = {name: request.form.get(name) == "on" for name in DEFAULT_FEATURES | FEATURE_LABELS}
    installations.update_settings(db(), tenant.id, {"features": features})
    flash("Settings saved.")
    return redirect(url_for("zendesk_admin.settings", installation=tenant.key))


@bp.post("/settings/connections/<system>")
def save_source(system: str):
    """Store one upstream's credentials after checking them against the live API."""
    _check_csrf()
    tenant = _tenant_or_404(request.form.get("installation"))
    _require_admin(tenant)
    cls = CONNECTORS.get(system)
    if cls is None:
        abort(404)
    creds = {f: (request.form.get(f) or "").strip() for f in cls.required_credentials}
    base_url = (request.form.get("base_url") or "").strip()
    options = {k: (request.form.get(k) or "").strip() for k in OPTION_FIELDS.get(system, {})}
    options = {k: v for k, v in options.items() if v}
    try:
        base_url = check_upstream_url(system, base_url, current_app.config)
    except ValueError as exc:
        flash(f"{system}: not saved — {exc}")
        return redirect(url_for("zendesk_admin.settings", installation=tenant.key))
    message = _test_connection(system, base_url, creds, options)
    if message:
        flash(f"{system}: not saved — {message}")
    else:
        installations.save_connection(db(), box(), tenant.id, source=cls.source.value, system=system,
                                      base_url=base_url, credentials=creds, options=options)
        flash(f"{system}: connected and saved.")
    return redirect(url_for("zendesk_admin.settings", installation=tenant.key))


def _test_connection(system: str, base_url: str, creds: dict, options: dict) -> str | None:
    """Ask the upstream about an order that can't exist: "not found" proves the credentials work."""
    try:
        client = build_client(system, ConnectorConfig(base_url=base_url, credentials=creds,
                                                      options=options), host().http)
        client.fetch(OrderRef("ot-connection-test", "#ot-connection-test"))
    except AuthError:
        return "the credentials were refused"
    except ConfigError as exc:
        return str(exc)
    except UpstreamError as exc:
        # Only the kind and status: an upstream body is not echoed back to the browser.
        status = f", HTTP {exc.http_status}" if exc.http_status else ""
        return f"couldn't check them ({exc.kind.value}{status})"
    return None


@bp.post("/settings/disconnect")
def disconnect():
    """Uninstall: purge secrets and cached data; later launches are refused."""
    _check_csrf()
    tenant = _tenant_or_404(request.form.get("installation"))
    admin = _require_admin(tenant)
    installations.disconnect(db(), tenant.id)
    session.pop("admin", None)
    log.info("installation %s disconnected by Zendesk user %s", tenant.key, admin["user_id"])
    return render_template("zendesk/admin.html", page="disconnected", tenant=tenant,
                           subdomain=tenant.zendesk.get("subdomain"), csrf=_csrf_token(), admin=None)

