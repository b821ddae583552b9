"""Refunds from the sidebar when the installation's processor is Shopify Payments.

The sandbox Zendesk installation is pointed at the sandbox's Shopify Payments (the same
shop, its card money on the `shopify_payments` gateway). Order 1005 (ticket 105) has $65.00
left on its card; 1007 (ticket 107) has a $30.00 refund still pending on an order flagged
as refunded too much.
"""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from plugin.actions.audit import AuditLog
from plugin.connectors.base import UpstreamTimeout
from plugin.connectors.shopify_payments import ShopifyPaymentsClient
from plugin.core.model import SourceName
from plugin.store.models import AuditEntry
from plugin.tenant_settings import as_changes, validate_changes
from tests.conftest import repo_of, use_shopify_payments

from .conftest import age_audit, crash_in, fresh_record

KEY = "zendesk:order-truth-sandbox:1"
PREVIEW = "/zendesk/api/tickets/{}/refund/preview"
REFUND = "/zendesk/api/tickets/{}/refund"


@pytest.fixture
def shop(app, sandbox):
    """The sandbox Zendesk installation, its processor switched to Shopify Payments."""
    with repo_of(app) as repo:
        tenant = repo.find(KEY)
        use_shopify_payments(repo, tenant.id, sandbox.url)
        repo.update_settings(tenant.id, {"features": {"refunds": True}, **as_changes(
            validate_changes({"refund_roles": "admin,agent", "refund_cap_agent_minor": "5000",
                              "refund_daily_cap_agent_minor": "6000"}))})
    return sandbox


def sale_of(app, number):
    """The card sale's id as the record lists it (a Shopify transaction gid)."""
    truth = fresh_record(app, number)
    [sale] = [p for p in truth.payments if p.source is SourceName.PROCESSOR]
    return sale.payment_id


def body(payment_id, amount=2000, order_id="1005"):
    return {"order_id": order_id, "payment_id": payment_id, "amount_minor": amount,
            "currency": "USD", "reason": "requested_by_customer"}


def ours(sandbox):
    """Refunds made through refundCreate (the simulated shop keeps them in its ledger)."""
    return [r for r in sandbox.state.ledger.refunds()
            if (r.get("metadata") or {}).get("shopify_refund")]


def audit_rows(app):
    with app.extensions["store"].session() as s:
        return list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def test_the_sidebar_offers_the_card_sale_and_refunds_it_once(app, client, agent_session, shop,
                                                              zd):
    sale = sale_of(app, "1005")
    assert sale.startswith("gid://shopify/OrderTransaction/")
    preview = client.post(PREVIEW.format(105), headers=agent_session, json=body(sale))
    assert preview.status_code == 200, preview.get_json()
    assert preview.get_json()["refundable"] == "$65.00"
    assert preview.get_json()["summary"].startswith("Refund $20.00 to Visa")
    first = client.post(REFUND.format(105), headers=agent_session, json=body(sale))
    assert first.status_code == 200, first.get_json()
    again = client.post(REFUND.format(105), headers=agent_session, json=body(sale))  # double click
    assert again.status_code == 200 and again.get_json()["message"].startswith(
        "Already refunded $20.00")
    [made] = ours(shop)
    assert made["amount"] == 2000
    note = made["metadata"]["shopify_note"]
    assert "ticket id 105" in note and "order id 1005" in note
    [entry] = audit_rows(app)
    assert entry.status == "done" and entry.idempotency_key in note
    # The audit names the refund as the record lists it, so the record counts it.
    truth = fresh_record(app, "1005")
    [listed] = [r for r in truth.refunds if r.processor
                and r.processor.refund_id == entry.upstream_ids[0]]
    assert listed.amount.amount_minor == 2000
    after = client.post(PREVIEW.format(105), headers=agent_session, json=body(sale, 1000))
    assert after.get_json()["refundable"] == "$45.00"
    notes = [c for c in zd.ticket(105)["comments"] if not c["public"]]
    assert len(notes) == 1 and "Sam Agent refunded $20.00" in notes[0]["body"]


def test_another_order_s_sale_is_refused_before_any_write(app, client, agent_session, shop):
    # (Cash, gift card and store payments on the same order: tests/actions/test_refund_rules.)
    resp = client.post(REFUND.format(105), headers=agent_session,
                       json=body("gid://shopify/OrderTransaction/100301"))
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "not_refundable"
    assert "isn't one of this order's payments" in resp.get_json()["error"]["message"]
    assert ours(shop) == [] and audit_rows(app) == []


def test_a_lost_answer_is_found_by_its_note_and_never_made_twice(app, client, agent_session,
                                                                 shop, monkeypatch):
    sale = sale_of(app, "1005")
    real_create, real_find = ShopifyPaymentsClient.create_refund, \
        ShopifyPaymentsClient.find_refund
    looks = []

    def made_then_lost(self, **kwargs):
        real_create(self, **kwargs)
        raise UpstreamTimeout("no answer within 5 s", system="shopify_payments")

    def unreachable_once(self, payment_id, key):
        looks.append(key)
        if len(looks) == 1:
            raise UpstreamTimeout("no answer", system="shopify_payments")
        return real_find(self, payment_id, key)

    monkeypatch.setattr(ShopifyPaymentsClient, "create_refund", made_then_lost)
    monkeypatch.setattr(ShopifyPaymentsClient, "find_refund", unreachable_once)
    first = client.post(REFUND.format(105), headers=agent_session, json=body(sale))
    assert first.status_code == 502 and first.get_json()["status"] == "unknown"
    age_audit(app)
    again = client.post(REFUND.format(105), headers=agent_session, json=body(sale))
    assert again.status_code == 200, again.get_json()
    assert len(ours(shop)) == 1
    [entry] = audit_rows(app)
    assert entry.status == "done"


def test_shopify_s_refusal_is_failed_and_nothing_is_made(app, client, agent_session, shop,
                                                         monkeypatch):
    """Someone refunds the rest in Shopify's admin after the record was read: Shopify refuses
    ours with a userError; the audit says failed, and asking again is refused up front."""
    sale = sale_of(app, "1005")
    real_create = ShopifyPaymentsClient.create_refund

    def admin_refunds_first(self, **kwargs):
        real_create(self, **{**kwargs, "amount": 6500, "idempotency_key": "admin-in-shopify"})
        return real_create(self, **kwargs)

    monkeypatch.setattr(ShopifyPaymentsClient, "create_refund", admin_refunds_first)
    resp = client.post(REFUND.format(105), headers=agent_session, json=body(sale))
    assert resp.status_code == 422 and resp.get_json()["status"] == "failed"
    assert "refundable amount" in resp.get_json()["message"]
    assert [r["amount"] for r in ours(shop)] == [6500]
    [entry] = audit_rows(app)
    assert entry.status == "failed"
    monkeypatch.undo()
    later = client.post(REFUND.format(105), headers=agent_session, json=body(sale, 1000))
    assert later.status_code == 409 and [r["amount"] for r in ours(shop)] == [6500]


def test_a_crash_is_reconciled_from_the_order_s_refunds(app, client, agent_session, shop,
                                                        runner, monkeypatch):
    sale = sale_of(app, "1005")

    crash_in(monkeypatch, app, AuditLog, "complete", lambda: client.post(
        REFUND.format(105), headers=agent_session, json=body(sale)))
    out = runner.invoke(args=["audit", "reconcile"])
    assert out.exit_code == 0 and "1 found done at the processor" in out.output, out.output
    [entry] = audit_rows(app)
    assert entry.status == "done" and entry.upstream_ids[0].startswith(
        "gid://shopify/OrderTransaction/")
    assert len(ours(shop)) == 1


def test_cancelling_says_shopify_payments_cannot_and_calls_nothing(app, client, agent_session,
                                                                   shop):
    with repo_of(app) as repo:
        tenant = repo.find(KEY)
        repo.update_settings(tenant.id, {"features": {"cancel_refunds": True},
                                         "actions": {"cancel_refund": {"roles": "admin,agent"}}})
    truth = fresh_record(app, "1007")
    pending = [r for r in truth.refunds if r.processor and r.state.value == "PENDING"]
    assert pending, "1007 has a refund still pending"
    before = shop.state.request_counts().get("processor", 0)
    resp = client.post("/zendesk/api/tickets/107/refund/cancel", headers=agent_session,
                       json={"order_id": "1007", "refund_id": pending[0].processor.refund_id})
    assert resp.status_code == 409
    assert resp.get_json()["error"]["message"].startswith("Shopify Payments can't cancel")
    assert shop.state.request_counts().get("processor", 0) == before
    # The widget shows the same reason beside the flagged refund.
    html = client.get("/zendesk/api/record", headers=agent_session,
                      query_string={"ticket_id": "107", "order_id": "1007"})
    assert html.status_code == 200
    assert "Shopify Payments can&#39;t cancel a refund once it&#39;s made" in \
        html.get_data(as_text=True)


def test_the_simulated_shop_replays_a_key_and_refuses_it_with_other_input(shop, app):
    sale = sale_of(app, "1005")
    url = f"{shop.url}/shopify-payments/admin/api/2026-10/graphql.json"
    order = fresh_record(app, "1005")
    assert order.found
    mutation = ("mutation($input: RefundInput!) { refundCreate(input: $input) "
                "@idempotent(key: \"k-1\") { refund { id } userErrors { message } } }")
    node = requests.post(url, headers={"X-Shopify-Access-Token": "shpat_sandbox"}, timeout=5,
                         json={"query": "query($id: ID!) { node(id: $id) { ... on "
                                        "OrderTransaction { order { id } } } }",
                               "variables": {"id": sale}}).json()
    order_gid = node["data"]["node"]["order"]["id"]

    def send(amount):
        txn = {"orderId": order_gid, "parentId": sale, "amount": amount,
               "gateway": "shopify_payments", "kind": "REFUND"}
        return requests.post(url, headers={"X-Shopify-Access-Token": "shpat_sandbox"},
                             timeout=5, json={"query": mutation, "variables": {"input": {
                                 "orderId": order_gid, "transactions": [txn]}}}).json()

    first, replay = send("5.00"), send("5.00")
    assert first == replay and first["data"]["refundCreate"]["userErrors"] == []
    assert "errors" in send("6.00")
    assert len(ours(shop)) == 1


def test_a_refund_shopify_made_but_that_failed_is_not_called_refunded(app, client, agent_session,
                                                                      shop, zd, monkeypatch):
    """The card network declined the refund: Shopify lists it with status FAILURE."""
    sale = sale_of(app, "1005")
    real_create = ShopifyPaymentsClient.create_refund

    def declined(self, **kwargs):
        real_create(self, **kwargs)
        ours(shop)[-1]["status"] = "failed"  # as the simulated shop will list it from now on
        return self.find_refund(kwargs["payment_id"], kwargs["idempotency_key"])

    monkeypatch.setattr(ShopifyPaymentsClient, "create_refund", declined)
    resp = client.post(REFUND.format(105), headers=agent_session, json=body(sale))
    assert resp.status_code == 422 and resp.get_json()["status"] == "failed"
    assert "failed: no money went back" in resp.get_json()["message"]
    [entry] = audit_rows(app)
    assert entry.status == "failed" and entry.upstream_ids and "status failure" in entry.error
    assert not [c for c in zd.ticket(105)["comments"] if not c["public"]]  # no "refunded" note


def test_a_failed_look_before_sending_is_failed_not_unknown_and_can_be_asked_again(
        app, client, agent_session, shop, monkeypatch):
    sale = sale_of(app, "1005")
    real_look = ShopifyPaymentsClient._order_and_refund
    calls = []

    def unreachable_once(self, payment_id, key):
        calls.append(key)
        if len(calls) == 1:
            raise UpstreamTimeout("no answer", system="shopify_payments")
        return real_look(self, payment_id, key)

    monkeypatch.setattr(ShopifyPaymentsClient, "_order_and_refund", unreachable_once)
    first = client.post(REFUND.format(105), headers=agent_session, json=body(sale))
    assert first.status_code == 422 and first.get_json()["message"].startswith(
        "Nothing was refunded")
    [entry] = audit_rows(app)
    assert entry.status == "failed" and ours(shop) == []
    again = client.post(REFUND.format(105), headers=agent_session, json=body(sale))
    assert again.status_code == 200, again.get_json()
    assert len(ours(shop)) == 1
