"""Cancel a refund the record flags as one too many, while Stripe still allows it.

Sandbox orders: 1007 (ticket 107) was refunded $60.00 for its return plus a $30.00 goodwill
refund that still waits on the customer (requires_action) and takes refunds past the $80.00
paid; 1006 (ticket 106) was refunded twice, both finished.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from plugin.actions import Refused
from plugin.actions.audit import AuditLog
from plugin.actions.cancel import candidates, plan
from plugin.connectors.base import UpstreamTimeout
from plugin.connectors.stripe import StripeClient
from plugin.core.model import RefundState
from tests.conftest import repo_of

from .conftest import audit_entries as entries
from .conftest import crash_in as crash
from .conftest import fresh_record as record

KEY = "zendesk:order-truth-sandbox:1"
PREVIEW = "/zendesk/api/tickets/{}/refund/cancel/preview"
CANCEL = "/zendesk/api/tickets/{}/refund/cancel"
RECORD = "/zendesk/api/record"


def allow(app, *, enabled=True, roles="admin,agent"):
    with repo_of(app) as repo:
        tenant = repo.find(KEY)
        repo.update_settings(tenant.id, {"features": {"cancel_refunds": enabled},
                                         "actions": {"cancel_refund": {"roles": roles}}})


def status_at_stripe(app, refund_id):
    with repo_of(app) as repo:
        tenant = repo.find(KEY)
    from plugin.connectors.registry import build_client
    from plugin.core.model import SourceName
    from plugin.installations import connector_configs

    service = app.extensions["order_truth"]
    system, cfg = connector_configs(tenant, service.config)[SourceName.PROCESSOR]
    return build_client(system, cfg, service.session).get_refund(refund_id)["status"]


def cancel_calls(sandbox):
    return sandbox.state.request_counts().get("processor", 0)




# The counter-cases, as rows on the record's own refunds: which refunds are offered, and
# whether each can be cancelled.
def test_what_is_offered_depends_on_the_flag_and_the_refund_state(app):
    over = record(app, "1007")
    [offered] = candidates(over)
    assert (offered.refund_id, offered.amount.format(), offered.why_not) == (
        "re_Sbx1007b", "$30.00", None)
    # Both refunds of the duplicate already finished: nothing left to cancel.
    assert candidates(record(app, "1006")) == []
    # The same refund already on its way to the bank (pending): shown, with why not.
    pending = replace(over, refunds=tuple(
        replace(r, state=RefundState.PENDING) if r.processor
        and r.processor.refund_id == "re_Sbx1007b" else r for r in over.refunds))
    [shown] = candidates(pending)
    assert shown.why_not and "waiting on the customer" in shown.why_not
    with pytest.raises(Refused) as refused:
        plan(pending, installation_id=1, ticket_id="107", refund_id="re_Sbx1007b")
    assert refused.value.code == "processor_cannot_cancel"
    # A refund waiting on the customer on an order nobody flagged: not ours to cancel.
    unflagged = replace(over, flags=())
    assert candidates(unflagged) == []
    with pytest.raises(Refused) as refused:
        plan(unflagged, installation_id=1, ticket_id="107", refund_id="re_Sbx1007b")
    assert refused.value.code == "not_cancellable"
    # The listing order of the processor's refunds changes nothing.
    shuffled = replace(over, refunds=tuple(reversed(over.refunds)))
    assert candidates(shuffled) == candidates(over)


def test_cancel_confirm_cancel_record_and_note(app, client, agent_session, sandbox, zd):
    allow(app)
    page = client.get(RECORD, query_string={"ticket_id": "107", "order_id": "1007"},
                      headers=agent_session).get_data(as_text=True)
    assert 'data-ot-cancel="re_Sbx1007b"' in page
    preview = client.post(PREVIEW.format(107), headers=agent_session,
                          json={"order_id": "1007", "refund_id": "re_Sbx1007b"})
    assert preview.status_code == 200 and "$30.00" in preview.get_json()["summary"]
    assert status_at_stripe(app, "re_Sbx1007b") == "requires_action"  # preview did nothing
    first = client.post(CANCEL.format(107), headers=agent_session,
                        json={"order_id": "1007", "refund_id": "re_Sbx1007b"})
    second = client.post(CANCEL.format(107), headers=agent_session,
                         json={"order_id": "1007", "refund_id": "re_Sbx1007b"})
    assert first.status_code == 200, first.get_data(as_text=True)
    assert status_at_stripe(app, "re_Sbx1007b") == "canceled"
    # The second click finds it cancelled, and cancels nothing.
    assert second.status_code == 409 and second.get_json()["error"]["code"] == "already_cancelled"
    [entry] = entries(app)
    assert (entry.action, entry.status, entry.upstream_ids) == (
        "cancel_refund", "done", ["re_Sbx1007b"])
    # The record afresh: the over-refund is gone.
    after = client.get(RECORD, query_string={"ticket_id": "107", "order_id": "1007"},
                       headers=agent_session).get_data(as_text=True)
    assert "Over-refund" not in after and 'data-ot-cancel="re_Sbx1007b"' not in after
    notes = [c for c in zd.ticket(107)["comments"] if not c["public"]]
    assert len(notes) == 1 and "cancelled refund re_Sbx1007b of $30.00" in notes[0]["body"]
    assert notes[0]["author_id"] == 9002


@pytest.mark.parametrize(("order", "ticket", "refund_id"), [
    ("1006", 106, "re_Sbx1006b"),  # finished: the money already went
    ("1007", 107, "re_Sbx1007"),  # the return's own refund, not the one too many
    ("1007", 107, "re_Sbx1006b"),  # another order's refund
])
def test_what_cannot_be_cancelled_is_refused_without_a_cancel_call(app, client, agent_session,
                                                                   order, ticket, refund_id,
                                                                   monkeypatch):
    allow(app)
    calls = []
    monkeypatch.setattr(StripeClient, "cancel_refund",
                        lambda self, *a: calls.append(a) or pytest.fail("cancel called"))
    resp = client.post(CANCEL.format(ticket), headers=agent_session,
                       json={"order_id": order, "refund_id": refund_id})
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "not_cancellable"
    assert calls == [] and entries(app) == []


@pytest.mark.parametrize(("setup", "code"), [
    ({"enabled": False}, "disabled"),
    ({"roles": "admin"}, "forbidden_role"),
])
def test_refused_before_any_upstream_call(app, client, agent_session, sandbox, setup, code):
    allow(app, **setup)
    before = cancel_calls(sandbox)
    resp = client.post(CANCEL.format(107), headers=agent_session,
                       json={"order_id": "1007", "refund_id": "re_Sbx1007b"})
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == code
    assert cancel_calls(sandbox) == before and entries(app) == []


def test_bad_input_is_400(app, client, agent_session):
    allow(app)
    for body in ({"order_id": "1007"}, {"order_id": "1007", "refund_id": "re 1; drop"},
                 {"order_id": "x" * 300, "refund_id": "re_Sbx1007b"}):
        assert client.post(CANCEL.format(107), headers=agent_session,
                           json=body).status_code == 400


def test_a_lost_answer_is_found_cancelled(app, client, agent_session, monkeypatch):
    allow(app)
    real = StripeClient.cancel_refund

    def lost(self, refund_id, key):
        real(self, refund_id, key)
        raise UpstreamTimeout("read timed out", system="stripe")

    monkeypatch.setattr(StripeClient, "cancel_refund", lost)
    resp = client.post(CANCEL.format(107), headers=agent_session,
                       json={"order_id": "1007", "refund_id": "re_Sbx1007b"})
    assert resp.status_code == 200 and resp.get_json()["status"] == "done"
    assert [e.status for e in entries(app)] == ["done"]




@pytest.mark.parametrize(("crash_in", "said", "status", "at_stripe"), [
    ("complete", "1 refund cancellations found done", "done", "canceled"),
    ("cancel_refund", "1 never reached the processor", "failed", "requires_action"),
])
def test_a_crash_is_reconciled_from_the_processor(app, client, agent_session, runner,
                                                  monkeypatch, crash_in, said, status,
                                                  at_stripe):
    allow(app)

    crash(monkeypatch, app, AuditLog if crash_in == "complete" else StripeClient, crash_in,
          lambda: client.post(CANCEL.format(107), headers=agent_session,
                              json={"order_id": "1007", "refund_id": "re_Sbx1007b"}))
    out = runner.invoke(args=["audit", "reconcile"])
    assert said in out.output, out.output
    assert [e.status for e in entries(app)] == [status]
    assert status_at_stripe(app, "re_Sbx1007b") == at_stripe
