"""Seeded sandbox orders #1001-#1012, each built relative to "now" to show one reconciliation case."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..core.money import Money
from .dialects import (
    JSON,
    NetSuiteChain,
    loop_label,
    loop_line,
    loop_refund,
    loop_return,
    refund_metadata,
    shopify_order,
    shopify_refund,
    shopify_refund_line,
    stripe_dispute,
    stripe_payment_intent,
    stripe_refund,
)
from .faults import FaultSpec

SANDBOX_CREDENTIALS: dict[str, dict[str, str]] = {
    "loop": {"api_key": "sandbox-loop-key"},
    "stripe": {"secret_key": "sk_test_sandbox"},
    "netsuite": {
        "account_id": "TSTDRV0000",
        "consumer_key": "sandbox-ck",
        "consumer_secret": "sandbox-cs",
        "token_id": "sandbox-token",
        "token_secret": "sandbox-ts",
    },
    "shopify_pos": {"access_token": "shpat_sandbox"},
}

WAREHOUSE = "Main Warehouse"
STORE = "Brooklyn Store"


@dataclass
class OrderData:
    """Everything each simulated vendor holds about one order, in its own dialect."""

    loop_returns: list[JSON] = field(default_factory=list)
    payment_intents: list[JSON] = field(default_factory=list)
    refunds: list[JSON] = field(default_factory=list)
    disputes: list[JSON] = field(default_factory=list)
    netsuite: NetSuiteChain | None = None
    shopify_order: JSON | None = None


@dataclass(frozen=True)
class Scenario:
    """A seeded order: its data (built relative to now) and the faults its requests suffer."""

    name: str
    order_number: str
    title: str
    description: str
    build: Callable[[datetime], OrderData]
    faults: dict[str, FaultSpec] = field(default_factory=dict)

    @property
    def order_name(self) -> str:
        """The storefront order name, "#1001"."""
        return f"#{self.order_number}"


def usd(amount: str) -> Money:
    """US dollars from a decimal string."""
    return Money.from_decimal(amount, "USD")


def _days(n: float) -> timedelta:
    return timedelta(days=n)


def _hours(n: float) -> timedelta:
    return timedelta(hours=n)


def _loop_id(number: str) -> int:
    return 37600000 + int(number)


def _line_id(number: str, n: int) -> int:
    return 15550000000 + int(number) * 10 + n


def _paid_order(number: str, paid: Money,
                placed: datetime) -> tuple[JSON, NetSuiteChain, dict[str, str]]:
    """The PaymentIntent and the NetSuite chain holding just the sales order."""
    payment = stripe_payment_intent(f"pi_Sbx{number}", paid, placed, number)
    erp = NetSuiteChain(number, paid.currency)
    sales_order = erp.sales_order(paid, placed)
    return payment, erp, sales_order


def _refunded_return(now: datetime, number: str, paid: Money, refund: Money, *,
                     placed: timedelta, returned: timedelta, refunded: timedelta,
                     sku: str, title: str) -> OrderData:
    """A one-line mail return received and refunded consistently in Loop, NetSuite and Stripe."""
    loop_id = _loop_id(number)
    payment, erp, so = _paid_order(number, paid, now - placed)
    ra = erp.return_authorization(so, "G", refund, now - returned, loop_return_id=loop_id)
    erp.item_receipt(ra, now - refunded - _hours(6), [(sku, 1, WAREHOUSE)])
    memo = erp.credit_memo(ra, refund, now - refunded)
    stripe = stripe_refund(f"re_Sbx{number}a", payment, refund, now - refunded,
                           metadata=refund_metadata(number, str(loop_id), memo["tranid"]))
    erp.customer_refund(memo, refund, now - refunded, memo=f"Stripe refund {stripe['id']}")
    return OrderData(
        loop_returns=[loop_return(
            loop_id, number, "closed", now - returned, updated=now - refunded, total=refund,
            lines=[loop_line(_line_id(number, 1), sku, title)],
            labels=[loop_label("delivered", f"9400{loop_id}")],
            refunds=[loop_refund(refund, stripe["id"])], outcome="refund",
        )],
        payment_intents=[payment],
        refunds=[stripe],
        netsuite=erp,
        shopify_order=shopify_order(number, paid.currency),
    )


def _clean(now: datetime) -> OrderData:
    return _refunded_return(now, "1001", usd("120.00"), usd("40.00"), placed=_days(14),
                            returned=_days(10), refunded=_days(7),
                            sku="TEE-BLK-M", title="Organic Tee - Black / M")


def _return_not_in_erp(now: datetime) -> OrderData:
    number, paid = "1002", usd("89.00")
    payment, erp, _ = _paid_order(number, paid, now - _days(6))
    loop_id = _loop_id(number)
    return OrderData(
        loop_returns=[loop_return(
            loop_id, number, "open", now - _days(3), updated=now - _days(2), total=paid,
            lines=[loop_line(_line_id(number, 1), "HOODIE-GRY-L", "Fleece Hoodie - Grey / L")],
            labels=[loop_label("in_transit", f"9400{loop_id}")], outcome="refund",
        )],
        payment_intents=[payment],
        netsuite=erp,
        shopify_order=shopify_order(number, "USD"),
    )


def _erp_refund_not_at_processor(now: datetime) -> OrderData:
    number, paid, refund = "1003", usd("150.00"), usd("45.00")
    loop_id = _loop_id(number)
    payment, erp, so = _paid_order(number, paid, now - _days(9))
    ra = erp.return_authorization(so, "G", refund, now - _days(5), loop_return_id=loop_id)
    erp.item_receipt(ra, now - _days(3), [("SCARF-WOOL-RED", 1, WAREHOUSE)])
    memo = erp.credit_memo(ra, refund, now - _days(2))
    # Refunded by hand in the ERP: the memo carries no re_ id and Stripe never saw it.
    erp.customer_refund(memo, refund, now - _days(2), memo=f"Refund for Loop return {loop_id}")
    return OrderData(
        loop_returns=[loop_return(
            loop_id, number, "closed", now - _days(5), updated=now - _days(2), total=refund,
            lines=[loop_line(_line_id(number, 1), "SCARF-WOOL-RED", "Wool Scarf - Red")],
            labels=[loop_label("delivered", f"9400{loop_id}")],
            refunds=[loop_refund(refund)], outcome="refund",
        )],
        payment_intents=[payment],
        netsuite=erp,
        shopify_order=shopify_order(number, "USD"),
    )


def _store_return_not_in_inventory(now: datetime) -> OrderData:
    number, paid = "1004", usd("60.00")
    payment, erp, _ = _paid_order(number, paid, now - _days(8))
    # Refunded in cash at the register: a Shopify refund, nothing at Stripe or in NetSuite.
    store_refund = shopify_refund(
        9100000 + int(number), now - _days(2), paid,
        [shopify_refund_line("CANDLE-FIG", "Fig Candle", 1, location=STORE)],
    )
    return OrderData(
        payment_intents=[payment],
        netsuite=erp,
        shopify_order=shopify_order(number, "USD", [store_refund]),
    )


def _partial_refund(now: datetime) -> OrderData:
    number, paid, refund = "1005", usd("100.00"), usd("35.00")
    # The customer keeps the second line (PLANTER-LG, $65.00), so $65.00 stays refundable.
    return _refunded_return(now, number, paid, refund, placed=_days(12), returned=_days(8),
                            refunded=_days(5), sku="MUG-SPECKLE", title="Speckled Mug")


def _duplicate_refund(now: datetime) -> OrderData:
    number = "1006"
    data = _refunded_return(now, number, usd("110.00"), usd("50.00"), placed=_days(10),
                            returned=_days(6), refunded=_days(4),
                            sku="SANDAL-TAN-8", title="Leather Sandal - Tan / 8")
    first = data.refunds[0]
    # A retry under a fresh idempotency key 40 minutes later paid the same return twice.
    data.refunds.append(stripe_refund(
        f"re_Sbx{number}b", data.payment_intents[0], usd("50.00"),
        now - _days(4) + timedelta(minutes=40), metadata=dict(first["metadata"]),
    ))
    return data


def _over_refund(now: datetime) -> OrderData:
    number = "1007"
    data = _refunded_return(now, number, usd("80.00"), usd("60.00"), placed=_days(9),
                            returned=_days(6), refunded=_days(3),
                            sku="LAMP-BRASS", title="Brass Desk Lamp")
    # An agent's goodwill refund with no return behind it pushes refunds past the capture.
    data.refunds.append(stripe_refund(
        f"re_Sbx{number}b", data.payment_intents[0], usd("30.00"), now - _hours(1),
        status="pending", metadata=refund_metadata(number),
    ))
    return data


def _zero_decimal_currency(now: datetime) -> OrderData:
    return _refunded_return(now, "1008", Money(12000, "JPY"), Money(4500, "JPY"),
                            placed=_days(11), returned=_days(7), refunded=_days(4),
                            sku="TEA-SET-SAKURA", title="Sakura Tea Set")


def _dispute(now: datetime) -> OrderData:
    number, paid, goodwill = "1009", usd("120.00"), usd("30.00")
    loop_id = _loop_id(number)
    payment, erp, so = _paid_order(number, paid, now - _days(12))
    ra = erp.return_authorization(so, "B", paid, now - _days(1), loop_return_id=loop_id)
    memo = erp.credit_memo(ra, goodwill, now - _hours(20))
    refund = stripe_refund(f"re_Sbx{number}a", payment, goodwill, now - _hours(20),
                           metadata=refund_metadata(number, str(loop_id), memo["tranid"]))
    erp.customer_refund(memo, goodwill, now - _hours(20), memo=f"Stripe refund {refund['id']}")
    return OrderData(
        loop_returns=[loop_return(
            loop_id, number, "open", now - _days(1), total=paid,
            lines=[loop_line(_line_id(number, 1), "COAT-CAMEL-M", "Wool Coat - Camel / M")],
            labels=[loop_label("pre_transit", f"9400{loop_id}")], outcome="refund",
        )],
        payment_intents=[payment],
        refunds=[refund],
        disputes=[stripe_dispute(
            f"dp_Sbx{number}", payment, paid, now - _hours(12), status="needs_response",
            reason="credit_not_processed", due_by=now + _days(6),
        )],
        netsuite=erp,
        shopify_order=shopify_order(number, "USD"),
    )


def _source_down(now: datetime) -> OrderData:
    number, paid = "1010", usd("75.00")
    loop_id = _loop_id(number)
    payment, erp, so = _paid_order(number, paid, now - _days(7))
    # The RA exists, so nothing would be "missing" even if the ERP answered.
    erp.return_authorization(so, "B", paid, now - _days(3), loop_return_id=loop_id)
    return OrderData(
        loop_returns=[loop_return(
            loop_id, number, "open", now - _days(3), total=paid,
            lines=[loop_line(_line_id(number, 1), "BACKPACK-OLV", "Canvas Backpack - Olive")],
            labels=[loop_label("in_transit", f"9400{loop_id}")], outcome="refund",
        )],
        payment_intents=[payment],
        netsuite=erp,
        shopify_order=shopify_order(number, "USD"),
    )


def _paid_only(number: str, paid: Money, placed_days_ago: int) -> Callable[[datetime], OrderData]:
    def build(now: datetime) -> OrderData:
        payment, erp, _ = _paid_order(number, paid, now - _days(placed_days_ago))
        return OrderData(payment_intents=[payment], netsuite=erp,
                         shopify_order=shopify_order(number, paid.currency))
    return build


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("clean", "1001", "Everything agrees",
             "$120.00 paid; a one-line Loop return closed 10 days ago with its label delivered; "
             "NetSuite RA (Refunded), item receipt at Main Warehouse, credit memo and customer "
             "refund of $40.00 naming the Stripe refund; Stripe refund of $40.00 succeeded.",
             _clean),
    Scenario("zone1_return_not_in_erp", "1002", "Return missing in the ERP",
             "$89.00 paid; a Loop return opened 3 days ago is in transit, but NetSuite has only "
             "the sales order and no return authorization.",
             _return_not_in_erp),
    Scenario("zone2_erp_refund_not_at_processor", "1003", "ERP refund never reached Stripe",
             "$150.00 paid; NetSuite credited and refunded $45.00 two days ago (memo without a "
             "Stripe id), and Stripe has no refund on the payment.",
             _erp_refund_not_at_processor),
    Scenario("zone3_store_return_not_in_inventory", "1004", "Store return not in inventory",
             "$60.00 paid; returned over the counter at Brooklyn Store 2 days ago and refunded "
             "in cash, but NetSuite has no item receipt for it.",
             _store_return_not_in_inventory),
    Scenario("partial_refund", "1005", "Partial refund, consistent",
             "$100.00 paid for 2 lines; 1 line returned and refunded $35.00 in Loop, NetSuite "
             "and Stripe; $65.00 remains refundable.",
             _partial_refund),
    Scenario("duplicate_refund", "1006", "Return refunded twice",
             "$110.00 paid; one $50.00 return, but Stripe holds two succeeded $50.00 refunds "
             "40 minutes apart with the same return_key.",
             _duplicate_refund),
    Scenario("over_refund", "1007", "Refunds exceed the payment",
             "$80.00 paid; $60.00 refunded for the return 3 days ago plus a $30.00 pending "
             "goodwill refund an hour ago: $90.00 refunded against $80.00 captured.",
             _over_refund),
    Scenario("zero_decimal_currency", "1008", "Yen order, consistent",
             "¥12,000 paid (Stripe amount 12000 jpy); ¥4,500 returned and refunded in Loop, "
             "NetSuite and Stripe.",
             _zero_decimal_currency),
    Scenario("dispute", "1009", "Chargeback on a refunded, returning order",
             "$120.00 paid; a Loop return opened yesterday (RA pending receipt), a $30.00 "
             "goodwill refund, and a $120.00 dispute needing a response within 6 days.",
             _dispute),
    Scenario("source_down", "1010", "ERP unavailable",
             "$75.00 paid; a Loop return opened 3 days ago; NetSuite answers 503 for this "
             "order.",
             _source_down, {"erp": FaultSpec(status=503)}),
    Scenario("source_slow", "1011", "Payment processor too slow",
             "$42.00 paid, no return; Stripe answers only after 6 seconds for this order.",
             _paid_only("1011", usd("42.00"), 5), {"processor": FaultSpec(delay_ms=6000)}),
    Scenario("malformed_upstream", "1012", "Returns portal sends garbage",
             "$55.00 paid; Loop answers this order with HTTP 200 and a body that is not JSON.",
             _paid_only("1012", usd("55.00"), 4), {"portal": FaultSpec(malformed=True)}),
)

_BY_NUMBER = {scenario.order_number: scenario for scenario in SCENARIOS}


def scenario_for_order(number: str) -> Scenario | None:
    """The scenario seeded for an order number ("1001" or "#1001"), if any."""
    return _BY_NUMBER.get(number.strip().removeprefix("#"))


def scenarios_json() -> list[dict[str, Any]]:
    """The scenarios as the control route and the product's demo picker list them."""
    return [{"scenario": s.name, "order_id": s.order_number, "title": s.title,
             "description": s.description} for s in SCENARIOS]
