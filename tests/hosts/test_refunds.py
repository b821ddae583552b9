"""Refund at the processor from the sidebar: allowed, capped, audited, and made once.

Against the sandbox's Stripe (which keeps Idempotency-Keys as Stripe does) and its Zendesk;
order 1005 (ticket 105) has $65.00 left to refund on its card, order 1009 (ticket 109) has
an open dispute.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from plugin.actions.audit import AuditLog
from plugin.connectors.base import UpstreamTimeout
from plugin.connectors.stripe import StripeClient
from plugin.store.models import AuditEntry
from plugin.tenant_settings import as_changes, validate_changes
from tests.conftest import repo_of

from .conftest import age_audit, crash_in, headers_for, sandbox_zendesk_id, sign_in_agent

KEY = "zendesk:order-truth-sandbox:1"
PREVIEW = "/zendesk/api/tickets/{}/refund/preview"
REFUND = "/zendesk/api/tickets/{}/refund"


def allow(app, *, enabled=True, **settings):
    values = {"refund_roles": "admin,agent", "refund_cap_agent_minor": "5000",
              "refund_daily_cap_agent_minor": "6000", **settings}
    with repo_of(app) as repo:
        tenant = repo.find(KEY)
        repo.update_settings(tenant.id, {"features": {"refunds": enabled},
                                         **as_changes(validate_changes(values))})


def body(amount=2000, order_id="1005", payment_id="pi_Sbx1005", **extra):
    return {"order_id": order_id, "payment_id": payment_id, "amount_minor": amount,
            "currency": "USD", "reason": "requested_by_customer", **extra}


def refunds_made(sandbox):
    return sandbox.state.ledger.refunds()


def audit_rows(app):
    with app.extensions["store"].session() as s:
        return list(s.scalars(select(AuditEntry)))


@pytest.fixture
def sam(agent_session):
    """Sam Agent, signed in (an agent: refunds need admins to allow the role)."""
    return agent_session


def processor_calls(sandbox):
    return sandbox.state.request_counts().get("processor", 0)


@pytest.mark.parametrize(("setup", "amount", "code"), [
    ({"enabled": False}, 2000, "disabled"),
    ({"refund_roles": "admin"}, 2000, "forbidden_role"),
    ({}, 5001, "over_limit"),  # over the agent's 50.00 per refund
])
def test_refused_before_any_upstream_call(app, client, sam, sandbox, setup, amount, code):
    allow(app, **setup)
    before = processor_calls(sandbox)
    resp = client.post(REFUND.format(105), headers=sam, json=body(amount))
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == code
    assert processor_calls(sandbox) == before
    assert refunds_made(sandbox) == [] and audit_rows(app) == []


def test_the_daily_cap_counts_what_the_agent_already_refunded(app, client, sam, sandbox):
    allow(app)
    assert client.post(REFUND.format(105), headers=sam, json=body(4000)).status_code == 200
    again = client.post(REFUND.format(105), headers=sam, json=body(2500))
    assert again.status_code == 403
    assert again.get_json()["error"]["message"] == ("That would take you over your daily limit "
                                                    "of $60.00; $20.00 is left today.")
    assert len(refunds_made(sandbox)) == 1


def test_preview_says_exactly_what_will_happen_and_does_nothing(app, client, sam, sandbox):
    allow(app)
    resp = client.post(PREVIEW.format(105), headers=sam, json=body(2000))
    assert resp.status_code == 200, resp.get_json()
    preview = resp.get_json()
    assert preview["summary"].startswith("Refund $20.00 to ")
    assert "pi_Sbx1005" in preview["destination"] and preview["refundable"] == "$65.00"
    assert refunds_made(sandbox) == [] and audit_rows(app) == []


def test_a_refund_is_made_once_audited_and_noted(app, client, sam, sandbox, zd):
    allow(app)
    first = client.post(REFUND.format(105), headers=sam, json=body(2000))
    assert first.status_code == 200, first.get_json()
    second = client.post(REFUND.format(105), headers=sam, json=body(2000))  # a double click
    assert second.status_code == 200 and second.get_json()["message"].startswith(
        "Already refunded $20.00")
    [made] = refunds_made(sandbox)
    assert made["amount"] == 2000 and made["metadata"]["order_id"] == "1005"
    assert made["metadata"]["ticket_id"] == "105"
    assert made["metadata"]["order_truth_key"].startswith("ot-refund-")
    [entry] = audit_rows(app)
    assert (entry.status, entry.actor_id, entry.actor_role, entry.upstream_ids) == (
        "done", "9002", "agent", [made["id"]])
    assert entry.parameters == {"payment_id": "pi_Sbx1005", "amount_minor": 2000,
                                "currency": "USD", "reason": "requested_by_customer",
                                "processor": "stripe"}
    notes = [c for c in zd.ticket(105)["comments"] if not c["public"]]
    assert len(notes) == 1 and notes[0]["author_id"] == 9002
    assert "Sam Agent refunded $20.00" in notes[0]["body"] and made["id"] in notes[0]["body"]
    # The record is fetched afresh: the new refund counts against what's left.
    preview = client.post(PREVIEW.format(105), headers=sam, json=body(1000)).get_json()
    assert preview["refundable"] == "$45.00"


def test_more_than_is_refundable_or_a_disputed_order_is_refused(app, client, sam, sandbox):
    allow(app, refund_cap_agent_minor="50000", refund_daily_cap_agent_minor="50000")
    over = client.post(REFUND.format(105), headers=sam, json=body(6600))
    assert over.status_code == 409 and over.get_json()["error"]["code"] == "over_refundable"
    disputed = client.post(REFUND.format(109), headers=sam,
                           json=body(1000, order_id="1009", payment_id="pi_Sbx1009"))
    assert disputed.status_code == 409 and "dispute" in disputed.get_json()["error"]["message"]
    other = client.post(REFUND.format(105), headers=sam, json=body(1000, payment_id="pi_Sbx1003"))
    assert other.status_code == 409
    assert refunds_made(sandbox) == []


def test_an_agent_zendesk_keeps_off_the_ticket_cannot_refund_on_it(app, client, session, sandbox):
    allow(app)
    _page, claimed = sign_in_agent(client, session, user_id=9003)
    resp = client.post(REFUND.format(105), headers=headers_for(claimed.get_json()),
                       json=body(1000))
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "forbidden_by_host"
    assert refunds_made(sandbox) == []


def test_no_refund_before_signing_in(app, client, session, sandbox):
    allow(app)
    resp = client.post(REFUND.format(105), headers=session, json=body(1000))
    assert resp.status_code == 401 and refunds_made(sandbox) == []


@pytest.mark.parametrize("bad", [
    {"amount_minor": 0}, {"amount_minor": -5}, {"amount_minor": "20"}, {"amount_minor": True},
    {"payment_id": ""}, {"currency": "dollars"}, {"reason": "because"}, {"order_id": "x" * 80},
])
def test_bad_requests_are_400s(app, client, sam, bad):
    allow(app)
    resp = client.post(REFUND.format(105), headers=sam, json=body(**bad))
    assert resp.status_code == 400, resp.get_json()


def test_a_timeout_after_the_refund_happened_gives_no_second_refund(app, client, sam, sandbox,
                                                                     monkeypatch):
    """The processor made it but the answer was lost, and it couldn't be checked at once:
    the next click asks the processor by key and finds it."""
    allow(app)
    real_create, real_find = StripeClient.create_refund, StripeClient.find_refund
    looks = []

    def made_then_lost(self, **kwargs):
        real_create(self, **kwargs)
        raise UpstreamTimeout("no answer within 5 s", system="stripe")

    def unreachable_once(self, payment_intent, key):
        looks.append(key)
        if len(looks) == 1:
            raise UpstreamTimeout("no answer", system="stripe")
        return real_find(self, payment_intent, key)

    monkeypatch.setattr(StripeClient, "create_refund", made_then_lost)
    monkeypatch.setattr(StripeClient, "find_refund", unreachable_once)
    first = client.post(REFUND.format(105), headers=sam, json=body(2000))
    assert first.status_code == 502 and first.get_json()["status"] == "unknown"
    assert "won't be made twice" in first.get_json()["message"]
    [entry] = audit_rows(app)
    assert entry.status == "unknown"
    # At once, the same click waits: the processor may still be making it.
    assert client.post(REFUND.format(105), headers=sam, json=body(2000)).status_code == 202
    age_audit(app)
    again = client.post(REFUND.format(105), headers=sam, json=body(2000))
    assert again.status_code == 200, again.get_json()
    assert len(refunds_made(sandbox)) == 1
    [entry] = audit_rows(app)
    assert entry.status == "done" and entry.upstream_ids == [refunds_made(sandbox)[0]["id"]]


def test_a_crash_before_the_audit_is_completed_is_reconciled_not_redone(app, client, sam, sandbox,
                                                                        runner, monkeypatch):
    allow(app)

    crash_in(monkeypatch, app, AuditLog, "complete", lambda: client.post(
        REFUND.format(105), headers=sam, json=body(2000)))
    [entry] = audit_rows(app)
    assert entry.status == "pending" and len(refunds_made(sandbox)) == 1
    out = runner.invoke(args=["audit", "reconcile"])
    assert out.exit_code == 0 and "1 found done at the processor" in out.output, out.output
    [entry] = audit_rows(app)
    assert entry.status == "done" and entry.upstream_ids == [refunds_made(sandbox)[0]["id"]]
    assert len(refunds_made(sandbox)) == 1


def test_reconcile_says_when_a_refund_never_reached_the_processor(app, client, sam, sandbox,
                                                                  runner, monkeypatch):
    allow(app)

    crash_in(monkeypatch, app, StripeClient, "create_refund", lambda: client.post(
        REFUND.format(105), headers=sam, json=body(2000)))  # before sending
    out = runner.invoke(args=["audit", "reconcile"])
    assert "1 never reached it" in out.output, out.output
    [entry] = audit_rows(app)
    assert entry.status == "failed" and "never reached" in entry.error
    # Asking again now makes it (once).
    assert client.post(REFUND.format(105), headers=sam, json=body(2000)).status_code == 200
    assert len(refunds_made(sandbox)) == 1


def test_the_audit_exports_as_csv_without_customer_details(app, client, sam, runner):
    allow(app)
    client.post(REFUND.format(105), headers=sam, json=body(2000))
    today = datetime.now(UTC).date()
    out = runner.invoke(args=["audit", "export", "--since", today.isoformat(),
                              "--until", (today + timedelta(days=1)).isoformat()])
    assert out.exit_code == 0, out.output
    header, row = out.output.strip().splitlines()
    assert header.startswith("created_at,completed_at,installation_id,actor_id,actor_name")
    assert ",9002,Sam Agent,agent,105,1005,refund,2000,USD,done,re_" in row
    assert "@" not in row  # no emails; no customer names either
    assert "Priya" not in out.output and "Marcus" not in out.output
    bad = runner.invoke(args=["audit", "export", "--since", "yesterday"])
    assert bad.exit_code == 2


def test_refund_settings_are_validated_and_keep_their_siblings(app, runner):
    assert runner.invoke(args=["settings", "set", "refund_roles", "root", "--installation",
                               KEY]).exit_code == 2
    assert runner.invoke(args=["settings", "set", "refund_cap_agent_minor", "-1",
                               "--installation", KEY]).exit_code == 2
    for name, value in (("refund_roles", "admin,agent"), ("refund_cap_agent_minor", "1234"),
                        ("refund_daily_cap_admin_minor", "99999")):
        out = runner.invoke(args=["settings", "set", name, value, "--installation", KEY])
        assert out.exit_code == 0, out.output
    import json

    shown = json.loads(runner.invoke(args=["settings", "show", "--json", "--installation",
                                           KEY]).output)
    assert (shown["refund_roles"], shown["refund_cap_agent_minor"],
            shown["refund_daily_cap_admin_minor"]) == ("admin,agent", 1234, 99999)




def test_two_different_refunds_racing_cannot_beat_the_daily_cap(app, client, sam, sandbox,
                                                                monkeypatch):
    """Both pass the first cap check before either is written; the check repeated after
    writing stops one of them, so the cap is never exceeded."""
    from plugin.actions import refunds

    allow(app)  # 50.00 per refund, 60.00 a day
    real_spent, real_raced = AuditLog.spent_today, refunds._raced
    before_writing = {"yes": True}  # the first checks see nothing spent yet: both pass
    monkeypatch.setattr(AuditLog, "spent_today", lambda self, *a, **k: 0 if before_writing[
        "yes"] else real_spent(self, *a, **k))
    second: list = []

    def racing(audit, entry, *args):
        if not second:  # the first request's entry is written; now the second arrives
            second.append(None)
            second[0] = client.post(REFUND.format(105), headers=sam, json=body(3000))
        before_writing["yes"] = False
        return real_raced(audit, entry, *args)

    monkeypatch.setattr(refunds, "_raced", racing)
    first = client.post(REFUND.format(105), headers=sam, json=body(3500))
    made = refunds_made(sandbox)
    assert len(made) == 1 and sum(r["amount"] for r in made) <= 6000
    assert sorted((first.status_code, second[0].status_code)) == [200, 409], \
        (first.get_json(), second[0].get_json())
    assert sorted(e.status for e in audit_rows(app)) == ["done", "refused"]


def test_a_leading_zero_is_the_same_ticket_and_the_same_refund(app, client, sam, sandbox):
    allow(app)
    assert client.post(REFUND.format(105), headers=sam, json=body(700)).status_code == 200
    again = client.post(REFUND.format("0105"), headers=sam, json=body(700))
    assert again.status_code == 200 and again.get_json()["message"].startswith("Already")
    assert len(refunds_made(sandbox)) == 1


def test_a_stripe_conflict_on_the_key_is_never_recorded_as_refused(app, client, sam, sandbox,
                                                                   monkeypatch):
    """Stripe's 409 (another request with this key still running) says nothing about the
    refund: the entry stays undecided and is settled by asking Stripe."""
    from plugin.connectors.base import UpstreamError

    allow(app)

    def busy(self, **kwargs):
        raise UpstreamError("HTTP 409: There is currently another in-progress request using "
                            "this Stripe-Idempotency-Key", system="stripe", http_status=409)

    monkeypatch.setattr(StripeClient, "create_refund", busy)
    resp = client.post(REFUND.format(105), headers=sam, json=body(2000))
    assert resp.status_code == 502 and resp.get_json()["status"] == "unknown"
    [entry] = audit_rows(app)
    assert entry.status == "unknown"


def test_a_holder_that_lost_its_lease_overwrites_nothing(app):
    from plugin.actions.audit import Actor

    with app.extensions["store"].session() as s:
        audit = AuditLog(s)
        tenant_id = sandbox_zendesk_id(app)
        args = dict(installation_id=tenant_id, actor=Actor("9002", "Sam Agent", "agent"),
                    ticket_id="105", order_number="1005", action="refund", key="ot-refund-x",
                    parameters={"payment_id": "pi_Sbx1005"}, amount_minor=100, currency="USD")
        stale, held = audit.begin(**args)
        assert held == "created"
        s.execute(update(AuditEntry).values(lease_until=datetime.now(UTC) - timedelta(seconds=1)))
        s.commit()
        with app.extensions["store"].session() as other:
            taker = AuditLog(other)
            taken, held2 = taker.begin(**args)
            assert held2 == "taken"
            assert taker.complete(taken, ["re_1"])
        s.expire_all()
        # The first holder comes back late with its own verdict: it changes nothing.
        assert not audit.fail(stale, "late refusal")
        assert s.scalar(select(AuditEntry)).status == "done"


