"""The Zendesk API client against recorded payloads (responses), including its failure modes."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import requests
import responses
from urllib3.exceptions import MaxRetryError, NewConnectionError

from plugin.connectors.base import (
    AuthError,
    BadResponseError,
    ConnectorConfig,
    NotFoundError,
    UnavailableError,
    UpstreamTimeout,
)
from plugin.hosts.zendesk.client import UpdateConflict, ZendeskClient

BASE = "https://acme.zendesk.com"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "zendesk"


def fixture(name):
    return json.loads((FIXTURES / name).read_text())


def client(creds=None):
    return ZendeskClient(ConnectorConfig(BASE, creds or {"access_token": "oauth-token"}),
                         sleep=lambda _s: None)


@responses.activate
def test_get_ticket_reads_fields_and_custom_fields():
    responses.get(f"{BASE}/api/v2/tickets/35436.json", json=fixture("ticket.json"))
    t = client().get_ticket("35436")
    assert (t.id, t.updated_at, t.tags) == ("35436", "2026-03-03T16:40:12Z", ("refund", "vip"))
    assert t.custom_fields == {"360001": "1003", "360002": None}
    assert responses.calls[0].request.headers["Authorization"] == "Bearer oauth-token"


@responses.activate
def test_api_token_uses_basic_email_slash_token():
    responses.get(f"{BASE}/api/v2/users/me.json", json=fixture("users_me.json"))
    user = client({"email": "admin@acme.example", "api_token": "abc123"}).current_user()
    assert user.is_admin and user.name == "Johnny Agent"
    sent = responses.calls[0].request.headers["Authorization"]
    assert sent == "Basic " + base64.b64encode(b"admin@acme.example/token:abc123").decode()


@responses.activate
def test_internal_note_is_a_private_comment_and_never_retried():
    responses.put(f"{BASE}/api/v2/tickets/35436.json", json=fixture("update_ticket.json"))
    client().post_internal_note("35436", "summary")
    assert json.loads(responses.calls[0].request.body) == {
        "ticket": {"comment": {"body": "summary", "public": False}}}
    responses.replace(responses.PUT, f"{BASE}/api/v2/tickets/35436.json", status=503,
                      json={"error": "ServiceUnavailable"})
    with pytest.raises(UnavailableError):
        client().post_internal_note("35436", "summary")
    assert len(responses.calls) == 2  # one each: a write that may have landed is not resent


@responses.activate
def test_internal_note_is_resent_only_when_it_never_connected():
    url = f"{BASE}/api/v2/tickets/35436.json"
    refused = requests.exceptions.ConnectionError(MaxRetryError(
        None, "/api/v2/tickets/35436.json", NewConnectionError(None, "Connection refused")))
    responses.put(url, body=refused)
    responses.put(url, json=fixture("update_ticket.json"))
    client().post_internal_note("35436", "summary")
    assert len(responses.calls) == 2

    responses.replace(responses.PUT, url, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(UpstreamTimeout):
        client().post_internal_note("35436", "summary")
    assert len(responses.calls) == 3  # sent, maybe posted: not resent


@responses.activate
def test_note_exists_scans_comments_for_marker():
    responses.get(f"{BASE}/api/v2/tickets/35436/comments.json", json=fixture("comments.json"))
    assert client().note_exists("35436", "Order Truth ref note-abc12345")
    assert not client().note_exists("35436", "Order Truth ref note-other")
    # A key that is a prefix of the posted one is not "found" in its note.
    assert not client().note_exists("35436", "Order Truth ref note-abc1234")


@responses.activate
def test_tags_safe_update_rereads_on_conflict():
    ticket = fixture("ticket.json")
    responses.get(f"{BASE}/api/v2/tickets/35436.json", json=ticket)
    responses.put(f"{BASE}/api/v2/tickets/35436/tags.json", status=409,
                  json={"error": "UpdateConflict", "description": "Ticket was updated"})
    responses.put(f"{BASE}/api/v2/tickets/35436/tags.json",
                  json={"tags": ["refund", "vip", "order-truth-over_refund"]})
    tags = client().add_tags("35436", ["order-truth-over_refund"])
    assert tags[-1] == "order-truth-over_refund"
    puts = [c for c in responses.calls if c.request.method == "PUT"]
    assert json.loads(puts[0].request.body) == {"tags": ["order-truth-over_refund"],
                                                 "updated_stamp": "2026-03-03T16:40:12Z",
                                                 "safe_update": True}
    assert len(puts) == 2


@responses.activate
def test_tags_give_up_after_repeated_conflicts():
    responses.get(f"{BASE}/api/v2/tickets/35436.json", json=fixture("ticket.json"))
    responses.put(f"{BASE}/api/v2/tickets/35436/tags.json", status=409,
                  json={"error": "UpdateConflict", "description": "Ticket was updated"})
    with pytest.raises(UpdateConflict):
        client().add_tags("35436", ["x"])


@responses.activate
@pytest.mark.parametrize(("status", "body", "error"), [
    (401, {"error": "Couldn't authenticate you"}, AuthError),
    (404, {"error": "RecordNotFound", "description": "Not found"}, NotFoundError),
    (500, {"error": "InternalError"}, UnavailableError),
])
def test_errors_are_typed(status, body, error):
    responses.get(f"{BASE}/api/v2/tickets/1.json", status=status, json=body)
    with pytest.raises(error):
        client().get_ticket("1")


@responses.activate
def test_timeout_and_garbage():
    responses.get(f"{BASE}/api/v2/tickets/1.json", body=requests.exceptions.ReadTimeout())
    with pytest.raises(UpstreamTimeout):
        client().get_ticket("1")
    responses.replace(responses.GET, f"{BASE}/api/v2/tickets/1.json", body="<html>oops</html>")
    with pytest.raises(BadResponseError):
        client().get_ticket("1")
    responses.replace(responses.GET, f"{BASE}/api/v2/tickets/1.json", json={"ticket": {"id": "x"}})
    with pytest.raises(BadResponseError):
        client().get_ticket("1")


@responses.activate
def test_public_key_must_be_a_pem():
    responses.get(f"{BASE}/api/v2/apps/77/public_key.pem", body="not a key")
    with pytest.raises(BadResponseError):
        ZendeskClient(ConnectorConfig(BASE, {})).public_key_pem("77")
    assert "Authorization" not in responses.calls[0].request.headers


@responses.activate
def test_oauth_code_exchange_sends_pkce_verifier():
    responses.post(f"{BASE}/oauth/tokens", json={"access_token": "tok", "token_type": "bearer",
                                                 "scope": "read write"})
    token = ZendeskClient(ConnectorConfig(BASE, {})).exchange_code(
        code="c", client_id="id", client_secret="s", redirect_uri="https://app/cb",
        code_verifier="v" * 43)
    assert token == "tok"
    sent = json.loads(responses.calls[0].request.body)
    assert sent["grant_type"] == "authorization_code" and sent["code_verifier"] == "v" * 43
