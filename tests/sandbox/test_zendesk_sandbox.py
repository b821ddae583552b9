"""The simulated Zendesk: signed launches, auth, tickets, notes, tags, OAuth with PKCE, faults."""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests

from plugin.sandbox.faults import FaultSpec
from plugin.sandbox.scenarios import SCENARIOS
from plugin.sandbox.server import SandboxServer, zendesk_base_url
from plugin.sandbox.state import SandboxState
from plugin.sandbox.zendesk import (
    SANDBOX_API_EMAIL,
    SANDBOX_API_TOKEN,
    SANDBOX_OAUTH_CLIENT_ID,
    SANDBOX_OAUTH_CLIENT_SECRET,
    SANDBOX_ORDER_FIELD_ID,
    SANDBOX_REFUND_STATUS_FIELD_ID,
    SANDBOX_ZENDESK_APP_ID,
    basic_authorization,
    launch_audience,
    other_key,
    pkce_challenge,
)

from .conftest import NOW

ISSUER = "order-truth-sandbox.zendesk.com"
REDIRECT = "http://127.0.0.1:5000/zendesk/oauth/callback"
BASIC = basic_authorization()
UNAUTHENTICATED = {"error": "Couldn't authenticate you"}


class Zendesk:
    """Calls the sandbox's Zendesk the way the product's client does; returns raw responses."""

    def __init__(self, server: SandboxServer) -> None:
        self.base = zendesk_base_url(server.url)
        self.control_url = f"{server.url}/_sandbox/zendesk"
        self.http = requests.Session()
        self.http.trust_env = False

    def request(self, method: str, path: str, *, auth: str | None = BASIC,
                **kwargs: Any) -> requests.Response:
        headers = {"Authorization": auth} if auth is not None else {}
        return self.http.request(method, self.base + path, headers=headers, timeout=5,
                                 allow_redirects=False, **kwargs)

    def ticket(self, ticket_id: int, **kwargs: Any) -> requests.Response:
        return self.request("GET", f"/api/v2/tickets/{ticket_id}.json", **kwargs)

    def note(self, ticket_id: int, body: str, **comment: Any) -> requests.Response:
        payload = {"ticket": {"comment": {"body": body, "public": False, **comment}}}
        return self.request("PUT", f"/api/v2/tickets/{ticket_id}.json", json=payload)

    def tag(self, ticket_id: int, tags: list[str], stamp: str | None,
            safe_update: Any = True) -> requests.Response:
        payload = {"tags": tags, "updated_stamp": stamp, "safe_update": safe_update}
        return self.request("PUT", f"/api/v2/tickets/{ticket_id}/tags.json", json=payload)

    def consent(self, *, verifier: str, state: str = "xyz", decision: dict[str, str] | None = None,
                **overrides: str) -> requests.Response:
        params = {"response_type": "code", "client_id": SANDBOX_OAUTH_CLIENT_ID,
                  "redirect_uri": REDIRECT, "scope": "read write", "state": state,
                  "code_challenge": pkce_challenge(verifier), "code_challenge_method": "S256",
                  **overrides}
        return self.request("POST", "/oauth/authorizations/new", auth=None,
                            data={**params, **(decision or {})})

    def code(self, verifier: str, **decision: str) -> str:
        resp = self.consent(verifier=verifier, decision=decision)
        assert resp.status_code == 302
        return parse_qs(urlsplit(resp.headers["Location"]).query)["code"][0]

    def exchange(self, code: str, verifier: str, **overrides: str) -> requests.Response:
        body = {"grant_type": "authorization_code", "code": code,
                "client_id": SANDBOX_OAUTH_CLIENT_ID,
                "client_secret": SANDBOX_OAUTH_CLIENT_SECRET, "redirect_uri": REDIRECT,
                "code_verifier": verifier, "scope": "read write", **overrides}
        return self.request("POST", "/oauth/tokens", auth=None, json=body)


@pytest.fixture
def zendesk(sandbox: SandboxServer) -> Iterator[Zendesk]:
    """A Zendesk client for the test's sandbox."""
    client = Zendesk(sandbox)
    yield client
    client.http.close()


def _verifier() -> str:
    return secrets.token_urlsafe(48)


# ---------------------------------------------------------------- signed launches


def _public_key(zendesk: Zendesk) -> str:
    resp = zendesk.request("GET", f"/api/v2/apps/{SANDBOX_ZENDESK_APP_ID}/public_key.pem",
                           auth=None)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/x-pem-file")
    return resp.text


def _decode(token: str, key: str) -> dict[str, Any]:
    return jwt.decode(token, key, algorithms=["RS256"], audience=launch_audience(),
                      issuer=ISSUER, options={"require": ["exp", "iat", "aud", "iss"]})


def test_launch_jwt_verifies_against_the_served_public_key(zendesk, state):
    pem = _public_key(zendesk)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert pem == state.zendesk.public_key_pem()
    claims = _decode(state.zendesk.sign_launch(), pem)
    assert claims["aud"] == ("https://order-truth-sandbox.zendesk.com/api/v2/apps/installations/"
                             "1.json")
    assert claims["context"] == {"product": "support", "location": "ticket_sidebar"}
    assert claims["exp"] - claims["iat"] == 300
    assert jwt.get_unverified_header(state.zendesk.sign_launch())["alg"] == "RS256"

    missing = zendesk.request("GET", "/api/v2/apps/42/public_key.pem", auth=None)
    assert missing.status_code == 404
    assert missing.json() == {"error": "RecordNotFound", "description": "Not found"}


def test_forged_launches_fail_verification(zendesk, state):
    pem = _public_key(zendesk)
    sign = state.zendesk.sign_launch
    with pytest.raises(jwt.InvalidSignatureError):
        _decode(sign(signing_key=other_key()), pem)
    with pytest.raises(jwt.InvalidAudienceError):
        _decode(sign(installation_id="2"), pem)
    with pytest.raises(jwt.InvalidIssuerError):
        _decode(sign(claims_override={"iss": "evil.zendesk.com"}), pem)
    with pytest.raises(jwt.MissingRequiredClaimError):
        _decode(sign(drop=("exp",)), pem)
    with pytest.raises(jwt.ExpiredSignatureError):
        _decode(sign(now=datetime.now(UTC) - timedelta(minutes=10)), pem)
    assert state.zendesk.private_key_pem() != other_key()


def test_launch_can_be_signed_over_http(zendesk):
    pem = _public_key(zendesk)
    resp = zendesk.http.post(f"{zendesk.control_url}/launch", timeout=5)
    assert resp.status_code == 200
    _decode(resp.json()["token"], pem)
    other = zendesk.http.post(f"{zendesk.control_url}/launch", json={"installation_id": "7"},
                              timeout=5).json()["token"]
    assert jwt.decode(other, pem, algorithms=["RS256"], audience=launch_audience(
        installation_id="7"))["iss"] == ISSUER


def test_rotate_serves_a_new_key(zendesk, state):
    before = _public_key(zendesk)
    old_token = state.zendesk.sign_launch()
    state.zendesk.rotate()
    after = _public_key(zendesk)
    assert after != before
    with pytest.raises(jwt.InvalidSignatureError):
        _decode(old_token, after)
    _decode(state.zendesk.sign_launch(), after)


# ---------------------------------------------------------------- auth and users


@pytest.mark.parametrize("auth", [
    None,
    "Bearer not-a-token",
    basic_authorization(api_token="wrong"),
    basic_authorization(email="someone@else.example"),
    "Basic " + "bm90LWEtdG9rZW4=",  # "not-a-token"
    f"Token {SANDBOX_API_TOKEN}",
])
def test_api_requires_credentials(zendesk, auth):
    for path in ("/api/v2/users/me.json", "/api/v2/tickets/101.json"):
        resp = zendesk.request("GET", path, auth=auth)
        assert resp.status_code == 401
        assert resp.json() == UNAUTHENTICATED


def test_users_me_names_the_credentials_user(zendesk, state):
    me = zendesk.request("GET", "/api/v2/users/me.json").json()
    assert me == {"user": {"id": 9001, "name": "Ada Admin", "email": SANDBOX_API_EMAIL,
                           "role": "admin", "ticket_restriction": None}}
    agent = state.zendesk.issue_token(9002)
    me = zendesk.request("GET", "/api/v2/users/me.json", auth=f"Bearer {agent}").json()
    assert me["user"]["id"] == 9002 and me["user"]["role"] == "agent"


# ---------------------------------------------------------------- tickets


def test_tickets_are_seeded_one_per_scenario_plus_an_unknown_order(zendesk, state):
    seeded = state.zendesk.tickets()
    assert [t["id"] for t in seeded] == list(range(101, 102 + len(SCENARIOS)))
    numbers = [s.order_number for s in SCENARIOS] + ["9999"]
    assert [t["order_number"] for t in seeded] == numbers
    for ticket, number in zip(seeded, numbers, strict=True):
        value = number if ticket["id"] % 2 == 0 else None
        assert ticket["custom_fields"] == [{"id": SANDBOX_ORDER_FIELD_ID, "value": value},
                                           {"id": SANDBOX_REFUND_STATUS_FIELD_ID, "value": None}]
        assert f"order #{number}" in ticket["description"]
        assert ticket["status"] == "open" and ticket["tags"] == []
        assert re.fullmatch(r"2026-\d\d-\d\dT\d\d:\d\d:\d\dZ", ticket["updated_at"])
    in_subject = [t["id"] for t, n in zip(seeded, numbers, strict=True) if f"#{n}" in t["subject"]]
    assert in_subject == [i for i in range(101, 102 + len(SCENARIOS)) if (i - 101) // 2 % 2 == 0]

    resp = zendesk.ticket(101)
    assert resp.status_code == 200
    ticket = resp.json()["ticket"]
    assert ticket["subject"] == "Everything agrees - order #1001"
    assert ticket["custom_fields"] == [{"id": SANDBOX_ORDER_FIELD_ID, "value": None},
                                       {"id": SANDBOX_REFUND_STATUS_FIELD_ID, "value": None}]
    assert set(ticket) == {"id", "url", "subject", "description", "status", "tags",
                           "custom_fields", "created_at", "updated_at", "requester_id",
                           "assignee_id"}
    assert zendesk.ticket(102).json()["ticket"]["custom_fields"][0]["value"] == "1002"

    missing = zendesk.ticket(999)
    assert missing.status_code == 404
    assert missing.json() == {"error": "RecordNotFound", "description": "Not found"}


def test_internal_note_is_appended_and_bumps_updated_at(zendesk, state):
    before = zendesk.ticket(103).json()["ticket"]["updated_at"]
    resp = zendesk.note(103, "Refund <ok>\nsecond line")
    assert resp.status_code == 200
    body = resp.json()
    after = body["ticket"]["updated_at"]
    assert after > before
    assert body["audit"]["ticket_id"] == 103
    assert body["audit"]["events"][0] | {"id": None} == {
        "id": None, "type": "Comment", "author_id": 9001, "body": "Refund <ok>\nsecond line",
        "html_body": "Refund &lt;ok&gt;<br>second line", "public": False}

    # The clock is frozen, yet every write still gets a later stamp.
    again = zendesk.note(103, "Follow-up", author_id=9002).json()["ticket"]["updated_at"]
    assert again > after

    listed = zendesk.request("GET", "/api/v2/tickets/103/comments.json").json()
    assert listed["count"] == 3 and listed["next_page"] is None
    description, note, follow_up = listed["comments"]
    assert description["public"] is True and "order #1003" in description["body"]
    assert note["public"] is False and note["author_id"] == 9001
    assert note["plain_body"] == "Refund <ok>\nsecond line"
    assert note["created_at"] == after
    assert follow_up["author_id"] == 9002
    assert state.zendesk.ticket(103)["comments"] == listed["comments"]
    newest = zendesk.request("GET", "/api/v2/tickets/103/comments.json",
                             params={"sort_order": "desc"}).json()["comments"]
    assert newest == listed["comments"][::-1]


@pytest.mark.parametrize("payload", [
    {"ticket": {"comment": {"public": False}}},
    {"ticket": {"comment": {"body": "   "}}},
    {"ticket": {}},
])
def test_note_without_a_body_is_invalid(zendesk, state, payload):
    resp = zendesk.request("PUT", "/api/v2/tickets/104.json", json=payload)
    assert resp.status_code == 422
    body = resp.json()
    assert body["error"] == "RecordInvalid"
    assert body["description"] == "Record validation errors"
    assert body["details"]
    assert len(state.zendesk.ticket(104)["comments"]) == 1
    assert zendesk.note(999, "x").status_code == 404


def test_tags_honour_safe_update(zendesk, state):
    stamp = zendesk.ticket(105).json()["ticket"]["updated_at"]
    resp = zendesk.tag(105, ["order_truth", "needs_review", "order_truth"], stamp)
    assert resp.status_code == 200
    assert resp.json() == {"tags": ["order_truth", "needs_review"]}

    stale = zendesk.tag(105, ["late"], stamp)
    assert stale.status_code == 409
    assert stale.json()["error"] == "UpdateConflict"
    assert state.zendesk.ticket(105)["tags"] == ["order_truth", "needs_review"]

    fresh = zendesk.ticket(105).json()["ticket"]["updated_at"]
    assert fresh > stamp
    assert zendesk.tag(105, ["late"], fresh).json()["tags"] == ["order_truth", "needs_review",
                                                                  "late"]
    # Without safe_update the stamp is not checked.
    assert zendesk.tag(105, ["extra"], stamp, safe_update=False).status_code == 200


@pytest.mark.parametrize("tag", ["Order_Truth", "two words", "", "#hash", 7])
def test_invalid_tags_are_refused(zendesk, state, tag):
    stamp = state.zendesk.ticket(106)["updated_at"]
    resp = zendesk.tag(106, [tag], stamp)
    assert resp.status_code == 422
    assert resp.json()["error"] == "RecordInvalid"
    assert state.zendesk.ticket(106)["tags"] == []
    assert state.zendesk.ticket(106)["updated_at"] == stamp


def test_concurrent_notes_all_land_with_distinct_stamps(sandbox, state):
    stamps: list[str] = []
    lock = threading.Lock()

    def post(n: int) -> None:
        client = Zendesk(sandbox)
        resp = client.note(107, f"note {n}")
        client.http.close()
        with lock:
            stamps.append(resp.json()["ticket"]["updated_at"])

    threads = [threading.Thread(target=post, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(stamps)) == 8
    assert len(state.zendesk.ticket(107)["comments"]) == 9


def test_reset_reseeds_the_tickets(zendesk, state):
    zendesk.note(108, "note")
    state.zendesk.faults.fail_next(3)
    state.reset()
    assert len(state.zendesk.ticket(108)["comments"]) == 1
    assert state.zendesk.faults.snapshot()["fail_next"]["count"] == 0


# ---------------------------------------------------------------- OAuth


def test_consent_page_carries_the_request(zendesk):
    verifier = _verifier()
    resp = zendesk.request("GET", "/oauth/authorizations/new", auth=None, params={
        "response_type": "code", "client_id": SANDBOX_OAUTH_CLIENT_ID, "redirect_uri": REDIRECT,
        "scope": "read write", "state": "s<1>", "code_challenge": pkce_challenge(verifier),
        "code_challenge_method": "S256"})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/html")
    page = resp.text
    assert "Allow Order Truth to access order-truth-sandbox?" in page
    assert 'name="state" value="s&lt;1&gt;"' in page
    assert 'name="user_id" value="9002"' in page and 'value="deny"' in page


@pytest.mark.parametrize(("decision", "user"), [({}, 9001), ({"user_id": "9002"}, 9002)])
def test_oauth_code_flow_with_pkce(zendesk, decision, user):
    verifier = _verifier()
    consent = zendesk.consent(verifier=verifier, state="abc", decision=decision)
    assert consent.status_code == 302
    location = urlsplit(consent.headers["Location"])
    assert location._replace(query="").geturl() == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["abc"]

    resp = zendesk.exchange(query["code"][0], verifier)
    assert resp.status_code == 200
    body = resp.json()
    assert body["token_type"] == "bearer" and body["scope"] == "read write"
    bearer = f"Bearer {body['access_token']}"
    me = zendesk.request("GET", "/api/v2/users/me.json", auth=bearer)
    assert me.json()["user"]["id"] == user
    assert zendesk.note(101, "via oauth").status_code == 200

    # A code is single-use; replaying it also revokes the token it bought.
    replay = zendesk.exchange(query["code"][0], verifier)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert zendesk.request("GET", "/api/v2/users/me.json", auth=bearer).status_code == 401


def test_token_form_body_is_accepted(zendesk):
    verifier = _verifier()
    code = zendesk.code(verifier)
    resp = zendesk.request("POST", "/oauth/tokens", auth=None, data={
        "grant_type": "authorization_code", "code": code, "client_id": SANDBOX_OAUTH_CLIENT_ID,
        "client_secret": SANDBOX_OAUTH_CLIENT_SECRET, "redirect_uri": REDIRECT,
        "code_verifier": verifier})
    assert resp.status_code == 200 and resp.json()["access_token"]


@pytest.mark.parametrize(("overrides", "status", "error"), [
    ({"code_verifier": "x" * 43}, 400, "invalid_grant"),
    ({"code_verifier": ""}, 400, "invalid_grant"),
    ({"redirect_uri": "http://127.0.0.1:5000/elsewhere"}, 400, "invalid_grant"),
    ({"code": "never-issued"}, 400, "invalid_grant"),
    ({"client_secret": "wrong"}, 401, "invalid_client"),
    ({"client_id": "someone_else"}, 401, "invalid_client"),
    ({"grant_type": "password"}, 400, "unsupported_grant_type"),
])
def test_bad_token_requests_are_refused(zendesk, overrides, status, error):
    verifier = _verifier()
    code = zendesk.code(verifier)
    resp = zendesk.exchange(overrides.pop("code", code), verifier, **overrides)
    assert resp.status_code == status
    body = resp.json()
    assert body["error"] == error and body["error_description"]


def test_codes_expire_after_ten_minutes():
    clock = [NOW]
    with SandboxServer(SandboxState(now=lambda: clock[0])) as server:
        client = Zendesk(server)
        verifier = _verifier()
        code = client.code(verifier)
        clock[0] = NOW + timedelta(minutes=10, seconds=1)
        resp = client.exchange(code, verifier)
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"
        client.http.close()


def test_deny_redirects_with_access_denied(zendesk):
    resp = zendesk.consent(verifier=_verifier(), state="st8", decision={"decision": "deny"})
    assert resp.status_code == 302
    query = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert query["error"] == ["access_denied"] and query["state"] == ["st8"]
    assert "code" not in query


@pytest.mark.parametrize("overrides", [
    {"client_id": "unknown"},
    {"response_type": "token"},
    {"code_challenge": ""},
    {"code_challenge_method": "plain"},
    {"redirect_uri": "not a url"},
])
def test_invalid_authorization_requests_get_a_400_page(zendesk, overrides):
    resp = zendesk.consent(verifier=_verifier(), **overrides)
    assert resp.status_code == 400
    assert "Invalid request" in resp.text
    assert "Location" not in resp.headers


# ---------------------------------------------------------------- faults


def test_fail_next_refuses_one_write_then_recovers(zendesk, state):
    state.zendesk.faults.fail_next(1)
    failed = zendesk.note(109, "first try")
    assert failed.status_code == 500
    assert failed.json()["error"] == "InternalServerError"
    assert len(state.zendesk.ticket(109)["comments"]) == 1
    assert zendesk.ticket(109).status_code == 200  # reads are not writes
    assert zendesk.note(109, "second try").status_code == 200
    assert [c["body"] for c in state.zendesk.ticket(109)["comments"][1:]] == ["second try"]


def test_fail_after_write_applies_the_note_but_loses_the_answer(zendesk, state):
    state.zendesk.faults.fail_after_write(1)
    resp = zendesk.note(110, "posted once")
    assert resp.status_code == 500
    assert [c["body"] for c in state.zendesk.ticket(110)["comments"][1:]] == ["posted once"]
    assert zendesk.note(110, "next").status_code == 200


def test_fail_after_write_can_drop_the_connection(zendesk, state):
    stamp = state.zendesk.ticket(111)["updated_at"]
    state.zendesk.faults.fail_after_write(1, drop=True)
    with pytest.raises(requests.ConnectionError):
        zendesk.tag(111, ["order_truth"], stamp)
    assert state.zendesk.ticket(111)["tags"] == ["order_truth"]
    assert zendesk.ticket(111).status_code == 200


def test_fault_spec_applies_to_every_api_request(zendesk, state):
    state.zendesk.faults.set(FaultSpec(status=429, retry_after=7))
    resp = zendesk.ticket(101)
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "7"
    assert resp.json()["error"] == "APIRateLimitExceeded"
    state.zendesk.faults.set(FaultSpec(malformed=True))
    garbled = zendesk.ticket(101)
    assert garbled.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        garbled.json()
    # The login site is not the API.
    assert zendesk.consent(verifier=_verifier()).status_code == 302


def test_zendesk_faults_over_http(zendesk, state):
    http = zendesk.http
    resp = http.post(f"{zendesk.control_url}/faults", timeout=5, json={
        "fault": {"status": 503}, "fail_next": {"count": 2, "status": 502},
        "fail_after_write": {"count": 1, "drop": True}})
    assert resp.status_code == 200
    snapshot = resp.json()
    assert snapshot["fault"]["status"] == 503
    assert snapshot["fail_next"]["count"] == 2 and snapshot["fail_after_write"]["drop"] is True
    assert zendesk.ticket(101).status_code == 503

    http.post(f"{zendesk.control_url}/faults", json={"fault": None}, timeout=5)
    assert zendesk.note(101, "x").status_code == 502
    assert http.get(f"{zendesk.control_url}/faults", timeout=5).json()["fail_next"]["count"] == 1

    bad = http.post(f"{zendesk.control_url}/faults", json={"fail_next": {"count": -1}}, timeout=5)
    assert bad.status_code == 400
    http.delete(f"{zendesk.control_url}/faults", timeout=5)
    assert state.zendesk.faults.snapshot() == {
        "fault": None,
        "fail_next": {"count": 0, "status": 500, "retry_after": None, "drop": False},
        "fail_after_write": {"count": 0, "status": 500, "retry_after": None, "drop": False},
    }
    assert zendesk.note(101, "x").status_code == 200
    listed = http.get(f"{zendesk.control_url}/tickets", timeout=5).json()["tickets"]
    assert listed[0]["comments"][-1]["body"] == "x"


def test_unknown_zendesk_routes_answer_in_zendesk_shape(zendesk):
    resp = zendesk.request("GET", "/api/v2/nothing.json")
    assert resp.status_code == 404
    assert resp.json() == {"error": "InvalidEndpoint", "description": "Not found"}
    assert zendesk.request("DELETE", "/api/v2/tickets/101.json").status_code == 405


def test_the_sandbox_server_takes_its_port_or_any_free_one_when_taken():
    import socket

    from plugin.sandbox.server import SandboxServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    first = SandboxServer(port=port).start()
    second = SandboxServer(port=port).start()
    try:
        assert first.url == f"http://127.0.0.1:{port}"
        assert second.url != first.url  # taken: a free one instead of failing to start
    finally:
        first.stop()
        second.stop()


# ---------------------------------------------------------------- expiring tokens, restarts, rights


def _refresh(zendesk: Zendesk, refresh_token: str, **extra: Any) -> requests.Response:
    return zendesk.request("POST", "/oauth/tokens", auth=None, json={
        "grant_type": "refresh_token", "refresh_token": refresh_token,
        "client_id": SANDBOX_OAUTH_CLIENT_ID, "client_secret": SANDBOX_OAUTH_CLIENT_SECRET,
        **extra})


def _me(zendesk: Zendesk, access_token: str) -> int:
    return zendesk.request("GET", "/api/v2/users/me.json", auth=f"Bearer {access_token}").status_code


def test_a_code_buys_an_expiring_token_pair_and_refresh_rotates_it(zendesk, state):
    verifier = _verifier()
    first = zendesk.exchange(zendesk.code(verifier, user_id="9002"), verifier,
                             expires_in=600).json()
    assert first["expires_in"] == 600 and first["refresh_token_expires_in"] >= 604_800
    assert _me(zendesk, first["access_token"]) == 200

    second = _refresh(zendesk, first["refresh_token"])
    assert second.status_code == 200, second.text
    pair = second.json()
    # Zendesk: refreshing returns a new pair and invalidates both of the previous tokens.
    assert _me(zendesk, pair["access_token"]) == 200
    assert _me(zendesk, first["access_token"]) == 401
    again = _refresh(zendesk, first["refresh_token"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert state.zendesk.refreshes == 1


def test_an_access_token_is_not_a_refresh_token_and_lifetimes_are_bounded(zendesk):
    verifier = _verifier()
    pair = zendesk.exchange(zendesk.code(verifier), verifier).json()
    assert _refresh(zendesk, pair["access_token"]).status_code == 400
    verifier = _verifier()
    resp = zendesk.exchange(zendesk.code(verifier), verifier, expires_in=10)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"


def test_expired_and_revoked_tokens_are_refused(zendesk, state):
    token = state.zendesk.issue_token(9002)
    assert _me(zendesk, token) == 200
    state.now = lambda: NOW + timedelta(seconds=state.zendesk.access_ttl + 1)
    assert _me(zendesk, token) == 401
    state.now = lambda: NOW
    state.zendesk.revoke_tokens()
    assert _me(zendesk, token) == 401
    assert _me(zendesk, state.zendesk.issue_token(9002)) == 200


def test_a_restarted_sandbox_with_the_same_secret_honours_its_tokens():
    from plugin.sandbox.zendesk import SandboxZendesk

    before = SandboxZendesk(secret=b"s" * 32)
    token = before.issue_token(9002)
    after = SandboxZendesk(secret=b"s" * 32)
    assert after.authenticate(f"Bearer {token}").id == 9002
    assert SandboxZendesk(secret=b"t" * 32).authenticate(f"Bearer {token}") is None
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert after.authenticate(f"Bearer {forged}") is None


def test_an_assigned_only_agent_sees_and_updates_only_their_tickets(zendesk, state):
    riley = f"Bearer {state.zendesk.issue_token(9003)}"
    assert zendesk.ticket(101, auth=riley).status_code == 200
    refused = zendesk.ticket(102, auth=riley)
    assert refused.status_code == 403 and refused.json()["error"] == "Forbidden"
    put = zendesk.request("PUT", "/api/v2/tickets/102.json", auth=riley,
                          json={"ticket": {"comment": {"body": "x", "public": False}}})
    assert put.status_code == 403
    tags = zendesk.request("PUT", "/api/v2/tickets/102/tags.json", auth=riley, json={"tags": ["a"]})
    assert tags.status_code == 403
    assert all(c["body"] != "x" for c in state.zendesk.ticket(102)["comments"])
    ok = zendesk.request("PUT", "/api/v2/tickets/101.json", auth=riley,
                         json={"ticket": {"comment": {"body": "mine", "public": False}}})
    assert ok.status_code == 200
    assert state.zendesk.ticket(101)["comments"][-1]["author_id"] == 9003


def test_the_apps_sandbox_keeps_its_token_secret_across_restarts():
    from plugin.sandbox import zendesk_token_secret
    from plugin.sandbox.zendesk import SandboxZendesk

    config = {"SECRET_KEY": "kept-in-instance"}
    token = SandboxZendesk(secret=zendesk_token_secret(config)).issue_token(9002)
    restarted = SandboxZendesk(secret=zendesk_token_secret(dict(config)))
    assert restarted.authenticate(f"Bearer {token}").name == "Sam Agent"
    other = SandboxZendesk(secret=zendesk_token_secret({"SECRET_KEY": "another-deployment"}))
    assert other.authenticate(f"Bearer {token}") is None


def test_a_ticket_update_sets_custom_fields_and_refuses_unknown_ones(zendesk, state):
    path = "/api/v2/tickets/115.json"
    ok = zendesk.request("PUT", path, json={"ticket": {
        "status": "solved", "custom_fields": [{"id": SANDBOX_REFUND_STATUS_FIELD_ID,
                                               "value": "refunded"}],
        "comment": {"body": "done", "public": False}}})
    assert ok.status_code == 200
    changed = {e.get("field_name") for e in ok.json()["audit"]["events"]}
    assert {"status", str(SANDBOX_REFUND_STATUS_FIELD_ID)} <= changed
    assert state.zendesk.ticket(115)["custom_fields"][1]["value"] == "refunded"
    bad = zendesk.request("PUT", path, json={"ticket": {
        "custom_fields": [{"id": 42, "value": "x"}]}})
    assert bad.status_code == 422 and bad.json()["error"] == "RecordInvalid"
    assert "42" in bad.json()["details"]["custom_fields"][0]["description"]
