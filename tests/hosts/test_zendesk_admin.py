"""Install, connect (OAuth + PKCE or API token), settings and disconnect, as a Zendesk admin."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select

from plugin.sandbox.upstreams import vendors
from plugin.sandbox.zendesk import SANDBOX_AGENT_ID, SANDBOX_API_EMAIL, SANDBOX_API_TOKEN
from plugin.store.models import Connection, Installation

KEY = "zendesk:order-truth-sandbox:1"
INSTALL = "/zendesk/install?subdomain=order-truth-sandbox&installation_id=1"


def csrf_of(client) -> str:
    html = client.get(INSTALL).get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def approve(location: str, user_id: int | None = None) -> str:
    """Play the admin on Zendesk's consent page; return our callback URL with code and state."""
    parts = urlsplit(location)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    if user_id:
        params["user_id"] = str(user_id)
    resp = requests.post(f"{parts.scheme}://{parts.netloc}{parts.path}", data=params,
                         allow_redirects=False, timeout=5)
    assert resp.status_code == 302, resp.text
    return resp.headers["Location"]


def stored_helpdesk(app):
    with app.extensions["store"].session() as s:
        inst = s.scalar(select(Installation).where(Installation.key == KEY))
        return s.scalar(select(Connection).where(Connection.installation_id == inst.id,
                                                 Connection.source == "helpdesk"))


def stored_auth(app) -> str | None:
    """How the installation's stored helpdesk connection signs in (the sandbox seeds a token)."""
    row = stored_helpdesk(app)
    return app.extensions["secret_box"].open(row.credentials_encrypted)["auth"] if row else None


def oauth_sign_in(client, user_id=None):
    start = client.get(f"/zendesk/oauth/start?installation={KEY}")
    assert start.status_code == 302
    callback = approve(start.headers["Location"], user_id)
    parts = urlsplit(callback)
    return client.get(f"{parts.path}?{parts.query}")


def test_install_page_walks_the_admin_through_setup(client):
    html = client.get(INSTALL).get_data(as_text=True)
    assert "Sign in with Zendesk (OAuth)" in html
    assert "Connect with API token" in html
    assert client.get("/zendesk/install?subdomain=Not A Subdomain").status_code == 400


def test_oauth_with_pkce_connects_and_stores_token_encrypted(app, client):
    start = client.get(f"/zendesk/oauth/start?installation={KEY}")
    query = parse_qs(urlsplit(start.headers["Location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["state"][0]
    resp = oauth_sign_in(client)
    assert resp.status_code == 302 and "/zendesk/settings" in resp.headers["Location"]
    row = stored_helpdesk(app)
    assert row is not None
    token = app.extensions["secret_box"].open(row.credentials_encrypted)["access_token"]
    assert token and token not in row.credentials_encrypted
    settings = client.get(resp.headers["Location"])
    assert settings.status_code == 200 and "Signed in as Ada Admin (admin)" in settings.get_data(
        as_text=True)


def test_oauth_by_an_agent_is_refused(app, client):
    resp = oauth_sign_in(client, user_id=SANDBOX_AGENT_ID)
    assert resp.status_code == 403
    assert stored_auth(app) == "api_token"  # nothing of the agent's was stored


def test_oauth_state_is_single_use(client):
    start = client.get(f"/zendesk/oauth/start?installation={KEY}")
    callback = approve(start.headers["Location"])
    parts = urlsplit(callback)
    assert client.get(f"{parts.path}?{parts.query}").status_code == 302
    assert client.get(f"{parts.path}?{parts.query}").status_code == 400


def test_callback_in_another_browser_is_refused(app, client):
    """Login CSRF: a callback link started by someone else signs nobody in."""
    start = client.get(f"/zendesk/oauth/start?installation={KEY}")
    parts = urlsplit(approve(start.headers["Location"]))
    victim = app.test_client()
    assert victim.get(f"{parts.path}?{parts.query}").status_code == 400
    assert stored_auth(app) == "api_token"


def test_reconnect_after_disconnect_reactivates(app, client, launch):
    oauth_sign_in(client)
    client.post("/zendesk/settings/disconnect", data={"csrf": csrf_of(client), "installation": KEY})
    assert launch().status_code == 403
    oauth_sign_in(client)
    assert launch().status_code == 200


def test_source_url_must_be_the_vendors(client):
    oauth_sign_in(client)
    resp = client.post("/zendesk/settings/connections/stripe", data={
        "csrf": csrf_of(client), "installation": KEY, "base_url": "http://169.254.169.254/latest",
        "secret_key": "sk_test_x"}, follow_redirects=True)
    assert "not saved — the base URL must use https" in resp.get_data(as_text=True)
    resp = client.post("/zendesk/settings/connections/stripe", data={
        "csrf": csrf_of(client), "installation": KEY, "base_url": "https://evil.example.com",
        "secret_key": "sk_test_x"}, follow_redirects=True)
    assert "Stripe lives at api.stripe.com" in resp.get_data(as_text=True)


def test_forged_state_is_refused(client):
    assert client.get("/zendesk/oauth/callback?code=x&state=forged").status_code == 400


def test_api_token_alternative(app, client):
    csrf = csrf_of(client)
    resp = client.post("/zendesk/connect/api-token", data={
        "csrf": csrf, "installation": KEY, "email": SANDBOX_API_EMAIL, "api_token": SANDBOX_API_TOKEN})
    assert resp.status_code == 302
    creds = app.extensions["secret_box"].open(stored_helpdesk(app).credentials_encrypted)
    assert creds == {"auth": "api_token", "email": SANDBOX_API_EMAIL, "api_token": SANDBOX_API_TOKEN}


@pytest.mark.parametrize(("token", "status"), [("wrong-token", 400), ("", 400)])
def test_api_token_rejected(client, token, status):
    resp = client.post("/zendesk/connect/api-token", data={
        "csrf": csrf_of(client), "installation": KEY, "email": SANDBOX_API_EMAIL, "api_token": token})
    assert resp.status_code == status


def test_forms_need_csrf(client):
    resp = client.post("/zendesk/connect/api-token", data={
        "installation": KEY, "email": SANDBOX_API_EMAIL, "api_token": SANDBOX_API_TOKEN})
    assert resp.status_code == 403


def test_settings_need_a_zendesk_admin(client):
    assert client.get(f"/zendesk/settings?installation={KEY}").status_code == 403


def test_admin_toggles_features_and_checks_a_source(app, client, sandbox):
    oauth_sign_in(client)
    csrf = csrf_of(client)
    resp = client.post("/zendesk/settings/features", data={
        "csrf": csrf, "installation": KEY, "post_notes": "on", "pos_source": "on"})
    assert resp.status_code == 302
    from plugin.installations import Installations

    with app.extensions["store"].session() as s:
        features = Installations(s, app.extensions["secret_box"]).find(KEY).features
    assert features["add_tags"] is False and features["post_notes"] is True

    bad = client.post("/zendesk/settings/connections/stripe", data={
        "csrf": csrf, "installation": KEY, "base_url": sandbox.url + "/stripe",
        "secret_key": "sk_test_wrong"}, follow_redirects=True)
    assert "not saved — the credentials were refused" in bad.get_data(as_text=True)
    good = client.post("/zendesk/settings/connections/stripe", data={
        "csrf": csrf, "installation": KEY, "base_url": sandbox.url + "/stripe",
        "secret_key": "sk_test_sandbox"}, follow_redirects=True)
    assert "Stripe: connected and saved." in good.get_data(as_text=True)


def test_admin_disconnect_purges_secrets(app, client):
    oauth_sign_in(client)
    resp = client.post("/zendesk/settings/disconnect", data={"csrf": csrf_of(client),
                                                             "installation": KEY})
    assert resp.status_code == 200 and "no longer holds any credentials" in resp.get_data(as_text=True)
    assert stored_helpdesk(app) is None
    with app.extensions["store"].session() as s:
        inst = s.scalar(select(Installation).where(Installation.key == KEY))
    assert inst.status == "uninstalled" and inst.cache_generation == 1


@pytest.mark.parametrize("system", list(vendors()))
def test_admin_can_choose_any_connector_for_its_source(app, client, sandbox, system):
    """Every registered connector has a form, and saving one puts it in its source's place."""
    from plugin.connectors.registry import CONNECTORS

    oauth_sign_in(client)
    d, simulated = CONNECTORS[system], vendors()[system]
    page = client.get(f"/zendesk/settings?installation={KEY}").get_data(as_text=True)
    assert f'action="/zendesk/settings/connections/{system}"' in page
    form = {"csrf": csrf_of(client), "installation": KEY,
            "base_url": f"{sandbox.url}/{simulated.path}",
            **simulated.credentials, **simulated.options}
    saved = client.post(f"/zendesk/settings/connections/{system}", data=form,
                        follow_redirects=True).get_data(as_text=True)
    assert f"{d.title}: connected and saved." in saved
    with app.extensions["store"].session() as s:
        inst = s.scalar(select(Installation).where(Installation.key == KEY))
        row = s.scalar(select(Connection).where(Connection.installation_id == inst.id,
                                                Connection.source == d.source.value))
    assert row.system == system


def test_the_admin_cookie_is_httponly_lax_and_lasts_a_working_day(client):
    signed_in = oauth_sign_in(client)
    cookie = signed_in.headers.getlist("Set-Cookie")[-1]
    attrs = {part.strip().split("=")[0].lower(): part for part in cookie.split(";")}
    assert "httponly" in attrs and attrs["samesite"].strip() == "SameSite=Lax"
    expires = parsedate_to_datetime(attrs["expires"].split("=", 1)[1])
    lifetime = expires - datetime.now(UTC)
    assert timedelta(hours=7) < lifetime <= timedelta(hours=8, minutes=1)
    assert "secure" not in attrs  # the embedded http://127.0.0.1 default; production sets it


def test_the_admin_cookie_is_secure_with_a_production_database(tmp_path, monkeypatch):
    from flask import Flask

    from plugin.config import load

    probe = Flask("probe", instance_path=str(tmp_path))
    monkeypatch.setenv("ORDER_TRUTH_DATABASE_URL", "postgresql://nowhere/x")
    monkeypatch.setenv("ORDER_TRUTH_SECRET_KEY", "s")
    monkeypatch.setenv("ORDER_TRUTH_ENCRYPTION_KEY", "U7sXGfOasSPcWSVtzUL4Mz4MTKzOMdP6MsNQgh_5LUU=")
    load(probe, None)
    assert probe.config["SESSION_COOKIE_SECURE"] is True
    assert probe.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert probe.config["PERMANENT_SESSION_LIFETIME"] == timedelta(hours=8)


def test_a_non_ascii_csrf_or_state_is_refused_not_a_server_error(client, launch):
    oauth_sign_in(client)  # an admin session, so the forms get as far as the CSRF check
    for url in ("/zendesk/settings/features", "/zendesk/connect/api-token",
                "/zendesk/settings/disconnect"):
        assert client.post(url, data={"csrf": "é", "installation": KEY}).status_code == 403
    assert client.get("/zendesk/oauth/callback?state=%C3%A9&code=x").status_code == 400


def test_the_install_page_tells_only_a_signed_in_admin_whether_it_is_connected(client):
    anonymous = client.get(INSTALL).get_data(as_text=True)
    unknown = client.get("/zendesk/install?subdomain=order-truth-sandbox&installation_id=999"
                         ).get_data(as_text=True)
    assert "Connected." not in anonymous and "Open the settings" not in anonymous
    # Registered or not, an outsider sees the same page (the id differs, nothing else).
    assert anonymous.replace(":1\"", ":N\"").replace("%3A1", "%3AN") == \
        unknown.replace(":999\"", ":N\"").replace("%3A999", "%3AN")
    oauth_sign_in(client)
    admin = client.get(INSTALL).get_data(as_text=True)
    assert "Connected." in admin and "Open the settings" in admin


def test_the_install_page_asks_zendesk_rather_than_assuming_connected(client, sandbox):
    """A token Zendesk stopped accepting (revoked, or a helpdesk that forgot it) is said as such."""
    oauth_sign_in(client)  # connects with an OAuth token, replacing the seeded API token
    assert "Connected." in client.get(INSTALL).get_data(as_text=True)
    sandbox.state.zendesk.revoke_tokens()
    page = client.get(INSTALL).get_data(as_text=True)
    assert "Connected." not in page
    assert "Zendesk no longer accepts the stored credentials: connect again." in page
