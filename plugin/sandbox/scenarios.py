"""Seeded sandbox orders #1001-#1012, each built relative to "now" to show one reconciliation case."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..core.money import Money
from .dialects import (
    JSON,
    NetSuiteChain,
    card_method,
    klarna_method,
    loop_label,
    loop_line,
    loop_refund,
    loop_return,
    refund_metadata,
    shopify_order,
    shopify_refund,
    shopify_refund_line,
    shopify_transaction,
    stripe_charge,
    stripe_dispute,
    stripe_payment_intent,
    stripe_refund,
)
from .faults import FaultSpec

WAREHOUSE = "Main Warehouse"
STORE = "Brooklyn Store"


@dataclass
class OrderData:
    """Everything each simulated vendor holds about one order, in its own dialect."""

    loop_returns: list[JSON] = field(default_factory=list)
    payment_intents: list[JSON] = field(default_factory=list)
    charges: list[JSON] = field(default_factory=list)
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
    # What the customer writes in the seeded helpdesk ticket.
    ask: str = "I can't find my order anywhere. Can you look it up?"

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


def _card_sale(number: str, payment: JSON, paid: Money, placed: datetime) -> JSON:
    """The shop's record of the card payment Stripe took (gateway "stripe", the charge id)."""
    return shopify_transaction(int(number) * 100 + 1, "SALE", "stripe", paid, placed,
                               card=("Visa", "4242"), authorization=payment["latest_charge"])


def _shop(number: str, payment: JSON, paid: Money, placed: datetime,
          refunds: list[JSON] | None = None, extra: list[JSON] | None = None) -> JSON:
    """The Shopify order: the card sale, any other transactions, and its refunds."""
    txns = [_card_sale(number, payment, paid, placed), *(extra or [])]
    return shopify_order(number, paid.currency, refunds or [], txns)


def _charges(*payments: JSON, method: JSON | None = None) -> list[JSON]:
    return [stripe_charge(p, method) for p in payments]


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
        charges=_charges(payment),
        refunds=[stripe],
        netsuite=erp,
        shopify_order=_shop(number, payment, paid, now - placed),
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
        charges=_charges(payment),
        netsuite=erp,
        shopify_order=_shop(number, payment, paid, payment_placed(payment)),
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
        charges=_charges(payment),
        netsuite=erp,
        shopify_order=_shop(number, payment, paid, payment_placed(payment)),
    )


def _store_return_not_in_inventory(now: datetime) -> OrderData:
    number, paid = "1004", usd("60.00")
    payment, erp, _ = _paid_order(number, paid, now - _days(8))
    # Refunded in cash at the register: a Shopify refund, nothing at Stripe or in NetSuite.
    cash = shopify_transaction(int(number) * 100 + 2, "REFUND", "cash", paid, now - _days(2))
    store_refund = shopify_refund(
        9100000 + int(number), now - _days(2), paid,
        [shopify_refund_line("CANDLE-FIG", "Fig Candle", 1, location=STORE, price=paid)], [cash],
    )
    return OrderData(
        payment_intents=[payment],
        charges=_charges(payment),
        netsuite=erp,
        shopify_order=_shop(number, payment, paid, now - _days(8), [store_refund], [cash]),
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
    # An agent's goodwill refund with no return behind it pushes refunds past the capture;
    # it still waits on the customer (requires_action), so it can be cancelled.
    data.refunds.append(stripe_refund(
        f"re_Sbx{number}b", data.payment_intents[0], usd("30.00"), now - _hours(1),
        status="requires_action", metadata=refund_metadata(number),
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
        charges=_charges(payment),
        refunds=[refund],
        disputes=[stripe_dispute(
            f"dp_Sbx{number}", payment, paid, now - _hours(12), status="needs_response",
            reason="credit_not_processed", due_by=now + _days(6),
        )],
        netsuite=erp,
        shopify_order=_shop(number, payment, paid, now - _days(12)),
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
        charges=_charges(payment),
        netsuite=erp,
        shopify_order=_shop(number, payment, paid, payment_placed(payment)),
    )


def _paid_only(number: str, paid: Money, placed_days_ago: int) -> Callable[[datetime], OrderData]:
    def build(now: datetime) -> OrderData:
        placed = now - _days(placed_days_ago)
        payment, erp, _ = _paid_order(number, paid, placed)
        return OrderData(payment_intents=[payment], charges=_charges(payment), netsuite=erp,
                         shopify_order=_shop(number, payment, paid, placed))
    return build


def payment_placed(payment: JSON) -> datetime:
    """When a PaymentIntent was created."""
    return datetime.fromtimestamp(payment["created"], UTC)


# ---------------------------------------------------------------- bookkeeping and other tenders


def _booked_return(now: datetime, number: str, paid: Money, refund: Money, *,
                   sku: str, title: str) -> tuple[OrderData, NetSuiteChain, dict[str, str], JSON]:
    """A closed one-line return refunded at Stripe; the ERP has the RA and receipt only."""
    loop_id = _loop_id(number)
    payment, erp, so = _paid_order(number, paid, now - _days(14))
    ra = erp.return_authorization(so, "G", refund, now - _days(9), loop_return_id=loop_id)
    erp.item_receipt(ra, now - _days(7), [(sku, 1, WAREHOUSE)])
    data = OrderData(
        loop_returns=[loop_return(
            loop_id, number, "closed", now - _days(10), updated=now - _days(6), total=refund,
            lines=[loop_line(_line_id(number, 1), sku, title)],
            labels=[loop_label("delivered", f"9400{loop_id}")], outcome="refund",
        )],
        payment_intents=[payment],
        charges=_charges(payment),
        netsuite=erp,
        shopify_order=_shop(number, payment, paid, now - _days(14)),
    )
    return data, erp, ra, payment


def _split_booking(now: datetime) -> OrderData:
    number, refund = "1013", usd("40.00")
    data, erp, ra, payment = _booked_return(now, number, usd("100.00"), refund,
                                            sku="BELT-BRN", title="Leather Belt - Brown")
    stripe = stripe_refund(f"re_Sbx{number}a", payment, refund, now - _days(6),
                           metadata=refund_metadata(number))
    data.refunds.append(stripe)
    data.loop_returns[0]["refunds"] = [loop_refund(refund, stripe["id"])]
    # Finance booked the one card refund as two memos: goods and tax, each paid separately.
    for part in (usd("36.00"), usd("4.00")):
        memo = erp.credit_memo(ra, part, now - _days(5))
        erp.customer_refund(memo, part, now - _days(5), memo="Refund for return")
    return data


def _batch_posting(now: datetime) -> OrderData:
    number, refund = "1014", usd("40.00")
    data, erp, ra, payment = _booked_return(now, number, usd("100.00"), refund,
                                            sku="GLOVES-GRY", title="Knit Gloves - Grey")
    # Items then shipping, refunded a day apart; the ERP's weekly batch posted one refund.
    for suffix, part, days in (("a", usd("32.00"), 6), ("b", usd("8.00"), 5)):
        data.refunds.append(stripe_refund(f"re_Sbx{number}{suffix}", payment, part,
                                          now - _days(days), metadata=refund_metadata(number)))
    memo = erp.credit_memo(ra, refund, now - _days(1))
    erp.customer_refund(memo, refund, now - _days(1), memo="Weekly refund batch")
    return data


def _store_cash_refund(now: datetime) -> OrderData:
    number, paid = "1015", usd("60.00")
    payment, erp, so = _paid_order(number, paid, now - _days(9))
    cash = shopify_transaction(int(number) * 100 + 2, "REFUND", "cash", paid, now - _days(2))
    store_refund = shopify_refund(
        9100000 + int(number), now - _days(2), paid,
        [shopify_refund_line("VASE-BLUE", "Glass Vase - Blue", 1, location=STORE, price=paid)],
        [cash])
    ra = erp.return_authorization(so, "G", paid, now - _days(2))
    erp.item_receipt(ra, now - _days(1), [("VASE-BLUE", 1, STORE)])
    erp.cash_refund(ra, paid, now - _days(1), location=STORE, memo="Till refund")
    return OrderData(
        payment_intents=[payment],
        charges=_charges(payment),
        netsuite=erp,
        shopify_order=_shop(number, payment, paid, now - _days(9), [store_refund], [cash]),
    )


def _exchange_received(now: datetime) -> OrderData:
    number, paid, value = "1016", usd("90.00"), usd("45.00")
    loop_id = _loop_id(number)
    payment, erp, so = _paid_order(number, paid, now - _days(15))
    ra = erp.return_authorization(so, "F", value, now - _days(9), loop_return_id=loop_id)
    erp.item_receipt(ra, now - _days(5), [("JEANS-32", 1, WAREHOUSE)])
    return OrderData(
        loop_returns=[loop_return(
            loop_id, number, "open", now - _days(10), total=value,
            lines=[loop_line(_line_id(number, 1), "JEANS-32", "Slim Jeans - 32")],
            labels=[loop_label("delivered", f"9400{loop_id}")], outcome="exchange",
            exchange_order="#2016", exchange_value=value, flat_label=True,
        )],
        payment_intents=[payment],
        charges=_charges(payment),
        netsuite=erp,
        shopify_order=_shop(number, payment, paid, now - _days(15)),
    )


def _store_credit(now: datetime) -> OrderData:
    number, paid, credit = "1017", usd("70.00"), usd("35.00")
    loop_id = _loop_id(number)
    payment, erp, so = _paid_order(number, paid, now - _days(16))
    ra = erp.return_authorization(so, "G", credit, now - _days(9), loop_return_id=loop_id)
    erp.item_receipt(ra, now - _days(6), [("MUG-SET", 1, WAREHOUSE)])
    # The gift card Loop issued sits in the ERP as an open credit memo.
    erp.credit_memo(ra, credit, now - _days(5), status="A", memo="Loop gift card")
    return OrderData(
        loop_returns=[loop_return(
            loop_id, number, "closed", now - _days(10), updated=now - _days(5), total=credit,
            lines=[loop_line(_line_id(number, 1), "MUG-SET", "Stoneware Mug Set")],
            labels=[loop_label("delivered", f"9400{loop_id}")], outcome="gift_card",
            gift_card=credit,
        )],
        payment_intents=[payment],
        charges=_charges(payment),
        netsuite=erp,
        shopify_order=_shop(number, payment, paid, now - _days(16)),
    )


def _gift_card_and_card(now: datetime) -> OrderData:
    number = "1018"
    card_part, gift_part, total = usd("70.00"), usd("30.00"), usd("100.00")
    loop_id = _loop_id(number)
    placed = now - _days(12)
    payment, erp, so = _paid_order(number, card_part, placed)
    erp.rows[0]["total"] = "100.00"  # the sale is $100; Stripe took the card's $70
    ra = erp.return_authorization(so, "G", total, now - _days(8), loop_return_id=loop_id)
    erp.item_receipt(ra, now - _days(6), [("BOOTS-9", 1, WAREHOUSE)])
    memo = erp.credit_memo(ra, total, now - _days(4))
    stripe = stripe_refund(f"re_Sbx{number}a", payment, card_part, now - _days(4),
                           metadata=refund_metadata(number, str(loop_id), memo["tranid"]))
    erp.customer_refund(memo, card_part, now - _days(4), memo=f"Stripe refund {stripe['id']}")
    erp.customer_refund(memo, gift_part, now - _days(4), memo="Back to gift card",
                        payment_method="Gift Certificate")
    gift_sale = shopify_transaction(int(number) * 100 + 2, "SALE", "gift_card", gift_part, placed)
    gift_back = shopify_transaction(int(number) * 100 + 3, "REFUND", "gift_card", gift_part,
                                    now - _days(4), parent=int(number) * 100 + 2)
    refund = shopify_refund(9100000 + int(number), now - _days(4), total,
                            [shopify_refund_line("BOOTS-9", "Chelsea Boots - 9",
                                                 location=WAREHOUSE, price=total)], [gift_back])
    return OrderData(
        loop_returns=[loop_return(
            loop_id, number, "closed", now - _days(9), updated=now - _days(4), total=total,
            lines=[loop_line(_line_id(number, 1), "BOOTS-9", "Chelsea Boots - 9")],
            labels=[loop_label("delivered", f"9400{loop_id}")], outcome="refund",
            refunds=[loop_refund(card_part, stripe["id"]),
                     loop_refund(gift_part, gateway="gift_card")],
        )],
        payment_intents=[payment],
        charges=_charges(payment),
        refunds=[stripe],
        netsuite=erp,
        shopify_order=_shop(number, payment, card_part, placed, [refund], [gift_sale, gift_back]),
    )


def _lost_chargeback_after_refund(now: datetime) -> OrderData:
    number, paid = "1019", usd("80.00")
    data = _refunded_return(now, number, paid, paid, placed=_days(40), returned=_days(30),
                            refunded=_days(25), sku="LAMP-FLOOR", title="Floor Lamp")
    # Refunded in full, then the bank sided with the customer on a chargeback: paid twice.
    data.disputes.append(stripe_dispute(
        f"dp_Sbx{number}", data.payment_intents[0], paid, now - _days(20), status="lost",
        reason="credit_not_processed", due_by=None, has_evidence=True))
    return data


def _held_for_review(now: datetime) -> OrderData:
    number, paid, value = "1020", usd("120.00"), usd("120.00")
    loop_id = _loop_id(number)
    payment, erp, so = _paid_order(number, paid, now - _days(14))
    ra = erp.return_authorization(so, "F", value, now - _days(8), loop_return_id=loop_id)
    erp.item_receipt(ra, now - _days(5), [("JACKET-RAIN-M", 1, WAREHOUSE)])
    return OrderData(
        loop_returns=[loop_return(
            loop_id, number, "needs review", now - _days(9), updated=now - _days(5), total=value,
            lines=[loop_line(_line_id(number, 1), "JACKET-RAIN-M", "Rain Jacket - M")],
            labels=[loop_label("delivered", f"9400{loop_id}")], outcome="refund",
        )],
        payment_intents=[payment],
        charges=_charges(payment, method=klarna_method()),
        netsuite=erp,
        shopify_order=_shop(number, payment, paid, now - _days(14)),
    )


def _expired_open_in_erp(now: datetime) -> OrderData:
    number, paid, value = "1021", usd("55.00"), usd("55.00")
    loop_id = _loop_id(number)
    payment, erp, so = _paid_order(number, paid, now - _days(45))
    erp.return_authorization(so, "B", value, now - _days(34), loop_return_id=loop_id)
    return OrderData(
        loop_returns=[loop_return(
            loop_id, number, "expired", now - _days(35), updated=now - _days(7), total=value,
            lines=[loop_line(_line_id(number, 1), "TOTE-CANVAS", "Canvas Tote")],
            labels=[loop_label("pre_transit", f"9400{loop_id}")], outcome="refund",
        )],
        payment_intents=[payment],
        charges=_charges(payment, method=card_method("mastercard", "5454", "apple_pay")),
        netsuite=erp,
        shopify_order=_shop(number, payment, paid, now - _days(45)),
    )


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("clean", "1001", "Everything agrees",
             "$120.00 paid; a one-line Loop return closed 10 days ago with its label delivered; "
             "NetSuite RA (Refunded), item receipt at Main Warehouse, credit memo and customer "
             "refund of $40.00 naming the Stripe refund; Stripe refund of $40.00 succeeded.",
             _clean, ask="I sent the tee back and got an email saying it was refunded. Can you "
                         "confirm the refund went through?"),
    Scenario("zone1_return_not_in_erp", "1002", "Return missing in the ERP",
             "$89.00 paid; a Loop return opened 3 days ago is in transit, but NetSuite has only "
             "the sales order and no return authorization.",
             _return_not_in_erp, ask="I shipped my return three days ago. Can you confirm you "
                                     "have it on file?"),
    Scenario("zone2_erp_refund_not_at_processor", "1003", "ERP refund never reached Stripe",
             "$150.00 paid; NetSuite credited and refunded $45.00 two days ago (memo without a "
             "Stripe id), and Stripe has no refund on the payment.",
             _erp_refund_not_at_processor, ask="You told me a refund was issued two days ago, "
                                               "but nothing has shown up on my card."),
    Scenario("zone3_store_return_not_in_inventory", "1004", "Store return not in inventory",
             "$60.00 paid; returned over the counter at Brooklyn Store 2 days ago and refunded "
             "in cash, but NetSuite has no item receipt for it.",
             _store_return_not_in_inventory, ask="I returned it at the Brooklyn store and got "
                                                 "cash back. I just want to make sure it is "
                                                 "closed out."),
    Scenario("partial_refund", "1005", "Partial refund, consistent",
             "$100.00 paid for 2 lines; 1 line returned and refunded $35.00 in Loop, NetSuite "
             "and Stripe; $65.00 remains refundable.",
             _partial_refund, ask="I returned one of the two items. How much is still "
                                  "refundable?"),
    Scenario("duplicate_refund", "1006", "Return refunded twice",
             "$110.00 paid; one $50.00 return, but Stripe holds two succeeded $50.00 refunds "
             "40 minutes apart with the same return_key.",
             _duplicate_refund, ask="My card shows two refunds for one return. Is that a "
                                    "mistake?"),
    Scenario("over_refund", "1007", "Refunds exceed the payment",
             "$80.00 paid; $60.00 refunded for the return 3 days ago plus a $30.00 pending "
             "goodwill refund an hour ago: $90.00 refunded against $80.00 captured.",
             _over_refund, ask="I got more money back than I paid. What is going on?"),
    Scenario("zero_decimal_currency", "1008", "Yen order, consistent",
             "¥12,000 paid (Stripe amount 12000 jpy); ¥4,500 returned and refunded in Loop, "
             "NetSuite and Stripe.",
             _zero_decimal_currency, ask="I returned part of my order. Please confirm the "
                                         "refund in yen."),
    Scenario("dispute", "1009", "Chargeback on a refunded, returning order",
             "$120.00 paid; a Loop return opened yesterday (RA pending receipt), a $30.00 "
             "goodwill refund, and a $120.00 dispute needing a response within 6 days.",
             _dispute, ask="My bank opened a dispute, but I had also started a return. What "
                           "happens now?"),
    Scenario("source_down", "1010", "ERP unavailable",
             "$75.00 paid; a Loop return opened 3 days ago; NetSuite answers 503 for this "
             "order.",
             _source_down, {"erp": FaultSpec(status=503)},
             ask="I started a return three days ago. What is the status?"),
    Scenario("source_slow", "1011", "Payment processor too slow",
             "$42.00 paid, no return; Stripe answers only after 6 seconds for this order.",
             _paid_only("1011", usd("42.00"), 5), {"processor": FaultSpec(delay_ms=6000)},
             ask="Can you check the payment on my order?"),
    Scenario("malformed_upstream", "1012", "Returns portal sends garbage",
             "$55.00 paid; Loop answers this order with HTTP 200 and a body that is not JSON.",
             _paid_only("1012", usd("55.00"), 4), {"portal": FaultSpec(malformed=True)},
             ask="Did my return get created?"),
    Scenario("split_refund_two_memos", "1013", "One refund booked as two credit memos",
             "$100.00 paid; a $40.00 Stripe refund for the return; finance booked it as two "
             "credit memos ($36.00 goods, $4.00 tax), each paid by its own customer refund, "
             "neither quoting the Stripe id. Nothing is missing.",
             _split_booking, ask="The website says my refund was $40 but I see two amounts in "
                                 "your email. Which is right?"),
    Scenario("batch_posting", "1014", "Two refunds booked days later as one",
             "$100.00 paid; Stripe refunded $32.00 (items) and $8.00 (shipping) 6 and 5 days "
             "ago; NetSuite's weekly batch posted one $40.00 credit memo and refund yesterday.",
             _batch_posting, ask="Did I get my shipping refunded as well as the gloves?"),
    Scenario("store_cash_refund", "1015", "Store cash refund, booked",
             "$60.00 paid online by card; returned at Brooklyn Store 2 days ago for $60.00 "
             "cash; NetSuite has the RA, the item receipt at the store and the cash refund.",
             _store_cash_refund, ask="I returned the vase at your Brooklyn shop. Is everything "
                                     "settled?"),
    Scenario("exchange_received", "1016", "Exchange received, replacement under way",
             "$90.00 paid; a Loop exchange (replacement order #2016, worth $45.00) whose parcel "
             "NetSuite received 5 days ago. No refund is due.",
             _exchange_received, ask="You got my jeans back. Where is the new pair?"),
    Scenario("store_credit_gift_card", "1017", "Return settled as a gift card",
             "$70.00 paid; the return was received and Loop issued a $35.00 gift card; "
             "NetSuite holds it as an open credit memo. No card refund is due.",
             _store_credit, ask="I chose store credit for my mugs. How do I use it?"),
    Scenario("gift_card_and_card", "1018", "Split tender: gift card and card",
             "$100.00 paid as a $30.00 gift card and $70.00 on the card; the full return went "
             "back $70.00 to the card (Stripe) and $30.00 to the gift card (Shopify), booked in "
             "NetSuite as one memo and two refunds.",
             _gift_card_and_card, ask="I paid partly with a gift card. Where did my refund go?"),
    Scenario("lost_chargeback_after_refund", "1019", "Refunded, then a chargeback was lost",
             "$80.00 paid; refunded in full 25 days ago, then the customer's bank won an $80.00 "
             "chargeback: paid out twice.",
             _lost_chargeback_after_refund, ask="My bank says they refunded me. Did you refund "
                                                "me too?"),
    Scenario("return_held_for_review", "1020", "Return held for review after arrival",
             "$120.00 paid with Klarna; the return reached the warehouse 5 days ago and Loop "
             "holds it for review; no refund until the review decides.",
             _held_for_review, ask="You have had my jacket for five days. Why no refund?"),
    Scenario("expired_return_open_in_erp", "1021", "Expired return still open in the ERP",
             "$55.00 paid (Apple Pay); the Loop return expired unshipped, but NetSuite's RA still "
             "waits for the goods.",
             _expired_open_in_erp, ask="I never sent the tote back. Can I still return it?"),
)

_BY_NUMBER = {scenario.order_number: scenario for scenario in SCENARIOS}


def scenario_for_order(number: str) -> Scenario | None:
    """The scenario seeded for an order number ("1001" or "#1001"), if any."""
    return _BY_NUMBER.get(number.strip().removeprefix("#"))


def scenarios_json() -> list[dict[str, Any]]:
    """The scenarios as the control route and the product's demo picker list them."""
    return [{"scenario": s.name, "order_id": s.order_number, "title": s.title,
             "description": s.description} for s in SCENARIOS]
