"""ShopifyPaymentsClient on recorded Admin GraphQL payloads, and the sandbox through it."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest
import requests

from plugin.connectors.base import (
    AuthError,
    BadResponseError,
    ConfigError,
    ConnectorConfig,
    RateLimitedError,
)
from plugin.connectors.registry import CONNECTORS, build_client
from plugin.connectors.shopify_payments import DESCRIPTOR, ShopifyPaymentsClient
from plugin.connectors.shopify_pos import DEFAULT_API_VERSION
from plugin.core.model import DisputeState, OrderRef, RefundState, SourceName, Tender
from plugin.core.money import Money
from plugin.sandbox.scenarios import SCENARIOS

BASE = "https://order-truth-demo.myshopify.com"
URL = BASE + f"/admin/api/{DEFAULT_API_VERSION}/graphql.json"
TOKEN = "shpat_SECRETpaymentsTokenForTests"
ORDER = OrderRef(number="1001", name="#1001")
DISPUTE = "gid://shopify/ShopifyPaymentsDispute/22334455"
CAPTURE = "gid://shopify/OrderTransaction/7201859353895"


@pytest.fixture
def client(sleeps):
    return ShopifyPaymentsClient(ConnectorConfig(BASE, {"access_token": TOKEN}), sleep=sleeps)


def sent(call):
    return json.loads(call.request.body)


# ---------------------------------------------------------------- payments, refunds, disputes


def test_card_money_on_shopify_payments_is_the_processor_view(client, mocked, fixture_json):
    mocked.post(URL, json=fixture_json("shopify_payments", "order_payments"))
    mocked.post(URL, json=fixture_json("shopify_payments", "dispute_nodes"))
    facts = client.fetch(ORDER)

    # The capture is the payment; the authorization before it and the gift card are not.
    (payment,) = facts.payments
    assert (payment.payment_id, payment.amount) == (CAPTURE, Money(13000, "USD"))
    assert (payment.tender, payment.tender_label) == (Tender.CARD, "Visa ending 4242")
    assert payment.created_at == datetime(2026, 3, 1, 15, 40, 2, tzinfo=UTC)

    # Only card refunds: the gift-card refund is the shop's (the POS connector reads it).
    assert [(r.amount.amount_minor, r.state, r.status_raw) for r in facts.refunds] == [
        (4000, RefundState.SUCCEEDED, "SUCCESS"),
        (1250, RefundState.PENDING, "PENDING"),
        (1250, RefundState.FAILED, "FAILURE"),
    ]
    assert {r.payment_id for r in facts.refunds} == {CAPTURE}
    # A pending refund has no processedAt yet: its creation time stands in.
    assert facts.refunds[1].created_at == datetime(2026, 3, 10, 9, 1, 5, tzinfo=UTC)

    (dispute,) = facts.disputes
    assert dispute.dispute_id == DISPUTE and dispute.payment_id == CAPTURE
    assert dispute.amount == Money(7750, "USD")
    assert dispute.state is DisputeState.OPEN and dispute.reason == "PRODUCT_NOT_RECEIVED"
    assert dispute.due_by == datetime(2026, 4, 3, 23, 59, 59, tzinfo=UTC)
    assert dispute.created_at == datetime(2026, 3, 20, 18, 22, 3, tzinfo=UTC)


def test_queries_send_the_token_the_order_name_and_the_dispute_ids(client, mocked,
                                                                   fixture_json):
    mocked.post(URL, json=fixture_json("shopify_payments", "order_payments"))
    mocked.post(URL, json=fixture_json("shopify_payments", "dispute_nodes"))
    client.fetch(ORDER)
    first, second = mocked.calls
    assert first.request.headers["X-Shopify-Access-Token"] == TOKEN
    assert sent(first)["variables"] == {"query": "name:#1001"}
    assert "transactions(first: 50) { ...TransactionFields }" in sent(first)["query"]
    assert "fragment TransactionFields on OrderTransaction" in sent(first)["query"]
    assert sent(second)["variables"] == {"ids": [DISPUTE]}
    assert "... on ShopifyPaymentsDispute" in sent(second)["query"]


def test_search_hits_for_other_names_are_not_this_order(client, mocked, fixture_json):
    body = fixture_json("shopify_payments", "order_payments")
    body["data"]["orders"]["nodes"] = body["data"]["orders"]["nodes"][:1]  # only "#10010"
    mocked.post(URL, json=body)
    facts = client.fetch(ORDER)
    assert not facts.found and facts.order_name == "#1001"


def test_unknown_order_is_not_found(client, mocked, fixture_json):
    mocked.post(URL, json=fixture_json("shopify_payments", "orders_none"))
    assert not client.fetch(ORDER).found


def test_order_paid_through_another_gateway_has_nothing_here(client, mocked, fixture_json):
    # PayPal took the money: Shopify Payments has no payment, so no dispute lookup either.
    mocked.post(URL, json=fixture_json("shopify_payments", "order_paid_elsewhere"))
    facts = client.fetch(OrderRef(number="1002", name="#1002"))
    assert not facts.found and facts.refunds == () and facts.disputes == ()
    assert len(mocked.calls) == 1


def test_customer_currency_and_wallet(client, mocked, fixture_json):
    mocked.post(URL, json=fixture_json("shopify_payments", "order_presentment_currency"))
    (payment,) = client.fetch(OrderRef(number="1003", name="#1003")).payments
    # What the customer paid in, with the shop's settlement figure beside it.
    assert payment.amount == Money(10000, "CAD")
    assert payment.amount_shop == Money(7341, "USD")
    assert (payment.tender, payment.tender_label) == (Tender.WALLET,
                                                      "Apple Pay (Mastercard ending 5454)")


def test_without_the_disputes_scope_a_chargeback_still_shows_at_the_cautious_amount(
        client, mocked, fixture_json):
    mocked.post(URL, json=fixture_json("shopify_payments", "order_payments"))
    mocked.post(URL, json=fixture_json("shopify_payments", "dispute_nodes_access_denied"))
    (dispute,) = client.fetch(ORDER).disputes
    assert dispute.state is DisputeState.OPEN and dispute.status_raw == "NEEDS_RESPONSE"
    assert dispute.amount == Money(13000, "USD")  # the whole payment: amount unknown
    assert dispute.due_by is None


@pytest.mark.parametrize(("status", "state"), [
    ("UNDER_REVIEW", DisputeState.OPEN),
    ("WON", DisputeState.WON),
    ("LOST", DisputeState.LOST),
    ("ACCEPTED", DisputeState.LOST),       # conceded: the cardholder keeps the money
    ("PREVENTED", DisputeState.CLOSED),    # 2026-10: never became a chargeback
    ("CHARGE_REFUNDED", DisputeState.CLOSED),
    ("ESCALATED_TO_MARS", DisputeState.UNKNOWN),
])
def test_dispute_statuses(client, mocked, fixture_json, status, state):
    nodes = fixture_json("shopify_payments", "dispute_nodes")
    nodes["data"]["nodes"][0]["status"] = status
    mocked.post(URL, json=fixture_json("shopify_payments", "order_payments"))
    mocked.post(URL, json=nodes)
    (dispute,) = client.fetch(ORDER).disputes
    assert (dispute.state, dispute.status_raw) == (state, status)


@pytest.mark.parametrize(("status", "state"), [
    ("AWAITING_RESPONSE", RefundState.PENDING),
    ("ERROR", RefundState.FAILED),
    ("UNKNOWN", RefundState.UNKNOWN),
    (None, RefundState.UNKNOWN),
])
def test_refund_statuses(client, mocked, fixture_json, status, state):
    body = fixture_json("shopify_payments", "order_payments")
    order = body["data"]["orders"]["nodes"][1]
    order["disputes"] = []
    refund = next(t for t in order["transactions"] if t["kind"] == "REFUND")
    refund["status"] = status
    mocked.post(URL, json=body)
    assert client.fetch(ORDER).refunds[0].state is state


def test_order_of_transactions_does_not_change_the_facts(client, mocked, fixture_json):
    body = fixture_json("shopify_payments", "order_payments")
    shuffled = copy.deepcopy(body)
    shuffled["data"]["orders"]["nodes"][1]["transactions"].reverse()
    for payload in (body, shuffled):
        mocked.post(URL, json=payload)
        mocked.post(URL, json=fixture_json("shopify_payments", "dispute_nodes"))
    first, second = client.fetch(ORDER), client.fetch(ORDER)
    assert first.payments == second.payments
    assert sorted(first.refunds, key=lambda r: r.refund_id) == sorted(
        second.refunds, key=lambda r: r.refund_id)


# ---------------------------------------------------------------- failures


def test_throttled_query_is_rate_limited(client, mocked, fixture_json):
    mocked.post(URL, json=fixture_json("shopify", "throttled"))
    with pytest.raises(RateLimitedError) as info:
        client.fetch(ORDER)
    assert info.value.code == "THROTTLED"
    assert info.value.retry_after == pytest.approx(1.5)  # (152 asked - 2 left) / 100 per s


def test_access_denied_for_the_order_itself_is_not_swallowed(client, mocked, fixture_json):
    # Only the dispute details may be missing; without read_orders there is nothing to show.
    mocked.post(URL, json=fixture_json("shopify", "access_denied"))
    with pytest.raises(BadResponseError) as info:
        client.fetch(ORDER)
    assert info.value.code == "ACCESS_DENIED"


def test_bad_token_is_an_auth_error(client, mocked, fixture_json):
    mocked.post(URL, status=401, json=fixture_json("shopify", "invalid_token"))
    with pytest.raises(AuthError):
        client.fetch(ORDER)


@pytest.mark.parametrize("body", [
    {"data": {"orders": None}},
    {"data": {"orders": {"nodes": [{"name": "#1001"}]}}},
    ["not", "an", "object"],
])
def test_garbage_is_a_bad_response(client, mocked, body):
    mocked.post(URL, json=body)
    with pytest.raises(BadResponseError):
        client.fetch(ORDER)


def test_garbage_amount_is_a_bad_response(client, mocked, fixture_json):
    body = fixture_json("shopify_payments", "order_payments")
    body["data"]["orders"]["nodes"][1]["transactions"][1]["amountSet"]["presentmentMoney"][
        "amount"] = "lots"
    mocked.post(URL, json=body)
    with pytest.raises(BadResponseError):
        client.fetch(ORDER)


def test_shop_option_gives_the_base_url_and_a_bad_one_is_refused(mocked, fixture_json):
    configured = ShopifyPaymentsClient(ConnectorConfig(
        "", {"access_token": TOKEN}, options={"shop": "order-truth-demo.myshopify.com"}))
    mocked.post(URL, json=fixture_json("shopify_payments", "orders_none"))
    configured.fetch(ORDER)
    with pytest.raises(ConfigError):
        ShopifyPaymentsClient(ConnectorConfig("", {"access_token": TOKEN},
                                              options={"shop": "not a shop"})).fetch(ORDER)


# ---------------------------------------------------------------- registry and sandbox


def test_registered_as_a_processor_from_its_descriptor():
    assert CONNECTORS["shopify_payments"] is DESCRIPTOR
    assert DESCRIPTOR.source is SourceName.PROCESSOR
    client = build_client("shopify_payments", ConnectorConfig(BASE, {"access_token": TOKEN}))
    assert isinstance(client, ShopifyPaymentsClient)


# Where Shopify Payments honestly reads differently from Stripe on the same scenario.
DIFFERENT = {
    # Stripe refunds quote the ERP memo in their metadata: two refunds on one memo are a
    # duplicate and a memo short by half. Shopify Payments refunds quote nothing: one pairs
    # with the memo, the other is a refund the ERP never booked, and tied to the same return
    # only by amount and time it is a likely (high, not critical) duplicate.
    "duplicate_refund": {"DUPLICATE_REFUND", "PROCESSOR_REFUND_NOT_IN_ERP"},
}
# Stripe says the goodwill refund waits on the customer (requires_action); Shopify Payments
# has no such state and reports it PENDING, so the headline says "on its way" instead.
MEANINGS_DIFFER = {"over_refund": ("REFUND_NEEDS_ACTION", "REFUND_PENDING")}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_sandbox_scenarios_read_the_same_through_shopify_payments(runner, scenario):
    def record(installation):
        out = runner.invoke(args=["truth", scenario.order_number, "--json",
                                  "--installation", installation])
        assert out.exit_code == 0, out.output
        return json.loads(out.output)

    stripe, shopify = record("sandbox"), record("sandbox-shopify-payments")
    assert shopify["sources"]["processor"]["system"] == "shopify_payments"
    expected = DIFFERENT.get(scenario.name, {f["code"] for f in stripe["flags"]})
    assert {f["code"] for f in shopify["flags"]} == expected
    stripe_says, shopify_says = MEANINGS_DIFFER.get(scenario.name, (None, None))
    assert shopify["headline_meanings"] == [
        shopify_says if m == stripe_says else m for m in stripe["headline_meanings"]]
    assert shopify["sources"]["processor"]["status"] == stripe["sources"]["processor"]["status"]


# ---------------------------------------------------------------- refunds from the sidebar

KEY = "ot-refund-0123456789abcdef0123456789abcdef01234567"
ORDER_GID = "gid://shopify/Order/5512345678901"
META = {"order_id": "1001", "ticket_id": "104", "installation": "zendesk:acme:1"}


def refund(client, amount=2000, currency="USD"):
    return client.create_refund(payment_id=CAPTURE, amount=amount, currency=currency,
                                reason="requested_by_customer", metadata=META,
                                idempotency_key=KEY)


def test_a_refund_is_refund_create_on_the_sale_with_the_key_in_directive_and_note(
        client, mocked, fixture_json):
    mocked.post(URL, json=fixture_json("shopify_payments", "payment_refunds_none_ours"))
    mocked.post(URL, json=fixture_json("shopify_payments", "refund_create"))
    made = refund(client)
    # The refund as the record lists it: its REFUND transaction, with the Refund beside it.
    assert made["id"] == "gid://shopify/OrderTransaction/7301000000001"
    assert made["refund"] == "gid://shopify/Refund/998877001" and made["status"] == "success"
    look, create = (sent(c) for c in mocked.calls)
    assert look["variables"] == {"id": CAPTURE} and "refunds(first: 100)" in look["query"]
    assert f'@idempotent(key: "{KEY}")' in create["query"]
    assert create["query"].lstrip().startswith("mutation RefundCreate($input: RefundInput!)")
    given = create["variables"]["input"]
    assert given["orderId"] == ORDER_GID and given["notify"] is False
    assert given["currency"] == "USD" and given["note"].endswith(f"[{KEY}]")
    assert "ticket id 104" in given["note"] and "requested by customer" in given["note"]
    assert given["transactions"] == [{"orderId": ORDER_GID, "parentId": CAPTURE,
                                      "amount": "20.00", "gateway": "shopify_payments",
                                      "kind": "REFUND"}]
    # A mutation is never resent by the client on its own (a timeout is the caller's to check).
    assert len(mocked.calls) == 2


def test_amounts_are_sent_in_the_currency_s_own_decimals(client, mocked, fixture_json):
    mocked.post(URL, json=fixture_json("shopify_payments", "payment_refunds_none_ours"))
    mocked.post(URL, json=fixture_json("shopify_payments", "refund_create"))
    refund(client, amount=1500, currency="JPY")
    assert sent(mocked.calls[1])["variables"]["input"]["transactions"][0]["amount"] == "1500"


def test_the_refund_our_key_made_is_found_by_its_note_in_any_order(client, mocked, fixture_json):
    body = fixture_json("shopify_payments", "payment_refunds")
    mocked.post(URL, json=body)
    reordered = copy.deepcopy(body)
    reordered["data"]["node"]["order"]["refunds"].reverse()
    mocked.post(URL, json=reordered)
    first, second = client.find_refund(CAPTURE, KEY), client.find_refund(CAPTURE, KEY)
    assert first == second and first["id"] == "gid://shopify/OrderTransaction/7301000000001"
    mocked.post(URL, json=fixture_json("shopify_payments", "payment_refunds_none_ours"))
    assert client.find_refund(CAPTURE, KEY) is None


def test_creating_again_returns_the_refund_the_key_already_made(client, mocked, fixture_json):
    mocked.post(URL, json=fixture_json("shopify_payments", "payment_refunds"))
    assert refund(client)["id"] == "gid://shopify/OrderTransaction/7301000000001"
    assert len(mocked.calls) == 1  # no refundCreate sent


@pytest.mark.parametrize(("fixture", "refused", "words"), [
    ("refund_create_user_errors", True, "Amount cannot exceed the refundable amount of 15.00"),
    ("refund_create_access_denied", True, "write_orders"),
    ("refund_create_internal_error", False, "Internal error"),
])
def test_refusals_say_nothing_happened_and_other_errors_leave_it_unsure(
        client, mocked, fixture_json, fixture, refused, words):
    from plugin.actions import refused_upstream

    mocked.post(URL, json=fixture_json("shopify_payments", "payment_refunds_none_ours"))
    mocked.post(URL, json=fixture_json("shopify_payments", fixture))
    with pytest.raises(BadResponseError) as exc:
        refund(client)
    assert words in str(exc.value)
    assert refused_upstream(exc.value) is refused


def test_a_sale_shopify_does_not_know_is_not_found(client, mocked):
    from plugin.connectors.base import NotFoundError

    mocked.post(URL, json={"data": {"node": None}})
    with pytest.raises(NotFoundError):
        client.find_refund("gid://shopify/OrderTransaction/1", KEY)


def test_the_sandbox_makes_a_refund_once_per_key_and_refuses_more_than_is_left(sandbox):
    sandbox.state.reset()
    shop = CONNECTORS["shopify_payments"]
    client = build_client("shopify_payments", ConnectorConfig(
        f"{sandbox.url}/shopify-payments", {"access_token": "shpat_sandbox"}))
    facts = client.fetch(OrderRef("1005", "#1005"))
    sale = facts.payments[0].payment_id
    assert sale.startswith("gid://shopify/OrderTransaction/") and "refund" in shop.writes
    args = {"payment_id": sale, "amount": 2000, "currency": "USD", "reason": None,
            "metadata": {"order_id": "1005"}, "idempotency_key": KEY}
    made = client.create_refund(**args)
    assert client.create_refund(**args) == made  # found by its note, not made again
    assert client.find_refund(sale, KEY) == made
    after = client.fetch(OrderRef("1005", "#1005"))
    ours = [r for r in after.refunds if r.refund_id == made["id"]]
    assert len(ours) == 1 and ours[0].amount == Money(2000, "USD") and ours[0].payment_id == sale
    with pytest.raises(BadResponseError) as exc:
        client.create_refund(**{**args, "amount": 500_000, "idempotency_key": KEY + "x"})
    assert "refundable amount" in str(exc.value)
    # From API version 2026-04 Shopify refuses refundCreate without the directive.
    bare = requests.post(f"{sandbox.url}/shopify-payments/admin/api/2026-04/graphql.json",
                         headers={"X-Shopify-Access-Token": "shpat_sandbox"}, timeout=5,
                         json={"query": "mutation($input: RefundInput!) { refundCreate(input: "
                                        "$input) { refund { id } userErrors { message } } }",
                               "variables": {"input": {"orderId": "x"}}})
    assert "@idempotent" in bare.json()["errors"][0]["message"]
    assert len(client.fetch(OrderRef("1005", "#1005")).refunds) == len(after.refunds)
    sandbox.state.reset()


@pytest.mark.parametrize(("answer", "why"), [
    ({"data": {"refundCreate": {"refund": None, "userErrors": [
        {"field": None, "message": "A request with this idempotency key is currently in "
                                   "progress."}]}}}, "another request with the key running"),
    ({"errors": [{"message": "Idempotency key was used with different parameters",
                  "extensions": {"code": "BAD_REQUEST"}}], "data": {"refundCreate": None}},
     "the key used with other input"),
    ({"data": {"refundCreate": {"refund": {"id": "gid://shopify/Refund/1", "transactions": {
        "nodes": []}}, "userErrors": [{"field": ["note"], "message": "Note is too long"}]}}},
     "a refund came back beside the error"),
    ({"errors": [{"message": "Something odd"}]}, "an error without a code"),
])
def test_answers_that_say_nothing_about_whether_it_was_made_are_never_a_refusal(
        client, mocked, fixture_json, answer, why):
    from plugin.actions import refused_upstream

    mocked.post(URL, json=fixture_json("shopify_payments", "payment_refunds_none_ours"))
    mocked.post(URL, json=answer)
    with pytest.raises(BadResponseError) as exc:
        refund(client)
    assert refused_upstream(exc.value) is False, why


def test_a_failed_look_before_the_mutation_means_nothing_was_sent(client, mocked):
    from plugin.actions import refused_upstream
    from plugin.connectors.base import NotSentError

    mocked.post(URL, status=503, body="upstream unavailable")  # every attempt of the look
    with pytest.raises(NotSentError) as exc:
        refund(client)
    assert refused_upstream(exc.value) is True and "nothing was sent" in str(exc.value)
    assert all("refundCreate" not in sent(c)["query"] for c in mocked.calls)
