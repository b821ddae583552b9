"""Reconciliation rules: each looks at the merged data and raises flags an agent can act on."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from .model import (
    SOURCE_LABELS,
    ErrorKind,
    OrderRef,
    RefundState,
    ReturnState,
    SourceName,
    SourceReport,
    SourceStatus,
)
from .money import sum_in
from .record import SEVERITY_RANK, Evidence, Flag, FlagCode, MergedRefund, MergedReturn, Severity
from .settings import ReconcileSettings
from .states import AUTHORIZED_OR_LATER, LIVE_REFUND_STATES, netsuite_ra_code

if TYPE_CHECKING:
    from .reconcile import Facts

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

    def knows_order(self, source: SourceName) -> bool:
        """The source answered and has the order: only then can "missing in it" be claimed.

        A source that knows nothing of the order (not_found) usually means a join key that
        doesn't match, not a gap per document; its status line says so instead.
        """
        return self.reports[source].status is SourceStatus.OK


def day(ts: datetime) -> str:
    """Short date for messages: "3 Mar"."""
    return f"{ts.day} {ts:%b}"


def business_days_between(start: datetime, end: datetime) -> int:
    """Whole weekdays elapsed from start to end."""
    if end <= start:
        return 0
    days = 0
    cursor = start
    while cursor + timedelta(days=1) <= end:
        cursor += timedelta(days=1)
        if cursor.weekday() < 5:
            days += 1
    return days


Rule = Callable[[Context], Iterator[Flag]]
RULES: list[Rule] = []


def rule(fn: Rule) -> Rule:
    """Register a reconciliation rule."""
    RULES.append(fn)
    return fn


def evaluate(ctx: Context) -> tuple[Flag, ...]:
    """Run every rule; most severe first, in rule order within a severity."""
    flags = [flag for r in RULES for flag in r(ctx)]
    flags.sort(key=lambda f: SEVERITY_RANK[f.severity])
    return tuple(flags)


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
        so = erp.sales_order if erp else None
        erp_said = (
            f"No return authorization on sales order {so.tran_id}" if so
            else f"No sales order or return authorization for {ctx.order.name}"
        )
        yield Flag(
            code=FlagCode.RETURN_NOT_IN_ERP,
            severity=Severity.HIGH,
            message=(
                f"Return {portal.return_id} was authorized in the returns portal on "
                f"{day(portal.created_at)}, but the ERP has no return authorization for it; "
                "inventory credit and the refund are held up."
            ),
            evidence=(
                Evidence(PORTAL, f"Return {portal.return_id} is {portal.state_raw} since "
                                 f"{day(portal.created_at)}"),
                Evidence(ERP, erp_said),
            ),
            suggested_action=(
                "Create the return authorization from the sales order in the ERP, or re-run "
                "the returns portal → ERP sync for this order."
            ),
            subject=portal.return_id,
        )


# ---------------------------------------------------------------- zone 2


@rule
def erp_refund_not_at_processor(ctx: Context) -> Iterator[Flag]:
    """ERP says the customer was refunded; the processor never got the instruction."""
    if not ctx.knows_order(PROCESSOR):
        return
    processor = ctx.facts.processor
    if processor is None or not processor.payments:
        # Paid some other way (cash, cheque): the processor is not the place to look.
        return
    for ref in ctx.refunds:
        if ref.processor is not None or ref.erp_refund is None:
            continue
        cref = ref.erp_refund
        if ctx.now - cref.created_at <= ctx.settings.processor_lag:
            continue
        quoted = f" (it quotes {cref.processor_refund_id})" if cref.processor_refund_id else ""
        yield Flag(
            code=FlagCode.ERP_REFUND_NOT_AT_PROCESSOR,
            severity=Severity.CRITICAL,
            message=(
                f"The ERP recorded customer refund {cref.tran_id} for {cref.amount.format()} "
                f"on {day(cref.created_at)}{quoted}, but the payment processor has no such "
                "refund: the customer has not been paid."
            ),
            evidence=(
                Evidence(ERP, f"Customer refund {cref.tran_id} {cref.amount.format()} on "
                              f"{day(cref.created_at)}"),
                Evidence(PROCESSOR, f"{len(processor.refunds)} refund(s) on "
                                    f"{', '.join(p.payment_id for p in processor.payments)}; "
                                    "none matches"),
            ),
            suggested_action=(
                # Built from the order and the ERP document only, so every load of the record
                # (whichever sources answered) suggests the same key.
                f"Issue the {cref.amount.format()} refund at the processor with idempotency key "
                f"refund:{ctx.order.number}:{cref.tran_id}, or reverse the "
                "ERP refund if it was recorded in error."
            ),
            subject=cref.tran_id,
        )


@rule
def processor_refund_not_in_erp(ctx: Context) -> Iterator[Flag]:
    """The processor paid a refund that finance never booked."""
    if not ctx.knows_order(ERP):
        return
    for ref in ctx.refunds:
        p = ref.processor
        if p is None or p.state is not RefundState.SUCCEEDED:
            continue
        if ref.erp_refund is not None or ref.erp_credit_memo is not None:
            continue
        if ctx.now - p.created_at <= ctx.settings.erp_posting_lag:
            continue
        yield Flag(
            code=FlagCode.PROCESSOR_REFUND_NOT_IN_ERP,
            severity=Severity.HIGH,
            message=(
                f"Refund {p.refund_id} of {p.amount.format()} succeeded at the processor on "
                f"{day(p.created_at)}, but the ERP has no credit memo or customer refund for it."
            ),
            evidence=(
                Evidence(PROCESSOR, f"Refund {p.refund_id} {p.amount.format()} succeeded"),
                Evidence(ERP, "No matching credit memo or customer refund"),
            ),
            suggested_action=(
                f"Post the credit memo and customer refund in the ERP, quoting {p.refund_id}."
            ),
            subject=p.refund_id,
        )


# ---------------------------------------------------------------- zone 3


@rule
def store_return_not_in_inventory(ctx: Context) -> Iterator[Flag]:
    """The store took goods back; ERP inventory doesn't show them."""
    if not ctx.knows_order(ERP) or ctx.facts.pos is None:
        return
    receipts = ctx.facts.erp.item_receipts if ctx.facts.erp else ()
    due: dict[tuple[str, str], int] = defaultdict(int)
    first_seen: dict[tuple[str, str], datetime] = {}
    for store in ctx.facts.pos.store_returns:
        if ctx.now - store.created_at <= ctx.settings.store_inventory_lag:
            continue
        for line in store.lines:
            key = (line.sku, (line.location or store.location or "").strip())
            due[key] += line.quantity
            first_seen.setdefault(key, store.created_at)
    for (sku, location), qty in due.items():
        credited = sum(
            rl.quantity for r in receipts for rl in r.lines
            if rl.sku == sku and (rl.location or "").strip().casefold() == location.casefold()
        )
        if credited >= qty:
            continue
        missing = qty - credited
        where = location or "the store"
        yield Flag(
            code=FlagCode.STORE_RETURN_NOT_IN_INVENTORY,
            severity=Severity.HIGH,
            message=(
                f"{where} took back {qty} × {sku} on {day(first_seen[(sku, location)])}, but "
                f"the ERP shows {credited} received there; stock is understated by {missing}."
            ),
            evidence=(
                Evidence(POS, f"Returned {qty} × {sku} at {where} (restock: RETURN)"),
                Evidence(ERP, f"Item receipts for {sku} at {where}: {credited}"),
            ),
            suggested_action=(
                f"Post an item receipt or inventory adjustment for {missing} × {sku} at {where} "
                "in the ERP, and mark the return in the returns portal if it was started there."
            ),
            subject=sku,
        )


# ---------------------------------------------------------------- money


@rule
def duplicate_refund(ctx: Context) -> Iterator[Flag]:
    """Two live refunds for one return, or the same amount twice on a payment within a day."""
    if not ctx.knows_order(PROCESSOR):
        return
    live = [r.processor for r in ctx.refunds
            if r.processor is not None and r.processor.state in LIVE_REFUND_STATES]
    groups: list[list] = []
    by_key: dict[str, list] = defaultdict(list)
    for p in live:
        if p.return_key:
            by_key[p.return_key].append(p)
    seen: set[str] = set()
    for key, group in by_key.items():
        # Several partial refunds for one return are normal (items, then shipping); the same
        # amount twice, or more than the return is worth, is not.
        amounts = [p.amount for p in group]
        same_amount = len(set(amounts)) < len(amounts)
        value = _return_value(ctx, key)
        too_much = (value is not None and len(group) > 1
                    and sum_in(value.currency, amounts).amount_minor > value.amount_minor)
        if len(group) > 1 and (same_amount or too_much):
            groups.append(group)
            seen.update(p.refund_id for p in group)
    rest = sorted((p for p in live if p.refund_id not in seen), key=lambda p: p.created_at)
    for i, a in enumerate(rest):
        if a.refund_id in seen:
            continue
        group = [a] + [
            b for b in rest[i + 1:]
            if b.refund_id not in seen and b.payment_id == a.payment_id and b.amount == a.amount
            and b.created_at - a.created_at <= ctx.settings.duplicate_window
        ]
        if len(group) > 1:
            groups.append(group)
            seen.update(p.refund_id for p in group)
    for group in groups:
        ids = ", ".join(p.refund_id for p in group)
        total = sum_in(group[0].amount.currency, [p.amount for p in group])
        yield Flag(
            code=FlagCode.DUPLICATE_REFUND,
            severity=Severity.CRITICAL,
            message=(
                f"{len(group)} refunds ({ids}) totalling {total.format()} look like the same "
                "refund issued more than once."
            ),
            evidence=tuple(
                Evidence(PROCESSOR, f"Refund {p.refund_id} {p.amount.format()} "
                                    f"{p.state.value.lower()} on {day(p.created_at)}"
                                    + (f", return {p.return_key}" if p.return_key else ""))
                for p in group
            ),
            suggested_action=(
                "Hold further refunds. Cancel the duplicate if it still requires action; "
                "otherwise recover the extra amount from the customer."
            ),
            subject=group[-1].refund_id,
        )


def _return_value(ctx: Context, key: str):
    """What a return is worth: its ERP credit memos, else the portal's return total."""
    for ret in ctx.returns:
        if ret.key != key:
            continue
        if ret.credit_memos:
            return sum_in(ret.credit_memos[0].amount.currency, [m.amount for m in ret.credit_memos])
        if ret.portal is not None and ret.portal.total is not None:
            return ret.portal.total
    return None


@rule
def over_refund(ctx: Context) -> Iterator[Flag]:
    """More refunded (or on its way) than was captured."""
    processor = ctx.facts.processor
    if processor is None or not processor.payments or ctx.currency is None:
        return
    captured = sum_in(ctx.currency, [p.amount_captured for p in processor.payments])
    out = sum_in(ctx.currency, [r.amount for r in processor.refunds if r.state in LIVE_REFUND_STATES])
    if out.amount_minor <= captured.amount_minor:
        return
    yield Flag(
        code=FlagCode.OVER_REFUND,
        severity=Severity.CRITICAL,
        message=(
            f"Refunds succeeded or pending total {out.format()}, more than the "
            f"{captured.format()} captured — {(out - captured).format()} too much."
        ),
        evidence=(
            Evidence(PROCESSOR, f"Captured {captured.format()}; refunded or pending "
                                f"{out.format()}"),
        ),
        suggested_action="Hold further refunds, cancel any pending excess, and audit who issued them.",
    )


@rule
def refund_amount_mismatch(ctx: Context) -> Iterator[Flag]:
    """For one return, the ERP and the processor refunded different sums."""
    if not (ctx.knows_order(PROCESSOR) and ctx.knows_order(ERP)) or ctx.currency is None:
        return
    by_return: dict[str, list[MergedRefund]] = defaultdict(list)
    for ref in ctx.refunds:
        if ref.return_key:
            by_return[ref.return_key].append(ref)
    for key, refs in by_return.items():
        # The ERP's refunded sum for the return: its credit memos (what was approved), plus
        # customer refunds that pay no memo. Payout instalments of a memo don't add up twice.
        erp_amounts = []
        seen_docs: set[str] = set()
        for r in refs:
            doc = r.erp_credit_memo or r.erp_refund
            if doc is not None and doc.internal_id not in seen_docs:
                seen_docs.add(doc.internal_id)
                erp_amounts.append(doc.amount)
        proc = [r.processor.amount for r in refs
                if r.processor is not None and r.processor.state in LIVE_REFUND_STATES]
        if not erp_amounts or not proc:
            continue
        currencies = {m.currency for m in erp_amounts + proc}
        if len(currencies) > 1:
            continue  # CURRENCY_MISMATCH covers it; never compare across currencies
        cur = currencies.pop()
        erp_total, proc_total = sum_in(cur, erp_amounts), sum_in(cur, proc)
        if abs(erp_total.amount_minor - proc_total.amount_minor) <= ctx.settings.amount_tolerance_minor:
            continue
        yield Flag(
            code=FlagCode.REFUND_AMOUNT_MISMATCH,
            severity=Severity.MEDIUM,
            message=(
                f"For return {key} the ERP refunded {erp_total.format()} but the processor "
                f"refunded {proc_total.format()}."
            ),
            evidence=(
                Evidence(ERP, f"Refunded {erp_total.format()} for return {key}"),
                Evidence(PROCESSOR, f"Refunded {proc_total.format()} for return {key}"),
            ),
            suggested_action=(
                "Compare the line, tax and shipping breakdown of the credit memo with the "
                "processor refunds, then correct whichever side is wrong."
            ),
            subject=key,
        )


@rule
def currency_mismatch(ctx: Context) -> Iterator[Flag]:
    """Sources disagree on the order's currency."""
    seen: dict[SourceName, set[str]] = defaultdict(set)
    f = ctx.facts
    if f.processor:
        for p in f.processor.payments:
            seen[PROCESSOR].add(p.amount.currency)
        for r in f.processor.refunds:
            seen[PROCESSOR].add(r.amount.currency)
    if f.erp:
        if f.erp.sales_order:
            seen[ERP].add(f.erp.sales_order.total.currency)
        for m in f.erp.credit_memos:
            seen[ERP].add(m.amount.currency)
        for c in f.erp.customer_refunds:
            seen[ERP].add(c.amount.currency)
    if f.portal:
        for ret in f.portal.returns:
            if ret.total is not None:
                seen[PORTAL].add(ret.total.currency)
            for pr in ret.refunds:
                seen[PORTAL].add(pr.amount.currency)
    if f.pos:
        for store in f.pos.store_returns:
            if store.amount is not None:
                seen[POS].add(store.amount.currency)
    all_currencies = set().union(*seen.values()) if seen else set()
    if len(all_currencies) <= 1:
        return
    yield Flag(
        code=FlagCode.CURRENCY_MISMATCH,
        severity=Severity.HIGH,
        message=(
            "The sources record this order in different currencies ("
            + ", ".join(sorted(all_currencies))
            + "); amounts can't be compared until that's settled."
        ),
        evidence=tuple(
            Evidence(src, "Amounts in " + ", ".join(sorted(curs)))
            for src, curs in seen.items()
        ),
        suggested_action=(
            "Compare in the currency the customer paid in (the processor's); check whether "
            "the ERP or portal converted to a base currency, and refund in the payment currency."
        ),
    )


@rule
def refund_pending_stale(ctx: Context) -> Iterator[Flag]:
    """A refund stuck pending (or waiting on the customer) for too long."""
    limit = ctx.settings.refund_pending_stale_business_days
    for ref in ctx.refunds:
        p = ref.processor
        if p is None or p.state not in (RefundState.PENDING, RefundState.REQUIRES_ACTION):
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
                f"business days (since {day(p.created_at)})."
            ),
            evidence=(Evidence(PROCESSOR, f"Refund {p.refund_id} status {p.status_raw}"),),
            suggested_action=(
                "Send the customer the steps to receive the refund, or cancel it and refund "
                "another way." if needs_customer else
                "Check the refund's destination details with the processor; tell the customer "
                "it can take 5–10 business days to reach the card."
            ),
            subject=p.refund_id,
        )


@rule
def refund_failed_erp_refunded(ctx: Context) -> Iterator[Flag]:
    """The processor refund failed while the ERP shows the customer refunded."""
    for ref in ctx.refunds:
        p = ref.processor
        if p is None or p.state not in (RefundState.FAILED, RefundState.CANCELED):
            continue
        erp_doc = ref.erp_refund
        if erp_doc is None:
            continue
        # A later successful refund for the same return/amount means it was retried.
        retried = any(
            o.processor is not None and o.processor.state is RefundState.SUCCEEDED
            and o.amount == p.amount and o.created_at >= p.created_at
            for o in ctx.refunds if o is not ref
        )
        if retried:
            continue
        yield Flag(
            code=FlagCode.REFUND_FAILED_ERP_REFUNDED,
            severity=Severity.CRITICAL,
            message=(
                f"Refund {p.refund_id} of {p.amount.format()} {p.status_raw} at the processor"
                + (f" ({p.failure_reason})" if p.failure_reason else "")
                + f", yet the ERP shows customer refund {erp_doc.tran_id} as paid."
            ),
            evidence=(
                Evidence(PROCESSOR, f"Refund {p.refund_id} {p.status_raw}"),
                Evidence(ERP, f"Customer refund {erp_doc.tran_id} {erp_doc.amount.format()}"),
            ),
            suggested_action=(
                "Reverse or hold the ERP refund, then pay the customer another way (new refund, "
                "store credit) and tell them."
            ),
            subject=p.refund_id,
        )


@rule
def dispute_with_refund(ctx: Context) -> Iterator[Flag]:
    """A chargeback is open on a payment that already has refunds or an open return."""
    processor = ctx.facts.processor
    if processor is None:
        return
    open_return = any(
        r.portal is not None and r.state not in (
            ReturnState.CLOSED, ReturnState.CANCELED, ReturnState.REJECTED, ReturnState.EXPIRED)
        for r in ctx.returns
    )
    for dispute in processor.disputes:
        if not dispute.is_open:
            continue
        refunds = [r for r in processor.refunds
                   if r.payment_id == dispute.payment_id and r.state in LIVE_REFUND_STATES]
        if not refunds and not open_return:
            continue
        refunded = sum_in(dispute.amount.currency, [r.amount for r in refunds])
        due = f"; evidence due {day(dispute.due_by)}" if dispute.due_by else ""
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
                + (f" before {day(dispute.due_by)}" if dispute.due_by else "")
                + "."
            ),
            subject=dispute.dispute_id,
        )


# ---------------------------------------------------------------- returns


@rule
def received_not_refunded(ctx: Context) -> Iterator[Flag]:
    """The warehouse received the goods days ago and nobody refunded."""
    if not (ctx.knows_order(PROCESSOR) and ctx.knows_order(ERP)):
        return
    mail_returns = [r for r in ctx.returns if r.channel != "store"]
    for ret in mail_returns:
        if ret.state not in (ReturnState.RECEIVED, ReturnState.PARTIALLY_RECEIVED):
            continue
        received_at = min((r.created_at for r in ret.receipts), default=None)
        if received_at is None and ret.erp_ra is not None and netsuite_ra_code(
                ret.erp_ra.status_raw) == "F":
            received_at = ret.erp_ra.created_at
        if received_at is None or ctx.now - received_at <= ctx.settings.received_not_refunded_after:
            continue
        linked = [r for r in ctx.refunds if r.return_key == ret.key
                  and (r.state in LIVE_REFUND_STATES or r.state is RefundState.APPROVED_IN_ERP)]
        if not linked and len(mail_returns) == 1:
            linked = [r for r in ctx.refunds if r.state in LIVE_REFUND_STATES
                      and r.created_at >= received_at - timedelta(days=1)]
        if linked:
            continue
        yield Flag(
            code=FlagCode.RECEIVED_NOT_REFUNDED,
            severity=Severity.MEDIUM,
            message=(
                f"Return {ret.key} was received on {day(received_at)} and "
                f"{(ctx.now - received_at).days} days later there is still no refund."
            ),
            evidence=(
                Evidence(ERP, f"Received on {day(received_at)}"
                              + (f" (RA {ret.erp_ra.tran_id})" if ret.erp_ra else "")),
                Evidence(PROCESSOR, "No refund for this return"),
            ),
            suggested_action=(
                "Issue the refund for the received items (the refund action keeps it idempotent)."
            ),
            subject=ret.key,
        )


_OPEN_AT_ERP = frozenset({ReturnState.AUTHORIZED, ReturnState.PARTIALLY_RECEIVED})
_OPEN_AT_PORTAL = frozenset({ReturnState.REQUESTED, ReturnState.AUTHORIZED, ReturnState.IN_TRANSIT})


@rule
def return_state_divergence(ctx: Context) -> Iterator[Flag]:
    """Portal and ERP disagree on whether a return is still open."""
    for ret in ctx.returns:
        portal, ra = ret.portal, ret.erp_ra
        if portal is None or ra is None:
            continue
        code = netsuite_ra_code(ra.status_raw)
        portal_done = portal.state in (ReturnState.CLOSED, ReturnState.CANCELED)
        if portal_done and ra.state in _OPEN_AT_ERP:
            detail = f"the portal shows it {portal.state_raw} but the ERP RA is still open"
        elif portal.state in _OPEN_AT_PORTAL and code in ("C", "H"):
            detail = f"the ERP closed RA {ra.tran_id} but the portal still shows it {portal.state_raw}"
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
            suggested_action="Close or cancel the side that lags, then re-run the portal → ERP sync.",
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
