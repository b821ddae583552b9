"""Merge the sources' facts for one order into an OrderTruth and flag where they disagree."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from . import flags as flagrules
from .headline import compose_headline
from .model import (
    ErpCreditMemo,
    ErpCustomerRefund,
    ErpFacts,
    ErpReturnAuthorization,
    OrderRef,
    PortalFacts,
    PortalReturn,
    PosFacts,
    ProcessorFacts,
    ProcessorRefund,
    RefundState,
    ReturnState,
    SourceName,
    SourceResults,
)
from .money import sum_in
from .record import (
    ErpConfirmation,
    InventoryLine,
    MergedRefund,
    MergedReturn,
    OrderTruth,
    RefundEligibility,
    TimelineEvent,
)
from .settings import ReconcileSettings
from .states import LIVE_REFUND_STATES, TERMINAL_RETURN_STATES

# How far along a return is; used to pick the most advanced state any source reports.
_PROGRESS = {
    ReturnState.REQUESTED: 0,
    ReturnState.AUTHORIZED: 1,
    ReturnState.IN_TRANSIT: 2,
    ReturnState.PARTIALLY_RECEIVED: 3,
    ReturnState.RECEIVED: 4,
    ReturnState.CLOSED: 5,
}


@dataclass(frozen=True)
class Facts:
    """The facts of the sources that answered (None for a source that did not)."""

    portal: PortalFacts | None
    processor: ProcessorFacts | None
    erp: ErpFacts | None
    pos: PosFacts | None

    @classmethod
    def from_results(cls, order: OrderRef, results: SourceResults) -> Facts:
        def pick(result, empty):
            if not result.report.status.answered:
                return None
            return result.facts if result.facts is not None else empty

        return cls(
            portal=pick(results.portal, PortalFacts(order.name)),
            processor=pick(results.processor, ProcessorFacts(order.name)),
            erp=pick(results.erp, ErpFacts(order.name)),
            pos=pick(results.pos, PosFacts(order.name)),
        )


def reconcile(
    order: OrderRef,
    results: SourceResults,
    now: datetime,
    settings: ReconcileSettings | None = None,
) -> OrderTruth:
    """Build the merged record for `order` from each source's result, as of `now`."""
    settings = settings or ReconcileSettings()
    facts = Facts.from_results(order, results)
    currency = _order_currency(facts)
    returns = _merge_returns(facts)
    refunds = _merge_refunds(facts, returns, settings)
    payments = facts.processor.payments if facts.processor else ()
    disputes = facts.processor.disputes if facts.processor else ()
    found = any(
        f is not None and f.found for f in (facts.portal, facts.processor, facts.erp, facts.pos)
    )
    ctx = flagrules.Context(
        order=order,
        now=now,
        settings=settings,
        facts=facts,
        reports=results.reports(),
        currency=currency,
        returns=returns,
        refunds=refunds,
    )
    flags = flagrules.evaluate(ctx)
    eligibility = _eligibility(facts, currency, flags)
    inventory = _inventory(facts, returns)
    erp = _erp_confirmation(facts, returns, refunds)
    timeline = _timeline(facts)
    status = _order_status(found, facts, returns, refunds, eligibility)
    headline = compose_headline(
        order=order,
        now=now,
        found=found,
        reports=results.reports(),
        returns=returns,
        refunds=refunds,
        payments=payments,
    )
    return OrderTruth(
        order_number=order.number,
        order_name=order.name,
        generated_at=now,
        found=found,
        currency=currency,
        order_status=status,
        headline=headline,
        eligibility=eligibility,
        payments=payments,
        disputes=disputes,
        returns=returns,
        refunds=refunds,
        inventory=inventory,
        erp=erp,
        timeline=timeline,
        sources=results.reports(),
        flags=flags,
    )


# ---------------------------------------------------------------- helpers


def _order_currency(facts: Facts) -> str | None:
    """The currency the customer paid in: processor first, then ERP, portal, POS."""
    if facts.processor and facts.processor.payments:
        return facts.processor.payments[0].amount.currency
    if facts.erp and facts.erp.sales_order:
        return facts.erp.sales_order.total.currency
    if facts.portal:
        for ret in facts.portal.returns:
            if ret.total is not None:
                return ret.total.currency
        if facts.portal.currency:
            return facts.portal.currency
    if facts.pos and facts.pos.currency:
        return facts.pos.currency
    return None


def _combined_state(
    portal: PortalReturn | None, ra: ErpReturnAuthorization | None, received: bool
) -> ReturnState:
    """The most advanced state any source reports; a lone cancellation wins only if alone."""
    candidates = [s for s in (portal and portal.state, ra and ra.state) if s is not None]
    if received:
        candidates.append(ReturnState.RECEIVED)
    progress = [s for s in candidates if s in _PROGRESS]
    if progress:
        best = max(progress, key=_PROGRESS.__getitem__)
        # A portal that closed a return the ERP still has open: the ERP is the laggard,
        # but the goods' position is what the ERP says; keep the most advanced.
        return best
    return candidates[0] if candidates else ReturnState.REQUESTED


def _merge_returns(facts: Facts) -> tuple[MergedReturn, ...]:
    """Pair portal returns with ERP RAs (by the RA's portal id), then add store returns."""
    portal_returns = list(facts.portal.returns) if facts.portal else []
    erp = facts.erp
    ras = list(erp.return_authorizations) if erp else []
    by_portal_id = {ra.portal_return_id: ra for ra in ras if ra.portal_return_id}
    matched: dict[str, ErpReturnAuthorization] = {}
    for ret in portal_returns:
        ra = by_portal_id.get(ret.return_id)
        if ra is not None:
            matched[ret.return_id] = ra
    # Fallback for ERPs that don't carry the portal id: one unlinked RA, one unlinked RMA.
    unmatched_portal = [r for r in portal_returns if r.return_id not in matched]
    unlinked_ras = [
        ra for ra in ras if ra not in matched.values() and not ra.portal_return_id
    ]
    if len(unmatched_portal) == 1 and len(unlinked_ras) == 1:
        matched[unmatched_portal[0].return_id] = unlinked_ras[0]

    merged: list[MergedReturn] = []
    used_ras: set[str] = set()
    for ret in portal_returns:
        ra = matched.get(ret.return_id)
        merged.append(_merged_return(ret.return_id, "mail", ret, ra, erp))
        if ra is not None:
            used_ras.add(ra.internal_id)
    for ra in ras:
        if ra.internal_id not in used_ras:
            merged.append(_merged_return(ra.tran_id, "erp", None, ra, erp))
    if facts.pos:
        for store in facts.pos.store_returns:
            merged.append(
                MergedReturn(
                    key=store.refund_id,
                    state=ReturnState.RECEIVED,
                    channel="store",
                    store_return=store,
                )
            )
    return tuple(merged)


def _merged_return(
    key: str,
    channel: str,
    portal: PortalReturn | None,
    ra: ErpReturnAuthorization | None,
    erp: ErpFacts | None,
) -> MergedReturn:
    ra_id = ra.internal_id if ra else None
    receipts = tuple(r for r in erp.item_receipts if r.created_from == ra_id) if erp and ra else ()
    memos = tuple(m for m in erp.credit_memos if m.created_from == ra_id) if erp and ra else ()
    return MergedReturn(
        key=key,
        state=_combined_state(portal, ra, bool(receipts)),
        channel=channel,
        portal=portal,
        erp_ra=ra,
        receipts=receipts,
        credit_memos=memos,
    )


def _return_key_for_memo(memo: ErpCreditMemo, returns: tuple[MergedReturn, ...]) -> str | None:
    for ret in returns:
        if memo in ret.credit_memos:
            return ret.key
    return None


def _merge_refunds(
    facts: Facts, returns: tuple[MergedReturn, ...], settings: ReconcileSettings
) -> tuple[MergedRefund, ...]:
    """Pair processor refunds with ERP credit memos / customer refunds.

    Join order: the refund's metadata (erp_refund_id, or the ERP refund quoting the re_ id),
    then same amount within the match window; never on amount alone without a window.
    """
    processor_refunds = list(facts.processor.refunds) if facts.processor else []
    memos = list(facts.erp.credit_memos) if facts.erp else []
    erp_refunds = list(facts.erp.customer_refunds) if facts.erp else []
    memo_by_id = {m.internal_id: m for m in memos}
    memo_by_tran = {m.tran_id: m for m in memos}
    cref_by_tran = {c.tran_id: c for c in erp_refunds}
    cref_by_re = {c.processor_refund_id: c for c in erp_refunds if c.processor_refund_id}

    used_memos: set[str] = set()
    used_crefs: set[str] = set()
    pairs: list[tuple[ProcessorRefund, ErpCustomerRefund | None, ErpCreditMemo | None]] = []

    def memo_for(cref: ErpCustomerRefund | None) -> ErpCreditMemo | None:
        return memo_by_id.get(cref.applied_to) if cref and cref.applied_to else None

    def cref_for(memo: ErpCreditMemo) -> ErpCustomerRefund | None:
        return next(
            (c for c in erp_refunds if c.applied_to == memo.internal_id and c.internal_id
             not in used_crefs),
            None,
        )

    def claim(ref: ProcessorRefund, cref: ErpCustomerRefund | None,
              memo: ErpCreditMemo | None) -> None:
        memo = memo or memo_for(cref)
        if memo is not None and memo.internal_id in used_memos:
            memo = None
        if cref is None and memo is not None:
            cref = cref_for(memo)
        pairs.append((ref, cref, memo))
        if cref:
            used_crefs.add(cref.internal_id)
        if memo:
            used_memos.add(memo.internal_id)

    # Pass 1a: the ERP refund quotes the processor's refund id — the strongest link.
    rest: list[ProcessorRefund] = []
    for ref in processor_refunds:
        cref = cref_by_re.get(ref.refund_id)
        if cref is not None and cref.internal_id not in used_crefs:
            claim(ref, cref, None)
        else:
            rest.append(ref)
    # Pass 1b: the processor refund's metadata names the ERP document.
    pending: list[ProcessorRefund] = []
    for ref in rest:
        cref = cref_by_tran.get(ref.erp_refund_id or "")
        memo = memo_by_tran.get(ref.erp_refund_id or "")
        if cref is not None and cref.internal_id in used_crefs:
            cref = None
        if memo is not None and memo.internal_id in used_memos:
            memo = None
        if cref is None and memo is None:
            pending.append(ref)
        else:
            claim(ref, cref, memo)

    # Pass 2: same amount within the window, live refunds first.
    window = settings.refund_match_window
    for ref in sorted(pending, key=lambda r: r.state not in LIVE_REFUND_STATES):
        cref = next(
            (
                c for c in erp_refunds
                if c.internal_id not in used_crefs and c.amount == ref.amount
                and abs(c.created_at - ref.created_at) <= window
            ),
            None,
        )
        memo = None
        if cref is None:
            memo = next(
                (
                    m for m in memos
                    if m.internal_id not in used_memos and m.amount == ref.amount
                    and abs(m.created_at - ref.created_at) <= window
                ),
                None,
            )
        claim(ref, cref, memo)

    # Pass 3: partial refunds for one return that together make up one ERP credit memo.
    pairs = _pair_partials(pairs, memos, used_memos, returns)

    merged: list[MergedRefund] = []
    for ref, cref, memo in pairs:
        return_key = ref.return_key or (memo and _return_key_for_memo(memo, returns))
        merged.append(
            MergedRefund(
                key=ref.refund_id,
                amount=ref.amount,
                state=ref.state,
                created_at=ref.created_at,
                processor=ref,
                erp_refund=cref,
                erp_credit_memo=memo,
                return_key=return_key or None,
            )
        )
    # ERP-only refunds: paid out per the ERP (customer refund) or approved (credit memo).
    paired_memos = set(used_memos)
    for cref in erp_refunds:
        if cref.internal_id in used_crefs:
            continue
        memo = memo_for(cref)
        if memo is not None and memo.internal_id in paired_memos:
            # One more payout of a credit memo already paired with a processor refund
            # (a memo paid in instalments): part of that refund, not a refund of its own.
            continue
        if memo:
            used_memos.add(memo.internal_id)
        merged.append(_erp_only(cref, memo, returns))
    for memo in memos:
        if memo.internal_id not in used_memos:
            merged.append(_erp_only(None, memo, returns))
    merged.sort(key=lambda r: r.created_at)
    return tuple(merged)


def _erp_only(cref: ErpCustomerRefund | None, memo: ErpCreditMemo | None,
              returns: tuple[MergedReturn, ...]) -> MergedRefund:
    """A refund only the ERP knows: paid out (customer refund) or approved (credit memo)."""
    doc = cref or memo
    assert doc is not None
    return MergedRefund(key=doc.tran_id, amount=doc.amount, state=RefundState.APPROVED_IN_ERP,
                        created_at=doc.created_at, erp_refund=cref, erp_credit_memo=memo,
                        return_key=memo and _return_key_for_memo(memo, returns))


def _pair_partials(pairs, memos, used_memos, returns):
    """Link unpaired processor refunds of one return to a credit memo equal to their sum."""
    by_key: dict[str, list[int]] = {}
    for i, (ref, cref, memo) in enumerate(pairs):
        if cref is None and memo is None and ref.return_key and ref.state in LIVE_REFUND_STATES:
            by_key.setdefault(ref.return_key, []).append(i)
    pairs = list(pairs)
    for key, idxs in by_key.items():
        if len(idxs) < 2:
            continue
        parts = [pairs[i][0].amount for i in idxs]
        if len({m.currency for m in parts}) != 1:
            continue
        total = sum_in(parts[0].currency, parts)
        memo = next((m for m in memos if m.internal_id not in used_memos and m.amount == total
                     and _return_key_for_memo(m, returns) in (key, None)), None)
        if memo is None:
            continue
        used_memos.add(memo.internal_id)
        for i in idxs:
            pairs[i] = (pairs[i][0], None, memo)
    return pairs


def _eligibility(facts: Facts, currency: str | None, flags) -> RefundEligibility:
    """Refundable remaining = captured − succeeded − pending refunds, at the processor."""
    if facts.processor is None:
        return RefundEligibility(None, None, None, None, False,
                                 "The payment processor did not answer; refund amount unknown.")
    if not facts.processor.payments or currency is None:
        return RefundEligibility(None, None, None, None, False,
                                 "No payment for this order at the payment processor.")
    captured = sum_in(currency, (p.amount_captured for p in facts.processor.payments))
    refunded = sum_in(currency, (r.amount for r in facts.processor.refunds
                                 if r.state is RefundState.SUCCEEDED))
    pending = sum_in(currency, (r.amount for r in facts.processor.refunds
                                if r.state in (RefundState.PENDING, RefundState.REQUIRES_ACTION)))
    remaining = captured - refunded - pending
    blocking = {f.code for f in flags} & flagrules.BLOCKS_REFUNDS
    if any(d.is_open for d in facts.processor.disputes):
        return RefundEligibility(captured, refunded, pending, remaining, False,
                                 "A dispute is open on this payment; refunding now may pay "
                                 "the customer twice.")
    if blocking:
        names = ", ".join(sorted(c.value.lower().replace("_", " ") for c in blocking))
        return RefundEligibility(captured, refunded, pending, remaining, False,
                                 f"Refunds are on hold until the {names} is resolved.")
    if remaining.amount_minor <= 0:
        return RefundEligibility(captured, refunded, pending, remaining, False,
                                 "Everything captured has already been refunded.")
    return RefundEligibility(captured, refunded, pending, remaining, True,
                             f"Up to {remaining.format()} can still be refunded.")


def _inventory(facts: Facts, returns: tuple[MergedReturn, ...]) -> tuple[InventoryLine, ...]:
    """Returned SKUs and whether the ERP has received them back into stock."""
    erp_known = facts.erp is not None
    receipts = list(facts.erp.item_receipts) if facts.erp else []
    lines: list[InventoryLine] = []
    for ret in returns:
        if ret.store_return is not None:
            for line in ret.store_return.lines:
                got = sum(
                    rl.quantity for r in receipts for rl in r.lines
                    if rl.sku == line.sku and _same_location(rl.location, line.location)
                )
                lines.append(_inv_line(line.sku, line.quantity, "store", line.location,
                                       got, erp_known))
            continue
        if ret.portal is not None:
            wanted = [(ln.sku, ln.quantity) for ln in ret.portal.lines]
        else:
            wanted = []
            for receipt in ret.receipts:
                wanted.extend((ln.sku, ln.quantity) for ln in receipt.lines)
        for sku, qty in wanted:
            got_lines = [rl for r in ret.receipts for rl in r.lines if rl.sku == sku]
            location = got_lines[0].location if got_lines else None
            got = sum(rl.quantity for rl in got_lines)
            lines.append(_inv_line(sku, qty, "mail", location, got, erp_known))
    return tuple(lines)


def _inv_line(sku, qty, channel, location, got, erp_known) -> InventoryLine:
    if not erp_known:
        status = "unknown"
    elif got >= qty:
        status = "credited"
    else:
        status = "pending"
    return InventoryLine(sku, qty, channel, location, min(got, qty) if erp_known else 0, status)


def _same_location(a: str | None, b: str | None) -> bool:
    return (a or "").strip().casefold() == (b or "").strip().casefold()


def _erp_confirmation(
    facts: Facts, returns: tuple[MergedReturn, ...], refunds: tuple[MergedRefund, ...]
) -> ErpConfirmation:
    erp = facts.erp
    if erp is None:
        return ErpConfirmation(None, (), (), (), (), "unknown")
    so = erp.sales_order.tran_id if erp.sales_order else None
    doc = ErpConfirmation(
        sales_order=so,
        return_authorizations=tuple(ra.tran_id for ra in erp.return_authorizations),
        item_receipts=tuple(r.tran_id for r in erp.item_receipts),
        credit_memos=tuple(m.tran_id for m in erp.credit_memos),
        customer_refunds=tuple(c.tran_id for c in erp.customer_refunds),
        status="none",
    )
    if not erp.found:
        return doc
    returns_ok = all(r.erp_ra is not None for r in returns if r.channel == "mail")
    refunds_ok = all(
        r.erp_refund is not None or r.erp_credit_memo is not None
        for r in refunds
        if r.processor is not None and r.state is RefundState.SUCCEEDED
    )
    status = "confirmed" if returns_ok and refunds_ok else "partial"
    return replace(doc, status=status)


def _timeline(facts: Facts) -> tuple[TimelineEvent, ...]:
    """Every dated event across the sources, oldest first."""
    ev: list[TimelineEvent] = []
    P, S, E, POS = SourceName.PORTAL, SourceName.PROCESSOR, SourceName.ERP, SourceName.POS
    if facts.processor:
        for pay in facts.processor.payments:
            ev.append(TimelineEvent(pay.created_at, S,
                                    f"Payment {pay.amount_captured.format()} captured"))
        for ref in facts.processor.refunds:
            ev.append(TimelineEvent(ref.created_at, S,
                                    f"Refund {ref.amount.format()} {ref.state.value.lower()}"))
        for dis in facts.processor.disputes:
            ev.append(TimelineEvent(dis.created_at, S,
                                    f"Dispute {dis.amount.format()} opened ({dis.status_raw})"))
    if facts.portal:
        for ret in facts.portal.returns:
            units = sum(ln.quantity for ln in ret.lines)
            ev.append(TimelineEvent(ret.created_at, P,
                                    f"Return {ret.return_id} created ({units} item"
                                    f"{'s' if units != 1 else ''}), now {ret.state_raw}"))
    if facts.erp:
        erp = facts.erp
        if erp.sales_order:
            ev.append(TimelineEvent(erp.sales_order.created_at, E,
                                    f"Sales order {erp.sales_order.tran_id} created"))
        for ra in erp.return_authorizations:
            ev.append(TimelineEvent(ra.created_at, E,
                                    f"Return authorization {ra.tran_id} ({ra.state.value.lower()})"))
        for rec in erp.item_receipts:
            where = next((ln.location for ln in rec.lines if ln.location), None)
            ev.append(TimelineEvent(rec.created_at, E, f"Item receipt {rec.tran_id}"
                                    + (f" at {where}" if where else "")))
        for memo in erp.credit_memos:
            ev.append(TimelineEvent(memo.created_at, E,
                                    f"Credit memo {memo.tran_id} {memo.amount.format()}"))
        for cref in erp.customer_refunds:
            ev.append(TimelineEvent(cref.created_at, E,
                                    f"Customer refund {cref.tran_id} {cref.amount.format()}"))
    if facts.pos:
        for store in facts.pos.store_returns:
            units = sum(ln.quantity for ln in store.lines)
            ev.append(TimelineEvent(store.created_at, POS,
                                    f"Store return of {units} item{'s' if units != 1 else ''}"
                                    + (f" at {store.location}" if store.location else "")))
    ev.sort(key=lambda e: e.at)
    return tuple(ev)


def _order_status(found, facts, returns, refunds, eligibility: RefundEligibility) -> str:
    if not found:
        return "not_found"
    if facts.processor and any(d.is_open for d in facts.processor.disputes):
        return "disputed"
    if eligibility.captured is not None and eligibility.refunded is not None:
        if eligibility.refunded.amount_minor > 0:
            if eligibility.refunded.amount_minor >= eligibility.captured.amount_minor:
                return "refunded"
            return "partially_refunded"
    if any(r.state not in TERMINAL_RETURN_STATES and r.channel != "store" for r in returns):
        return "return_in_progress"
    if any(r.state is RefundState.PENDING for r in refunds):
        return "refund_pending"
    if facts.processor and facts.processor.payments:
        return "paid"
    return "open"
