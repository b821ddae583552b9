"""The sentence an agent reads aloud to the customer.

Plain words only: no system or vendor names, no internal codes. It says what happened and
what happens next, by tender and destination; it never denies a refund unless every source
that could record one answered, never claims money moved that no source confirms, never
promises a time window that has already passed, and names what is blocking.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .dates import business_days_between
from .ledger import Books
from .model import Dispute, DisputeState, OrderRef, ReturnState, SourceName, SourceReport, Tender
from .money import format_totals
from .record import LedgerEntry, MergedReturn, MoneyOutKind
from .settings import ReconcileSettings
from .states import RETURN_ABANDONED

# Card refunds reach a statement within this many business days; past it we promise nothing.
CARD_REFUND_BUSINESS_DAYS = 10


class Meaning(StrEnum):
    """What a headline says, as codes tests and properties can check."""

    NOT_FOUND = "NOT_FOUND"
    STATUS_UNKNOWN = "STATUS_UNKNOWN"
    PAID = "PAID"
    NO_RETURN = "NO_RETURN"
    DISPUTE_OPEN = "DISPUTE_OPEN"
    REFUNDED = "REFUNDED"  # money confirmed back (any tender)
    REFUND_PENDING = "REFUND_PENDING"
    REFUND_NEEDS_ACTION = "REFUND_NEEDS_ACTION"
    REFUND_BEING_CHECKED = "REFUND_BEING_CHECKED"  # a refund exists; its state is unknown
    REFUND_FAILED = "REFUND_FAILED"
    REFUND_UNCONFIRMED = "REFUND_UNCONFIRMED"  # recorded, but nothing shows it moved
    REFUND_UNKNOWN = "REFUND_UNKNOWN"  # can't say: a source that could record one is silent
    NO_REFUND_YET = "NO_REFUND_YET"
    STORE_CREDIT_ISSUED = "STORE_CREDIT_ISSUED"
    EXCHANGE = "EXCHANGE"
    CHARGEBACK_LOST = "CHARGEBACK_LOST"
    RETURN_REQUESTED = "RETURN_REQUESTED"
    RETURN_HELD = "RETURN_HELD"
    RETURN_AUTHORIZED = "RETURN_AUTHORIZED"
    RETURN_IN_TRANSIT = "RETURN_IN_TRANSIT"
    RETURN_PARTIALLY_RECEIVED = "RETURN_PARTIALLY_RECEIVED"
    RETURN_RECEIVED = "RETURN_RECEIVED"
    RETURN_CLOSED = "RETURN_CLOSED"
    RETURN_CANCELLED = "RETURN_CANCELLED"
    RETURN_EXPIRED = "RETURN_EXPIRED"
    RETURN_REJECTED = "RETURN_REJECTED"
    RETURN_UNKNOWN = "RETURN_UNKNOWN"
    PARTIAL_INFO = "PARTIAL_INFO"


# Meanings that claim money went back (a property checks each is backed by the ledger).
MONEY_MOVED = frozenset({Meaning.REFUNDED, Meaning.STORE_CREDIT_ISSUED, Meaning.CHARGEBACK_LOST})

_RETURN_MEANINGS = {
    ReturnState.REQUESTED: Meaning.RETURN_REQUESTED,
    ReturnState.HELD: Meaning.RETURN_HELD,
    ReturnState.AUTHORIZED: Meaning.RETURN_AUTHORIZED,
    ReturnState.IN_TRANSIT: Meaning.RETURN_IN_TRANSIT,
    ReturnState.PARTIALLY_RECEIVED: Meaning.RETURN_PARTIALLY_RECEIVED,
    ReturnState.RECEIVED: Meaning.RETURN_RECEIVED,
    ReturnState.CLOSED: Meaning.RETURN_CLOSED,
    ReturnState.CANCELED: Meaning.RETURN_CANCELLED,
    ReturnState.EXPIRED: Meaning.RETURN_EXPIRED,
    ReturnState.REJECTED: Meaning.RETURN_REJECTED,
    ReturnState.UNKNOWN: Meaning.RETURN_UNKNOWN,
}


@dataclass(frozen=True)
class Headline:
    """The sentence, and what it means."""

    text: str
    meanings: tuple[Meaning, ...]


class _Writer:
    """Collects sentences and their meanings."""

    def __init__(self, now: datetime, settings: ReconcileSettings) -> None:
        self.now = now
        self.settings = settings
        self.sentences: list[str] = []
        self.meanings: list[Meaning] = []

    def say(self, sentence: str, *meanings: Meaning) -> None:
        self.sentences.append(sentence[0].upper() + sentence[1:])
        self.meanings.extend(m for m in meanings if m not in self.meanings)

    def date(self, ts: datetime) -> str:
        local = ts.astimezone(self.settings.zone)
        today = self.now.astimezone(self.settings.zone)
        return f"{local.day} {local:%B}" + ("" if local.year == today.year else f" {local.year}")

    def done(self) -> Headline:
        return Headline(" ".join(s if s.endswith(".") else s + "." for s in self.sentences),
                        tuple(self.meanings))


def compose_headline(
    *,
    order: OrderRef,
    now: datetime,
    settings: ReconcileSettings,
    found: bool,
    reports: dict[SourceName, SourceReport],
    returns: tuple[MergedReturn, ...],
    books: Books,
    disputes: tuple[Dispute, ...],
) -> Headline:
    """Compose the customer sentence from the merged record."""
    w = _Writer(now, settings)
    in_use = [s for s, r in reports.items() if r.status.in_use]
    silent = [s for s in in_use if not reports[s].status.answered]
    if not found:
        if in_use and len(silent) == len(in_use):
            w.say(f"We couldn't check order {order.name} just now; please try again in a minute",
                  Meaning.STATUS_UNKNOWN)
        elif silent:
            w.say(f"We couldn't find order {order.name} in the records we could check just now; "
                  "please try again in a minute", Meaning.NOT_FOUND, Meaning.PARTIAL_INFO)
        else:
            w.say(f"We couldn't find order {order.name}", Meaning.NOT_FOUND)
        return w.done()

    for dispute in disputes:
        if dispute.state is DisputeState.OPEN:
            w.say("there's an open dispute with your bank about this payment, so we can't send "
                  "a refund until it's settled", Meaning.DISPUTE_OPEN)
            break
    store_keys = {r.key for r in returns if r.store_return is not None}
    money_for_store = _money(w, books)
    _unconfirmed(w, books, reports)
    ordered = _ordered(returns)
    for ret in ordered:
        if ret.key in store_keys and ret.key in money_for_store:
            continue  # the store refund's sentence already says where and when
        _return(w, ret, _which(ret, ordered, settings))
    can_deny = not silent
    moved = any(m in w.meanings for m in (*MONEY_MOVED, Meaning.REFUND_PENDING,
                                          Meaning.REFUND_NEEDS_ACTION, Meaning.REFUND_BEING_CHECKED,
                                          Meaning.REFUND_FAILED, Meaning.REFUND_UNCONFIRMED,
                                          Meaning.EXCHANGE))
    wants_refund = [r for r in returns if r.state not in RETURN_ABANDONED
                    and r.outcome.value not in ("exchange", "store_credit")]
    if not returns and not moved:
        _no_activity(w, books, can_deny)
    elif not moved and wants_refund:
        if can_deny:
            w.say("no refund has been issued yet", Meaning.NO_REFUND_YET)
        else:
            w.say("we can't confirm refunds right now; please check back shortly",
                  Meaning.REFUND_UNKNOWN)
    if silent and Meaning.REFUND_UNKNOWN not in w.meanings \
            and Meaning.STATUS_UNKNOWN not in w.meanings:
        w.say("some details couldn't be checked just now", Meaning.PARTIAL_INFO)
    return w.done()


def _ordered(returns: tuple[MergedReturn, ...]) -> list[MergedReturn]:
    """Oldest first (returns with no date last), then by key: never the vendor's list order."""
    return sorted(returns, key=lambda r: (r.created_at is None, r.created_at or 0, r.key))


def _money(w: _Writer, books: Books) -> set[str]:
    """Sentences for every movement of value back; returns the store returns they cover."""
    covered: set[str] = set()
    groups: dict[tuple[str, str], list[LedgerEntry]] = defaultdict(list)
    for e in books.entries:
        if e.kind in (MoneyOutKind.ERP_CREDIT_MEMO, MoneyOutKind.ERP_REFUND) and not e.counted:
            continue
        if e.kind is MoneyOutKind.CHARGEBACK and e.state != "lost":
            continue
        if e.kind is MoneyOutKind.EXCHANGE and e.state == "cancelled":
            continue
        groups[(e.kind.value + ":" + e.state, e.destination)].append(e)
        if e.kind in (MoneyOutKind.STORE_REFUND, MoneyOutKind.ERP_REFUND) and e.return_key:
            covered.add(e.return_key)
    retried = set(books.processor_pairing.retries.values())
    for (kind_state, destination), entries in sorted(groups.items(), key=_group_order):
        kind, state = kind_state.split(":", 1)
        amounts = format_totals(e.amount for e in entries if e.amount is not None)
        last = max(e.at for e in entries)
        when = w.date(last)
        if kind == MoneyOutKind.REFUND.value:
            _card_refund(w, entries, state, destination, amounts, last, retried)
        elif kind in (MoneyOutKind.STORE_REFUND.value, MoneyOutKind.ERP_REFUND.value):
            tender = entries[0].tender
            if state == "pending":
                w.say(f"a refund of {amounts} to your {destination} is being processed",
                      Meaning.REFUND_PENDING)
            elif state == "unknown":
                w.say(f"there's a refund of {amounts} ({destination}) whose status we're still "
                      "checking", Meaning.REFUND_BEING_CHECKED)
            elif state not in ("succeeded", "paid_out"):
                continue  # a till refund that failed moved nothing
            elif tender is Tender.CASH:
                w.say(f"you were refunded {amounts} in {destination} on {when}", Meaning.REFUNDED)
            elif tender in (Tender.GIFT_CARD, Tender.STORE_CREDIT, Tender.CARD_PRESENT):
                w.say(f"{amounts} went back to your {destination} on {when}", Meaning.REFUNDED)
            else:
                w.say(f"you were refunded {amounts} ({destination}) on {when}", Meaning.REFUNDED)
        elif kind == MoneyOutKind.STORE_CREDIT.value:
            as_what = "a gift card" if entries[0].tender is Tender.GIFT_CARD else "store credit"
            w.say(f"{amounts} was issued as {as_what} on {when}", Meaning.STORE_CREDIT_ISSUED)
        elif kind == MoneyOutKind.EXCHANGE.value:
            if state == "completed":
                w.say(f"your exchange was completed ({destination})", Meaning.EXCHANGE)
            else:
                w.say(f"your exchange is under way ({destination})", Meaning.EXCHANGE)
        elif kind == MoneyOutKind.CHARGEBACK.value:
            if all(e.decided_at for e in entries):
                w.say(f"your bank returned {amounts} to you through a dispute, decided on "
                      f"{when}", Meaning.CHARGEBACK_LOST)
            else:  # the source gives no decision date (Stripe): don't invent one
                opened = w.date(min(e.at for e in entries))
                w.say(f"your bank returned {amounts} to you through a dispute opened on "
                      f"{opened}", Meaning.CHARGEBACK_LOST)
        elif kind == MoneyOutKind.ERP_CREDIT_MEMO.value:
            w.say(f"{amounts} of credit from your return was used toward another order",
                  Meaning.STORE_CREDIT_ISSUED)
    return covered


_KIND_ORDER = {k.value: i for i, k in enumerate((
    MoneyOutKind.REFUND, MoneyOutKind.STORE_REFUND, MoneyOutKind.ERP_REFUND,
    MoneyOutKind.STORE_CREDIT, MoneyOutKind.ERP_CREDIT_MEMO, MoneyOutKind.CHARGEBACK,
    MoneyOutKind.EXCHANGE))}


_STATE_ORDER = {s: i for i, s in enumerate(("succeeded", "issued", "lost", "completed",
                                             "paid_out", "applied_to_another_order", "pending",
                                             "in_progress", "requires_action", "unknown"))}


def _group_order(item: tuple[tuple[str, str], list[LedgerEntry]]) -> tuple[int, int, str, str]:
    (kind_state, destination), _ = item
    kind, state = kind_state.split(":", 1)
    return (_KIND_ORDER[kind], _STATE_ORDER.get(state, len(_STATE_ORDER)), state, destination)


def _card_refund(w: _Writer, entries: list[LedgerEntry], state: str, destination: str,
                 amounts: str, last: datetime, retried: set[str]) -> None:
    when = w.date(last)
    first = min(e.at for e in entries)
    to = f"to your {destination}"
    if state == "succeeded":
        several = len(entries) > 1
        text = (f"we refunded {amounts} {to}" + (f" in {len(entries)} refunds, the latest on "
                                                   if several else " on ") + when)
        if business_days_between(last, w.now) < CARD_REFUND_BUSINESS_DAYS and \
                entries[0].tender in (Tender.CARD, Tender.WALLET):
            text += "; it can take up to 10 business days to show on your statement"
        w.say(text, Meaning.REFUNDED)
    elif state == "pending":
        text = f"a refund of {amounts} {to} is on its way, started on {w.date(first)}"
        if business_days_between(first, w.now) < CARD_REFUND_BUSINESS_DAYS:
            text += "; it usually shows within 5 to 10 business days"
        else:
            text += ", and it's taking longer than usual, so we're looking into it"
        w.say(text, Meaning.REFUND_PENDING)
    elif state == "requires_action":
        w.say(f"a refund of {amounts} started on {w.date(first)} needs a step from you before "
              "it can be paid", Meaning.REFUND_NEEDS_ACTION)
    elif state == "unknown":
        w.say(f"there's a refund of {amounts} {to} whose status we're still checking",
              Meaning.REFUND_BEING_CHECKED)
    elif state in ("failed", "canceled"):
        open_failures = [e for e in entries if e.key not in retried]
        if open_failures:
            total = format_totals(e.amount for e in open_failures if e.amount is not None)
            w.say(f"a refund of {total} {to} on {w.date(max(e.at for e in open_failures))} "
                  "didn't go through; we're looking into it", Meaning.REFUND_FAILED)


def _unconfirmed(w: _Writer, books: Books, reports: dict[SourceName, SourceReport]) -> None:
    """Refunds recorded that nothing confirms: say they were recorded, never that money moved."""
    pending = [(unpaid, b.at, b.paid, SourceName.PROCESSOR) for b, unpaid in books.unconfirmed]
    if not pending:  # the ERP and the portal usually record the same refund: say it once
        pending = [(amount, at, True, owner) for _, amount, at, owner in books.portal_claims]
    if not pending:
        return
    amounts = format_totals(amount for amount, _, _, _ in pending)
    when = w.date(max(at for _, at, _, _ in pending))
    verb = "recorded" if any(paid for _, _, paid, _ in pending) else "approved"
    if all(reports[owner].status.answered for _, _, _, owner in pending):
        w.say(f"a refund of {amounts} was {verb} on {when}, but we can't see it on its way to "
              "you yet; we're checking", Meaning.REFUND_UNCONFIRMED)
    else:
        w.say(f"a refund of {amounts} was {verb} on {when}; we can't confirm right now that it "
              "has been sent", Meaning.REFUND_UNCONFIRMED)


def _which(ret: MergedReturn, ordered: list[MergedReturn], settings: ReconcileSettings) -> str:
    """"your return", or with several: "your return from 3 March" ("first", "second" on ties).

    Days are the merchant's, as the sentence prints them.
    """
    if len(ordered) == 1:
        return "your return"
    if ret.created_at is None:
        return "another return"

    def day(r: MergedReturn) -> object:
        return r.created_at.astimezone(settings.zone).date() if r.created_at else None

    same_day = [r for r in ordered if day(r) == day(ret)]
    if len(same_day) == 1:
        return "your return from {date}"
    nth = ("first", "second", "third", "fourth", "fifth")
    i = same_day.index(ret)
    return f"your {nth[i] if i < len(nth) else 'next'} return from {{date}}"


def _return(w: _Writer, ret: MergedReturn, which: str) -> None:
    created = ret.created_at
    your = which.format(date=w.date(created)) if created else which
    meaning = _RETURN_MEANINGS[ret.state]
    portal = ret.portal
    label = portal.label if portal else None
    match ret.state:
        case ReturnState.REQUESTED:
            w.say(f"{your} is waiting for approval", meaning)
        case ReturnState.HELD:
            arrived = f" after it arrived on {w.date(ret.received_at)}" if ret.received_at else ""
            w.say(f"{your} is being reviewed by our team{arrived}; that review decides what "
                  "happens next", meaning)
        case ReturnState.AUTHORIZED:
            w.say(f"{your} is approved; we haven't seen it on its way back yet", meaning)
        case ReturnState.IN_TRANSIT:
            if label and (label.status or "").lower() == "delivered":
                w.say(f"{your} was delivered to us and is waiting to be checked in", meaning)
            else:
                carrier = f" with {label.carrier}" if label and label.carrier else ""
                tracking = (f" (tracking {label.tracking_number})"
                            if label and label.tracking_number else "")
                w.say(f"{your} is on its way back to us{carrier}{tracking}", meaning)
        case ReturnState.PARTIALLY_RECEIVED:
            if ret.received_quantity is not None and ret.authorized_quantity:
                w.say(f"we've received {ret.received_quantity} of the {ret.authorized_quantity} "
                      f"items in {your}", meaning)
            else:
                w.say(f"we've received part of {your}", meaning)
        case ReturnState.RECEIVED:
            if ret.store_return is not None:
                units = ret.received_quantity or 0
                where = ret.store_return.location or "one of our stores"
                w.say(f"you returned {units} item{'s' if units != 1 else ''} at {where} on "
                      f"{w.date(ret.store_return.created_at)}", meaning)
            elif ret.received_at:
                w.say(f"we received {your} on {w.date(ret.received_at)}", meaning)
            else:
                w.say(f"we've received {your}", meaning)
        case ReturnState.CLOSED:
            # Only the portal says when it closed a return; an RA's date is when it opened.
            closed = portal.updated_at if portal and portal.updated_at else None
            if closed is None and ret.received_at:
                w.say(f"we received {your} on {w.date(ret.received_at)} and it's now complete",
                      meaning)
            else:
                w.say(f"{your} was completed" + (f" on {w.date(closed)}" if closed else ""),
                      meaning)
        case ReturnState.CANCELED:
            w.say(f"{your} was cancelled", meaning)
        case ReturnState.EXPIRED:
            w.say(f"{your} expired before it was sent back", meaning)
        case ReturnState.REJECTED:
            w.say(f"{your} was declined after inspection", meaning)
        case _:
            w.say(f"we're checking the status of {your}", meaning)


def _no_activity(w: _Writer, books: Books, can_deny: bool) -> None:
    if not can_deny:
        w.say("we can't confirm returns and refunds for this order right now; please check "
              "back shortly", Meaning.REFUND_UNKNOWN)
        return
    paid = [p for p in books.payments if p.amount_captured.amount_minor > 0]
    if paid:
        first = min(paid, key=lambda p: (p.created_at, p.payment_id))
        total = format_totals(p.amount_captured for p in paid)
        w.say(f"this order has no return or refund; {total} was paid on {w.date(first.created_at)}",
              Meaning.NO_RETURN, Meaning.PAID)
    else:
        w.say("this order has no return or refund", Meaning.NO_RETURN)
