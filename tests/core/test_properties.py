"""Properties of the merged record that must hold for every order, not just the table's rows."""

from __future__ import annotations

import random
import re
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from plugin.core.headline import MONEY_MOVED, Meaning
from plugin.core.model import (
    CreditState,
    Dispute,
    DisputeState,
    ErpApplication,
    ErpCreditMemo,
    ErpCustomerRefund,
    ErpFacts,
    ErpReturnAuthorization,
    ErpSale,
    ErrorKind,
    Payment,
    PortalFacts,
    PortalRefund,
    PortalReturn,
    PosFacts,
    ProcessorFacts,
    ProcessorRefund,
    RefundState,
    ReturnLine,
    ReturnOutcome,
    ReturnState,
    SaleKind,
    ShopTransaction,
    ShopTransactionKind,
    ShopTransactionStatus,
    SourceName,
    SourceReport,
    SourceResult,
    SourceResults,
    SourceStatus,
    Tender,
)
from plugin.core.money import Money
from plugin.core.reconcile import reconcile
from plugin.core.record import FlagCode, MoneyOutKind
from plugin.core.settings import ReconcileSettings

from .builders import NOW, SYSTEMS
from .table import ORDER, build, load_cases

SETTINGS = ReconcileSettings(processor_gateways=frozenset({"stripe"}))
# A "missing in X" flag needs X to have answered and know the order (OK) — except "order not
# in the ERP", which needs the ERP to have answered that it doesn't (NOT_FOUND).
MISSING_IN = {
    FlagCode.RETURN_NOT_IN_ERP: (SourceName.ERP, SourceStatus.OK),
    FlagCode.PROCESSOR_REFUND_NOT_IN_ERP: (SourceName.ERP, SourceStatus.OK),
    FlagCode.STORE_RETURN_NOT_IN_INVENTORY: (SourceName.ERP, SourceStatus.OK),
    FlagCode.ORDER_NOT_IN_ERP: (SourceName.ERP, SourceStatus.NOT_FOUND),
    FlagCode.ERP_REFUND_NOT_AT_PROCESSOR: (SourceName.PROCESSOR, SourceStatus.OK),
    FlagCode.PORTAL_REFUND_NOT_AT_PROCESSOR: (SourceName.PROCESSOR, SourceStatus.OK),
}
SYSTEM_WORDS = re.compile(r"\b(ERP|processor|portal|POS|Stripe|Loop|NetSuite|Shopify|Zendesk|"
                          r"re_\w+|pi_\w+|CM-\d|CR-\d|RA-\d)\b", re.IGNORECASE)

# ---------------------------------------------------------------- random orders

amounts = st.sampled_from([1000, 2000, 2500, 4000, 4001, 5000])
ages = st.floats(min_value=0.1, max_value=40)
currencies = st.sampled_from(["USD", "USD", "USD", "EUR"])


@st.composite
def orders(draw):
    """A random but plausible order: payments, refunds, ERP bookings, returns, shop money."""
    cur = "USD"
    pay = Payment("pi_1", Money(12000, cur), Money(12000, cur), "succeeded",
                  NOW - timedelta(days=30), "card", Tender.CARD, "Visa ending 4242", "stripe")
    refunds = tuple(
        ProcessorRefund(f"re_{i}", "pi_1", Money(draw(amounts), draw(currencies)),
                        draw(st.sampled_from(list(RefundState)[1:])), "x",
                        NOW - timedelta(days=draw(ages)), None,
                        draw(st.sampled_from([None, "R1", "R2"])), None)
        for i in range(draw(st.integers(0, 4))))
    ids = [r.refund_id for r in refunds]
    disputes = tuple(
        Dispute(f"dp_{i}", "pi_1", Money(draw(amounts), cur), "s",
                draw(st.sampled_from(list(DisputeState))), NOW - timedelta(days=draw(ages)))
        for i in range(draw(st.integers(0, 1))))
    ras = tuple(ErpReturnAuthorization(f"{i}00", f"RA-{i}", "x",
                                       draw(st.sampled_from(list(ReturnState))),
                                       NOW - timedelta(days=draw(ages)), None,
                                       draw(st.sampled_from([None, "R1", "R2"])))
                for i in range(draw(st.integers(0, 2))))
    memos = tuple(ErpCreditMemo(f"{i}10", f"CM-{i}", draw(st.sampled_from([None, "000", "100"])),
                                Money(draw(amounts), cur), "x",
                                NOW - timedelta(days=draw(ages)),
                                draw(st.sampled_from(list(CreditState))),
                                tuple(ErpApplication(f"{i}9{j}", f"DOC-{i}{j}",
                                                     Money(draw(st.sampled_from([500, 1000])),
                                                           cur),
                                                     draw(st.booleans()), draw(st.booleans()))
                                      for j in range(draw(st.integers(0, 2)))))
                  for i in range(draw(st.integers(0, 2))))
    crefs = tuple(ErpCustomerRefund(
        f"{i}20", f"CR-{i}",
        tuple(m.internal_id for m in memos if draw(st.booleans())),
        Money(draw(amounts), draw(currencies)), NOW - timedelta(days=draw(ages)),
        tuple(x for x in ids if draw(st.booleans())),
        draw(st.sampled_from([Tender.UNKNOWN, Tender.CARD, Tender.CASH])))
        for i in range(draw(st.integers(0, 3))))
    portal = tuple(PortalReturn(
        f"R{i}", ORDER.name, draw(st.sampled_from(list(ReturnState))), "x",
        NOW - timedelta(days=draw(ages)), None, Money(draw(amounts), cur),
        (ReturnLine("SKU", 1),), None,
        tuple(PortalRefund(Money(draw(amounts), cur), "stripe",
                           draw(st.sampled_from([None, *ids, "re_gone"])))
              for _ in range(draw(st.integers(0, 1)))),
        draw(st.sampled_from(list(ReturnOutcome))),
        credit_issued=Money(draw(amounts), cur) if draw(st.booleans()) else None)
        for i in (1, 2)[:draw(st.integers(0, 2))])
    shop = tuple(ShopTransaction(
        f"T{i}", draw(st.sampled_from(list(ShopTransactionKind))),
        draw(st.sampled_from(list(ShopTransactionStatus))), Money(draw(amounts), cur),
        draw(st.sampled_from([Tender.CASH, Tender.GIFT_CARD, Tender.CARD])),
        draw(st.sampled_from(["cash", "gift_card", "stripe"])), NOW - timedelta(days=draw(ages)))
        for i in range(draw(st.integers(0, 2))))
    facts = {
        SourceName.PORTAL: PortalFacts(ORDER.name, portal),
        SourceName.PROCESSOR: ProcessorFacts(ORDER.name, (pay,), refunds, disputes),
        SourceName.ERP: ErpFacts(ORDER.name, (ErpSale("000", "SO-1", SaleKind.SALES_ORDER, "B",
                                                      Money(12000, cur), NOW - timedelta(30)),),
                                 ras, (), memos, crefs),
        SourceName.POS: PosFacts(ORDER.name, True, (), cur, None, shop),
    }
    statuses = {s: draw(st.sampled_from(["ok", "ok", "ok", "timeout", "error", "unused"]))
                for s in SourceName}
    if draw(st.integers(0, 5)) == 0:  # the ERP has never heard of the order
        facts[SourceName.ERP] = ErpFacts(ORDER.name)
    return SourceResults(**{s.value: _result(s, facts[s], statuses[s]) for s in SourceName})


def _result(source, facts, status):
    if status == "timeout":
        return SourceResult(SourceReport(source, SYSTEMS[source], SourceStatus.TIMEOUT, None, 1,
                                         ErrorKind.TIMEOUT, "timeout"))
    if status == "error":
        return SourceResult(SourceReport(source, SYSTEMS[source], SourceStatus.ERROR, None, 1,
                                         ErrorKind.UNAVAILABLE, "HTTP 503"))
    if status == "unused":
        return SourceResult(SourceReport(source, SYSTEMS[source], SourceStatus.NOT_CONFIGURED))
    ok = SourceStatus.OK if facts.found else SourceStatus.NOT_FOUND
    return SourceResult(SourceReport(source, SYSTEMS[source], ok, NOW, 1), facts)


def shuffled(results: SourceResults, rnd: random.Random) -> SourceResults:
    """The same facts with every list in another order."""
    def mix(items):
        items = list(items)
        rnd.shuffle(items)
        return tuple(items)

    def facts_of(result, **lists):
        if result.facts is None:
            return result
        return replace(result, facts=replace(result.facts, **{
            k: mix(getattr(result.facts, k)) for k in lists}))

    return SourceResults(
        portal=facts_of(results.portal, returns=1),
        processor=facts_of(results.processor, payments=1, refunds=1, disputes=1),
        erp=facts_of(results.erp, sales=1, return_authorizations=1, item_receipts=1,
                     credit_memos=1, customer_refunds=1),
        pos=facts_of(results.pos, store_returns=1, transactions=1),
    )


def fingerprint(truth):
    """Everything an agent or customer sees, as plain comparable data."""
    e = truth.eligibility
    return (
        truth.headline, truth.currency, truth.order_status,
        tuple((f.code, f.severity, f.subject, f.message, f.evidence) for f in truth.flags),
        (e.captured, e.refunded, e.pending, e.remaining, e.eligible, e.reason),
        tuple((x.key, x.kind, x.amount, x.state, x.counted, x.confirms) for x in truth.ledger),
        tuple((r.key, r.erp_documents, r.match) for r in truth.refunds),
    )


# ---------------------------------------------------------------- properties

TABLE = load_cases()


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(TABLE), st.randoms(use_true_random=False))
def test_table_rows_do_not_depend_on_list_order(row, rnd):
    results, row_settings = build(row)
    first = reconcile(ORDER, results, NOW, row_settings)
    again = reconcile(ORDER, shuffled(results, rnd), NOW, row_settings)
    assert fingerprint(again) == fingerprint(first)


@settings(max_examples=300, deadline=None)
@given(orders(), st.randoms(use_true_random=False))
def test_random_orders_do_not_depend_on_list_order(results, rnd):
    first = reconcile(ORDER, results, NOW, SETTINGS)
    again = reconcile(ORDER, shuffled(results, rnd), NOW, SETTINGS)
    assert fingerprint(again) == fingerprint(first)


@settings(max_examples=300, deadline=None)
@given(orders())
def test_nothing_is_missing_in_a_source_that_did_not_answer(results):
    truth = reconcile(ORDER, results, NOW, SETTINGS)
    for flag in truth.flags:
        needs = MISSING_IN.get(flag.code)
        if needs is not None:
            source, status = needs
            assert truth.sources[source].status is status, flag


@settings(max_examples=300, deadline=None)
@given(orders())
def test_headline_claims_only_what_a_source_confirms(results):
    truth = reconcile(ORDER, results, NOW, SETTINGS)
    meanings = set(truth.headline_meanings)
    counted = [e for e in truth.ledger if e.counted]
    if Meaning.REFUNDED in meanings:
        assert any(e.state in ("succeeded", "paid_out") and e.kind in (
            MoneyOutKind.REFUND, MoneyOutKind.STORE_REFUND, MoneyOutKind.ERP_REFUND)
            for e in counted), truth.headline
    if Meaning.STORE_CREDIT_ISSUED in meanings:
        assert any(e.kind in (MoneyOutKind.STORE_CREDIT, MoneyOutKind.ERP_CREDIT_MEMO)
                   for e in counted), truth.headline
    if Meaning.CHARGEBACK_LOST in meanings:
        assert any(e.kind is MoneyOutKind.CHARGEBACK for e in counted), truth.headline
    assert MONEY_MOVED <= set(Meaning)


@settings(max_examples=300, deadline=None)
@given(orders())
def test_headline_never_denies_a_refund_a_source_records(results):
    truth = reconcile(ORDER, results, NOW, SETTINGS)
    if Meaning.NO_REFUND_YET not in truth.headline_meanings:
        return
    assert not [e for e in truth.ledger if e.counted], truth.headline
    assert not [r for r in truth.refunds], truth.headline
    assert all(s.status.answered or not s.status.in_use for s in truth.sources.values())
    portal = results.portal.facts
    assert not (portal and any(r.refunds for r in portal.returns)), truth.headline


@settings(max_examples=300, deadline=None)
@given(orders())
def test_headline_is_plain_words_and_totals_never_mix_currencies(results):
    truth = reconcile(ORDER, results, NOW, SETTINGS)
    assert not SYSTEM_WORDS.search(truth.headline), truth.headline
    e = truth.eligibility
    amounts = [m for m in (e.captured, e.refunded, e.pending, e.remaining, e.order_captured,
                           e.order_given_back, e.order_remaining, e.chargebacks) if m is not None]
    assert {m.currency for m in amounts} <= {truth.currency}
    for balance in e.tenders:
        assert {balance.captured.currency, balance.paid_back.currency,
                balance.refundable.currency} == {truth.currency}


@given(st.sampled_from(["JPY", "USD", "KWD", "CLF"]),
       st.integers(min_value=-10**15, max_value=10**15))
def test_minor_units_round_trip(currency, minor):
    money = Money(minor, currency)
    assert Money.from_decimal(money.to_decimal(), currency) == money
    assert Money.from_decimal(str(money.to_decimal()), currency) == money
    places = {"JPY": 0, "USD": 2, "KWD": 3, "CLF": 4}[currency]
    assert money.to_decimal() == Decimal(minor).scaleb(-places)
