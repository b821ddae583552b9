"""Zendesk's install and sign-in pages: connect API access (OAuth with PKCE, or an API token)
and sign the Zendesk admin in to the settings page."""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import time
from urllib.parse import urlencode

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from ...connectors.base import AuthError, UpstreamError
from ...installations import HELPDESK, Tenant
from ...views.admin import admin_for, check_csrf, csrf_token, sign_in
from ...views.context import hosts, repo
from ..agents import pkce_pair
from ..base import HostUser
from .host import ZendeskHost
from .launch import installation_key

log = logging.getLogger(__name__)
bp = Blueprint("zendesk", __name__, url_prefix="/zendesk")

_SUBDOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_INSTALLATION_ID = re.compile(r"[0-9]{1,20}")
OAUTH_STATE_SECONDS = 600


@bp.after_request
def _headers(resp):
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Content-Security-Policy"] = (
        "frame-ancestors 'none'; default-src 'self'; style-src 'self'; form-action 'self' https:")
    return resp


def host() -> ZendeskHost:
    return hosts()["zendesk"]  # type: ignore[return-value]


def _tenant_or_404(key: str | None) -> Tenant:
    tenant = repo().find(key) if key else None
    if tenant is None or tenant.host != "zendesk":
        abort(404, description="No such Zendesk installation.")
    return tenant


def _oauth_client() -> tuple[str, str] | None:
    return host().oauth_client()


def _base(tenant: Tenant) -> str:
    return host().base_url(tenant, host().subdomain(tenant))


def _sign_in(tenant: Tenant, user: HostUser) -> None:
    """Remember the Zendesk-verified admin; reactivate an installation that was disconnected."""
    repo().reactivate(tenant.id)
    sign_in(tenant, user)


@bp.get("/install")
def install():
    """Zendesk's remote installation URL and the set-up page linked from the sidebar."""
    subdomain = (request.args.get("subdomain") or "").strip().lower()
    if not _SUBDOMAIN.fullmatch(subdomain):
        abort(400, description="A Zendesk subdomain (the 'acme' in acme.zendesk.com) is required.")
    iid = (request.args.get("installation_id") or "").strip()
    if iid and not _INSTALLATION_ID.fullmatch(iid):
        abort(400, description="installation_id must be numeric.")
    key = installation_key(subdomain, iid) if iid else None
    tenant = repo().find(key) if key else None
    admin = admin_for(tenant) if tenant else None
    # Only a signed-in admin of this installation learns whether it is registered or
    # connected; anyone else sees the same set-up steps for any subdomain and id.
    return render_template(
        "zendesk/install.html", subdomain=subdomain, key=key, admin=admin,
        tenant=tenant if admin else None,
        connection=_connection_state(tenant) if admin and tenant else None,
        oauth=bool(_oauth_client()), csrf=csrf_token())


def _connection_state(tenant: Tenant) -> str | None:
    """Whether Zendesk still accepts the stored credentials: "ok", "refused", "unchecked"
    (Zendesk didn't answer just now) or None (never connected). Asked, not assumed."""
    api = host().api(tenant)
    if api is None:
        return None
    try:
        api.current_user()
    except AuthError:
        return "refused"
    except UpstreamError as exc:
        log.info("couldn't check the Zendesk connection of %s: %s", tenant.key, exc)
        return "unchecked"
    return "ok"


@bp.get("/oauth/start")
def oauth_start():
    """Send the admin to Zendesk to approve API access (authorization code + PKCE)."""
    tenant = _tenant_or_404(request.args.get("installation"))
    client = _oauth_client()
    if client is None:
        abort(400, description="OAuth isn't configured on this server (ZENDESK_OAUTH_CLIENT_ID/SECRET); "
                               "use an API token instead.")
    state = secrets.token_urlsafe(24)
    verifier, challenge = pkce_pair()
    redirect_uri = url_for("zendesk.oauth_callback", _external=True)
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
    if (not pending or not state
            or not hmac.compare_digest(state.encode(), str(pending.get("state", "")).encode())
            or time.time() > float(pending.get("expires", 0))):
        abort(400, description="This sign-in link expired, was already used, or was started in "
                               "another browser; start again.")
    tenant = _tenant_or_404(pending["key"])
    if request.args.get("error"):
        abort(403, description="Zendesk access was not granted.")
    client_id, client_secret = _oauth_client() or ("", "")
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
    repo().save_connection(tenant.id, source=HELPDESK, system="zendesk", base_url=_base(tenant),
                           credentials={"auth": "oauth", "access_token": token})
    _sign_in(tenant, user)
    flash(f"Connected to Zendesk as {user.name}.")
    return redirect(url_for("settings.page", host_name="zendesk", installation=tenant.key))


@bp.post("/connect/api-token")
def connect_api_token():
    """The documented alternative to OAuth: an admin's email and API token."""
    check_csrf()
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
    repo().save_connection(tenant.id, source=HELPDESK, system="zendesk", base_url=_base(tenant),
                           credentials=creds)
    _sign_in(tenant, user)
    flash(f"Connected to Zendesk with {user.name}'s API token.")
    return redirect(url_for("settings.page", host_name="zendesk", installation=tenant.key))
