"""Reconciliation rules: each looks at the merged data and raises flags an agent can act on.

Flags are for the agent: they name systems and documents. Every "missing in X" rule first
checks that X answered and knows the order, and waits out X's normal sync lag.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from .dates import business_days_between
from .ledger import Balances, Books
from .model import (
    LIVE_REFUND_STATES,
    SOURCE_LABELS,
    ErrorKind,
    Facts,
    OrderRef,
    ProcessorRefund,
    RefundState,
    ReturnOutcome,
    ReturnState,
    SourceName,
    SourceReport,
    SourceStatus,
)
from .money import Money, format_totals, sum_in
from .pairing import Booking, Match
from .record import (
    SEVERITY_RANK,
    Evidence,
    Flag,
    FlagCode,
    MergedRefund,
    MergedReturn,
    MoneyOutKind,
    Severity,
)
from .returns import received_elsewhere, return_value, shop_places
from .settings import ReconcileSettings
from .states import (
    AUTHORIZED_OR_LATER,
    ERP_RETURN_OPEN,
    PORTAL_RETURN_OPEN,
    REFUND_IN_FLIGHT,
    REFUND_NOT_PAID,
    RETURN_ABANDONED,
)

PORTAL, PROCESSOR, ERP, POS = (
    SourceName.PORTAL, SourceName.PROCESSOR, SourceName.ERP, SourceName.POS,
)

# Flags that should stop an agent from issuing another refund until someone looks.
BLOCKS_REFUNDS = frozenset({FlagCode.DUPLICATE_REFUND, FlagCode.OVER_REFUND})


@dataclass(frozen=True)
class Context:
    """Everything a rule may read."""

    order: OrderRef
    now: datetime
    settings: ReconcileSettings
    facts: Facts
    reports: dict[SourceName, SourceReport]
    currency: str | None
    returns: tuple[MergedReturn, ...]
    refunds: tuple[MergedRefund, ...]
    books: Books
    balances: Balances | None

    def knows_order(self, source: SourceName) -> bool:
        """The source answered and has the order: only then can "missing in it" be claimed.

        A source that knows nothing of the order (not_found) usually means a join key that
        doesn't match, not a gap per document; its status line says so instead.
        """
        return self.reports[source].status is SourceStatus.OK

    def settled(self, source: SourceName) -> bool:
        """The source answered, or this merchant doesn't use it (nothing more to learn)."""
        status = self.reports[source].status
        return status.answered or not status.in_use

    def when(self, ts: datetime) -> str:
        return day(ts, self.settings)


def day(ts: datetime, settings: ReconcileSettings | None = None) -> str:
    """Short date for messages, in the merchant's time zone: "3 Mar"."""
    local = ts.astimezone(settings.zone) if settings else ts
    return f"{local.day} {local:%b}"


Rule = Callable[[Context], Iterator[Flag]]
RULES: list[Rule] = []


def rule(fn: Rule) -> Rule:
    """Register a reconciliation rule."""
    RULES.append(fn)
    return fn


def evaluate(ctx: Context) -> tuple[Flag, ...]:
    """Run every rule; most severe first, then in rule order, then by subject."""
    flags = [(i, flag) for i, r in enumerate(RULES) for flag in r(ctx)]
    flags.sort(key=lambda x: (SEVERITY_RANK[x[1].severity], x[0], x[1].subject or ""))
    return tuple(flag for _, flag in flags)


def _docs(bookings: tuple[Booking, ...] | list[Booking]) -> str:
    return ", ".join(b.key for b in bookings)


# ---------------------------------------------------------------- zone 1


@rule
def return_not_in_erp(ctx: Context) -> Iterator[Flag]:
    """Portal authorized an RMA the ERP has never heard of."""
    if not ctx.knows_order(ERP):
        return
    erp = ctx.facts.erp
    for ret in ctx.returns:
        portal = ret.portal
        if portal is None or ret.erp_ra is not None:
            continue
        if portal.state not in AUTHORIZED_OR_LATER:
            continue
        if ctx.now - portal.created_at <= ctx.settings.return_sync_lag:
            continue
        sale = erp.sales_order if erp else None
        erp_said = (
            f"No return authorization from {sale.tran_id}" if sale
            else f"No sale or return authorization for {ctx.order.name}"
        )
        yield Flag(
            code=FlagCode.RETURN_NOT_IN_ERP,
            severity=Severity.HIGH,
            message=(
                f"Return {portal.return_id} was authorized in the returns portal on "
                f"{ctx.when(portal.created_at)}, but the ERP has no return authorization for it; "
                "inventory credit and the refund are held up."
            ),
            evidence=(
                Evidence(PORTAL, f"Return {portal.return_id} is {portal.state_raw} since "
                                 f"{ctx.when(portal.created_at)}"),
                Evidence(ERP, erp_said),
            ),
            suggested_action=(
                "Create the return authorization from the sale in the ERP, or re-run "
                "the returns portal → ERP sync for this order."
            ),
            subject=portal.return_id,
        )


@rule
def order_not_in_erp(ctx: Context) -> Iterator[Flag]:
    """The customer paid, and past the sync window the ERP still has no sale for the order."""
    if ctx.reports[ERP].status is not SourceStatus.NOT_FOUND:
        return
    paid = [p for p in ctx.books.payments if p.amount_captured.amount_minor > 0]
    if not paid:
        return
    first = min(paid, key=lambda p: (p.created_at, p.payment_id))
    if ctx.now - first.created_at <= ctx.settings.order_sync_lag:
        return
    captured = format_totals(p.amount_captured for p in paid)
    yield Flag(
        code=FlagCode.ORDER_NOT_IN_ERP,
        severity=Severity.HIGH,
        message=(
            f"{captured} was captured for {ctx.order.name} on {ctx.when(first.created_at)}, but "
            "the ERP has no sale for it: nothing about this order has been booked."
        ),
        evidence=(
            Evidence(PROCESSOR if first.payment_id in _processor_ids(ctx) else POS,
                     f"Captured {captured} on {ctx.when(first.created_at)}"),
            Evidence(ERP, f"No sales order, cash sale or invoice for {ctx.order.name}"),
        ),
        suggested_action=(
            "Check the order → ERP sync for this order; if the ERP keys orders differently, "
            "check the order reference field it matches on."
        ),
        subject=ctx.order.number,
    )


def _processor_ids(ctx: Context) -> set[str]:
    p = ctx.facts.processor
    return {x.payment_id for x in p.payments} if p else set()


# ---------------------------------------------------------------- zone 2


@rule
def erp_refund_not_at_processor(ctx: Context) -> Iterator[Flag]:
    """The ERP says the customer was paid (or a refund approved); the processor never got it."""
    processor = ctx.facts.processor
    if not ctx.knows_order(PROCESSOR) or processor is None or not processor.payments:
        # Paid some other way (cash, cheque): the processor is not the place to look.
        return
    for b, unpaid in ctx.books.unconfirmed:
        lag = ctx.settings.processor_lag if b.paid else ctx.settings.erp_posting_lag
        if ctx.now - b.at <= lag:
            continue
        yield _zone2(ctx, b, unpaid)


def _zone2(ctx: Context, b: Booking, unpaid: Money) -> Flag:
    quoted = sorted(b.quoted)
    quotes = f" (it quotes {', '.join(quoted)})" if quoted else ""
    part = unpaid.amount_minor < b.amount.amount_minor
    key = f"refund:{ctx.order.number}:{b.key}"
    if b.paid:
        what = f"recorded refund {b.key} for {b.amount.format()} as paid on {ctx.when(b.at)}"
        outcome = (f"{unpaid.format()} of it has not reached the customer" if part
                   else "the customer has not been paid")
        action = (f"Issue the {unpaid.format()} {'still owed ' if part else ''}at the processor "
                  f"with idempotency key {key}, or correct the ERP refund if it was recorded "
                  "in error.")
    else:
        what = f"approved credit memo {b.key} for {b.amount.format()} on {ctx.when(b.at)}"
        outcome = (f"{unpaid.format()} of it has not been paid out anywhere" if part
                   else "nothing has been paid out for it anywhere")
        action = (f"Pay the {unpaid.format()} out (refund at the processor with idempotency "
                  f"key {key}, or as store credit), or void the memo.")
    moved = (b.amount - unpaid).format()
    return Flag(
        code=FlagCode.ERP_REFUND_NOT_AT_PROCESSOR,
        severity=Severity.CRITICAL if b.paid else Severity.HIGH,
        message=(f"The ERP {what}{quotes}, but the payment processor "
                 + (f"shows refunds covering only {moved} of it" if part
                    else "has no refund for it")
                 + f": {outcome}."),
        evidence=(
            Evidence(ERP, f"{'Refund' if b.paid else 'Credit memo'} {b.key} "
                          f"{b.amount.format()} on {ctx.when(b.at)}"),
            Evidence(PROCESSOR, f"Unbooked refunds that could be it: {moved}"),
        ),
        suggested_action=action,
        subject=b.key,
    )


@rule
def processor_refund_not_in_erp(ctx: Context) -> Iterator[Flag]:
    """The processor paid a refund that finance never booked."""
    if not ctx.knows_order(ERP):
        return
    for move, unbooked in ctx.books.unbooked:
        p = next(r for r in ctx.refunds if r.key == move.key).processor
        if p is None or p.state is not RefundState.SUCCEEDED:
            continue
        if ctx.now - p.created_at <= ctx.settings.erp_posting_lag:
            continue
        part = unbooked.amount_minor < p.amount.amount_minor
        yield Flag(
            code=FlagCode.PROCESSOR_REFUND_NOT_IN_ERP,
            severity=Severity.HIGH,
            message=(
                f"Refund {p.refund_id} of {p.amount.format()} succeeded at the processor on "
                f"{ctx.when(p.created_at)}, but "
                + (f"the ERP's bookings cover only {(p.amount - unbooked).format()} of it."
                   if part else "the ERP has no credit memo or customer refund for it.")
            ),
            evidence=(
                Evidence(PROCESSOR, f"Refund {p.refund_id} {p.amount.format()} succeeded"),
                Evidence(ERP, f"Not booked: {unbooked.format()}"),
            ),
            suggested_action=(
                f"Post the credit memo and customer refund in the ERP for {unbooked.format()}, "
                f"quoting {p.refund_id}."
            ),
            subject=p.refund_id,
        )


@rule
def portal_refund_not_at_processor(ctx: Context) -> Iterator[Flag]:
    """The portal says it refunded, quoting a processor reference the processor doesn't have."""
    if not ctx.knows_order(PROCESSOR) or ctx.facts.portal is None:
        return
    updated = {r.return_id: r.updated_at or r.created_at for r in ctx.facts.portal.returns}
    for return_id, ref, amount in ctx.books.unconfirmed_portal_refunds:
        if ctx.now - updated[return_id] <= ctx.settings.processor_lag:
            continue
        yield Flag(
            code=FlagCode.PORTAL_REFUND_NOT_AT_PROCESSOR,
            severity=Severity.HIGH,
            message=(
                f"The returns portal says return {return_id} was refunded {amount.format()} "
                f"through the processor as {ref}, but the processor has no such refund."
            ),
            evidence=(
                Evidence(PORTAL, f"Return {return_id}: refund {amount.format()}, reference {ref}"),
                Evidence(PROCESSOR, f"No refund {ref} on this order's payments"),
            ),
            suggested_action=(
                "Check the refund in the processor's dashboard; if it never happened, issue it "
                "and correct the portal."
            ),
            subject=ref,
        )


# ---------------------------------------------------------------- zone 3


@rule
def store_return_not_in_inventory(ctx: Context) -> Iterator[Flag]:
    """The store took goods back; ERP inventory doesn't show them."""
    if not ctx.knows_order(ERP) or ctx.facts.pos is None:
        return
    receipts = ctx.facts.erp.item_receipts if ctx.facts.erp else ()
    mail_ras = {r.erp_ra.internal_id for r in ctx.returns
                if r.channel == "mail" and r.erp_ra is not None}
    places = shop_places(ctx.facts)
    due: dict[tuple[str, str], int] = defaultdict(int)
    first_seen: dict[tuple[str, str], datetime] = {}
    for store in ctx.facts.pos.store_returns:
        if ctx.now - store.created_at <= ctx.settings.store_inventory_lag:
            continue
        for line in store.lines:
            key = (line.sku, (line.location or store.location or "").strip())
            due[key] += line.quantity
            first_seen.setdefault(key, store.created_at)
    for (sku, location), qty in sorted(due.items()):
        credited = sum(
            rl.quantity for r in receipts for rl in r.lines
            if rl.sku == sku and (rl.location or "").strip().casefold() == location.casefold()
        )
        if credited >= qty:
            continue
        missing = qty - credited
        where = location or "the store"
        found = received_elsewhere(receipts, sku, places, mail_ras)
        if found:
            got: dict[str, int] = defaultdict(int)
            for place, n, _doc in found:
                got[place] += n
            there = ", ".join(f"{n} at {p}" for p, n in sorted(got.items()))
            beyond = missing - sum(got.values())
            outcome = (f"it received {there}, a place the shop doesn't name. If that is "
                       f"{where} under the ERP's own name, an admin can map it in the app "
                       "settings (Stores)"
                       + (f"; even so, stock there is understated by {beyond}" if beyond > 0
                          else ""))
            action = (f"Check whether {', '.join(sorted(got))} is {where}: if so, map it under "
                      "Stores in the app settings; if not, move the goods with a transfer in "
                      "the ERP" + (f" and receive the other {beyond} × {sku} at {where}"
                                   if beyond > 0 else "") + ".")
        else:
            outcome = f"stock is understated by {missing}"
            action = (f"Post an item receipt or inventory adjustment for {missing} × {sku} at "
                      f"{where} in the ERP, and mark the return in the returns portal if it was "
                      "started there.")
        yield Flag(
            code=FlagCode.STORE_RETURN_NOT_IN_INVENTORY,
            severity=Severity.HIGH,
            message=(
                f"{where} took back {qty} × {sku} on {ctx.when(first_seen[(sku, location)])}, "
                f"but the ERP shows {credited} received there; {outcome}."
            ),
            evidence=(
                Evidence(POS, f"Returned {qty} × {sku} at {where} (restock: RETURN)"),
                Evidence(ERP, f"Item receipts for {sku} at {where}: {credited}"),
            ),
            suggested_action=action,
            subject=sku,
        )


# ---------------------------------------------------------------- money


@dataclass(frozen=True)
class _Repeat:
    """Refunds that look like one refund issued more than once."""

    refunds: tuple[ProcessorRefund, ...]
    return_key: str | None
    inferred: bool  # some of them name no return: tied to the others by amount and time


def _repeats(ctx: Context) -> list[_Repeat]:
    """Same payment, same amount, same return (or none named), each soon after the last,
    worth more together than the return they are for."""
    if not ctx.knows_order(PROCESSOR) or ctx.facts.processor is None:
        return []
    returns = ctx.books.refund_returns
    live = sorted((r for r in ctx.facts.processor.refunds if r.state in LIVE_REFUND_STATES),
                  key=lambda r: (r.created_at, r.refund_id))
    seen: set[str] = set()
    out = []
    for i, a in enumerate(live):
        if a.refund_id in seen:
            continue
        group = [a]
        key = returns.get(a.refund_id)
        for b in live[i + 1:]:
            other = returns.get(b.refund_id)
            if (b.refund_id not in seen and b.payment_id == a.payment_id
                    and b.amount == a.amount and (other == key or None in (other, key))
                    and b.created_at - group[-1].created_at <= ctx.settings.duplicate_window):
                group.append(b)
                key = key or other
        if len(group) < 2:
            continue
        named = {returns.get(p.refund_id) for p in group}
        value = _value_of(ctx, key) if key else None
        total = sum_in(a.amount.currency, (p.amount for p in group))
        if value is not None and value.currency == total.currency and \
                total.amount_minor <= value.amount_minor:
            continue  # equal parts of one return (two identical items), not a repeat
        seen.update(p.refund_id for p in group)
        out.append(_Repeat(tuple(group), key, inferred=len(named) > 1))
    return out


@rule
def duplicate_refund(ctx: Context) -> Iterator[Flag]:
    """The same refund twice: same return (or none), same amount, nearly the same time."""
    for repeat in _repeats(ctx):
        group, key = repeat.refunds, repeat.return_key
        a = group[0]
        total = sum_in(a.amount.currency, (p.amount for p in group))
        ids = ", ".join(p.refund_id for p in group)
        yield Flag(
            code=FlagCode.DUPLICATE_REFUND,
            # Tied to the return by amount and time alone, it is likely, not certain.
            severity=Severity.HIGH if repeat.inferred else Severity.CRITICAL,
            message=(
                f"{len(group)} refunds ({ids}) of {a.amount.format()} each"
                + (f" for return {key}" if key else " with no return behind them")
                + f", {total.format()} in all, look like the same refund issued more than once"
                + (" (not all of them name the return)." if repeat.inferred else ".")
            ),
            evidence=tuple(
                Evidence(PROCESSOR, f"Refund {p.refund_id} {p.amount.format()} "
                                    f"{p.state.value.lower()} on {ctx.when(p.created_at)}"
                                    + (f", return {ctx.books.refund_returns[p.refund_id]}"
                                       if p.refund_id in ctx.books.refund_returns else ""))
                for p in group
            ),
            suggested_action=(
                "Hold further refunds. Cancel the duplicate if it still requires action; "
                "otherwise recover the extra amount from the customer."
            ),
            subject=group[-1].refund_id,
        )


def _value_of(ctx: Context, key: str) -> Money | None:
    ret = next((r for r in ctx.returns if r.key == key), None)
    return return_value(ret) if ret else None


@rule
def over_refund(ctx: Context) -> Iterator[Flag]:
    """More given back (refunds, credit, cash, chargebacks) than was captured."""
    b = ctx.balances
    if b is None or ctx.currency is None or not ctx.knows_order(PROCESSOR):
        return
    tol = ctx.settings.amount_tolerance_minor
    lost = [d for d in (ctx.facts.processor.disputes if ctx.facts.processor else ())
            if d.state.value == "lost"]
    card = b.processor
    over_card = card is not None and (card.paid_back + card.chargebacks).amount_minor \
        > card.captured.amount_minor + tol
    # The order-wide check needs every record of payments: the shop's gift cards and cash.
    over_order = ctx.settled(POS) and \
        b.order_given_back.amount_minor > b.order_captured.amount_minor + tol
    if not over_card and not over_order:
        return
    if over_card and card is not None:
        out, captured, where = card.paid_back + card.chargebacks, card.captured, " on the card"
    else:
        out, captured, where = b.order_given_back, b.order_captured, ""
    parts = [f"refunded or on its way {b.refunded + b.pending}"] if (b.refunded + b.pending) \
        .amount_minor else []
    if lost:
        parts.append(f"lost chargeback{'s' if len(lost) > 1 else ''} "
                     f"{sum_in(ctx.currency, (d.amount for d in lost))}")
    other = b.order_given_back - b.refunded - b.pending - b.chargebacks
    if other.amount_minor:
        parts.append(f"other tenders and credit {other}")
    evidence = [Evidence(PROCESSOR, f"Captured {captured.format()}; "
                                    + "; ".join(parts or [f"given back {out}"]))]
    evidence.extend(Evidence(PROCESSOR, f"Chargeback {d.dispute_id} {d.amount.format()} lost")
                    for d in lost)
    yield Flag(
        code=FlagCode.OVER_REFUND,
        severity=Severity.CRITICAL,
        message=(
            f"{out.format()} has gone back to the customer{where}, more than the "
            f"{captured.format()} captured — {(out - captured).format()} too much"
            + (" (a chargeback was lost on top of the refunds)." if lost and
               (b.refunded + b.pending).amount_minor else ".")
        ),
        evidence=tuple(evidence),
        suggested_action=(
            "Hold further refunds, cancel any pending excess, and audit who issued them"
            + ("; with a lost chargeback, recover the refund from the customer."
               if lost else ".")
        ),
    )


@rule
def refund_amount_mismatch(ctx: Context) -> Iterator[Flag]:
    """A refund and its booking differ, or a return got back more than it is worth."""
    if ctx.knows_order(ERP):
        for source, pairing in ((PROCESSOR, ctx.books.processor_pairing),
                                (POS, ctx.books.shop_pairing)):
            if not ctx.knows_order(source) and not (source is POS and ctx.settled(POS)):
                continue
            for match in pairing.matches:
                if match.difference == 0 or not any(m.live for m in match.movements):
                    continue
                yield _mismatch(ctx, match, source)
    yield from _over_value(ctx)


def _mismatch(ctx: Context, match: Match, source: SourceName) -> Flag:
    booked = sum_in(match.currency, (b.amount for b in match.bookings))
    moved = sum_in(match.currency, (m.amount for m in match.movements if m.live))
    rounding = abs(match.difference) <= match.tolerance
    diff = Money(abs(match.difference), match.currency)
    refs = ", ".join(m.key for m in match.movements if m.live)
    docs = _docs(match.bookings)
    where = "at the processor" if source is PROCESSOR else "at the store or as credit"
    more = (f"{diff.format()} more booked than paid" if match.difference > 0
            else f"{diff.format()} more paid than booked")
    if rounding:
        action = "Nothing for the customer; finance may post a rounding adjustment."
    elif match.difference > 0:
        action = ("Compare the line, tax and shipping breakdown of the ERP documents with what "
                  f"was paid; if the customer is owed the {diff.format()}, pay it, otherwise "
                  "correct the ERP.")
    else:
        action = ("Compare the line, tax and shipping breakdown of the ERP documents with what "
                  "was paid, then correct the ERP or note the extra as goodwill.")
    return Flag(
        code=FlagCode.REFUND_AMOUNT_MISMATCH,
        severity=Severity.LOW if rounding else Severity.MEDIUM,
        message=(
            f"The ERP booked {booked.format()} ({docs}) for {moved.format()} paid back {where} "
            f"({refs}): {more}" + (", which is rounding." if rounding else ".")
        ),
        evidence=(
            Evidence(ERP, f"{docs}: {booked.format()}"),
            Evidence(source, f"{refs}: {moved.format()}"),
        ),
        suggested_action=action,
        subject=docs,
    )


def _over_value(ctx: Context) -> Iterator[Flag]:
    """Per return: refunds, credit and exchanges worth more than the return."""
    if ctx.currency is None:
        return
    repeated = {p.refund_id for r in _repeats(ctx) for p in r.refunds}
    for ret in ctx.returns:
        value = return_value(ret)
        if value is None or value.currency != ctx.currency:
            continue
        given = [e for e in ctx.books.counted(ctx.currency) if e.return_key == ret.key
                 and e.kind is not MoneyOutKind.CHARGEBACK]
        # A credit bonus (more store credit than the goods were worth) is the merchant's gift.
        total = sum_in(ctx.currency, (e.funded for e in given if e.funded is not None))
        tolerance = ctx.settings.rounding_minor_per_document * max(1, len(given)) \
            + ctx.settings.amount_tolerance_minor
        if total.amount_minor <= value.amount_minor + tolerance:
            continue
        if all(e.kind is MoneyOutKind.REFUND and e.key in repeated for e in given):
            continue  # the duplicate flag already speaks for these refunds
        yield Flag(
            code=FlagCode.REFUND_AMOUNT_MISMATCH,
            severity=Severity.MEDIUM,
            message=(
                f"Return {ret.key} is worth {value.format()}, but {total.format()} went back "
                f"for it ({', '.join(f'{e.amount} {e.destination}' for e in given)})."
            ),
            evidence=tuple(Evidence(e.source, f"{e.kind.value.replace('_', ' ')} {e.key} "
                                              f"{e.amount} ({e.state})") for e in given),
            suggested_action=(
                "Check whether shipping or a goodwill amount was refunded on purpose; "
                "otherwise recover the difference."
            ),
            subject=ret.key,
        )


@rule
def currency_mismatch(ctx: Context) -> Iterator[Flag]:
    """Sources record the order in currencies other than the one the customer paid in."""
    if ctx.currency is None:
        return
    seen: dict[SourceName, set[str]] = defaultdict(set)
    f = ctx.facts
    if f.processor:
        seen[PROCESSOR].update(p.amount.currency for p in f.processor.payments)
        seen[PROCESSOR].update(r.amount.currency for r in f.processor.refunds)
    if f.erp:
        seen[ERP].update(s.total.currency for s in f.erp.sales)
        seen[ERP].update(m.amount.currency for m in f.erp.credit_memos)
        seen[ERP].update(r.amount.currency for r in f.erp.customer_refunds)
    if f.portal:
        for ret in f.portal.returns:
            seen[PORTAL].update(m.currency for m in (ret.total, ret.credit_issued) if m)
            seen[PORTAL].update(pr.amount.currency for pr in ret.refunds)
    if f.pos:
        seen[POS].update(t.amount.currency for t in f.pos.transactions)
    odd = {src: curs - {ctx.currency} for src, curs in seen.items() if curs - {ctx.currency}}
    if not odd:
        return
    yield Flag(
        code=FlagCode.CURRENCY_MISMATCH,
        severity=Severity.HIGH,
        message=(
            f"The customer paid in {ctx.currency}, but "
            + "; ".join(f"the {SOURCE_LABELS[s]} also records "
                        + ", ".join(sorted(c)) for s, c in sorted(odd.items()))
            + ". Amounts in different currencies are never added or compared."
        ),
        evidence=tuple(Evidence(src, "Amounts in " + ", ".join(sorted(curs)))
                       for src, curs in sorted(seen.items())),
        suggested_action=(
            f"Compare in {ctx.currency}, the currency the customer paid in; check whether a "
            "system converted to a base currency, and refund in the payment currency."
        ),
    )


@rule
def refund_pending_stale(ctx: Context) -> Iterator[Flag]:
    """A refund stuck pending (or waiting on the customer) for too long."""
    limit = ctx.settings.refund_pending_stale_business_days
    for ref in ctx.refunds:
        p = ref.processor
        if p is None or p.state not in REFUND_IN_FLIGHT:
            continue
        waited = business_days_between(p.created_at, ctx.now)
        if waited <= limit:
            continue
        needs_customer = p.state is RefundState.REQUIRES_ACTION
        yield Flag(
            code=FlagCode.REFUND_PENDING_STALE,
            severity=Severity.MEDIUM,
            message=(
                f"Refund {p.refund_id} of {p.amount.format()} has been "
                f"{'waiting on the customer' if needs_customer else 'pending'} for {waited} "
                f"business days (since {ctx.when(p.created_at)})."
            ),
            evidence=(Evidence(PROCESSOR, f"Refund {p.refund_id} status {p.status_raw}"),),
            suggested_action=(
                "Send the customer the steps to receive the refund, or cancel it and refund "
                "another way." if needs_customer else
                "Check the refund's destination details with the processor and tell the "
                "customer it is being looked into."
            ),
            subject=p.refund_id,
        )


@rule
def refund_failed_erp_refunded(ctx: Context) -> Iterator[Flag]:
    """The processor refund failed while the ERP shows the customer refunded."""
    pairing = ctx.books.processor_pairing
    retried = set(pairing.retries.values())
    for match in pairing.matches:
        if any(m.live for m in match.movements):
            continue  # something in the group did pay
        for move in match.movements:
            p = next(r for r in ctx.refunds if r.key == move.key).processor
            if p is None or p.state not in REFUND_NOT_PAID or p.refund_id in retried:
                continue
            docs = _docs(match.bookings)
            yield Flag(
                code=FlagCode.REFUND_FAILED_ERP_REFUNDED,
                severity=Severity.CRITICAL,
                message=(
                    f"Refund {p.refund_id} of {p.amount.format()} {p.status_raw} at the processor"
                    + (f" ({p.failure_reason})" if p.failure_reason else "")
                    + f", yet the ERP shows {docs} as paid."
                ),
                evidence=(
                    Evidence(PROCESSOR, f"Refund {p.refund_id} {p.status_raw}"),
                    Evidence(ERP, f"{docs} {sum_in(match.currency, (b.amount for b in match.bookings))}"),
                ),
                suggested_action=(
                    "Reverse or hold the ERP refund, then pay the customer another way (new "
                    "refund, store credit) and tell them."
                ),
                subject=p.refund_id,
            )


@rule
def dispute_with_refund(ctx: Context) -> Iterator[Flag]:
    """A chargeback is open on a payment that already has refunds or an open return."""
    processor = ctx.facts.processor
    if processor is None:
        return
    open_return = any(r.portal is not None and r.state in PORTAL_RETURN_OPEN | {
        ReturnState.PARTIALLY_RECEIVED, ReturnState.RECEIVED} for r in ctx.returns)
    for dispute in processor.disputes:
        if not dispute.is_open:
            continue
        refunds = [r for r in processor.refunds
                   if r.payment_id == dispute.payment_id and r.state in LIVE_REFUND_STATES]
        if not refunds and not open_return:
            continue
        refunded = sum_in(dispute.amount.currency, [r.amount for r in refunds])
        due = f"; evidence due {ctx.when(dispute.due_by)}" if dispute.due_by else ""
        said = [Evidence(PROCESSOR, f"Dispute {dispute.dispute_id} {dispute.status_raw} for "
                                    f"{dispute.amount.format()}{due}")]
        if refunds:
            said.append(Evidence(PROCESSOR, f"Already refunded {refunded.format()} on this payment"))
        if open_return:
            said.append(Evidence(PORTAL, "A return is still open"))
        yield Flag(
            code=FlagCode.DISPUTE_WITH_REFUND,
            severity=Severity.HIGH,
            message=(
                f"The customer opened a dispute for {dispute.amount.format()} while "
                + ("refunds were already made" if refunds else "a return is in progress")
                + "; another refund could pay them twice."
            ),
            evidence=tuple(said),
            suggested_action=(
                "Do not refund again. Submit the refund and return records as dispute evidence"
                + (f" before {ctx.when(dispute.due_by)}" if dispute.due_by else "")
                + "."
            ),
            subject=dispute.dispute_id,
        )


# ---------------------------------------------------------------- returns

_NO_REFUND_DUE = frozenset({ReturnOutcome.EXCHANGE, ReturnOutcome.STORE_CREDIT})


@rule
def received_not_refunded(ctx: Context) -> Iterator[Flag]:
    """The warehouse received the goods days ago and nothing went back for them."""
    # Every system that could have paid something back answered, and the customer's payment
    # is known: otherwise "nothing went back" can't be said.
    if not ctx.knows_order(ERP) or not all(ctx.settled(s) for s in (PROCESSOR, PORTAL, POS)) \
            or not ctx.books.payments:
        return
    mail_returns = [r for r in ctx.returns if r.channel != "store"]
    for ret in mail_returns:
        if ret.state is not ReturnState.RECEIVED or ret.outcome in _NO_REFUND_DUE:
            continue
        received_at = ret.received_at or (
            ret.erp_ra.created_at if ret.erp_ra and ret.erp_ra.state is ReturnState.RECEIVED
            else None)
        if received_at is None or ctx.now - received_at <= ctx.settings.received_not_refunded_after:
            continue
        given = [e for e in ctx.books.entries if e.return_key == ret.key
                 and (e.counted or e.kind in (MoneyOutKind.ERP_CREDIT_MEMO,
                                              MoneyOutKind.ERP_REFUND))]
        if not given:
            # Money back after the goods arrived that names no return may be for this one:
            # then "nothing has gone back" can't be said.
            given = [e for e in ctx.books.entries if e.counted and e.return_key is None
                     and e.kind is not MoneyOutKind.CHARGEBACK
                     and e.at >= received_at - timedelta(days=1)]
        if given or any(r.return_key == ret.key for r in ctx.refunds):
            continue
        yield Flag(
            code=FlagCode.RECEIVED_NOT_REFUNDED,
            severity=Severity.MEDIUM,
            message=(
                f"Return {ret.key} was received on {ctx.when(received_at)} and "
                f"{(ctx.now - received_at).days} days later nothing has gone back for it."
            ),
            evidence=(
                Evidence(ERP, f"Received on {ctx.when(received_at)}"
                              + (f" (RA {ret.erp_ra.tran_id})" if ret.erp_ra else "")),
                Evidence(PROCESSOR, "No refund, credit or exchange for this return"),
            ),
            suggested_action=(
                "Issue the refund for the received items (the refund action keeps it idempotent)."
            ),
            subject=ret.key,
        )


@rule
def return_state_divergence(ctx: Context) -> Iterator[Flag]:
    """Portal and ERP disagree on whether a return is still open."""
    for ret in ctx.returns:
        portal, ra = ret.portal, ret.erp_ra
        if portal is None or ra is None:
            continue
        portal_done = portal.state in RETURN_ABANDONED or portal.state is ReturnState.CLOSED
        if portal_done and ra.state in ERP_RETURN_OPEN:
            detail = (f"the portal shows it {portal.state_raw}, but ERP return authorization "
                      f"{ra.tran_id} is still open ({ra.status_raw})")
            action = (f"Close or cancel {ra.tran_id} in the ERP if the return really ended, or "
                      "reopen it in the portal if the goods are still coming.")
        elif portal.state in PORTAL_RETURN_OPEN and ra.state in (ReturnState.CANCELED,
                                                                 ReturnState.CLOSED):
            detail = (f"the ERP closed return authorization {ra.tran_id} ({ra.status_raw}), "
                      f"but the portal still shows it {portal.state_raw}")
            action = "Close or cancel the return in the portal, or reopen the ERP document."
        else:
            continue
        yield Flag(
            code=FlagCode.RETURN_STATE_DIVERGENCE,
            severity=Severity.MEDIUM,
            message=f"Return {portal.return_id}: {detail}.",
            evidence=(
                Evidence(PORTAL, f"Return {portal.return_id} {portal.state_raw}"),
                Evidence(ERP, f"RA {ra.tran_id} {ra.status_raw} ({ra.state.value.lower()})"),
            ),
            suggested_action=action,
            subject=portal.return_id,
        )


# ---------------------------------------------------------------- sources

_SOURCE_ACTIONS = {
    ErrorKind.AUTH: "Ask an admin to reconnect {system} in the app settings.",
    ErrorKind.RATE_LIMITED: "{system} is rate limiting; refresh in a minute.",
    ErrorKind.TIMEOUT: "Refresh in a minute; checks that need {label} were skipped.",
    ErrorKind.UNAVAILABLE: "Refresh in a minute; checks that need {label} were skipped.",
    ErrorKind.BAD_RESPONSE: "{system} sent data we couldn't read; refresh, and report it "
                            "if it persists.",
    ErrorKind.CONFIG: "Ask an admin to finish setting up {system} in the app settings.",
    ErrorKind.NOT_FOUND: "Refresh in a minute; checks that need {label} were skipped.",
}


@rule
def source_unavailable(ctx: Context) -> Iterator[Flag]:
    """A source that errored or timed out: the record is partial."""
    for source, report in ctx.reports.items():
        if report.status not in (SourceStatus.TIMEOUT, SourceStatus.ERROR):
            continue
        label = SOURCE_LABELS[source]
        system = report.system
        kind = report.error_kind or (
            ErrorKind.TIMEOUT if report.status is SourceStatus.TIMEOUT else ErrorKind.UNAVAILABLE)
        why = ("did not answer in time" if report.status is SourceStatus.TIMEOUT
               else f"failed ({report.error or kind.value})")
        yield Flag(
            code=FlagCode.SOURCE_UNAVAILABLE,
            severity=Severity.INFO,
            message=(
                f"The {label} ({system}) {why}; its details are missing and checks that need "
                "it were skipped."
            ),
            evidence=(Evidence(source, report.error or kind.value),),
            suggested_action=_SOURCE_ACTIONS[kind].format(system=system, label=f"the {label}"),
            subject=source.value,
        )
