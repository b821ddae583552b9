"""Signed launches: only a genuine, fresh, RS256 token for a live installation opens the sidebar."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from datetime import UTC, datetime

import jwt
import pytest

from plugin.hosts.zendesk.host import register
from plugin.sandbox.zendesk import other_key
from tests.conftest import repo_of


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(zd, **override):
    token = zd.sign_launch()
    claims = jwt.decode(token, options={"verify_signature": False})
    claims.update(override)
    return claims


def forged_none(zd):
    return jwt.encode(_claims(zd), None, algorithm="none")


def forged_hs256_with_public_key(zd):
    # The classic confusion attack: HMAC keyed with the (public) RSA key.
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(_claims(zd)).encode())
    sig = hmac.new(zd.public_key_pem().encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    return f"{header}.{payload}.{_b64(sig.digest())}"


def tampered(zd):
    header, _payload, sig = zd.sign_launch().split(".")
    payload = _b64(json.dumps(_claims(zd, context={"product": "support", "role": "admin"})).encode())
    return f"{header}.{payload}.{sig}"


now = int(time.time())
REFUSED = {
    "alg-none": forged_none,
    "hs256-public-key-as-secret": forged_hs256_with_public_key,
    "another-key": lambda zd: zd.sign_launch(signing_key=other_key()),
    "expired": lambda zd: zd.sign_launch(claims_override={"iat": now - 900, "exp": now - 600}),
    "issued-in-future": lambda zd: zd.sign_launch(claims_override={"iat": now + 600,
                                                                   "exp": now + 900}),
    "wrong-aud": lambda zd: zd.sign_launch(claims_override={"aud": "https://evil.example.com/app"}),
    "aud-of-unknown-installation": lambda zd: zd.sign_launch(installation_id="424242"),
    "wrong-iss": lambda zd: zd.sign_launch(claims_override={"iss": "evil.zendesk.com"}),
    "missing-exp": lambda zd: zd.sign_launch(drop=("exp",)),
    "missing-iat": lambda zd: zd.sign_launch(drop=("iat",)),
    "missing-iss": lambda zd: zd.sign_launch(drop=("iss",)),
    "overlong-lifetime": lambda zd: zd.sign_launch(ttl=86400),
    "tampered-payload": tampered,
    "empty": lambda zd: "",
    "not-a-jwt": lambda zd: "hello.world",
}


@pytest.mark.parametrize("make", REFUSED.values(), ids=REFUSED.keys())
def test_forged_or_stale_launch_is_refused_and_nothing_rendered(launch, zd, make):
    resp = launch(make(zd))
    assert resp.status_code == 401
    body = resp.get_data(as_text=True)
    assert "data-session" not in body and "ot-record" not in body
    assert "can't open here" in body
    # The refusal itself is shown in the sidebar, not blocked as a blank frame.
    assert "https://*.zendesk.com" in resp.headers["Content-Security-Policy"]


def test_genuine_launch_renders_the_sidebar_with_a_session(launch):
    resp = launch()
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    assert 'data-session="' in body and 'data-csrf="' in body
    assert resp.headers["Content-Security-Policy"].startswith("frame-ancestors 'self'")
    assert resp.headers["Cache-Control"] == "no-store"


def test_launch_token_is_single_use(launch, zd):
    token = zd.sign_launch()
    assert launch(token).status_code == 200
    replay = launch(token)
    assert replay.status_code == 401
    assert "already used" in replay.get_data(as_text=True)


@pytest.mark.parametrize(("respell", "says"), [
    (lambda t: t + "==", "already used"),  # padding the decoder skips: the same launch
    (lambda t: " " + t + "\n", "already used"),
    (lambda t: t + "=", "not a valid JWT"),  # not a token at all
    (lambda t: t + "!", "not a valid JWT"),
])
def test_a_respelled_token_is_the_same_launch(launch, zd, respell, says):
    token = zd.sign_launch()
    assert launch(token).status_code == 200
    again = launch(respell(token))
    assert again.status_code == 401
    assert says in again.get_data(as_text=True)
    assert "data-session" not in again.get_data(as_text=True)


def test_token_replayed_from_another_helpdesk_origin_is_refused(launch, zd):
    resp = launch(origin="https://victim.zendesk.com")
    assert resp.status_code == 401
    assert "different helpdesk" in resp.get_data(as_text=True)


def test_get_without_token_is_not_a_launch(client):
    assert client.get("/zendesk/sidebar").status_code == 405


def test_rotated_app_key_is_refetched_once(launch, zd):
    assert launch().status_code == 200  # caches the current public key
    zd.rotate()
    assert launch().status_code == 200


def test_other_installation_gets_its_own_frame_ancestors(app, client, zd, sandbox):
    from plugin.sandbox.zendesk import SANDBOX_ZENDESK_APP_ID

    with repo_of(app) as repo:
        register(repo, "acme", "42", app_id=SANDBOX_ZENDESK_APP_ID,
                 base_url=sandbox.url + "/zendesk")
    token = zd.sign_launch(subdomain="acme", installation_id="42")
    resp = client.post("/zendesk/sidebar?origin=https://acme.zendesk.com", data={"token": token})
    assert resp.status_code == 200
    assert "frame-ancestors https://acme.zendesk.com;" in resp.headers["Content-Security-Policy"]
    # Not connected to acme's Zendesk API yet: the widget says so and offers set-up.
    assert "Finish set-up" in resp.get_data(as_text=True)


def test_first_launch_of_unknown_installation_registers_it(app, client, zd, sandbox):
    from plugin.sandbox.zendesk import SANDBOX_ZENDESK_APP_ID

    app.config["ZENDESK_APP_ID"] = SANDBOX_ZENDESK_APP_ID
    # An unregistered installation's key comes from its own Zendesk; point that at the sandbox.
    host = app.extensions["hosts"]["zendesk"]
    original = host.base_url
    host.base_url = lambda tenant, sub: sandbox.url + "/zendesk" if tenant is None else original(
        tenant, sub)
    token = zd.sign_launch(subdomain="newshop", installation_id="7")
    resp = client.post("/zendesk/sidebar?origin=https://newshop.zendesk.com", data={"token": token})
    assert resp.status_code == 200
    assert "installation_id=7" in resp.get_data(as_text=True)
    with repo_of(app) as repo:
        tenant = repo.find("zendesk:newshop:7")
    assert tenant is not None and tenant.active


def test_disconnected_installation_is_refused_with_a_clear_message(app, launch, runner):
    result = runner.invoke(args=["installations", "disconnect", "zendesk:order-truth-sandbox:1"])
    assert result.exit_code == 0, result.output
    resp = launch()
    assert resp.status_code == 403
    assert "disconnected from this Zendesk" in resp.get_data(as_text=True)


def test_no_token_or_secret_reaches_the_logs(launch, zd, caplog):
    token = zd.sign_launch()
    with caplog.at_level(logging.DEBUG):
        launch(token)
        launch(token)  # refused replay is logged
        launch("not.a.jwt")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert token not in text
    assert token.split(".")[2] not in text


def test_valid_token_replayed_against_another_installation_is_refused(app, client, zd, sandbox):
    """Acme's genuine token, posted from the sandbox account's Zendesk, opens nothing."""
    from plugin.sandbox.zendesk import SANDBOX_ZENDESK_APP_ID

    with repo_of(app) as repo:
        register(repo, "acme", "42", app_id=SANDBOX_ZENDESK_APP_ID,
                 base_url=sandbox.url + "/zendesk")
    acme_token = zd.sign_launch(subdomain="acme", installation_id="42")
    resp = client.post("/zendesk/sidebar?origin=https://order-truth-sandbox.zendesk.com",
                       data={"token": acme_token})
    assert resp.status_code == 401
    assert "data-session" not in resp.get_data(as_text=True)
    # …and a sandbox-account token can't be presented as acme's either.
    resp = client.post("/zendesk/sidebar?origin=https://acme.zendesk.com",
                       data={"token": zd.sign_launch()})
    assert resp.status_code == 401


def test_two_launches_in_the_same_second_are_two_launches(launch, zd):
    now = datetime.now(UTC)
    first, second = zd.sign_launch(now=now), zd.sign_launch(now=now)
    assert first != second
    assert launch(first).status_code == 200 and launch(second).status_code == 200


def test_the_browsers_origin_header_must_be_the_accounts(client, zd):
    token = zd.sign_launch()
    url = "/zendesk/sidebar?origin=http://localhost&app_guid=test"
    elsewhere = client.post(url, data={"token": token},
                            headers={"Origin": "https://evil.example"})
    assert elsewhere.status_code == 401
    assert "different helpdesk" in elsewhere.get_data(as_text=True)
    fine = client.post(url, data={"token": zd.sign_launch()},
                       headers={"Origin": "http://localhost"})
    assert fine.status_code == 200


def test_a_launch_naming_no_origin_at_all_is_refused(client, zd):
    resp = client.post("/zendesk/sidebar", data={"token": zd.sign_launch()})
    assert resp.status_code == 401 and "no helpdesk page" in resp.get_data(as_text=True)
