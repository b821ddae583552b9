"""Merge the sources' facts for one order into an OrderTruth and flag where they disagree."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Protocol, TypeVar

from . import flags as flagrules
from .headline import compose_headline
from .ledger import Balances, balances, build
from .model import (
    DisputeState,
    ErpFacts,
    Facts,
    OrderRef,
    PortalReturn,
    RefundState,
    SourceName,
    SourceReport,
    SourceResults,
    StoreReturn,
)
from .money import Money
from .record import (
    ErpConfirmation,
    Flag,
    InventoryLine,
    MergedRefund,
    MergedReturn,
    OrderTruth,
    RefundEligibility,
    TimelineEvent,
)
from .returns import merge_returns
from .settings import ReconcileSettings
from .states import TERMINAL_RETURN_STATES


def reconcile(
    order: OrderRef,
    results: SourceResults,
    now: datetime,
    settings: ReconcileSettings | None = None,
) -> OrderTruth:
    """Build the merged record for `order` from each source's result, as of `now`."""
    settings = settings or ReconcileSettings()
    facts = in_shop_names(canonical(Facts.from_results(order, results)), settings)
    reports = results.reports()
    currency = order_currency(facts)
    returns = merge_returns(facts)
    books = build(facts, returns, reports, settings)
    sums = balances(books, facts, currency) if currency else None
    found = any(
        f is not None and f.found for f in (facts.portal, facts.processor, facts.erp, facts.pos)
    )
    ctx = flagrules.Context(
        order=order, now=now, settings=settings, facts=facts, reports=reports,
        currency=currency, returns=returns, refunds=books.refunds, books=books, balances=sums,
    )
    flags = flagrules.evaluate(ctx)
    eligibility = _eligibility(facts, reports, sums, flags)
    disputes = facts.processor.disputes if facts.processor else ()
    headline = compose_headline(order=order, now=now, settings=settings, found=found,
                                reports=reports, returns=returns, books=books, disputes=disputes)
    return OrderTruth(
        order_number=order.number,
        order_name=order.name,
        generated_at=now,
        found=found,
        currency=currency,
        order_status=_order_status(found, facts, returns, books.refunds, sums),
        headline=headline.text,
        headline_meanings=tuple(m.value for m in headline.meanings),
        eligibility=eligibility,
        payments=books.payments,
        disputes=disputes,
        returns=returns,
        refunds=books.refunds,
        inventory=_inventory(facts, returns),
        erp=_erp_confirmation(facts, returns, books.refunds),
        timeline=_timeline(facts, settings),
        sources=reports,
        flags=flags,
        ledger=books.entries,
    )


# ---------------------------------------------------------------- canonical order


class _Dated(Protocol):
    @property
    def created_at(self) -> datetime: ...


_T = TypeVar("_T", bound=_Dated)


def _by_time(items: Iterable[_T], key: str) -> tuple[_T, ...]:
    """Oldest first, ties broken by the item's own id: the vendor's listing order never counts."""
    return tuple(sorted(items, key=lambda x: (x.created_at, getattr(x, key))))


def canonical(facts: Facts) -> Facts:
    """Every list sorted by time then id, so no result depends on a vendor's list order."""
    portal = facts.portal and replace(facts.portal, returns=tuple(
        _portal_return(r) for r in _by_time(facts.portal.returns, "return_id")))
    processor = facts.processor and replace(
        facts.processor,
        payments=_by_time(facts.processor.payments, "payment_id"),
        refunds=_by_time(facts.processor.refunds, "refund_id"),
        disputes=_by_time(facts.processor.disputes, "dispute_id"))
    erp = facts.erp and _erp(facts.erp)
    pos = facts.pos and replace(
        facts.pos,
        store_returns=tuple(_store_return(s) for s in _by_time(facts.pos.store_returns,
                                                                "refund_id")),
        transactions=_by_time(facts.pos.transactions, "transaction_id"))
    return Facts(portal=portal, processor=processor, erp=erp, pos=pos)


def _portal_return(r: PortalReturn) -> PortalReturn:
    return replace(r, lines=tuple(sorted(r.lines, key=lambda ln: (ln.sku, ln.quantity))),
                   refunds=tuple(sorted(r.refunds, key=lambda x: (
                       x.provider_refund_id or "", x.amount.currency, x.amount.amount_minor))))


def _store_return(s: StoreReturn) -> StoreReturn:
    return replace(s, lines=tuple(sorted(s.lines, key=lambda ln: (ln.sku, ln.location or ""))))


def in_shop_names(facts: Facts, settings: ReconcileSettings) -> Facts:
    """The ERP's locations under the shop's names where an admin mapped them, so a store
    return received at "BK01 Brooklyn Retail" counts as received at "Brooklyn Store"."""
    if not settings.store_locations or facts.erp is None:
        return facts
    to_shop = {erp.casefold(): shop for shop, erp in settings.store_locations}

    def named(location: str | None) -> str | None:
        return to_shop.get(location.strip().casefold(), location) if location else location

    erp = facts.erp
    return replace(facts, erp=replace(
        erp,
        item_receipts=tuple(replace(r, lines=tuple(replace(ln, location=named(ln.location))
                                                   for ln in r.lines))
                            for r in erp.item_receipts),
        customer_refunds=tuple(replace(c, location=named(c.location))
                               for c in erp.customer_refunds)))


def _erp(erp: ErpFacts) -> ErpFacts:
    return replace(
        erp,
        sales=_by_time(erp.sales, "internal_id"),
        return_authorizations=_by_time(erp.return_authorizations, "internal_id"),
        item_receipts=tuple(replace(r, lines=tuple(sorted(r.lines, key=lambda ln: (
            ln.sku, ln.location or "")))) for r in _by_time(erp.item_receipts, "internal_id")),
        credit_memos=_by_time(erp.credit_memos, "internal_id"),
        customer_refunds=_by_time(erp.customer_refunds, "internal_id"),
    )


def order_currency(facts: Facts) -> str | None:
    """The currency the customer paid in: the earliest payment's, else the sale's, portal's, shop's."""
    if facts.processor and facts.processor.payments:
        return facts.processor.payments[0].amount.currency
    if facts.pos and facts.pos.currency:
        return facts.pos.currency
    if facts.erp and facts.erp.sales_order:
        return facts.erp.sales_order.total.currency
    if facts.portal:
        for ret in facts.portal.returns:
            if ret.total is not None:
                return ret.total.currency
        if facts.portal.currency:
            return facts.portal.currency
    return None


# ---------------------------------------------------------------- eligibility


def _eligibility(facts: Facts, reports: dict[SourceName, SourceReport], sums: Balances | None,
                 flags: tuple[Flag, ...]) -> RefundEligibility:
    """Refundable to the original payment: what it took, less everything given back any way."""
    if not reports[SourceName.PROCESSOR].status.in_use:
        return RefundEligibility(None, None, None, None, False,
                                 "No payment processor is connected; refunds can't be issued "
                                 "or checked from here.")
    if facts.processor is None:
        return RefundEligibility(None, None, None, None, False,
                                 "The payment processor did not answer; refund amount unknown.")
    if not facts.processor.payments or sums is None or sums.processor is None:
        return RefundEligibility(None, None, None, None, False,
                                 "No payment for this order at the payment processor.")
    card = sums.processor
    zero = Money.zero(card.captured.currency)
    remaining = max(zero, min(card.refundable, sums.order_remaining))
    def answer(eligible: bool, reason: str) -> RefundEligibility:
        return RefundEligibility(card.captured, sums.refunded, sums.pending, remaining,
                                 eligible, reason, order_captured=sums.order_captured,
                                 order_given_back=sums.order_given_back,
                                 order_remaining=sums.order_remaining,
                                 chargebacks=sums.chargebacks, tenders=sums.tenders)

    if any(d.is_open for d in facts.processor.disputes):
        return answer(False, "A dispute is open on this payment; refunding now may pay the "
                             "customer twice.")
    unread = [d for d in facts.processor.disputes if d.state is DisputeState.UNKNOWN]
    if unread:
        d = unread[0]
        return answer(False, f"The processor reports dispute {d.dispute_id} in a status we "
                             f"can't read ({d.status_raw}); check it before refunding, or the "
                             "customer may be paid twice.")
    blocking = {f.code for f in flags} & flagrules.BLOCKS_REFUNDS
    if blocking:
        names = " and ".join(sorted(c.value.lower().replace("_", " ") for c in blocking))
        return answer(False, f"Refunds are on hold until the {names} is resolved.")
    other = sums.order_given_back - sums.refunded - sums.pending - sums.chargebacks
    elsewhere = (f" {other.format()} already went back another way (store credit, cash, "
                 "gift card or an exchange)." if other.amount_minor > 0 else "")
    label = card.label or "the original payment"
    if remaining.amount_minor <= 0:
        if card.refundable.amount_minor <= 0 < sums.order_remaining.amount_minor:
            return answer(False, f"{label[0].upper()}{label[1:]} has been refunded in full; "
                                 f"{sums.order_remaining.format()} paid another way can only go "
                                 "back to that tender.")
        return answer(False, "Everything paid has already gone back to the customer." + elsewhere)
    return answer(True, f"Up to {remaining.format()} can still be refunded to {label}." + elsewhere)


# ---------------------------------------------------------------- sections


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


def _inv_line(sku: str, qty: int, channel: str, location: str | None, got: int,
              erp_known: bool) -> InventoryLine:
    if not erp_known:
        status = "unknown"
    elif got >= qty:
        status = "credited"
    else:
        status = "pending"
    return InventoryLine(sku, qty, channel, location, min(got, qty) if erp_known else 0, status)


def _same_location(a: str | None, b: str | None) -> bool:
    return (a or "").strip().casefold() == (b or "").strip().casefold()


def _erp_confirmation(facts: Facts, returns: tuple[MergedReturn, ...],
                      refunds: tuple[MergedRefund, ...]) -> ErpConfirmation:
    erp = facts.erp
    if erp is None:
        return ErpConfirmation(None, (), (), (), (), "unknown")
    sale = erp.sales_order
    doc = ErpConfirmation(
        sales_order=sale.tran_id if sale else None,
        return_authorizations=tuple(ra.tran_id for ra in erp.return_authorizations),
        item_receipts=tuple(r.tran_id for r in erp.item_receipts),
        credit_memos=tuple(m.tran_id for m in erp.credit_memos),
        customer_refunds=tuple(c.tran_id for c in erp.customer_refunds),
        status="none",
        sales_order_id=sale.internal_id if sale else None,
        sale_kind=sale.kind.value if sale else None,
    )
    if not erp.found:
        return doc
    returns_ok = all(r.erp_ra is not None for r in returns if r.channel == "mail")
    refunds_ok = all(r.erp_documents for r in refunds
                     if r.processor is not None and r.state is RefundState.SUCCEEDED)
    return replace(doc, status="confirmed" if returns_ok and refunds_ok else "partial")


def _timeline(facts: Facts, settings: ReconcileSettings) -> tuple[TimelineEvent, ...]:
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
        for sale in erp.sales:
            ev.append(TimelineEvent(sale.created_at, E,
                                    f"{sale.kind.value.replace('_', ' ').capitalize()} "
                                    f"{sale.tran_id} created"))
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
                                    f"Refund {cref.tran_id} {cref.amount.format()}"
                                    + (f" ({cref.tender.value.replace('_', ' ')})"
                                       if cref.tender.value != "unknown" else "")))
    if facts.pos:
        for store in facts.pos.store_returns:
            units = sum(ln.quantity for ln in store.lines)
            ev.append(TimelineEvent(store.created_at, POS,
                                    f"Store return of {units} item{'s' if units != 1 else ''}"
                                    + (f" at {store.location}" if store.location else "")))
        for t in facts.pos.transactions:
            if t.kind.value == "refund":
                ev.append(TimelineEvent(t.created_at, POS,
                                        f"Refund {t.amount.format()} to "
                                        f"{t.tender.value.replace('_', ' ')} ({t.status.value})"))
    ev.sort(key=lambda e: (e.at, e.source.value, e.text))
    return tuple(ev)


def _order_status(found: bool, facts: Facts, returns: tuple[MergedReturn, ...],
                  refunds: tuple[MergedRefund, ...], sums: Balances | None) -> str:
    if not found:
        return "not_found"
    if facts.processor and any(d.is_open for d in facts.processor.disputes):
        return "disputed"
    if sums is not None:
        settled = (sums.order_given_back - sums.pending).amount_minor
        if settled >= sums.order_captured.amount_minor > 0:
            return "refunded"
        if settled > 0:
            return "partially_refunded"
    if any(r.state not in TERMINAL_RETURN_STATES and r.channel != "store" for r in returns):
        return "return_in_progress"
    if any(r.state is RefundState.PENDING for r in refunds):
        return "refund_pending"
    if facts.processor and facts.processor.payments:
        return "paid"
    return "open"
