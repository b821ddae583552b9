"""Each seeded order's raw vendor data carries the signal its scenario is about."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from plugin.sandbox.scenarios import SCENARIOS, scenario_for_order, scenarios_json

from .conftest import NOW, Upstreams, chain_query, receipt_lines_query

EXPECTED = [
    ("clean", "1001"),
    ("zone1_return_not_in_erp", "1002"),
    ("zone2_erp_refund_not_at_processor", "1003"),
    ("zone3_store_return_not_in_inventory", "1004"),
    ("partial_refund", "1005"),
    ("duplicate_refund", "1006"),
    ("over_refund", "1007"),
    ("zero_decimal_currency", "1008"),
    ("dispute", "1009"),
    ("source_down", "1010"),
    ("source_slow", "1011"),
    ("malformed_upstream", "1012"),
    ("split_refund_two_memos", "1013"),
    ("batch_posting", "1014"),
    ("store_cash_refund", "1015"),
    ("exchange_received", "1016"),
    ("store_credit_gift_card", "1017"),
    ("gift_card_and_card", "1018"),
    ("lost_chargeback_after_refund", "1019"),
    ("return_held_for_review", "1020"),
    ("expired_return_open_in_erp", "1021"),
]


@dataclass
class Raw:
    """What each vendor said about one order, undigested."""

    loop_status: int
    loop: Any
    payment_intents: list[dict]
    refunds: list[dict]
    disputes: list[dict]
    erp: list[dict]
    receipt_lines: list[dict]
    shopify: list[dict]
    by_type: dict[str, list[dict]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for row in self.erp:
            self.by_type.setdefault(row["type"], []).append(row)

    def one(self, doc_type: str) -> dict:
        [row] = self.by_type[doc_type]
        return row


def fetch(upstreams: Upstreams, number: str) -> Raw:
    """Read an order from all four vendors the way the connectors do."""
    loop = upstreams.loop(f"#{number}")
    payment_intents = upstreams.search(number).json()["data"]
    refunds, disputes = [], []
    for payment in payment_intents:
        refunds += upstreams.stripe("/v1/refunds", payment_intent=payment["id"],
                                    limit=100).json()["data"]
        disputes += upstreams.stripe("/v1/disputes", payment_intent=payment["id"],
                                     limit=100).json()["data"]
    erp = upstreams.suiteql(chain_query(f"#{number}")).json()["items"]
    receipts = [row["id"] for row in erp if row["type"] == "ItemRcpt"]
    lines = upstreams.suiteql(receipt_lines_query(receipts)).json()["items"] if receipts else []
    shopify = upstreams.shopify(f"name:#{number}").json()["data"]["orders"]["nodes"]
    return Raw(loop.status_code, loop.json(), payment_intents, refunds, disputes, erp, lines,
               shopify)


def netsuite_age(row: dict) -> timedelta:
    return NOW - datetime.strptime(row["created"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def stripe_age(obj: dict) -> timedelta:
    return NOW - datetime.fromtimestamp(obj["created"], UTC)


def test_catalogue_is_exactly_the_seeded_scenarios():
    assert [(s.name, s.order_number) for s in SCENARIOS] == EXPECTED
    assert scenarios_json()[0] == {"scenario": "clean", "order_id": "1001",
                                   "title": SCENARIOS[0].title,
                                   "description": SCENARIOS[0].description}
    assert scenario_for_order("#1006").name == "duplicate_refund"
    assert scenario_for_order("1006") is scenario_for_order("#1006")
    assert scenario_for_order("9999") is None


def test_data_is_built_relative_to_now():
    scenario = scenario_for_order("1002")
    for now in (NOW, NOW + timedelta(days=40)):
        [loop_return] = scenario.build(now).loop_returns
        created = datetime.fromisoformat(loop_return["created_at"])
        assert now - created == timedelta(days=3)


def test_unknown_order_is_not_found_anywhere(upstreams):
    raw = fetch(upstreams, "9999")
    # Loop answers "no return" with HTTP 200 and an error body, as public clients record.
    assert (raw.loop_status, raw.loop) == (200, {"error": {"message": "No return found with this ID."}})
    assert raw.payment_intents == [] and raw.erp == [] and raw.shopify == []


def test_1001_clean_everything_links_up(upstreams):
    raw = fetch(upstreams, "1001")
    assert raw.loop["state"] == "closed" and raw.loop["labels"][0]["status"] == "delivered"
    assert raw.one("RtnAuth")["status"] == "G"
    assert raw.one("RtnAuth")["externalid"] == f"loop-{raw.loop['id']}"
    [refund] = raw.refunds
    memo, customer_refund = raw.one("CustCred"), raw.one("CustRfnd")
    assert refund["status"] == "succeeded" and refund["amount"] == 4000
    assert refund["metadata"] == {"order_id": "1001", "return_key": str(raw.loop["id"]),
                                  "erp_refund_id": memo["tranid"]}
    assert customer_refund["memo"] == f"Stripe refund {refund['id']}"
    assert customer_refund["total"] == "40.00"
    assert [(line["sku"], line["quantity"], line["location"]) for line in raw.receipt_lines] == [
        (raw.loop["line_items"][0]["sku"], "1", "Main Warehouse")]
    assert raw.shopify[0]["refunds"] == [] and raw.disputes == []


def test_1002_portal_return_has_no_ra(upstreams):
    raw = fetch(upstreams, "1002")
    assert raw.loop["state"] == "open" and raw.loop["labels"][0]["status"] == "in_transit"
    assert NOW - datetime.fromisoformat(raw.loop["created_at"]) == timedelta(days=3)
    assert list(raw.by_type) == ["SalesOrd"]
    assert raw.payment_intents[0]["amount"] == 8900 and raw.refunds == []


def test_1003_erp_refund_is_unknown_to_stripe(upstreams):
    raw = fetch(upstreams, "1003")
    customer_refund = raw.one("CustRfnd")
    assert "re_" not in customer_refund["memo"]
    assert customer_refund["total"] == "45.00"
    assert netsuite_age(customer_refund) == timedelta(days=2)
    assert raw.refunds == []
    assert raw.payment_intents[0]["amount"] == 15000


def test_1004_store_return_has_no_item_receipt(upstreams):
    raw = fetch(upstreams, "1004")
    assert raw.loop_status == 200 and "error" in raw.loop
    [store_refund] = raw.shopify[0]["refunds"]
    [line] = store_refund["refundLineItems"]["nodes"]
    assert (line["restockType"], line["quantity"], line["location"]["name"]) == (
        "RETURN", 1, "Brooklyn Store")
    assert datetime.fromisoformat(store_refund["createdAt"]) == NOW - timedelta(days=2)
    assert list(raw.by_type) == ["SalesOrd"] and raw.receipt_lines == []
    assert raw.refunds == []


def test_1005_partial_refund_leaves_65_refundable(upstreams):
    raw = fetch(upstreams, "1005")
    [refund] = raw.refunds
    assert raw.payment_intents[0]["amount_received"] - refund["amount"] == 6500
    assert raw.one("CustCred")["total"] == "-35.00" and raw.one("CustRfnd")["total"] == "35.00"
    assert raw.loop["total"] == "35.00" and len(raw.loop["line_items"]) == 1


def test_1006_two_refunds_for_one_return(upstreams):
    raw = fetch(upstreams, "1006")
    assert [r["status"] for r in raw.refunds] == ["succeeded", "succeeded"]
    assert {r["amount"] for r in raw.refunds} == {5000}
    assert len({r["metadata"]["return_key"] for r in raw.refunds}) == 1
    newer, older = raw.refunds
    assert newer["created"] - older["created"] == 40 * 60
    assert raw.one("CustRfnd")["total"] == "50.00"


def test_1007_refunds_exceed_the_capture(upstreams):
    raw = fetch(upstreams, "1007")
    live = sum(r["amount"] for r in raw.refunds
               if r["status"] in ("succeeded", "pending", "requires_action"))
    assert live == 9000 > raw.payment_intents[0]["amount_received"] == 8000
    # The goodwill refund still waits on the customer, so it can be cancelled.
    pending = next(r for r in raw.refunds if r["status"] == "requires_action")
    assert stripe_age(pending) == timedelta(hours=1)
    assert "return_key" not in pending["metadata"]
    assert raw.one("CustCred")["total"] == "-60.00"


def test_1008_yen_amounts_are_zero_decimal(upstreams):
    raw = fetch(upstreams, "1008")
    assert (raw.payment_intents[0]["amount"], raw.payment_intents[0]["currency"]) == (
        12000, "jpy")
    assert (raw.refunds[0]["amount"], raw.refunds[0]["currency"]) == (4500, "jpy")
    assert (raw.loop["currency"], raw.loop["total"]) == ("JPY", "4500")
    assert {row["currency"] for row in raw.erp} == {"JPY"}
    assert raw.one("CustRfnd")["total"] == "4500"
    assert raw.shopify[0]["currencyCode"] == "JPY"


def test_1009_dispute_on_a_refunded_order_with_an_open_return(upstreams):
    raw = fetch(upstreams, "1009")
    [dispute] = raw.disputes
    assert (dispute["status"], dispute["amount"]) == ("needs_response", 12000)
    assert dispute["evidence_details"]["due_by"] == int((NOW + timedelta(days=6)).timestamp())
    [refund] = raw.refunds
    assert refund["amount"] == 3000
    assert refund["metadata"]["erp_refund_id"] == raw.one("CustCred")["tranid"]
    assert raw.loop["state"] == "open"
    ra = raw.one("RtnAuth")
    assert ra["status"] == "B" and ra["externalid"] == f"loop-{raw.loop['id']}"
    assert netsuite_age(ra) == timedelta(days=1)


def test_1010_erp_is_down_for_this_order_only(upstreams):
    resp = upstreams.suiteql(chain_query("#1010"))
    assert resp.status_code == 503
    assert resp.json()["o:errorDetails"][0]["o:errorCode"] == "UNEXPECTED_ERROR"
    assert upstreams.suiteql(chain_query("#1001")).status_code == 200
    loop = upstreams.loop("#1010").json()
    assert loop["state"] == "open"
    assert NOW - datetime.fromisoformat(loop["created_at"]) == timedelta(days=3)


def test_1011_stripe_is_too_slow_for_this_order(upstreams):
    started = datetime.now(UTC)
    assert upstreams.search("1001", timeout=0.3).ok
    with pytest.raises(requests.Timeout):
        upstreams.search("1011", timeout=0.3)
    assert datetime.now(UTC) - started < timedelta(seconds=2)
    assert "error" in upstreams.loop("#1011").json()
    assert [row["type"] for row in upstreams.suiteql(chain_query("#1011")).json()["items"]] == [
        "SalesOrd"]
    assert upstreams.shopify("name:#1011").json()["data"]["orders"]["nodes"][0]["refunds"] == []


def test_1012_loop_sends_garbage_for_this_order(upstreams):
    resp = upstreams.loop("#1012")
    assert resp.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        resp.json()
    assert upstreams.loop("#1001").json()["id"] == 37601001
    assert upstreams.search("1012").json()["data"][0]["amount"] == 5500
    assert [row["type"] for row in upstreams.suiteql(chain_query("#1012")).json()["items"]] == [
        "SalesOrd"]
