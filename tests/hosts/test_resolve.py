"""Resolve the ticket from the sidebar: the record's outcome, mapped by the admin to ticket
changes, applied as the agent once, with a note; never resolved on a record that can't
support it.

Against the sandbox's Zendesk (ticket 100 + n is about order 1000 + n) and its upstreams.
"""

from __future__ import annotations

import pytest

from plugin.actions.audit import AuditLog
from plugin.hosts.zendesk.client import ZendeskClient
from plugin.sandbox.zendesk import SANDBOX_REFUND_STATUS_FIELD_ID
from plugin.tenant_settings import as_changes, validate_changes
from tests.conftest import repo_of

from .conftest import audit_entries as entries
from .conftest import crash_in, headers_for, sign_in_agent

KEY = "zendesk:order-truth-sandbox:1"
PREVIEW = "/zendesk/api/tickets/{}/resolve/preview"
RESOLVE = "/zendesk/api/tickets/{}/resolve"


def allow(app, *, enabled=True, **settings):
    with repo_of(app) as repo:
        tenant = repo.find(KEY)
        repo.update_settings(tenant.id, {"features": {"resolve_ticket": enabled},
                                         **as_changes(validate_changes(settings))})


def ticket(zd, order):
    return zd.ticket(order - 900)


def field(t):
    return {f["id"]: f["value"] for f in t["custom_fields"]}[SANDBOX_REFUND_STATUS_FIELD_ID]


def notes(t):
    return [c for c in t["comments"] if not c["public"]]



def writes(zd):
    """Every private note and tag on every ticket: what resolving could have written."""
    return [(t["id"], len(notes(t)), tuple(t["tags"]), t["status"], field(t))
            for t in zd.tickets()]


# The counter-cases a returns-finance lead raises, as rows: the order's record, and what
# resolving must do with the default mapping. Status None: left as it was ("open").
@pytest.mark.parametrize(("order", "outcome", "status", "tag", "value"), [
    # Refunded in full, every source agrees: solved.
    (1015, "refunded", "solved", "order-truth-refunded", "refunded"),
    (1018, "refunded", "solved", "order-truth-refunded", "refunded"),
    # Refunded in full at the processor, but the store return never reached inventory (high):
    # the money is back, the books are not; never solved from here.
    (1004, "needs_attention", "open", "order-truth-needs-attention", "needs_attention"),
    # A duplicate refund (critical) or an over-refund (critical): money went out twice.
    (1006, "needs_attention", "open", "order-truth-needs-attention", "needs_attention"),
    (1019, "needs_attention", "open", "order-truth-needs-attention", "needs_attention"),
    # The ERP says refunded, the processor never got it (critical).
    (1003, "needs_attention", "open", "order-truth-needs-attention", "needs_attention"),
    # A chargeback open on a refunded order.
    (1009, "needs_attention", "open", "order-truth-needs-attention", "needs_attention"),
    # Part refunded (a split refund, store credit for the rest): waiting on the customer.
    (1005, "partially_refunded", "pending", "order-truth-partially-refunded",
     "partially_refunded"),
    # The parcel is on its way back: pending.
    (1020, "return_in_progress", "pending", "order-truth-return-in-progress",
     "return_in_progress"),
    # Paid, nothing returned; only a medium flag (portal and ERP differ on a closed return).
    (1021, "nothing_to_refund", "open", "order-truth-no-refund", "no_refund"),
])
def test_each_outcome_gets_the_admins_ticket_changes(app, client, agent_session, zd, order,
                                                     outcome, status, tag, value):
    allow(app)
    before = writes(zd)
    preview = client.post(PREVIEW.format(order - 900), headers=agent_session,
                          json={"order_id": str(order)})
    assert preview.status_code == 200, preview.get_data(as_text=True)
    assert preview.get_json()["outcome"] == outcome
    assert writes(zd) == before and entries(app) == []  # previewing wrote nothing
    resp = client.post(RESOLVE.format(order - 900), headers=agent_session,
                       json={"order_id": str(order), "key": preview.get_json()["key"]})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    after = ticket(zd, order)
    assert after["status"] == status and tag in after["tags"] and field(after) == value
    [note] = notes(after)
    assert note["author_id"] == 9002 and f"order {order}" in note["body"]
    [entry] = entries(app)
    assert (entry.action, entry.status, entry.actor_name) == ("resolve", "done", "Sam Agent")
    assert entry.parameters["outcome"] == outcome


@pytest.mark.parametrize(("order", "code"), [
    (1010, "incomplete_record"),  # a source didn't answer: the record can't say how it ended
    (1022, "not_resolvable"),  # no such order
])
def test_never_resolved_on_a_record_that_cannot_support_it(app, client, agent_session, zd,
                                                           order, code):
    allow(app)
    before = writes(zd)
    resp = client.post(RESOLVE.format(order - 900), headers=agent_session,
                       json={"order_id": str(order)})
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == code
    assert writes(zd) == before and entries(app) == []


@pytest.mark.parametrize(("setup", "code"), [
    ({"enabled": False}, "disabled"),
    ({"resolve_roles": "admin"}, "forbidden_role"),
])
def test_refused_before_any_upstream_call(app, client, agent_session, zd, sandbox, setup,
                                          code, monkeypatch):
    allow(app, **setup)
    calls = []
    monkeypatch.setattr(ZendeskClient, "_request",
                        lambda self, *a, **k: calls.append(a) or pytest.fail("called Zendesk"))
    before = sandbox.state.request_counts()
    resp = client.post(RESOLVE.format(115), headers=agent_session, json={"order_id": "1015"})
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == code
    assert calls == [] and sandbox.state.request_counts() == before and entries(app) == []


def test_not_signed_in_and_not_theirs(app, client, session, zd):
    allow(app)
    resp = client.post(RESOLVE.format(115), headers=session, json={"order_id": "1015"})
    assert resp.status_code == 401
    # Riley may see only ticket 101 (assigned to her).
    _page, claimed = sign_in_agent(client, session, user_id=9003)
    riley = headers_for(claimed.get_json())
    resp = client.post(RESOLVE.format(115), headers=riley, json={"order_id": "1015"})
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "forbidden_by_host"
    assert ticket(zd, 1015)["status"] == "open" and entries(app) == []
    bad = client.post(RESOLVE.format(115), headers=riley, json={"order_id": "10 15; drop"})
    assert bad.status_code == 400


def test_a_double_click_changes_the_ticket_once(app, client, agent_session, zd):
    allow(app)
    first = client.post(RESOLVE.format(115), headers=agent_session, json={"order_id": "1015"})
    second = client.post(RESOLVE.format(115), headers=agent_session, json={"order_id": "1015"})
    assert first.status_code == second.status_code == 200
    assert second.get_json()["message"].startswith("Already resolved")
    assert len(notes(ticket(zd, 1015))) == 1 and len(entries(app)) == 1


def test_a_record_that_moved_on_since_the_confirm_step_asks_again(app, client, agent_session,
                                                                  zd):
    allow(app)
    resp = client.post(RESOLVE.format(115), headers=agent_session,
                       json={"order_id": "1015", "key": "ot-resolve-something-else"})
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "changed"
    assert "solved" in resp.get_json()["error"]["summary"]
    assert notes(ticket(zd, 1015)) == [] and entries(app) == []


def test_an_outcome_mapped_to_nothing_changes_nothing(app, client, agent_session, zd):
    allow(app, resolve_refunded_status="", resolve_refunded_tags="", resolve_refunded_field="")
    resp = client.post(RESOLVE.format(115), headers=agent_session, json={"order_id": "1015"})
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "nothing_to_change"
    assert notes(ticket(zd, 1015)) == []


def test_the_helpdesk_refusing_says_why_and_can_be_asked_again(app, client, agent_session, zd):
    allow(app)
    zd.faults.fail_next(1, status=422)
    resp = client.post(RESOLVE.format(115), headers=agent_session, json={"order_id": "1015"})
    assert resp.status_code == 422 and resp.get_json()["status"] == "failed"
    assert ticket(zd, 1015)["status"] == "open"
    again = client.post(RESOLVE.format(115), headers=agent_session, json={"order_id": "1015"})
    assert again.status_code == 200 and ticket(zd, 1015)["status"] == "solved"
    assert len(notes(ticket(zd, 1015))) == 1


def test_a_lost_answer_is_found_applied_not_applied_again(app, client, agent_session, zd):
    # Only the ticket update (no tags) so the lost answer is the update's.
    allow(app, resolve_refunded_tags="")
    zd.faults.fail_after_write(1, status=503)
    resp = client.post(RESOLVE.format(115), headers=agent_session, json={"order_id": "1015"})
    assert resp.status_code == 200 and resp.get_json()["status"] == "done"
    assert len(notes(ticket(zd, 1015))) == 1 and ticket(zd, 1015)["status"] == "solved"




def test_a_crash_after_the_update_is_reconciled_from_the_note(app, client, agent_session, zd,
                                                              runner, monkeypatch):
    allow(app)

    crash_in(monkeypatch, app, AuditLog, "complete", lambda: client.post(
        RESOLVE.format(115), headers=agent_session, json={"order_id": "1015"}))
    out = runner.invoke(args=["audit", "reconcile"])
    assert "1 ticket resolves found applied" in out.output, out.output
    [entry] = entries(app)
    assert entry.status == "done" and len(notes(ticket(zd, 1015))) == 1


def test_a_crash_before_the_update_is_reconciled_as_never_applied(app, client, agent_session,
                                                                  zd, runner, monkeypatch):
    allow(app)

    crash_in(monkeypatch, app, ZendeskClient, "update_ticket", lambda: client.post(
        RESOLVE.format(115), headers=agent_session, json={"order_id": "1015"}))
    out = runner.invoke(args=["audit", "reconcile"])
    assert "1 never applied" in out.output, out.output
    [entry] = entries(app)
    assert entry.status == "failed"
    assert client.post(RESOLVE.format(115), headers=agent_session,
                       json={"order_id": "1015"}).status_code == 200
    assert len(notes(ticket(zd, 1015))) == 1 and ticket(zd, 1015)["status"] == "solved"


def test_asking_again_after_a_crash_finds_the_changes_made(app, client, agent_session, zd,
                                                           monkeypatch):
    allow(app)

    crash_in(monkeypatch, app, AuditLog, "complete", lambda: client.post(
        RESOLVE.format(115), headers=agent_session, json={"order_id": "1015"}))
    again = client.post(RESOLVE.format(115), headers=agent_session, json={"order_id": "1015"})
    assert again.status_code == 200 and again.get_json()["status"] == "done"
    assert len(notes(ticket(zd, 1015))) == 1  # one note: the take-over asked first


def test_a_reopened_ticket_can_be_resolved_again_but_a_double_click_still_cannot(
        app, client, agent_session, zd):
    allow(app)
    assert client.post(RESOLVE.format(115), headers=agent_session,
                       json={"order_id": "1015"}).status_code == 200
    # The customer writes back: Zendesk reopens the ticket.
    with zd._lock:
        zd._tickets[115].status = "open"
    again = client.post(RESOLVE.format(115), headers=agent_session, json={"order_id": "1015"})
    assert again.status_code == 200 and not again.get_json()["message"].startswith("Already")
    assert ticket(zd, 1015)["status"] == "solved" and len(notes(ticket(zd, 1015))) == 2
    # Clicked once more while it still shows the changes: nothing changes twice.
    third = client.post(RESOLVE.format(115), headers=agent_session, json={"order_id": "1015"})
    assert third.get_json()["message"].startswith("Already resolved")
    assert len(notes(ticket(zd, 1015))) == 2
    assert [e.status for e in entries(app)] == ["done", "done"]
