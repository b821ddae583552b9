"""Which payments a refund from the sidebar may go to, and how much each can still take back:
the counter-cases, for either processor.

Each row is a case a returns-finance lead would raise, on the core's own reconciliation of
small facts (tests/core/table.py). Payment ids are Shopify Payments' transaction gids or
Stripe's PaymentIntents; cash, gift cards and store payments are the shop's (POS), which
the processor can't refund. Every row is also run with each vendor list reversed.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from plugin.actions import Refused
from plugin.actions.cancel import candidates
from plugin.actions.refunds import RefundRequest, plan, refundable_payments
from plugin.core.model import SourceName
from plugin.core.reconcile import reconcile
from plugin.core.record import FlagCode
from tests.core.builders import NOW
from tests.core.table import ORDER, build

SALE = "gid://shopify/OrderTransaction/5001"
SALE2 = "gid://shopify/OrderTransaction/5002"
SHOPIFY = {"processor_gateways": ["shopify_payments"]}
SO = [{"id": "SO-1", "total": "100.00"}]

# (case, given, {payment id: what it can still take back}, a refused payment id or None)
ROWS = [
    ("a card sale on Shopify Payments, nothing refunded yet",
     {"payments": [{"id": SALE, "amount": "100.00"}], "sales": SO, **SHOPIFY},
     {SALE: "100.00"}, None),
    ("a $30 gift card and $70 on the card: only the card part goes back through the processor",
     {"payments": [{"id": SALE, "amount": "70.00"}], "sales": SO, **SHOPIFY,
      "shop": [{"id": "GC-1", "kind": "payment", "amount": "30.00", "tender": "gift_card",
                "gateway": "gift_card", "days": 12}]},
     {SALE: "70.00"}, "GC-1"),
    ("$20 cash at the till and $80 on the card: the cash is the store's to give back",
     {"payments": [{"id": SALE, "amount": "80.00"}], "sales": SO, **SHOPIFY,
      "shop": [{"id": "CASH-1", "kind": "payment", "amount": "20.00", "tender": "cash",
                "gateway": "cash", "location": "Brooklyn Store", "days": 12}]},
     {SALE: "80.00"}, "CASH-1"),
    ("a $20 refund still pending counts against the card",
     {"payments": [{"id": SALE, "amount": "100.00"}], "sales": SO, **SHOPIFY,
      "refunds": [{"id": "gid://shopify/OrderTransaction/7001", "pi": SALE,
                   "amount": "20.00", "state": "pending", "days": 1}]},
     {SALE: "80.00"}, None),
    ("a refund that failed gave nothing back: all of it is still there",
     {"payments": [{"id": SALE, "amount": "100.00"}], "sales": SO, **SHOPIFY,
      "refunds": [{"id": "gid://shopify/OrderTransaction/7001", "pi": SALE,
                   "amount": "20.00", "state": "failed", "days": 1}]},
     {SALE: "100.00"}, None),
    ("two partial refunds on one sale both count, whichever is listed first",
     {"payments": [{"id": SALE, "amount": "100.00"}], "sales": SO, **SHOPIFY,
      "refunds": [{"id": "gid://shopify/OrderTransaction/7001", "pi": SALE, "amount": "25.00",
                   "days": 3},
                  {"id": "gid://shopify/OrderTransaction/7002", "pi": SALE, "amount": "15.00",
                   "days": 2}]},
     {SALE: "60.00"}, None),
    ("the order was paid in two card captures; each takes back only its own",
     {"payments": [{"id": SALE, "amount": "60.00", "days": 12},
                   {"id": SALE2, "amount": "40.00", "days": 11}], "sales": SO, **SHOPIFY,
      "refunds": [{"id": "gid://shopify/OrderTransaction/7001", "pi": SALE2,
                   "amount": "40.00", "days": 2}]},
     {SALE: "60.00"}, SALE2),
    ("a chargeback the merchant lost took the money back already",
     {"payments": [{"id": SALE, "amount": "100.00"}], "sales": SO, **SHOPIFY,
      "disputes": [{"id": "gid://shopify/ShopifyPaymentsDispute/1", "pi": SALE,
                    "amount": "100.00", "state": "lost", "closed_days": 1}]},
     {}, SALE),
    ("an open chargeback: no refund while the bank decides",
     {"payments": [{"id": SALE, "amount": "100.00"}], "sales": SO, **SHOPIFY,
      "disputes": [{"id": "gid://shopify/ShopifyPaymentsDispute/1", "pi": SALE,
                    "amount": "100.00", "state": "open"}]},
     {}, SALE),
    ("on Stripe the same rules hold: a PaymentIntent, a gift card beside it",
     {"payments": [{"id": "pi_1", "amount": "70.00"}], "sales": SO,
      "shop": [{"id": "GC-1", "kind": "payment", "amount": "30.00", "tender": "gift_card",
                "gateway": "gift_card", "days": 12}]},
     {"pi_1": "70.00"}, "GC-1"),
]


def _reversed(given):
    return {k: list(reversed(v)) if isinstance(v, list) else v for k, v in given.items()}


def truth_of(given, currency="USD"):
    results, settings = build({"given": given, "currency": currency})
    return reconcile(ORDER, results, NOW, settings)


@pytest.mark.parametrize("flip", [False, True], ids=["as-listed", "reversed"])
@pytest.mark.parametrize(("case", "given", "left", "refused"), ROWS, ids=[r[0] for r in ROWS])
def test_refundable_payments(case, given, left, refused, flip):
    truth = truth_of(_reversed(given) if flip else given)
    got = {p.payment_id: str(amount.to_decimal()) for p, amount in refundable_payments(truth)}
    assert got == left, case
    if refused is not None:
        with pytest.raises(Refused) as exc:
            plan(truth, RefundRequest("104", ORDER.number, refused, 100), 1)
        assert exc.value.status == 409, case


def test_more_than_a_payment_can_take_back_is_refused_with_what_is_left():
    truth = truth_of(ROWS[3][1])  # $80 left after a pending $20
    with pytest.raises(Refused) as exc:
        plan(truth, RefundRequest("104", ORDER.number, SALE, 8001), 1)
    assert exc.value.code == "over_refundable" and "$80.00" in exc.value.message
    assert plan(truth, RefundRequest("104", ORDER.number, SALE, 8000), 1).amount.amount_minor \
        == 8000


def test_a_refund_is_planned_in_the_currency_the_customer_paid():
    truth = truth_of({"payments": [{"id": SALE, "amount": "1500"}], **SHOPIFY,
                      "sales": [{"id": "SO-1", "total": "1500"}]}, currency="JPY")
    refund = plan(truth, RefundRequest("104", ORDER.number, SALE, 1500), 1)
    assert (refund.amount.currency, refund.amount.format()) == ("JPY", "¥1,500")


def test_the_same_request_has_the_same_key_and_any_other_a_different_one():
    truth = truth_of(ROWS[0][1])
    one = plan(truth, RefundRequest("104", ORDER.number, SALE, 2000, "duplicate"), 1)
    assert plan(truth, RefundRequest("104", ORDER.number, SALE, 2000, "duplicate"), 1).key \
        == one.key
    others = {plan(truth, RefundRequest(*args), inst).key for args, inst in [
        (("105", ORDER.number, SALE, 2000, "duplicate"), 1),
        (("104", ORDER.number, SALE, 2001, "duplicate"), 1),
        (("104", ORDER.number, SALE, 2000, None), 1),
        (("104", ORDER.number, SALE, 2000, "duplicate"), 2)]}
    assert one.key not in others and len(others) == 4


# ---------------------------------------------------------------- cancelling, per processor

DOUBLE = {"payments": [{"id": SALE, "amount": "100.00"}], "sales": SO, **SHOPIFY,
          "refunds": [{"id": "gid://shopify/OrderTransaction/7001", "pi": SALE,
                       "amount": "100.00", "days": 2},
                      {"id": "gid://shopify/OrderTransaction/7002", "pi": SALE,
                       "amount": "100.00", "state": "pending", "days": 1}]}


def _on(truth, system):
    report = truth.sources[SourceName.PROCESSOR]
    return replace(truth, sources={**truth.sources,
                                   SourceName.PROCESSOR: replace(report, system=system)})


def test_shopify_payments_can_cancel_no_refund_so_each_says_why_not():
    truth = truth_of(DOUBLE)
    assert {f.code for f in truth.flags} & {FlagCode.DUPLICATE_REFUND, FlagCode.OVER_REFUND}
    [pending] = candidates(_on(truth, "shopify_payments"))
    assert pending.refund_id == "gid://shopify/OrderTransaction/7002"
    assert pending.why_not is not None and "Shopify Payments can't cancel" in pending.why_not
    # On Stripe the same pending refund is already on its way to the bank: also not from here,
    # for Stripe's own reason.
    [on_stripe] = candidates(_on(truth, "stripe"))
    assert on_stripe.why_not is not None and "on its way" in on_stripe.why_not
