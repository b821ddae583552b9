"""The merged record: headline, eligibility, returns, inventory and timeline."""

from plugin.core.model import RefundState, ReturnState, SourceName
from plugin.core.reconcile import reconcile
from plugin.core.record import FlagCode

from .builders import (
    NOW,
    ORDER,
    ago,
    cref,
    memo,
    p_refund,
    payment,
    portal_return,
    ra,
    receipt,
    results,
    sales_order,
    store_return,
)


def truth(**kwargs):
    return reconcile(ORDER, results(**kwargs), NOW)


def test_headline_refund_succeeded_and_received():
    t = truth(payments=[payment()], so=sales_order(),
              portal=[portal_return(raw="closed", created=ago(days=10))],
              ras=[ra(code="G")], receipts=[receipt(created=ago(days=8))],
              memos=[memo()], crefs=[cref(re="re_1")],
              refunds=[p_refund(amount=2500, created=ago(days=7), return_key="R1")])
    assert t.headline == ("We refunded $25.00 to your card on 3 March; it can take up to 10 "
                          "business days to show on your statement. We received your return on "
                          "2 March and it's now complete.")
    assert t.headline_meanings == ("REFUNDED", "RETURN_CLOSED")


def test_headline_pending_refund_and_in_transit_return():
    t = truth(payments=[payment()], portal=[portal_return(label="in_transit")], ras=[ra()],
              refunds=[p_refund(state=RefundState.PENDING, created=ago(days=1))])
    assert t.headline.startswith("A refund of $40.00 to your card is on its way, started on "
                                 "9 March; it usually shows within 5 to 10 business days.")
    assert "on its way back to us with USPS (tracking 9400100000000000000000)" in t.headline


def test_headline_no_return_no_refund():
    t = truth(payments=[payment(created=ago(days=20))], so=sales_order())
    assert t.headline == "This order has no return or refund; $120.00 was paid on 18 February."
    assert t.order_status == "paid"
    assert t.returns == ()


def test_headline_unknown_order():
    t = truth(pos_found=False)
    assert not t.found
    assert t.order_status == "not_found"
    assert t.headline == "We couldn't find order #1001."


def test_headline_says_when_a_source_did_not_answer_without_naming_it():
    t = truth(payments=[payment()], portal=[portal_return(raw="closed")], refunds=[p_refund()],
              erp_status="timeout")
    assert "couldn't be checked just now" in t.headline
    assert "ERP" not in t.headline and "netsuite" not in t.headline
    assert t.partial


def test_headline_erp_refund_not_paid():
    t = truth(payments=[payment()], so=sales_order(), ras=[ra(code="G")], memos=[memo()],
              crefs=[cref(amount=4500, created=ago(days=2))])
    assert t.headline.startswith("A refund of $45.00 was recorded on 8 March, but we can't see "
                                 "it on its way to you yet")


def test_eligibility_remaining_after_partial_refund():
    t = truth(payments=[payment(10000)], refunds=[p_refund(amount=3500),
                                                  p_refund("re_2", 1000, RefundState.PENDING)])
    e = t.eligibility
    assert (e.captured.amount_minor, e.refunded.amount_minor, e.pending.amount_minor,
            e.remaining.amount_minor) == (10000, 3500, 1000, 5500)
    assert e.eligible
    assert t.order_status == "partially_refunded"


def test_eligibility_blocked_by_duplicate():
    t = truth(payments=[payment(10000)], refunds=[
        p_refund("re_1", 2000, return_key="R1"), p_refund("re_2", 2000, return_key="R1")])
    assert not t.eligibility.eligible
    assert "duplicate refund" in t.eligibility.reason


def test_eligibility_unknown_when_processor_down():
    t = truth(processor_status="timeout", so=sales_order())
    assert t.eligibility.remaining is None and not t.eligibility.eligible


def test_zero_decimal_currency_amounts_are_exact():
    t = truth(payments=[payment(12000, "JPY")], so=sales_order(12000, "JPY"),
              refunds=[p_refund(amount=4500, currency="JPY", created=ago(hours=2))])
    assert t.eligibility.remaining.amount_minor == 7500
    assert "¥4,500" in t.headline
    assert FlagCode.CURRENCY_MISMATCH not in {f.code for f in t.flags}


def test_return_state_prefers_most_advanced_source():
    t = truth(payments=[payment()], portal=[portal_return(label="in_transit")],
              ras=[ra(code="B")], receipts=[receipt()])
    (ret,) = t.returns
    assert ret.state is ReturnState.RECEIVED
    assert ret.erp_ra.tran_id == "RMA-1"


def test_inventory_pending_until_erp_receipt():
    t = truth(payments=[payment()], portal=[portal_return(lines=(("SKU-1", 2),))], ras=[ra()],
              receipts=[receipt(qty=1)], stores=[store_return()])
    mail, store = t.inventory
    assert (mail.sku, mail.quantity, mail.received_quantity, mail.status) == ("SKU-1", 2, 1,
                                                                              "pending")
    assert (store.channel, store.location, store.status) == ("store", "Brooklyn Store", "pending")


def test_inventory_unknown_when_erp_down():
    t = truth(payments=[payment()], portal=[portal_return()], erp_status="error")
    assert [i.status for i in t.inventory] == ["unknown"]
    assert t.erp.status == "unknown"


def test_timeline_merges_sources_in_time_order():
    t = truth(payments=[payment()], so=sales_order(), portal=[portal_return(created=ago(days=3))],
              ras=[ra(created=ago(days=3, hours=-1))], refunds=[p_refund(created=ago(days=1))])
    sources = [e.source for e in t.timeline]
    # Same instant (payment and sales order): ordered by source name, never by list order.
    assert sources == [SourceName.ERP, SourceName.PROCESSOR, SourceName.PORTAL, SourceName.ERP,
                       SourceName.PROCESSOR]
    assert [e.at for e in t.timeline] == sorted(e.at for e in t.timeline)


def test_erp_only_refund_is_listed_as_approved_in_erp():
    t = truth(payments=[payment()], so=sales_order(), ras=[ra(code="G")], memos=[memo()],
              crefs=[cref()])
    (ref,) = t.refunds
    assert ref.state is RefundState.APPROVED_IN_ERP
    assert ref.processor is None and ref.erp_refund.tran_id == "CR-1"
    assert ref.return_key == "RMA-1"


def test_two_refunds_quoting_one_booking_are_a_duplicate_not_a_missing_booking():
    # Both refunds carry erp_refund_id CM-1 (a call retried under a new key); the ERP booked
    # one refund quoting re_1. Both belong to that booking; the second is paid twice.
    t = truth(payments=[payment()], so=sales_order(), ras=[ra(code="G")], memos=[memo()],
              crefs=[cref(re="re_1", amount=5000)], refunds=[
                  p_refund("re_2", 5000, created=ago(days=4), erp_refund_id="CM-1"),
                  p_refund("re_1", 5000, created=ago(days=4, hours=1), erp_refund_id="CM-1")])
    by_id = {r.key: r for r in t.refunds}
    assert by_id["re_1"].erp_documents == by_id["re_2"].erp_documents == ("CM-1", "CR-1")
    codes = {f.code for f in t.flags}
    assert FlagCode.DUPLICATE_REFUND in codes and FlagCode.REFUND_AMOUNT_MISMATCH in codes
    assert FlagCode.PROCESSOR_REFUND_NOT_IN_ERP not in codes


def test_headline_never_says_no_refund_when_processor_did_not_answer():
    t = truth(so=sales_order(), portal=[portal_return(raw="closed")], ras=[ra(code="G")],
              processor_status="error")
    assert "no refund has been issued" not in t.headline.lower()
    assert "we can't confirm refunds right now" in t.headline.lower()


def test_headline_erp_refund_with_processor_down_does_not_claim_card_unrefunded():
    t = truth(so=sales_order(), ras=[ra(code="G")], memos=[memo()], crefs=[cref()],
              processor_status="timeout")
    assert "can't see it on its way" not in t.headline
    assert "we can't confirm right now that it has been sent" in t.headline


def test_headline_no_return_when_processor_timed_out():
    t = truth(so=sales_order(), processor_status="timeout")
    assert t.headline == ("We can't confirm returns and refunds for this order right now; "
                          "please check back shortly.")


def test_headline_prefers_the_return_still_moving():
    t = truth(payments=[payment()], portal=[
        portal_return("R1", raw="open", label="in_transit", created=ago(days=5)),
        portal_return("R2", raw="cancelled", created=ago(days=1))])
    assert "on its way back" in t.headline


def test_an_ra_a_mail_return_could_claim_is_not_taken_for_a_store_return():
    """The ERP names the store otherwise; its RA with a cash refund there has the same total
    as an unlinked mail return, so it stays the mail return's, in any listing order."""
    from tests.core.table import ORDER as TABLE_ORDER
    from tests.core.table import build

    given = {
        "payments": [{"id": "pi_1", "amount": "120.00", "days": 8}],
        "sales": [{"id": "SO-1", "total": "120.00"}],
        "stores": [{"id": "SR-1", "days": 3, "lines": [["CANDLE-FIG", 1]], "amount": "60.00"}],
        "shop": [{"id": "T-1", "kind": "refund", "amount": "60.00", "tender": "cash",
                  "refund": "SR-1", "location": "Brooklyn Store", "days": 3}],
        "portal": [{"id": "R1", "state": "closed", "total": "60.00", "days": 6}],
        "ras": [{"id": "RA-9", "state": "closed", "from": "SO-1", "days": 1, "total": "60.00"}],
        "crefs": [{"id": "CS-R-1", "amount": "60.00", "tender": "cash", "from": "RA-9",
                   "location": "BK01 Brooklyn Retail", "days": 1}]}
    for flip in (False, True):
        g = {k: list(reversed(v)) if flip else v for k, v in given.items()}
        results, settings = build({"given": g})
        truth = reconcile(TABLE_ORDER, results, NOW, settings)
        tied = {r.key: r.erp_ra.internal_id if r.erp_ra else None for r in truth.returns}
        assert tied == {"R1": "RA-9", "SR-1": None}
