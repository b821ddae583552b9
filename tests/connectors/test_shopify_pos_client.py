"""ShopifyPosClient: the Admin GraphQL order query and store returns from refunds."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from plugin.connectors.base import (
    AuthError,
    BadResponseError,
    ConfigError,
    ConnectorConfig,
    NotFoundError,
    RateLimitedError,
)
from plugin.connectors.shopify_pos import DEFAULT_API_VERSION, ShopifyPosClient, order_search
from plugin.core.model import (
    OrderRef,
    ShopTransactionKind,
    ShopTransactionStatus,
    StoreReturnLine,
    Tender,
)
from plugin.core.money import Money

BASE = "https://order-truth-demo.myshopify.com"
URL = BASE + f"/admin/api/{DEFAULT_API_VERSION}/graphql.json"
TOKEN = "shpat_SECRETtokenForTests"
ORDER = OrderRef(number="1001", name="#1001")


@pytest.fixture
def client(sleeps):
    return ShopifyPosClient(ConnectorConfig(BASE, {"access_token": TOKEN}), sleep=sleeps)


def test_store_returns_are_refunds_with_return_lines_at_a_location(client, mocked, fixture_json):
    mocked.post(URL, json=fixture_json("shopify", "order_refunds"))
    facts = client.fetch(ORDER)

    assert facts.found and facts.order_found
    assert facts.order_name == "#1001"
    assert facts.currency == "USD"
    # refund ...224 only has a NO_RESTOCK line; ...225 has a RETURN line with no location
    (store_return,) = facts.store_returns
    assert store_return.refund_id == "gid://shopify/Refund/990011223"
    assert store_return.created_at == datetime(2026, 2, 21, 17, 4, 33, tzinfo=UTC)
    # Worth its store-located return line (the $25.00 tee), not the whole $37.00 refund.
    assert store_return.amount == Money(2500, "USD")
    assert store_return.location == "Downtown Store"
    # the NO_RESTOCK line on the same refund is not a store-return line
    assert store_return.lines == (
        StoreReturnLine(sku="TSHIRT-M", quantity=1, restock_type="RETURN",
                        location="Downtown Store", amount=Money(2500, "USD")),
    )


@pytest.mark.parametrize(("retail", "expected"), [
    ("Downtown Store, Airport Store", 1),   # a listed shop: a store return
    ("downtown store", 1),                   # names compare without case
    ("Airport Store", 0),                    # restocked somewhere that isn't a listed shop
])
def test_retail_locations_narrow_store_returns(mocked, fixture_json, sleeps, retail, expected):
    mocked.post(URL, json=fixture_json("shopify", "order_refunds"))
    client = ShopifyPosClient(ConnectorConfig(BASE, {"access_token": TOKEN},
                                              options={"retail_locations": retail}), sleep=sleeps)
    assert len(client.fetch(ORDER).store_returns) == expected


def test_request_shape(client, mocked, fixture_json):
    mocked.post(URL, json=fixture_json("shopify", "order_refunds"))
    client.fetch(ORDER)

    request = mocked.calls[0].request
    assert request.method == "POST"
    assert request.url == URL
    assert request.headers["X-Shopify-Access-Token"] == TOKEN
    assert request.headers["Content-Type"] == "application/json"
    body = json.loads(request.body)
    assert body["variables"] == {"query": "name:#1001"}
    query = " ".join(body["query"].split())
    assert "orders(first: 5, query: $query)" in query
    assert "refunds(first: 20)" in query
    assert "totalRefundedSet { presentmentMoney { amount currencyCode } }" in query
    assert "refundLineItems(first: 50)" in query
    assert "quantity restockType restocked location { id name } lineItem { sku name }" in query


def test_api_version_and_shop_options(mocked, fixture_json):
    client = ShopifyPosClient(ConnectorConfig(
        "", {"access_token": TOKEN},
        options={"shop": "order-truth-demo", "api_version": "2025-10"}))
    url = BASE + "/admin/api/2025-10/graphql.json"
    mocked.post(url, json=fixture_json("shopify", "order_not_found"))
    client.fetch(ORDER)
    assert mocked.calls[0].request.url == url


@pytest.mark.parametrize("options", [{}, {"shop": "bad shop.evil"},
                                     {"shop": "x", "api_version": "../../admin"}])
def test_bad_shop_config_is_config_error(options):
    with pytest.raises(ConfigError):
        ShopifyPosClient(ConnectorConfig("", {"access_token": TOKEN}, options=options))


@pytest.mark.parametrize(
    ("name", "expected"),
    [("#1001", "name:#1001"), ("#10 01", 'name:"#10 01"'), ('#10"01', 'name:"#10\\"01"'),
     ("#10'01", "name:\"#10'01\"")],
)
def test_order_search(name, expected):
    assert order_search(name) == expected


def test_no_order_node_means_not_found(client, mocked, fixture_json):
    mocked.post(URL, json=fixture_json("shopify", "order_not_found"))
    facts = client.fetch(ORDER)
    assert not facts.found
    assert facts.order_found is False
    assert facts.store_returns == ()


def test_a_different_order_from_loose_search_is_not_this_order(client, mocked, fixture_json):
    body = fixture_json("shopify", "order_refunds")
    body["data"]["orders"]["nodes"][0]["name"] = "#10010"
    mocked.post(URL, json=body)
    assert client.fetch(ORDER).order_found is False


def test_order_without_store_returns_is_found(client, mocked, fixture_json):
    body = fixture_json("shopify", "order_refunds")
    body["data"]["orders"]["nodes"][0]["refunds"] = []
    mocked.post(URL, json=body)
    facts = client.fetch(ORDER)
    assert facts.order_found is True
    assert facts.store_returns == ()


def test_throttled_is_rate_limited(client, mocked, fixture_json):
    mocked.post(URL, json=fixture_json("shopify", "throttled"))
    with pytest.raises(RateLimitedError) as info:
        client.fetch(ORDER)
    assert info.value.code == "THROTTLED"
    assert info.value.http_status == 200
    # (152 requested - 2 available) / 100 restored per second
    assert info.value.retry_after == pytest.approx(1.5)


def test_other_graphql_errors_are_bad_response(client, mocked, fixture_json):
    mocked.post(URL, json=fixture_json("shopify", "access_denied"))
    with pytest.raises(BadResponseError) as info:
        client.fetch(ORDER)
    assert info.value.code == "ACCESS_DENIED"
    assert "Access denied for orders field" in str(info.value)


def test_401_is_auth_error(client, mocked, fixture_json):
    mocked.post(URL, status=401, json=fixture_json("shopify", "invalid_token"))
    with pytest.raises(AuthError) as info:
        client.fetch(ORDER)
    assert "Invalid API key or access token" in str(info.value)
    assert TOKEN not in repr(info.value)


def test_404_is_not_found_error(client, mocked):
    mocked.post(URL, status=404, json={"errors": "Not Found"})
    with pytest.raises(NotFoundError):
        client.fetch(ORDER)


def _refund_line(**changes):
    def mutate(body):
        body["data"]["orders"]["nodes"][0]["refunds"][0]["refundLineItems"]["nodes"][0].update(
            changes)
    return mutate


def _refund(**changes):
    def mutate(body):
        refund = body["data"]["orders"]["nodes"][0]["refunds"][0]
        refund.update(changes)
        for key, value in changes.items():
            if value is None:
                del refund[key]
    return mutate


def _data_null(body):
    body["data"] = None


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (_refund_line(quantity="1"), "quantity"),
        (_refund_line(restockType=None), "restockType"),
        (_refund(createdAt="21/02/2026"), "createdAt"),
        (_refund(refundLineItems=None), "refundLineItems"),
        (_refund(totalRefundedSet={"presentmentMoney": {"amount": "3 7", "currencyCode": "USD"}}),
         "amount"),
        (_refund(totalRefundedSet={"presentmentMoney": {"amount": "37.00", "currencyCode": "XX"}}),
         "currencyCode"),
        (_data_null, "data"),
    ],
)
def test_malformed_body_is_bad_response(client, mocked, fixture_json, mutate, field):
    body = fixture_json("shopify", "order_refunds")
    mutate(body)
    mocked.post(URL, json=body)
    with pytest.raises(BadResponseError) as info:
        client.fetch(ORDER)
    assert field in str(info.value)


# ---------------------------------------------------------------- money by tender


def test_transactions_by_tender(client, mocked, fixture_json):
    mocked.post(URL, json=fixture_json("shopify", "order_refunds"))
    facts = client.fetch(ORDER)
    by_id = {t.transaction_id.rsplit("/", 1)[1]: t for t in facts.transactions}
    # The authorization moved no money; sales and refunds did.
    assert sorted(by_id) == ["7001", "7002", "7010", "7011", "7012"]
    card, gift = by_id["7001"], by_id["7002"]
    assert (card.kind, card.tender, card.tender_label, card.amount) == (
        ShopTransactionKind.PAYMENT, Tender.CARD, "Visa ending 4242", Money(7400, "USD"))
    assert (gift.tender, gift.amount) == (Tender.GIFT_CARD, Money(2500, "USD"))
    cash = by_id["7010"]
    # The till's cash refund belongs to the store return and happened at its store.
    assert (cash.kind, cash.tender, cash.status) == (ShopTransactionKind.REFUND, Tender.CASH,
                                                     ShopTransactionStatus.SUCCESS)
    assert cash.refund_id == "gid://shopify/Refund/990011223"
    assert cash.location == "Downtown Store" and cash.amount == Money(3700, "USD")
    assert by_id["7011"].tender is Tender.GIFT_CARD
    assert by_id["7012"].status is ShopTransactionStatus.PENDING
    assert by_id["7012"].ids == ("53433",)


def test_an_unknown_transaction_status_is_unknown_not_a_failed_source(client, mocked,
                                                                      fixture_json):
    body = fixture_json("shopify", "order_refunds")
    body["data"]["orders"]["nodes"][0]["transactions"][1]["status"] = "SOMETHING_NEW"
    mocked.post(URL, json=body)
    facts = client.fetch(ORDER)
    statuses = {t.transaction_id.rsplit("/", 1)[1]: t.status for t in facts.transactions}
    assert ShopTransactionStatus.UNKNOWN in statuses.values()
    assert len(statuses) == 5 and facts.store_returns


def test_pos_order_in_another_presentment_currency_nets_cash_change(client, mocked,
                                                                    fixture_json):
    mocked.post(URL, json=fixture_json("shopify", "pos_order_cash_and_card_eur"))
    facts = client.fetch(OrderRef(number="1003", name="#1003"))
    assert (facts.currency, facts.shop_currency) == ("EUR", "USD")
    by_id = {t.transaction_id.rsplit("/", 1)[1]: t for t in facts.transactions}
    assert sorted(by_id) == ["8001", "8003", "8005", "8006"]  # no CHANGE, no VOID
    # €100 handed over, €20 change: the cash payment is €80, and $86.40 in the shop's
    # currency ($108.00 handed over less $21.60 change), never the gross beside the net.
    assert by_id["8001"].amount == Money(8000, "EUR")
    assert by_id["8001"].amount_shop == Money(8640, "USD")
    card = by_id["8003"]
    assert (card.tender, card.tender_label) == (Tender.WALLET, "Google Pay (Mastercard ending 5454)")
    assert by_id["8005"].status is ShopTransactionStatus.FAILED
    assert (by_id["8006"].tender, by_id["8006"].location) == (Tender.CASH, "Downtown Store")
    (store,) = facts.store_returns
    assert store.amount == Money(2500, "EUR")


def test_throttled_with_http_429_is_rate_limited_too(client, mocked, fixture_json):
    mocked.post(URL, json=fixture_json("shopify", "throttled"), status=429)
    with pytest.raises(RateLimitedError):
        client.fetch(ORDER)
