"""Every flag: a case that raises it and near-misses that must not."""

from __future__ import annotations

from dataclasses import replace

import pytest

from plugin.core.model import PortalRefund, RefundState
from plugin.core.reconcile import reconcile
from plugin.core.record import FlagCode
from plugin.core.settings import ReconcileSettings

from .builders import (
    NOW,
    ORDER,
    ago,
    cref,
    dispute,
    memo,
    money,
    p_refund,
    payment,
    portal_return,
    ra,
    receipt,
    results,
    sales_order,
    store_return,
)

SETTINGS = ReconcileSettings(processor_gateways=frozenset({"stripe"}))
PAID = dict(payments=[payment()], so=sales_order())
FULL_CHAIN = dict(
    ras=[ra(code="G")], receipts=[receipt()], memos=[memo()],
    crefs=[cref(re="re_1")],
)

CASES = [
    # (id, code, raises?, results kwargs)
    ("zone1", FlagCode.RETURN_NOT_IN_ERP, True,
     dict(PAID, portal=[portal_return(label="in_transit")])),
    ("zone1-within-sync-lag", FlagCode.RETURN_NOT_IN_ERP, False,
     dict(PAID, portal=[portal_return(created=ago(hours=1))])),
    ("zone1-erp-down", FlagCode.RETURN_NOT_IN_ERP, False,
     dict(PAID, portal=[portal_return()], erp_status="timeout")),
    ("zone1-ra-linked", FlagCode.RETURN_NOT_IN_ERP, False,
     dict(PAID, portal=[portal_return()], ras=[ra()])),
    ("zone1-still-in-review", FlagCode.RETURN_NOT_IN_ERP, False,
     dict(PAID, portal=[portal_return(raw="needs review")])),

    ("zone2", FlagCode.ERP_REFUND_NOT_AT_PROCESSOR, True,
     dict(PAID, ras=[ra(code="G")], memos=[memo()], crefs=[cref()])),
    ("zone2-quoted-re-missing", FlagCode.ERP_REFUND_NOT_AT_PROCESSOR, True,
     dict(PAID, ras=[ra(code="G")], memos=[memo()], crefs=[cref(re="re_gone")],
          refunds=[p_refund(rid="re_other", amount=999, created=ago(days=30))])),
    ("zone2-matched-by-re-id", FlagCode.ERP_REFUND_NOT_AT_PROCESSOR, False,
     dict(PAID, **FULL_CHAIN, refunds=[p_refund()])),
    ("zone2-matched-by-amount-window", FlagCode.ERP_REFUND_NOT_AT_PROCESSOR, False,
     dict(PAID, ras=[ra(code="G")], memos=[memo()], crefs=[cref()],
          refunds=[p_refund(created=ago(days=3))])),
    ("zone2-search-lag", FlagCode.ERP_REFUND_NOT_AT_PROCESSOR, False,
     dict(PAID, crefs=[cref(created=ago(minutes=30))])),
    ("zone2-processor-down", FlagCode.ERP_REFUND_NOT_AT_PROCESSOR, False,
     dict(so=sales_order(), crefs=[cref()], processor_status="error")),

    ("zone3", FlagCode.STORE_RETURN_NOT_IN_INVENTORY, True,
     dict(PAID, stores=[store_return()])),
    ("zone3-received-at-store", FlagCode.STORE_RETURN_NOT_IN_INVENTORY, False,
     dict(PAID, stores=[store_return()],
          receipts=[receipt(ra_id="RAX", sku="SKU-9", location="brooklyn store")])),
    ("zone3-received-elsewhere", FlagCode.STORE_RETURN_NOT_IN_INVENTORY, True,
     dict(PAID, stores=[store_return()],
          receipts=[receipt(ra_id="RAX", sku="SKU-9", location="Main Warehouse")])),
    ("zone3-too-recent", FlagCode.STORE_RETURN_NOT_IN_INVENTORY, False,
     dict(PAID, stores=[store_return(created=ago(hours=3))])),
    ("zone3-erp-down", FlagCode.STORE_RETURN_NOT_IN_INVENTORY, False,
     dict(payments=[payment()], stores=[store_return()], erp_status="error")),

    ("processor-refund-unbooked", FlagCode.PROCESSOR_REFUND_NOT_IN_ERP, True,
     dict(PAID, refunds=[p_refund(created=ago(days=3))])),
    ("processor-refund-booked-by-metadata", FlagCode.PROCESSOR_REFUND_NOT_IN_ERP, False,
     dict(PAID, memos=[memo(tran="CM-7788", created=ago(days=9))],
          refunds=[p_refund(created=ago(days=3), erp_refund_id="CM-7788")])),
    ("processor-refund-fresh", FlagCode.PROCESSOR_REFUND_NOT_IN_ERP, False,
     dict(PAID, refunds=[p_refund(created=ago(hours=2))])),
    ("processor-refund-pending", FlagCode.PROCESSOR_REFUND_NOT_IN_ERP, False,
     dict(PAID, refunds=[p_refund(state=RefundState.PENDING, created=ago(days=2))])),
    ("processor-refund-erp-down", FlagCode.PROCESSOR_REFUND_NOT_IN_ERP, False,
     dict(payments=[payment()], refunds=[p_refund()], erp_status="timeout")),

    ("duplicate-same-return-key", FlagCode.DUPLICATE_REFUND, True,
     dict(PAID, refunds=[p_refund("re_1", 5000, return_key="R1", created=ago(hours=5)),
                         p_refund("re_2", 5000, return_key="R1", created=ago(hours=4))])),
    ("duplicate-same-amount-same-day", FlagCode.DUPLICATE_REFUND, True,
     dict(PAID, refunds=[p_refund("re_1", 2500, created=ago(hours=5)),
                         p_refund("re_2", 2500, created=ago(hours=1))])),
    ("duplicate-same-amount-days-apart", FlagCode.DUPLICATE_REFUND, False,
     dict(PAID, refunds=[p_refund("re_1", 2500, return_key="R1", created=ago(days=5)),
                         p_refund("re_2", 2500, return_key="R2", created=ago(days=1))])),
    ("duplicate-first-failed", FlagCode.DUPLICATE_REFUND, False,
     dict(PAID, refunds=[p_refund("re_1", 5000, RefundState.FAILED, return_key="R1"),
                         p_refund("re_2", 5000, return_key="R1")])),

    ("partials-for-one-return", FlagCode.DUPLICATE_REFUND, False,
     dict(PAID, portal=[portal_return(raw="closed")], ras=[ra(code="G")], memos=[memo()],
          refunds=[p_refund("re_1", 3000, return_key="R1"), p_refund("re_2", 1000, return_key="R1")])),
    # Worth more than the return is an amount problem, not a duplicate.
    ("partials-exceed-the-return", FlagCode.REFUND_AMOUNT_MISMATCH, True,
     dict(PAID, portal=[portal_return(raw="closed")], ras=[ra(code="G")], memos=[memo()],
          refunds=[p_refund("re_1", 3000, return_key="R1"), p_refund("re_2", 2000, return_key="R1")])),
    ("partials-exceed-the-return-not-duplicate", FlagCode.DUPLICATE_REFUND, False,
     dict(PAID, portal=[portal_return(raw="closed")], ras=[ra(code="G")], memos=[memo()],
          refunds=[p_refund("re_1", 3000, return_key="R1"), p_refund("re_2", 2000, return_key="R1")])),
    ("duplicate-different-returns", FlagCode.DUPLICATE_REFUND, False,
     dict(PAID, refunds=[p_refund("re_1", 5000, return_key="R1", created=ago(hours=5)),
                         p_refund("re_2", 5000, return_key="R2", created=ago(hours=4))])),
    ("over-refund", FlagCode.OVER_REFUND, True,
     dict(payments=[payment(8000)], refunds=[
         p_refund("re_1", 6000, created=ago(days=3)),
         p_refund("re_2", 3000, RefundState.PENDING, created=ago(hours=1))])),
    ("over-refund-exactly-full", FlagCode.OVER_REFUND, False,
     dict(payments=[payment(8000)], refunds=[
         p_refund("re_1", 6000, created=ago(days=3)),
         p_refund("re_2", 2000, RefundState.PENDING, created=ago(hours=1))])),

    ("amount-mismatch", FlagCode.REFUND_AMOUNT_MISMATCH, True,
     dict(PAID, portal=[portal_return(raw="closed")], ras=[ra(code="G")],
          memos=[memo(amount=5000)], crefs=[cref(amount=5000, re="re_1")],
          refunds=[p_refund(amount=4500, return_key="R1")])),
    ("amount-match", FlagCode.REFUND_AMOUNT_MISMATCH, False,
     dict(PAID, portal=[portal_return(raw="closed")], **FULL_CHAIN,
          refunds=[p_refund(return_key="R1")])),

    ("currency-mismatch", FlagCode.CURRENCY_MISMATCH, True,
     dict(payments=[payment()], so=sales_order(currency="EUR"))),
    ("currency-same", FlagCode.CURRENCY_MISMATCH, False,
     dict(payments=[payment(currency="JPY")], so=sales_order(currency="JPY"))),

    ("pending-stale", FlagCode.REFUND_PENDING_STALE, True,
     dict(PAID, refunds=[p_refund(state=RefundState.PENDING, created=ago(days=10))])),
    ("requires-action-stale", FlagCode.REFUND_PENDING_STALE, True,
     dict(PAID, refunds=[p_refund(state=RefundState.REQUIRES_ACTION, created=ago(days=9))])),
    ("pending-over-weekend", FlagCode.REFUND_PENDING_STALE, False,
     # Friday → Tuesday is 2 business days.
     dict(PAID, refunds=[p_refund(state=RefundState.PENDING, created=ago(days=4))])),

    ("failed-but-erp-refunded", FlagCode.REFUND_FAILED_ERP_REFUNDED, True,
     dict(PAID, **FULL_CHAIN, refunds=[p_refund(state=RefundState.FAILED,
                                                failure_reason="expired_or_canceled_card")])),
    ("failed-then-retried", FlagCode.REFUND_FAILED_ERP_REFUNDED, False,
     dict(PAID, **FULL_CHAIN, refunds=[
         p_refund(state=RefundState.FAILED, created=ago(days=3)),
         p_refund("re_2", created=ago(days=2))])),

    ("dispute-after-refund", FlagCode.DISPUTE_WITH_REFUND, True,
     dict(PAID, refunds=[p_refund(amount=3000)], disputes=[dispute()])),
    ("dispute-open-return", FlagCode.DISPUTE_WITH_REFUND, True,
     dict(PAID, portal=[portal_return(created=ago(hours=1))], disputes=[dispute()])),
    ("dispute-won", FlagCode.DISPUTE_WITH_REFUND, False,
     dict(PAID, refunds=[p_refund(amount=3000)], disputes=[dispute(status="won")])),
    ("dispute-nothing-else", FlagCode.DISPUTE_WITH_REFUND, False,
     dict(PAID, disputes=[dispute()])),

    ("received-not-refunded", FlagCode.RECEIVED_NOT_REFUNDED, True,
     dict(PAID, portal=[portal_return(label="delivered", created=ago(days=9))],
          ras=[ra(code="F", created=ago(days=8))], receipts=[receipt(created=ago(days=5))])),
    ("received-recently", FlagCode.RECEIVED_NOT_REFUNDED, False,
     dict(PAID, portal=[portal_return(label="delivered", created=ago(days=9))],
          ras=[ra(code="F", created=ago(days=8))], receipts=[receipt(created=ago(days=1))])),
    ("received-and-refunded", FlagCode.RECEIVED_NOT_REFUNDED, False,
     dict(PAID, portal=[portal_return(label="delivered", created=ago(days=9))],
          ras=[ra(code="F", created=ago(days=8))], receipts=[receipt(created=ago(days=5))],
          refunds=[p_refund(return_key="R1", created=ago(days=4))])),

    ("portal-closed-ra-open", FlagCode.RETURN_STATE_DIVERGENCE, True,
     dict(PAID, portal=[portal_return(raw="closed")], ras=[ra(code="B")])),
    ("erp-cancelled-portal-open", FlagCode.RETURN_STATE_DIVERGENCE, True,
     dict(PAID, portal=[portal_return(raw="open")], ras=[ra(code="C")])),
    ("both-closed", FlagCode.RETURN_STATE_DIVERGENCE, False,
     dict(PAID, portal=[portal_return(raw="closed")], ras=[ra(code="G")])),

    ("order-not-in-erp", FlagCode.ORDER_NOT_IN_ERP, True,
     dict(payments=[payment()])),
    ("order-not-in-erp-erp-down", FlagCode.ORDER_NOT_IN_ERP, False,
     dict(payments=[payment()], erp_status="timeout")),
    ("order-not-in-erp-fresh", FlagCode.ORDER_NOT_IN_ERP, False,
     dict(payments=[payment(created=ago(hours=2))])),

    ("portal-refund-not-at-processor", FlagCode.PORTAL_REFUND_NOT_AT_PROCESSOR, True,
     dict(PAID, portal=[replace(portal_return(raw="closed"), refunds=(
         PortalRefund(money(4000), "stripe", "re_missing"),))])),
    ("portal-refund-at-processor", FlagCode.PORTAL_REFUND_NOT_AT_PROCESSOR, False,
     dict(PAID, portal=[replace(portal_return(raw="closed"), refunds=(
         PortalRefund(money(4000), "stripe", "re_1"),))], refunds=[p_refund()])),
    ("portal-refund-processor-down", FlagCode.PORTAL_REFUND_NOT_AT_PROCESSOR, False,
     dict(so=sales_order(), portal=[replace(portal_return(raw="closed"), refunds=(
         PortalRefund(money(4000), "stripe", "re_missing"),))], processor_status="timeout")),

    ("erp-timeout", FlagCode.SOURCE_UNAVAILABLE, True, dict(payments=[payment()], erp_status="timeout")),
    ("erp-knows-nothing", FlagCode.SOURCE_UNAVAILABLE, False, dict(payments=[payment()])),
    # A source with no record of the order (join-key mismatch, other payment method) is not a
    # source that is missing one document: no "missing in X" flag.
    ("zone1-erp-has-no-such-order", FlagCode.RETURN_NOT_IN_ERP, False,
     dict(payments=[payment()], portal=[portal_return()])),
    ("processor-refund-erp-has-no-such-order", FlagCode.PROCESSOR_REFUND_NOT_IN_ERP, False,
     dict(payments=[payment()], refunds=[p_refund(created=ago(days=3))])),
    ("received-processor-has-no-such-order", FlagCode.RECEIVED_NOT_REFUNDED, False,
     dict(so=sales_order(), portal=[portal_return(label="delivered", created=ago(days=9))],
          ras=[ra(code="F", created=ago(days=8))], receipts=[receipt(created=ago(days=5))])),
]


@pytest.mark.parametrize(("code", "raises", "kwargs"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_flag(code, raises, kwargs):
    truth = reconcile(ORDER, results(**kwargs), NOW, SETTINGS)
    codes = [f.code for f in truth.flags]
    assert (code in codes) is raises, f"flags were {codes}"
    for flag in truth.flags:
        assert flag.message and flag.suggested_action and flag.evidence


def test_every_flag_code_has_a_raising_case():
    raised = {c[1] for c in CASES if c[2]}
    assert raised == set(FlagCode)


def test_clean_order_has_no_flags():
    kwargs = dict(PAID, portal=[portal_return(raw="closed", label="delivered",
                                              created=ago(days=10))],
                  **FULL_CHAIN, refunds=[p_refund(return_key="R1", erp_refund_id="CM-1")])
    truth = reconcile(ORDER, results(**kwargs), NOW)
    assert truth.flags == ()
    assert truth.erp.status == "confirmed"


def test_missing_in_erp_flags_are_suppressed_when_erp_did_not_answer():
    kwargs = dict(payments=[payment()], portal=[portal_return()], stores=[store_return()],
                  refunds=[p_refund(created=ago(days=3))], erp_status="timeout")
    codes = {f.code for f in reconcile(ORDER, results(**kwargs), NOW).flags}
    assert codes == {FlagCode.SOURCE_UNAVAILABLE}


def test_flags_are_sorted_most_severe_first():
    kwargs = dict(payments=[payment(8000)], erp_status="timeout", refunds=[
        p_refund("re_1", 6000, created=ago(days=3)),
        p_refund("re_2", 3000, RefundState.PENDING, created=ago(hours=1))])
    codes = [f.code for f in reconcile(ORDER, results(**kwargs), NOW).flags]
    assert codes == [FlagCode.OVER_REFUND, FlagCode.SOURCE_UNAVAILABLE]


def test_duplicate_flag_names_both_refunds_once():
    kwargs = dict(PAID, refunds=[p_refund("re_1", 5000, return_key="R1", created=ago(hours=5)),
                                 p_refund("re_2", 5000, return_key="R1", created=ago(hours=4))])
    dupes = [f for f in reconcile(ORDER, results(**kwargs), NOW).flags
             if f.code is FlagCode.DUPLICATE_REFUND]
    assert len(dupes) == 1
    assert "re_1" in dupes[0].message and "re_2" in dupes[0].message
    assert "$100.00" in dupes[0].message


def test_zone2_action_carries_deterministic_idempotency_key():
    kwargs = dict(PAID, portal=[portal_return(raw="closed")], ras=[ra(code="G")],
                  memos=[memo()], crefs=[cref()])
    flag = next(f for f in reconcile(ORDER, results(**kwargs), NOW).flags
                if f.code is FlagCode.ERP_REFUND_NOT_AT_PROCESSOR)
    assert "refund:1001:CR-1" in flag.suggested_action
    # …and the same key when the portal didn't answer.
    kwargs["portal_status"] = "timeout"
    again = next(f for f in reconcile(ORDER, results(**kwargs), NOW).flags
                 if f.code is FlagCode.ERP_REFUND_NOT_AT_PROCESSOR)
    assert "refund:1001:CR-1" in again.suggested_action


def test_every_flag_code_has_a_title():
    from plugin.core.record import FLAG_TITLES

    assert set(FLAG_TITLES) == set(FlagCode)


def test_credit_memo_paid_in_two_instalments_is_one_refund():
    kwargs = dict(PAID, portal=[portal_return(raw="closed")], ras=[ra(code="G")], memos=[memo()],
                  crefs=[cref("CR1", "CR-1", amount=2000), cref("CR2", "CR-2", amount=2000)],
                  refunds=[p_refund(erp_refund_id="CM-1", return_key="R1")])
    assert reconcile(ORDER, results(**kwargs), NOW).flags == ()


def test_partial_refunds_are_matched_to_their_memo_as_a_sum():
    kwargs = dict(PAID, portal=[portal_return(raw="closed")], ras=[ra(code="G")], memos=[memo()],
                  refunds=[p_refund("re_1", 3000, return_key="R1"),
                           p_refund("re_2", 1000, return_key="R1")])
    truth = reconcile(ORDER, results(**kwargs), NOW)
    assert truth.flags == ()
    assert {r.erp_credit_memo.tran_id for r in truth.refunds} == {"CM-1"}
