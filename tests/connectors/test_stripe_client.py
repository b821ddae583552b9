"""StripeClient: PaymentIntent search, refund and dispute listing, Stripe amount units."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from responses import matchers

from plugin.connectors.base import (
    AuthError,
    BadResponseError,
    ConnectorConfig,
    NotFoundError,
    RateLimitedError,
)
from plugin.connectors.stripe import StripeClient, search_literal
from plugin.core.model import DisputeState, OrderRef, RefundState, Tender
from plugin.core.money import Money

BASE = "https://stripe.test"
SEARCH = BASE + "/v1/payment_intents/search"
REFUNDS = BASE + "/v1/refunds"
DISPUTES = BASE + "/v1/disputes"
KEY = "sk_test_51SECRETkeyForTests"
PI = "pi_3PqA1B2C3D4E5F6G0H1I2J3K"
ORDER = OrderRef(number="1001", name="#1001")


@pytest.fixture
def client(sleeps):
    return StripeClient(ConnectorConfig(BASE, {"secret_key": KEY}), sleep=sleeps)


def query(call) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


def add_happy_path(mocked, fixture_json):
    mocked.get(SEARCH, json=fixture_json("stripe", "payment_intent_search"))
    mocked.get(REFUNDS, json=fixture_json("stripe", "refunds_page1"),
               match=[matchers.query_param_matcher({"payment_intent": PI, "limit": "100"})])
    mocked.get(REFUNDS, json=fixture_json("stripe", "refunds_page2"),
               match=[matchers.query_param_matcher({
                   "payment_intent": PI, "limit": "100",
                   "starting_after": "re_3PqR1fK9xYzAbCdE0a1b2c3d"})])
    mocked.get(DISPUTES, json=fixture_json("stripe", "disputes"))


def test_payments_refunds_and_disputes_are_normalised(client, mocked, fixture_json):
    add_happy_path(mocked, fixture_json)
    facts = client.fetch(ORDER)

    assert facts.found
    assert facts.order_name == "#1001"
    (payment,) = facts.payments
    assert payment.payment_id == PI
    assert payment.amount == Money(10000, "USD")
    assert payment.amount_captured == Money(10000, "USD")
    assert payment.status_raw == "succeeded"
    assert payment.created_at == datetime(2026, 2, 10, 16, 42, 5, tzinfo=UTC)
    assert payment.payment_method == "card"

    first, second = facts.refunds
    assert first.refund_id == "re_3PqR1fK9xYzAbCdE0a1b2c3d"
    assert first.payment_id == PI
    assert first.amount == Money(2500, "USD")
    assert first.state is RefundState.SUCCEEDED
    assert first.status_raw == "succeeded"
    assert first.created_at == datetime(2026, 2, 19, 10, 20, 31, tzinfo=UTC)
    assert first.reason == "requested_by_customer"
    assert first.return_key == "RMA-37603922"
    assert first.erp_refund_id == "CM-7788"
    assert second.state is RefundState.PENDING
    assert second.amount == Money(1000, "USD")
    assert second.return_key is None and second.erp_refund_id is None

    open_dispute, won = facts.disputes
    assert open_dispute.dispute_id == "du_1PqT2hM1zAbCdEfG2c3d4e5f"
    assert open_dispute.is_open is True
    assert open_dispute.amount == Money(10000, "USD")
    assert open_dispute.due_by == datetime(2026, 3, 12, 23, 59, 59, tzinfo=UTC)
    assert open_dispute.reason == "product_not_received"
    assert won.is_open is False
    assert won.due_by is None


def test_request_shape(client, mocked, fixture_json):
    add_happy_path(mocked, fixture_json)
    client.fetch(ORDER)

    search = mocked.calls[0]
    # The charge is expanded: its payment_method_details say which card or wallet paid.
    assert query(search) == {"query": ["metadata['order_id']:'1001'"], "limit": ["10"],
                             "expand[]": ["data.latest_charge"]}
    assert search.request.headers["Authorization"] == f"Bearer {KEY}"
    assert "Stripe-Version" not in search.request.headers
    # search first, then the read-after-write list endpoints (asked side by side, so their
    # relative order varies), refunds following has_more
    paths = [urlsplit(c.request.url).path for c in mocked.calls]
    assert paths[0] == "/v1/payment_intents/search"
    assert sorted(paths[1:]) == ["/v1/disputes", "/v1/refunds", "/v1/refunds"]
    refund_calls = [c for c in mocked.calls if urlsplit(c.request.url).path == "/v1/refunds"]
    assert "starting_after" not in query(refund_calls[0])
    assert query(refund_calls[1])["starting_after"] == ["re_3PqR1fK9xYzAbCdE0a1b2c3d"]
    dispute_call = next(c for c in mocked.calls if urlsplit(c.request.url).path == "/v1/disputes")
    assert query(dispute_call) == {"payment_intent": [PI], "limit": ["100"]}


def test_stripe_version_header_from_options(mocked, fixture_json, sleeps):
    client = StripeClient(ConnectorConfig(BASE, {"secret_key": KEY},
                                          options={"stripe_version": "2025-04-30.basil"}))
    mocked.get(SEARCH, json=fixture_json("stripe", "search_empty"))
    client.fetch(ORDER)
    assert mocked.calls[0].request.headers["Stripe-Version"] == "2025-04-30.basil"


def test_quotes_in_the_order_number_are_escaped(client, mocked, fixture_json):
    mocked.get(SEARCH, json=fixture_json("stripe", "search_empty"))
    client.fetch(OrderRef(number="10'01", name="#10'01"))
    assert query(mocked.calls[0])["query"] == ["metadata['order_id']:'10\\'01'"]


def test_search_literal():
    assert search_literal("1001") == "'1001'"
    assert search_literal("o'brien's") == "'o\\'brien\\'s'"


def test_no_payment_intent_means_not_found(client, mocked, fixture_json):
    mocked.get(SEARCH, json=fixture_json("stripe", "search_empty"))
    facts = client.fetch(ORDER)
    assert not facts.found
    assert facts.payments == facts.refunds == facts.disputes == ()
    assert len(mocked.calls) == 1


def test_zero_decimal_currency_amounts_stay_as_sent(client, mocked, fixture_json):
    mocked.get(SEARCH, json=fixture_json("stripe", "payment_intent_search_jpy"))
    mocked.get(REFUNDS, json=fixture_json("stripe", "refunds_jpy"))
    mocked.get(DISPUTES, json=fixture_json("stripe", "list_empty"))
    facts = client.fetch(OrderRef(number="2001", name="#2001"))

    assert facts.payments[0].amount == Money(4500, "JPY")
    assert facts.payments[0].amount.format() == "¥4,500"
    (refund,) = facts.refunds
    assert refund.amount == Money(1500, "JPY")
    assert refund.state is RefundState.FAILED
    assert refund.failure_reason == "lost_or_stolen_card"
    assert refund.return_key == "RMA-40001"
    assert facts.disputes == ()


def test_search_pages_follow_next_page(client, mocked, fixture_json):
    first = fixture_json("stripe", "payment_intent_search")
    first.update(has_more=True, next_page="page_2")
    second = fixture_json("stripe", "payment_intent_search_jpy")
    mocked.get(SEARCH, json=first)
    mocked.get(SEARCH, json=second)
    mocked.get(REFUNDS, json=fixture_json("stripe", "list_empty"))
    mocked.get(DISPUTES, json=fixture_json("stripe", "list_empty"))
    facts = client.fetch(ORDER)
    assert [p.payment_id for p in facts.payments] == [PI, "pi_3PqJ7kL8mN9oP0qR1s2t3u4v"]
    assert query(mocked.calls[1])["page"] == ["page_2"]


def test_list_paging_stops_after_five_pages(client, mocked, fixture_json):
    endless = fixture_json("stripe", "refunds_page1")  # has_more: true forever
    mocked.get(SEARCH, json=fixture_json("stripe", "payment_intent_search"))
    for _ in range(5):
        mocked.get(REFUNDS, json=endless)
    mocked.get(DISPUTES, json=fixture_json("stripe", "list_empty"))
    facts = client.fetch(ORDER)
    refund_calls = [c for c in mocked.calls if urlsplit(c.request.url).path == "/v1/refunds"]
    assert len(refund_calls) == 5
    # Every page repeats the same refund: it is counted once.
    assert len(facts.refunds) == 1


def test_401_is_auth_error_without_the_key(client, mocked, fixture_json):
    mocked.get(SEARCH, status=401, json=fixture_json("stripe", "error_invalid_api_key"))
    with pytest.raises(AuthError) as info:
        client.fetch(ORDER)
    assert info.value.http_status == 401
    assert "Invalid API Key provided" in str(info.value)
    assert "sk_test_" not in str(info.value)
    assert KEY not in repr(info.value)


def test_404_is_not_found(client, mocked, fixture_json):
    mocked.get(SEARCH, json=fixture_json("stripe", "payment_intent_search"))
    mocked.get(REFUNDS, status=404, json=fixture_json("stripe", "error_resource_missing"))
    with pytest.raises(NotFoundError) as info:
        client.fetch(ORDER)
    assert info.value.code == "resource_missing"
    assert "No such payment_intent" in str(info.value)


def test_429_envelope_is_rate_limited(client, mocked, fixture_json):
    mocked.get(SEARCH, status=429, headers={"Retry-After": "5"},
               json=fixture_json("stripe", "error_rate_limit"))
    with pytest.raises(RateLimitedError) as info:
        client.fetch(ORDER)
    assert info.value.code == "rate_limit"
    assert info.value.retry_after == 5.0


def test_400_is_bad_response(client, mocked):
    mocked.get(SEARCH, status=400, json={"error": {
        "type": "invalid_request_error", "code": "parameter_invalid",
        "message": "Search is not supported on api version 2019-02-19."}})
    with pytest.raises(BadResponseError) as info:
        client.fetch(ORDER)
    assert str(info.value) == (
        "HTTP 400 parameter_invalid: Search is not supported on api version 2019-02-19.")


def _pi(fixture_json, **changes):
    body = fixture_json("stripe", "payment_intent_search")
    body["data"][0].update(changes)
    return body


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": "10000"}, "amount"),
        ({"amount": 100.5}, "amount"),
        ({"amount_received": None}, "amount_received"),
        ({"currency": "us"}, "currency"),
        ({"created": "2026-02-10"}, "created"),
        ({"id": 42}, "id"),
    ],
)
def test_malformed_payment_intent_is_bad_response(client, mocked, fixture_json, changes, field):
    mocked.get(SEARCH, json=_pi(fixture_json, **changes))
    with pytest.raises(BadResponseError) as info:
        client.fetch(ORDER)
    assert field in str(info.value)


def test_missing_envelope_field_is_bad_response(client, mocked, fixture_json):
    body = fixture_json("stripe", "payment_intent_search")
    del body["has_more"]
    mocked.get(SEARCH, json=body)
    with pytest.raises(BadResponseError, match="has_more"):
        client.fetch(ORDER)


@pytest.mark.parametrize("status", ["teleported", None])
def test_unknown_or_missing_refund_status_makes_that_refund_unknown(client, mocked, fixture_json,
                                                                     status):
    refunds = fixture_json("stripe", "refunds_page2")
    refunds["data"][0]["status"] = status
    mocked.get(SEARCH, json=fixture_json("stripe", "payment_intent_search"))
    mocked.get(REFUNDS, json=refunds)
    mocked.get(DISPUTES, json=fixture_json("stripe", "list_empty"))
    facts = client.fetch(ORDER)
    unknown = [r for r in facts.refunds if r.refund_id == refunds["data"][0]["id"]]
    assert [r.state for r in unknown] == [RefundState.UNKNOWN]


# ---------------------------------------------------------------- amounts


@pytest.mark.parametrize(("stripe_amount", "currency", "iso_minor", "shown"), [
    (4500, "jpy", 4500, "¥4,500"),      # zero-decimal everywhere
    (50000, "isk", 500, "500 ISK"),     # Stripe keeps ISK two-decimal; ISO has none
    (5000, "mga", 500000, "5,000.00 MGA"),  # zero-decimal at Stripe, two in ISO
    (12345, "kwd", 12345, "12.345 KWD"),  # three-decimal in both
])
def test_stripe_amounts_become_iso_minor_units(client, stripe_amount, currency, iso_minor, shown):
    money = client.stripe_money(stripe_amount, currency)
    assert (money.amount_minor, money.format()) == (iso_minor, shown)


# ---------------------------------------------------------------- tenders and outcomes


def test_expanded_charge_names_the_card_and_wallet(client, mocked, fixture_json):
    mocked.get(SEARCH, json=fixture_json("stripe", "payment_intent_search_expanded"))
    mocked.get(REFUNDS, json=fixture_json("stripe", "list_empty"))
    mocked.get(DISPUTES, json=fixture_json("stripe", "list_empty"))
    (payment,) = client.fetch(ORDER).payments
    assert payment.tender is Tender.WALLET
    assert payment.tender_label == "Apple Pay (Visa ending 4242)"
    assert payment.ids == ("ch_3PqA1B2C3D4E5F6G0mN5oP6q",)


def test_klarna_payment_and_refunds_with_a_null_status(client, mocked, fixture_json):
    mocked.get(SEARCH, json=fixture_json("stripe", "payment_intent_search_klarna"))
    mocked.get(REFUNDS, json=fixture_json("stripe", "refunds_klarna"))
    mocked.get(DISPUTES, json=fixture_json("stripe", "list_empty"))
    facts = client.fetch(ORDER)
    (payment,) = facts.payments
    assert (payment.tender, payment.tender_label) == (Tender.BNPL, "Klarna")
    paid, odd = facts.refunds
    assert (paid.state, paid.tender, paid.tender_label) == (RefundState.SUCCEEDED, Tender.BNPL,
                                                            "Klarna")
    # Stripe documents Refund.status as nullable: that refund is unknown, the rest stands.
    assert odd.state is RefundState.UNKNOWN and odd.status_raw == ""
    assert odd.tender is Tender.BNPL


def test_dispute_outcomes(client, mocked, fixture_json):
    mocked.get(SEARCH, json=fixture_json("stripe", "payment_intent_search"))
    mocked.get(REFUNDS, json=fixture_json("stripe", "list_empty"))
    mocked.get(DISPUTES, json=fixture_json("stripe", "disputes_outcomes"))
    lost, prevented, odd = client.fetch(ORDER).disputes
    assert lost.state is DisputeState.LOST and not lost.is_open
    assert prevented.state is DisputeState.CLOSED
    assert odd.state is DisputeState.UNKNOWN and odd.status_raw == "escalated_to_mars"


@pytest.mark.parametrize("amount", [10**26, 10**40, -(10**26)])
def test_an_absurd_amount_is_a_bad_answer_not_a_crash(client, mocked, fixture_json, amount):
    mocked.get(SEARCH, json=_pi(fixture_json, amount=amount, amount_received=amount))
    with pytest.raises(BadResponseError) as info:
        client.fetch(ORDER)
    assert "too large to be real" in str(info.value)
