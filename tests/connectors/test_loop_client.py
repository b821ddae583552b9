"""LoopClient: return-details requests and normalisation into PortalFacts."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from plugin.connectors.base import AuthError, BadResponseError, ConnectorConfig
from plugin.connectors.loop import LoopClient
from plugin.core.model import (
    OrderRef,
    PortalRefund,
    ReturnLine,
    ReturnOutcome,
    ReturnState,
    ShippingLabel,
    Tender,
)
from plugin.core.money import Money

BASE = "https://loop.test"
URL = BASE + "/api/v1/warehouse/return/details"
API_KEY = "SECRET-loop-api-key"
ORDER = OrderRef(number="1001", name="#1001")


@pytest.fixture
def client(sleeps):
    return LoopClient(ConnectorConfig(BASE, {"api_key": API_KEY}), sleep=sleeps)


def test_single_return_is_normalised(client, mocked, fixture_json):
    mocked.get(URL, json=fixture_json("loop", "return_open_in_transit"))
    facts = client.fetch(ORDER)

    assert facts.found
    assert facts.order_name == "#1001"
    assert facts.currency == "USD"
    (ret,) = facts.returns
    assert ret.return_id == "37603922"
    assert ret.order_name == "#1001"
    assert ret.state_raw == "open"
    # open + the latest label in transit
    assert ret.state is ReturnState.IN_TRANSIT
    assert ret.created_at == datetime(2026, 2, 14, 11, 30, tzinfo=UTC)
    assert ret.updated_at == datetime(2026, 2, 17, 9, 12, 44, tzinfo=UTC)
    assert ret.total == Money(7400, "USD")
    assert ret.lines == (
        ReturnLine(sku="TSHIRT-M", quantity=2, title="Classic Tee - M / Navy"),
        ReturnLine(sku="CAP-OS", quantity=2, title="Logo Cap"),
    )
    assert ret.label == ShippingLabel(carrier="USPS", tracking_number="9400111899223100000018",
                                      status="in_transit")
    assert ret.refunds == ()
    assert ret.outcome == "refund"


def test_request_shape(client, mocked, fixture_json):
    mocked.get(URL, json=fixture_json("loop", "return_open_in_transit"))
    client.fetch(ORDER)

    request = mocked.calls[0].request
    parts = urlsplit(request.url)
    assert parts.path == "/api/v1/warehouse/return/details"
    # Amounts in the currency the customer paid in (Loop's default is not documented).
    assert parse_qs(parts.query) == {"order_name": ["#1001"], "currency_type": ["presentment"]}
    assert request.method == "GET"
    assert request.headers["X-Authorization"] == API_KEY
    assert "Authorization" not in request.headers
    assert request.headers["Accept"] == "application/json"


def test_several_returns_come_as_an_array(client, mocked, fixture_json):
    mocked.get(URL, json=fixture_json("loop", "returns_multiple"))
    facts = client.fetch(OrderRef(number="1002", name="#1002"))

    closed, cancelled = facts.returns
    assert closed.state is ReturnState.CLOSED
    assert closed.label.status == "delivered"
    assert closed.lines == (ReturnLine(sku="HOODIE-L", quantity=1, title="Zip Hoodie - L"),)
    assert closed.refunds == (
        PortalRefund(amount=Money(2000, "USD"), gateway="shopify_payments",
                     provider_refund_id="re_3PqR1fK9xYzAbCdE0a1b2c3d"),
        # a refund without its own currency is in the return's currency
        PortalRefund(amount=Money(500, "USD"), gateway="gift_card", provider_refund_id=None,
                     tender=Tender.GIFT_CARD),
    )
    # id sent as a string, naive timestamp taken as UTC, lower-case currency, null lists
    assert cancelled.return_id == "37603931"
    assert cancelled.state is ReturnState.CANCELED
    assert cancelled.created_at == datetime(2026, 2, 11, 9, 0, tzinfo=UTC)
    assert cancelled.updated_at is None
    assert cancelled.total is None
    assert cancelled.label is None
    assert cancelled.lines == () and cancelled.refunds == ()


def test_open_return_without_moving_label_is_authorized(client, mocked, fixture_json):
    body = fixture_json("loop", "return_open_in_transit")
    body["labels"][-1]["status"] = "pre_transit"
    mocked.get(URL, json=body)
    assert client.fetch(ORDER).returns[0].state is ReturnState.AUTHORIZED


def test_timestamps_with_offsets_are_converted_to_utc(client, mocked, fixture_json):
    body = fixture_json("loop", "return_open_in_transit")
    body["created_at"] = "2026-02-14T06:30:00-05:00"
    mocked.get(URL, json=body)
    created = client.fetch(ORDER).returns[0].created_at
    assert created == datetime(2026, 2, 14, 11, 30, tzinfo=UTC)
    assert created.tzinfo is UTC


def test_amounts_sent_as_json_numbers_are_read_exactly(client, mocked, fixture_json):
    body = fixture_json("loop", "return_open_in_transit")
    body["total"] = 74.1
    body["refunds"] = [{"amount": 0.1, "currency": "USD"}]
    mocked.get(URL, json=body)
    ret = client.fetch(ORDER).returns[0]
    assert ret.total == Money(7410, "USD")
    assert ret.refunds[0].amount == Money(10, "USD")


def test_404_means_the_portal_has_no_return(client, mocked, fixture_json):
    mocked.get(URL, status=404, json=fixture_json("loop", "not_found"))
    facts = client.fetch(ORDER)
    assert facts.order_name == "#1001"
    assert facts.returns == ()
    assert not facts.found


def test_empty_array_means_no_returns(client, mocked):
    mocked.get(URL, json=[])
    facts = client.fetch(ORDER)
    assert not facts.found
    assert facts.currency is None


def test_401_is_auth_error(client, mocked, fixture_json):
    mocked.get(URL, status=401, json=fixture_json("loop", "unauthenticated"))
    with pytest.raises(AuthError) as info:
        client.fetch(ORDER)
    assert str(info.value) == "HTTP 401: Unauthenticated."
    assert info.value.http_status == 401
    assert API_KEY not in repr(info.value)


def _set(path, value):
    def mutate(body):
        target = body
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return mutate


def _drop(key):
    def mutate(body):
        del body[key]
    return mutate


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (_drop("created_at"), "created_at"),
        (_drop("state"), "state"),
        (_drop("currency"), "currency"),
        (_set(("currency",), "DOLLARS"), "currency"),
        (_set(("total",), "12,50"), "total"),
        (_set(("total",), "Infinity"), "total"),
        (_set(("total",), True), "total"),
        (_set(("id",), ["37603922"]), "id"),
        (_set(("created_at",), "yesterday"), "created_at"),
        (_set(("line_items", 0, "quantity"), "2"), "line_items"),
        (_set(("labels",), {"status": "in_transit"}), "labels"),
        (_set(("refunds",), [{"amount": "ten", "currency": "USD"}]), "refunds"),
    ],
)
def test_malformed_return_is_bad_response(client, mocked, fixture_json, mutate, field):
    body = copy.deepcopy(fixture_json("loop", "return_open_in_transit"))
    mutate(body)
    mocked.get(URL, json=body)
    with pytest.raises(BadResponseError) as info:
        client.fetch(ORDER)
    assert field in str(info.value)


@pytest.mark.parametrize("body", ["just a string", 42, None, [1, 2]])
def test_non_object_body_is_bad_response(client, mocked, body):
    mocked.get(URL, json=body)
    with pytest.raises(BadResponseError):
        client.fetch(ORDER)


def test_unknown_state_makes_that_return_unknown_not_the_source(client, mocked, fixture_json):
    body = fixture_json("loop", "return_open_in_transit")
    body["state"] = "teleported"
    mocked.get(URL, json=body)
    (ret,) = client.fetch(ORDER).returns
    assert ret.state is ReturnState.UNKNOWN
    assert ret.state_raw == "teleported"


def test_base_url_with_the_documented_api_v1_suffix_still_works():
    from plugin.connectors.base import ConnectorConfig
    from plugin.connectors.loop import LoopClient

    client = LoopClient(ConnectorConfig("https://api.loopreturns.com/api/v1/", {"api_key": "k"}))
    assert client.base_url == "https://api.loopreturns.com"


# ---------------------------------------------------------------- what Loop really sends


def test_no_return_answered_with_200_and_an_error_body_is_not_found(client, mocked,
                                                                    fixture_json):
    # Loop answers a lookup with no return with HTTP 200 and an error body (public clients).
    mocked.get(URL, json=fixture_json("loop", "no_return_error_200"))
    facts = client.fetch(ORDER)
    assert not facts.found and facts.returns == ()


def test_exchange_with_flat_label_fields(client, mocked, fixture_json):
    mocked.get(URL, json=fixture_json("loop", "return_exchange_flat_label"))
    (ret,) = client.fetch(ORDER).returns
    assert ret.outcome is ReturnOutcome.EXCHANGE
    assert ret.exchange_order == "#1044"
    assert ret.exchange_value == Money(4000, "USD")
    assert ret.credit_issued is None and ret.refunds == ()
    # The label arrives as flat carrier / tracking_number / label_status fields.
    assert ret.label == ShippingLabel("USPS", "9400111899223100000044", "in_transit")
    assert ret.state is ReturnState.IN_TRANSIT
    # A timestamp without a zone, as the details example shows it, is read as UTC.
    assert ret.created_at == datetime(2026, 2, 20, 14, 8, 31, tzinfo=UTC)


def test_gift_card_outcome_held_for_review(client, mocked, fixture_json):
    mocked.get(URL, json=fixture_json("loop", "return_gift_card_in_review"))
    (ret,) = client.fetch(ORDER).returns
    assert ret.state is ReturnState.HELD and ret.state_raw == "needs review"
    assert ret.outcome is ReturnOutcome.STORE_CREDIT
    assert ret.credit_issued == Money(3250, "EUR")
    assert ret.credit_tender is Tender.GIFT_CARD


def test_exchange_plus_refund_is_mixed(client, mocked, fixture_json):
    body = fixture_json("loop", "return_exchange_flat_label")
    body["refunds"] = [{"gateway": "shopify_payments", "amount": "5.00", "currency": "USD",
                        "provider_refund_id": "re_9", "provider": "stripe"}]
    mocked.get(URL, json=body)
    (ret,) = client.fetch(ORDER).returns
    assert ret.outcome is ReturnOutcome.MIXED
    assert ret.refunds[0].provider_refund_id == "re_9"


def test_hostile_upstream_text_is_bounded_and_cannot_reorder_the_screen(client, mocked,
                                                                       fixture_json):
    body = fixture_json("loop", "return_open_in_transit")
    body["labels"][-1]["tracking_number"] = "\u202e" + "9" * 10_000 + "\u2066x\u200f"
    mocked.get(URL, json=body)
    label = client.fetch(ORDER).returns[0].label
    assert len(label.tracking_number) <= 1000
    assert not set(label.tracking_number) & {"\u202e", "\u2066", "\u200f"}
