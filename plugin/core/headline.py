"""The one sentence an agent can read to the customer."""

from __future__ import annotations

from datetime import datetime

from .model import (
    SOURCE_LABELS,
    OrderRef,
    Payment,
    RefundState,
    ReturnState,
    SourceName,
    SourceReport,
)
from .money import sum_in
from .record import MergedRefund, MergedReturn


def when(ts: datetime, now: datetime) -> str:
    """"3 Mar", with the year when it isn't this year."""
    return f"{ts.day} {ts:%b}" if ts.year == now.year else f"{ts.day} {ts:%b %Y}"


def _refund_clause(refunds: tuple[MergedRefund, ...], now: datetime,
                   processor_answered: bool = True) -> str | None:
    at_processor = [r for r in refunds if r.processor is not None]
    succeeded = [r for r in at_processor if r.state is RefundState.SUCCEEDED]
    in_flight = [r for r in at_processor
                 if r.state in (RefundState.PENDING, RefundState.REQUIRES_ACTION)]
    failed = [r for r in at_processor if r.state in (RefundState.FAILED, RefundState.CANCELED)]
    if in_flight:
        r = in_flight[-1]
        if r.state is RefundState.REQUIRES_ACTION:
            return (f"a refund of {r.amount.format()} started on {when(r.created_at, now)} is "
                    "waiting for the customer to act")
        return (f"a refund of {r.amount.format()} to the card is pending since "
                f"{when(r.created_at, now)} (cards usually show it within 5–10 business days)")
    if succeeded:
        last = succeeded[-1]
        if len(succeeded) == 1:
            return (f"refund of {last.amount.format()} to the card succeeded on "
                    f"{when(last.created_at, now)}")
        total = sum_in(last.amount.currency, (r.amount for r in succeeded))
        return (f"{len(succeeded)} refunds totalling {total.format()} succeeded, the latest on "
                f"{when(last.created_at, now)}")
    if failed:
        r = failed[-1]
        return f"a refund of {r.amount.format()} {r.state.value.lower()} on {when(r.created_at, now)}"
    erp_only = [r for r in refunds if r.processor is None and r.erp_refund is not None]
    if erp_only:
        r = erp_only[-1]
        if not processor_answered:
            return (f"the ERP shows a refund of {r.amount.format()} on {when(r.created_at, now)}; "
                    "whether the card was refunded is unknown until the payment processor answers")
        return (f"the ERP shows a refund of {r.amount.format()} on {when(r.created_at, now)}, "
                "but the card has not been refunded")
    approved = [r for r in refunds if r.processor is None]
    if approved:
        r = approved[-1]
        return f"a refund of {r.amount.format()} was approved on {when(r.created_at, now)} but not yet paid"
    return None


def _return_clause(returns: tuple[MergedReturn, ...], now: datetime) -> str | None:
    if not returns:
        return None
    # The return still moving matters most to the customer; else the latest one.
    live = [r for r in returns if r.state not in (ReturnState.CANCELED, ReturnState.REJECTED,
                                                    ReturnState.EXPIRED)]
    ret = max(live or returns, key=lambda r: r.created_at or now)
    if ret.store_return is not None:
        where = ret.store_return.location or "a store"
        return f"the items were returned at {where} on {when(ret.store_return.created_at, now)}"
    if ret.receipts:
        receipt = min(ret.receipts, key=lambda r: r.created_at)
        where = next((ln.location for ln in receipt.lines if ln.location), "the warehouse")
        return f"the return was received at {where} on {when(receipt.created_at, now)}"
    portal = ret.portal
    label = portal.label if portal else None
    created = ret.created_at or now
    match ret.state:
        case ReturnState.REQUESTED:
            return f"the return requested on {when(created, now)} is awaiting approval"
        case ReturnState.AUTHORIZED:
            return f"the return was authorized on {when(created, now)} and hasn't shipped yet"
        case ReturnState.IN_TRANSIT:
            carrier = f" with {label.carrier}" if label and label.carrier else ""
            tracking = (f" (tracking {label.tracking_number})"
                        if label and label.tracking_number else "")
            return f"the return is on its way back{carrier}{tracking}"
        case ReturnState.PARTIALLY_RECEIVED:
            return "part of the return has been received"
        case ReturnState.RECEIVED:
            return "the return has been received"
        case ReturnState.CLOSED:
            closed = portal.updated_at if portal and portal.updated_at else created
            return f"the return was closed on {when(closed, now)}"
        case ReturnState.CANCELED:
            return "the return was cancelled"
        case ReturnState.EXPIRED:
            return "the return expired before it was shipped"
        case ReturnState.REJECTED:
            return "the return was declined"
    return None


def _missing(reports: dict[SourceName, SourceReport]) -> str:
    down = [f"{SOURCE_LABELS[s]} ({r.system})" for s, r in reports.items()
            if r.status in ("timeout", "error")]
    if not down:
        return ""
    verb = "didn't" if len(down) > 1 else "didn't"
    return f" (The {' and the '.join(down)} {verb} answer, so some details may be missing.)"


def compose_headline(
    *,
    order: OrderRef,
    now: datetime,
    found: bool,
    reports: dict[SourceName, SourceReport],
    returns: tuple[MergedReturn, ...],
    refunds: tuple[MergedRefund, ...],
    payments: tuple[Payment, ...],
) -> str:
    """Compose the headline from the merged data (refund first, then the return)."""
    if not found:
        asked = [SOURCE_LABELS[s] for s, r in reports.items() if r.status.answered]
        if not asked:
            return f"No source answered for order {order.name}; try again in a minute."
        listed = ", ".join(asked[:-1]) + (" or " if len(asked) > 1 else "") + asked[-1]
        return f"Order {order.name} was not found in the {listed}." + _missing(reports)
    processor_answered = reports[SourceName.PROCESSOR].status.answered
    portal_answered = reports[SourceName.PORTAL].status.answered
    refund = _refund_clause(refunds, now, processor_answered)
    ret = _return_clause(returns, now)
    # "No refund" is only ours to say when the processor answered.
    no_refund = ("no refund has been issued yet" if processor_answered
                 else "refund status unknown: the payment processor didn't answer")
    if refund and ret:
        sentence = f"{refund[0].upper()}{refund[1:]}; {ret}."
    elif refund:
        sentence = f"{refund[0].upper()}{refund[1:]}."
    elif ret:
        sentence = f"{ret[0].upper()}{ret[1:]}; {no_refund}."
    elif payments and portal_answered:
        pay = payments[0]
        sentence = (f"No return or refund on this order; {pay.amount_captured.format()} was paid "
                    f"on {when(pay.created_at, now)}.")
    elif portal_answered and processor_answered:
        sentence = "No return or refund on this order."
    elif portal_answered:
        sentence = f"No return on this order; {no_refund}."
    else:
        sentence = ("Return status unknown: the returns portal didn't answer"
                    + ("." if processor_answered and not refunds else f"; {no_refund}."))
    return sentence + _missing(reports)
