"""The widget's API after launch: sessions, CSRF, tenant isolation, notes and tags written once."""

from __future__ import annotations

import re

import pytest

from tests.conftest import repo_of

RECORD = "/zendesk/api/record"


def action(client, session, ticket, **body):
    body = {"kind": "note", "key": "k-123456789", "order_id": "1003", **body}
    return client.post(f"/zendesk/api/tickets/{ticket}/actions", json=body, headers=session)


def test_record_fragment_for_the_tickets_order(client, session):
    resp = client.get(RECORD, query_string={"ticket_id": "103", "order_id": "1003"},
                      headers=session)
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    assert 'data-code="ERP_REFUND_NOT_AT_PROCESSOR"' in body
    assert 'data-ot-action="note"' in body and 'data-ot-action="tags"' in body
    assert "frame-ancestors 'self'" in resp.headers["Content-Security-Policy"]


@pytest.mark.parametrize("auth", [None, "Bearer ", "Bearer forged.token.value", "Basic abc"])
def test_record_needs_a_genuine_session(client, auth):
    headers = {"Authorization": auth} if auth else {}
    resp = client.get(RECORD, query_string={"ticket_id": "103", "order_id": "1003"},
                      headers=headers)
    assert resp.status_code == 401


def test_session_from_another_secret_is_refused(client, app):
    from plugin.hosts.session import SessionTokens

    token, _ = SessionTokens("someone-elses-secret").issue(1, "zendesk:order-truth-sandbox:1", 0)
    resp = client.get(RECORD, query_string={"ticket_id": "103", "order_id": "1003"},
                      headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401


def test_ticket_the_installation_does_not_have_is_refused(client, session):
    resp = client.get(RECORD, query_string={"ticket_id": "99999", "order_id": "1003"},
                      headers=session)
    assert resp.status_code == 404


def test_malformed_ids_are_400s(client, session):
    assert client.get(RECORD, query_string={"ticket_id": "10x", "order_id": "1003"},
                      headers=session).status_code == 400
    resp = client.get(RECORD, query_string={"ticket_id": "103", "order_id": "10 03"},
                      headers=session)
    assert resp.status_code == 400 and "only letters" in resp.get_data(as_text=True)


def test_write_without_csrf_is_refused(client, session, zd):
    headers = {"Authorization": session["Authorization"]}
    resp = action(client, headers, 103)
    assert resp.status_code == 403
    assert [c for c in zd.ticket(103)["comments"] if not c["public"]] == []


def test_note_posts_once_for_a_key(client, agent_session, zd):
    first = action(client, agent_session, 103)
    second = action(client, agent_session, 103)  # a double click, or a retry after a lost response
    assert first.status_code == second.status_code == 200
    assert first.get_json()["status"] == "done"
    notes = [c for c in zd.ticket(103)["comments"] if not c["public"]]
    assert len(notes) == 1
    body = notes[0]["body"]
    assert "ERP refund never reached the processor" in body
    assert "Payment processor (stripe): ok" in body
    assert "Order Truth ref note-k-123456789" in body


def test_lost_response_is_not_posted_twice(client, agent_session, zd):
    zd.faults.fail_after_write(1, status=500)  # the note lands, the response says 500
    resp = action(client, agent_session, 103, key="lost-resp-1")
    assert resp.get_json()["status"] == "done"
    assert len([c for c in zd.ticket(103)["comments"] if not c["public"]]) == 1


def test_failed_write_is_reported_then_retried_without_duplicates(client, agent_session, zd):
    zd.faults.fail_next(3, status=503)
    resp = action(client, agent_session, 103, key="retry-me-1")
    assert resp.status_code == 502
    assert resp.get_json()["status"] == "failed"
    assert [c for c in zd.ticket(103)["comments"] if not c["public"]] == []
    again = action(client, agent_session, 103, key="retry-me-1")
    assert again.get_json()["status"] == "done"
    assert len([c for c in zd.ticket(103)["comments"] if not c["public"]]) == 1


def test_tags_use_flag_codes_and_survive_a_concurrent_edit(client, agent_session, zd):
    resp = action(client, agent_session, 106, kind="tags", order_id="1006", key="tags-key-1")
    assert resp.status_code == 200, resp.get_json()
    tags = set(zd.ticket(106)["tags"])
    assert {"order-truth-duplicate_refund", "order-truth-refund_amount_mismatch"} <= tags


def test_action_key_reused_for_another_ticket_is_refused(client, agent_session):
    assert action(client, agent_session, 103, key="shared-key-1").get_json()["status"] == "done"
    other = action(client, agent_session, 102, key="shared-key-1", order_id="1002")
    assert other.get_json()["status"] == "failed"


@pytest.mark.parametrize("body", [{"kind": "delete"}, {"key": "short"}, {"key": "bad key!!"}])
def test_bad_action_requests(client, session, body):
    assert action(client, session, 103, **body).status_code == 400


def test_feature_toggle_disables_notes(app, client, session):
    with repo_of(app) as repo:
        tenant = repo.find("zendesk:order-truth-sandbox:1")
        repo.update_settings(tenant.id, {"features": {"post_notes": False}})
    assert action(client, session, 103).status_code == 403
    body = client.get(RECORD, query_string={"ticket_id": "103", "order_id": "1003"},
                      headers=session).get_data(as_text=True)
    assert 'data-ot-action="note"' not in body


def test_the_reply_draft_carries_the_customer_sentence_unless_an_admin_turns_it_off(
        app, client, session):
    query = {"ticket_id": "103", "order_id": "1003"}
    body = client.get(RECORD, query_string=query, headers=session).get_data(as_text=True)
    headline = re.search(r'<p class="ot-headline">([^<]+)</p>', body).group(1)
    assert f'data-ot-reply="{headline}"' in body
    with repo_of(app) as repo:
        tenant = repo.find("zendesk:order-truth-sandbox:1")
        repo.update_settings(tenant.id, {"features": {"draft_reply": False}})
    body = client.get(RECORD, query_string=query, headers=session).get_data(as_text=True)
    assert "data-ot-reply" not in body


def test_disconnect_ends_live_sessions(client, session, runner):
    runner.invoke(args=["installations", "disconnect", "zendesk:order-truth-sandbox:1"])
    resp = client.get(RECORD, query_string={"ticket_id": "103", "order_id": "1003"},
                      headers=session)
    assert resp.status_code == 401


def test_session_cannot_be_pointed_at_another_installation(app, client, session, sandbox):
    from plugin.hosts.zendesk.host import register

    with repo_of(app) as repo:
        register(repo, "acme", "42", base_url=sandbox.url + "/zendesk")
    resp = client.get(RECORD, query_string={"ticket_id": "103", "order_id": "1003",
                                            "installation": "zendesk:acme:42"}, headers=session)
    # Still the sandbox installation: its frame policy, its data.
    assert resp.status_code == 200
    assert "frame-ancestors 'self'" in resp.headers["Content-Security-Policy"]


# ---------------------------------------------------------------- which order the ticket is about

RESOLVE = "/zendesk/api/resolve-order"


def resolve(client, session, ticket, **body):
    return client.post(RESOLVE, json={"ticket_id": str(ticket), **body}, headers=session)


def test_order_number_in_the_subject(client, session):
    # One candidate: returned at once (found unknown), so the streamed record paints early.
    found = resolve(client, session, 102).get_json()
    assert (found["order_id"], found["source"], found["found"]) == (
        "1002", "the ticket subject", None)


def test_order_number_in_the_description_and_browser_text_is_not_trusted(client, session):
    # Ticket 103's subject has no order number; its description names #1003. The server
    # reads the ticket itself, so text the browser sends can't steer it elsewhere.
    found = resolve(client, session, 103, subject="order #1007").get_json()
    assert (found["order_id"], found["source"]) == ("1003", "the ticket description")


def test_the_order_field_comes_first_and_a_miss_falls_through(client, session):
    assert resolve(client, session, 103, field="1005").get_json()["order_id"] == "1005"
    found = resolve(client, session, 103, field="9999").get_json()
    assert (found["order_id"], found["source"], found["found"]) == (
        "1003", "the ticket description", True)
    assert found["tried"] == [{"order_id": "9999", "from": "the ticket's Order ID field",
                               "result": "not found"}]


def test_an_order_nobody_has_is_reported_not_found(client, session, zd):
    unknown = max(t["id"] for t in zd.tickets())
    found = resolve(client, session, unknown).get_json()
    assert (found["order_id"], found["found"]) == ("9999", None)  # the record says "not found"
    found = resolve(client, session, unknown, field="9998").get_json()
    assert (found["order_id"], found["found"]) == ("9998", False)
    assert [t["result"] for t in found["tried"]] == ["not found", "not found"]


def test_resolve_needs_a_session_and_csrf(client, session):
    assert client.post(RESOLVE, json={"ticket_id": "102"}).status_code == 401
    headers = {"Authorization": session["Authorization"]}
    assert client.post(RESOLVE, json={"ticket_id": "102"}, headers=headers).status_code == 403
    assert resolve(client, session, "10x").status_code == 400


def test_a_non_ascii_csrf_header_is_refused_not_a_server_error(client, session):
    headers = {"Authorization": session["Authorization"], "X-CSRF-Token": "é"}
    resp = client.post("/zendesk/api/tickets/103/actions", headers=headers,
                       json={"kind": "note", "key": "k-123456789", "order_id": "1003"})
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "csrf"


@pytest.mark.parametrize("method,url,allowed", [
    ("delete", "/zendesk/api/record", {"GET", "HEAD", "OPTIONS"}),
    ("get", "/zendesk/api/resolve-order", {"POST", "OPTIONS"}),
    ("put", "/api/v1/orders/1001", {"GET", "HEAD", "OPTIONS"}),
])
def test_api_errors_are_json_and_a_405_says_what_is_allowed(client, method, url, allowed):
    resp = getattr(client, method)(url)
    assert resp.status_code == 405 and resp.is_json
    assert resp.get_json()["error"]["code"] == "method_not_allowed"
    assert {m.strip() for m in resp.headers["Allow"].split(",")} == allowed


def test_widget_api_errors_are_json_never_html(client, session):
    for resp in (client.get(RECORD, query_string={"ticket_id": "x1", "order_id": "1003"},
                            headers=session),
                 client.get(RECORD, query_string={"ticket_id": "103", "order_id": "#"},
                            headers=session),
                 client.get("/zendesk/api/nothing-here", headers=session)):
        assert resp.status_code in (400, 404) and resp.is_json, resp.get_data(as_text=True)
        assert resp.get_json()["error"]["message"]


def test_the_record_says_a_summary_was_already_posted_and_asks_before_another(client, agent_session):
    query = {"ticket_id": "103", "order_id": "1003"}
    before = client.get(RECORD, query_string=query, headers=agent_session).get_data(as_text=True)
    assert "already posted" not in before and "data-confirm" not in before
    assert action(client, agent_session, 103, key="history-1").get_json()["status"] == "done"
    after = client.get(RECORD, query_string=query, headers=agent_session).get_data(as_text=True)
    assert "Summary already posted on this ticket just now by Sam Agent." in after
    assert 'data-confirm="Already posted just now by Sam Agent. Post it again?"' in after
    # Another order on the same ticket has its own history.
    other = client.get(RECORD, query_string={"ticket_id": "103", "order_id": "1002"},
                       headers=agent_session).get_data(as_text=True)
    assert "already posted" not in other


def test_with_the_order_field_named_in_the_settings_the_ticket_not_the_browser_says(
        app, client, session):
    from plugin.sandbox.zendesk import SANDBOX_ORDER_FIELD_ID
    from tests.conftest import repo_of

    with repo_of(app) as repo:
        tenant = repo.find("zendesk:order-truth-sandbox:1")
        repo.update_settings(tenant.id, {"order_id_field_id": SANDBOX_ORDER_FIELD_ID})
    # Ticket 102's Order ID field holds 1002; the browser claims 1005.
    found = resolve(client, session, 102, field="1005").get_json()
    assert (found["order_id"], found["source"]) == ("1002", "the ticket's Order ID field")
    # Ticket 103's field is empty: the browser's value is not used, the text is.
    found = resolve(client, session, 103, field="1005").get_json()
    assert (found["order_id"], found["source"]) == ("1003", "the ticket description")
