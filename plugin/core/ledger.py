"""The money-out ledger: every way value went back to the customer, and what is left to refund.

Each movement is counted once, from the system that moved it: card, wallet and BNPL refunds
and chargebacks from the processor; till and gift-card refunds from the shop; store credit,
gift cards and exchanges from the portal. The ERP's customer refunds and credit memos are
bookings: they confirm a movement (paired in `pairing`) and count on their own only where
they are the sole record (a cash refund booked at a store the shop didn't report, a credit
memo spent on another order).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from .model import (
    LIVE_REFUND_STATES,
    CreditState,
    DisputeState,
    ErpCreditMemo,
    ErpCustomerRefund,
    Facts,
    Payment,
    PortalRefund,
    ProcessorRefund,
    RefundState,
    ShopTransaction,
    ShopTransactionKind,
    ShopTransactionStatus,
    SourceName,
    SourceReport,
    Tender,
)
from .money import Money, sum_in
from .pairing import Booking, Movement, Pairing, fits, pair, tender_family
from .record import LedgerEntry, MergedRefund, MergedReturn, MoneyOutKind, TenderBalance
from .settings import ReconcileSettings
from .states import RETURN_ABANDONED

PORTAL, PROCESSOR, ERP, POS = (SourceName.PORTAL, SourceName.PROCESSOR, SourceName.ERP,
                               SourceName.POS)


@dataclass
class Books:
    """Everything the ledger derives for one order."""

    payments: tuple[Payment, ...]
    entries: tuple[LedgerEntry, ...]
    refunds: tuple[MergedRefund, ...]
    processor_pairing: Pairing
    shop_pairing: Pairing
    refund_returns: dict[str, str]  # processor refund id → the return it refunded
    shop_refunds: tuple[ShopTransaction, ...]  # the shop's own (non-processor) refunds
    # ERP bookings for the processor that nothing confirms, with the part still unpaid once
    # what compatible unbooked refunds (same return or none) moved is set against them.
    unconfirmed: tuple[tuple[Booking, Money], ...] = ()
    # Processor refunds no booking records, with the part no compatible booking covers.
    unbooked: tuple[tuple[Movement, Money], ...] = ()
    unconfirmed_portal_refunds: tuple[tuple[str, str, Money], ...] = ()  # (return, ref, amount)
    # Refunds the portal says it made that the system it names (processor or shop) doesn't
    # show: (return, amount, when, that system).
    portal_claims: tuple[tuple[str, Money, datetime, SourceName], ...] = ()
    notes: list[str] = field(default_factory=list)

    def counted(self, currency: str) -> list[LedgerEntry]:
        return [e for e in self.entries if e.counted and e.amount is not None
                and e.amount.currency == currency]


def tender_words(tender: Tender, label: str | None, location: str | None = None) -> str:
    """Plain words for where money went: "Visa ending 4242", "cash at Brooklyn Store"."""
    at = f" at {location}" if location else ""
    match tender:
        case Tender.CASH:
            return f"cash{at}"
        case Tender.CARD_PRESENT:
            return (label or "card") + at
        case Tender.GIFT_CARD:
            return label or "gift card"
        case Tender.STORE_CREDIT:
            return label or "store credit"
        case Tender.CHECK:
            return "a cheque"
        case Tender.BNPL:
            return f"{label} account" if label else "pay-later account"
        case Tender.CARD | Tender.WALLET | Tender.BANK:
            return label or {Tender.CARD: "card", Tender.WALLET: "digital wallet",
                             Tender.BANK: "bank account"}[tender]
    return label or "the original payment method"


def build(facts: Facts, returns: tuple[MergedReturn, ...], reports: dict[SourceName, SourceReport],
          settings: ReconcileSettings) -> Books:
    """Pair, classify and list every movement of value back to the customer.

    The primary records (processor, shop, portal credit) become entries first; then the
    ERP's bookings are paired with them — card bookings with processor refunds, shop-side
    bookings (cash, gift card …) with the shop's refunds, store returns and portal credit —
    and an ERP booking counts on its own only where nothing else records that money.
    """
    ra_return = {r.erp_ra.internal_id: r.key for r in returns if r.erp_ra is not None}
    processor = facts.processor
    p_refunds = list(processor.refunds) if processor else []
    shop_txns = _shop_own(facts, settings)
    payments = _payments(facts, shop_txns)
    refund_returns = _refund_returns(facts, p_refunds)
    via_processor = bool(processor and processor.payments) or (
        reports[PROCESSOR].status.in_use and not any(
            t.kind is ShopTransactionKind.PAYMENT for t in shop_txns))
    credited = {r.return_id for r in (facts.portal.returns if facts.portal else ())
                if (r.credit_issued and r.credit_issued.amount_minor > 0)
                or (r.state not in RETURN_ABANDONED
                    and (r.exchange_order or r.exchange_value is not None))}
    shop_refunds = tuple(t for t in shop_txns if t.kind is ShopTransactionKind.REFUND)

    entries: list[LedgerEntry] = []
    payment_labels = {p.payment_id: (p.tender, p.tender_label) for p in payments}
    for r in p_refunds:
        tender, label = r.tender, r.tender_label or payment_labels.get(r.payment_id, (None, None))[1]
        entries.append(LedgerEntry(
            key=r.refund_id, kind=MoneyOutKind.REFUND, source=PROCESSOR, amount=r.amount,
            tender=tender, destination=tender_words(tender, label), state=r.state.value.lower(),
            at=r.created_at, counted=r.state in LIVE_REFUND_STATES,
            return_key=refund_returns.get(r.refund_id), payment_id=r.payment_id,
            amount_shop=r.amount_shop))
    if processor:
        for d in processor.disputes:
            if d.state in (DisputeState.LOST, DisputeState.OPEN, DisputeState.UNKNOWN):
                entries.append(LedgerEntry(
                    key=d.dispute_id, kind=MoneyOutKind.CHARGEBACK, source=PROCESSOR,
                    amount=d.amount, tender=Tender.CARD, destination="the card issuer (chargeback)",
                    state=d.state.value, at=d.closed_at or d.created_at,
                    counted=d.state is DisputeState.LOST, payment_id=d.payment_id,
                    decided_at=d.closed_at))
    for t in shop_refunds:
        entries.append(LedgerEntry(
            key=t.transaction_id, kind=MoneyOutKind.STORE_REFUND, source=POS, amount=t.amount,
            tender=t.tender, destination=tender_words(t.tender, t.tender_label, t.location),
            state=_shop_state(t.status), at=t.created_at,
            counted=t.status in (ShopTransactionStatus.SUCCESS, ShopTransactionStatus.PENDING,
                                 ShopTransactionStatus.UNKNOWN),
            return_key=_store_return_key(t, returns), amount_shop=t.amount_shop))
    store_entries = _store_returns_without_transactions(facts, returns)
    portal_entries = _portal_entries(facts, reports, settings, returns)
    entries.extend(store_entries)
    entries.extend(portal_entries)

    card_books, shop_books, memo_uses = _bookings(facts, ra_return, via_processor, credited)
    tolerance = settings.rounding_minor_per_document, settings.amount_tolerance_minor

    def pairs(books: list[Booking], moves: Iterable[Movement]) -> Pairing:
        return pair(books, moves, tolerance_per_document=tolerance[0],
                    extra_tolerance=tolerance[1], window=settings.refund_match_window)

    p_pairing = pairs(card_books, (_movement(r, refund_returns) for r in p_refunds))
    shop_side = [_shop_movement(t, returns) for t in shop_refunds]
    shop_side.extend(_entry_movement(e) for e in (*store_entries, *portal_entries)
                     if e.counted and e.amount is not None
                     and e.kind is not MoneyOutKind.REFUND)
    s_pairing = pairs(shop_books, shop_side)
    # A refund the ERP pairing ties to a return inherits it.
    for match in p_pairing.matches:
        keys = {b.return_key for b in match.bookings if b.return_key}
        if len(keys) == 1:
            key = keys.pop()
            for m in match.movements:
                refund_returns.setdefault(m.key, key)
    for i, e in enumerate(entries):
        if e.kind is MoneyOutKind.REFUND and e.return_key is None and e.key in refund_returns:
            entries[i] = replace(e, return_key=refund_returns[e.key])

    cover = _Cover(settings.rounding_minor_per_document)
    covered_shop = cover.shop_bookings(s_pairing)
    unconfirmed, unbooked = cover.processor(p_pairing, s_pairing)
    entries = _with_booked_tenders(entries, s_pairing, facts)
    entries.extend(_booking_entries(facts, ra_return, p_pairing, s_pairing, memo_uses,
                                    portal_entries, covered_shop))
    entries.sort(key=lambda e: (e.at, e.key))
    unconfirmed_portal = _unconfirmed_portal_refunds(facts, settings, p_refunds, payments)
    claims = _portal_claims(facts, reports, settings, p_refunds, shop_refunds, refund_returns)
    return Books(
        payments=payments,
        entries=tuple(entries),
        refunds=_merged_refunds(p_refunds, p_pairing, refund_returns, facts),
        processor_pairing=p_pairing,
        shop_pairing=s_pairing,
        refund_returns=refund_returns,
        shop_refunds=shop_refunds,
        unconfirmed=unconfirmed,
        unbooked=unbooked,
        unconfirmed_portal_refunds=unconfirmed_portal,
        portal_claims=claims,
    )


class _Cover:
    """Set unpaired bookings against unpaired movements they could record, oldest first.

    Only compatible pairs net (same currency, same return or none, no clashing tenders), so
    a gap on one return is never hidden by an unrelated movement on another. One movement's
    amount is used up once, whichever booking it covers.
    """

    def __init__(self, per_document: int) -> None:
        self.per_document = per_document
        self.left: dict[str, int] = {}

    def _take(self, book: Booking, moves: list[Movement]) -> int:
        """What of `book` the movements still holding value can't cover (minor units)."""
        need = book.amount.amount_minor
        ranked = sorted((m for m in moves if fits(book, m) and self.left.get(m.key, 0) > 0),
                        key=lambda m: (not (book.return_key and m.return_key == book.return_key),
                                       abs(m.at - book.at), m.key))
        for m in ranked:
            used = min(need, self.left[m.key])
            self.left[m.key] -= used
            need -= used
            if need == 0:
                break
        return need

    def shop_bookings(self, s_pairing: Pairing) -> set[str]:
        """Shop-side bookings another shop-side record already covers (they don't count)."""
        moves = [m for m in s_pairing.movements if m.live]
        for m in moves:
            self.left[m.key] = m.amount.amount_minor
        return {b.key for b in s_pairing.bookings if self._take(b, moves) <= self.per_document}

    def processor(self, p_pairing: Pairing, s_pairing: Pairing
                  ) -> tuple[tuple[tuple[Booking, Money], ...], tuple[tuple[Movement, Money], ...]]:
        """Unconfirmed card bookings with what is unpaid, and unbooked refunds with the rest.

        A booking whose tender the ERP doesn't know (a credit memo) may also be covered by
        what the till or the gift card paid back for that return.
        """
        card_moves = [m for m in p_pairing.movements if m.live]
        for m in card_moves:
            self.left[m.key] = m.amount.amount_minor
        shop_moves = [m for m in s_pairing.movements if m.live]
        unconfirmed = []
        for b in p_pairing.bookings:
            pool = card_moves + (shop_moves if b.tender is None else [])
            unpaid = self._take(b, pool)
            if unpaid > self.per_document:
                unconfirmed.append((b, Money(unpaid, b.amount.currency)))
        unbooked = tuple((m, Money(self.left[m.key], m.amount.currency)) for m in card_moves
                         if self.left[m.key] > self.per_document)
        return tuple(unconfirmed), unbooked


# ---------------------------------------------------------------- inputs


def _shop_own(facts: Facts, settings: ReconcileSettings) -> list[ShopTransaction]:
    """The shop's transactions that aren't the processor's own (those would count twice)."""
    if facts.pos is None:
        return []
    processor_ids: set[str] = set()
    if facts.processor:
        for p in facts.processor.payments:
            processor_ids.update((p.payment_id, *p.ids))
        processor_ids.update(r.refund_id for r in facts.processor.refunds)
    gateways = {g.casefold() for g in settings.processor_gateways}
    out = []
    for t in facts.pos.transactions:
        if t.gateway.casefold() in gateways or processor_ids & set(t.ids):
            continue
        if not gateways and t.tender.via_processor and facts.processor is not None:
            # Without the processor's gateway names, a card payment the shop recorded is
            # taken to be the processor's, which answered for it.
            continue
        out.append(t)
    return out


def _payments(facts: Facts, shop_txns: list[ShopTransaction]) -> tuple[Payment, ...]:
    payments = [replace(p, source=SourceName.PROCESSOR)
                for p in (facts.processor.payments if facts.processor else ())]
    for t in shop_txns:
        if t.kind is ShopTransactionKind.PAYMENT and t.status is ShopTransactionStatus.SUCCESS:
            payments.append(Payment(
                payment_id=t.transaction_id, amount=t.amount, amount_captured=t.amount,
                status_raw=t.status.value, created_at=t.created_at, payment_method=t.gateway,
                tender=t.tender, tender_label=t.tender_label, gateway=t.gateway,
                amount_shop=t.amount_shop, source=SourceName.POS))
    return tuple(payments)


def _refund_returns(facts: Facts, refunds: list[ProcessorRefund]) -> dict[str, str]:
    """Processor refund → return, from its metadata, else from a portal refund quoting it."""
    out = {r.refund_id: r.return_key for r in refunds if r.return_key}
    if facts.portal:
        for ret in facts.portal.returns:
            for pr in ret.refunds:
                if pr.provider_refund_id:
                    out.setdefault(pr.provider_refund_id, ret.return_id)
    ids = {r.refund_id for r in refunds}
    return {k: v for k, v in out.items() if k in ids}


def _movement(r: ProcessorRefund, returns: dict[str, str]) -> Movement:
    return Movement(key=r.refund_id, amount=r.amount, at=r.created_at,
                    live=r.state in LIVE_REFUND_STATES, ids=frozenset({r.refund_id}),
                    quoted=frozenset(x for x in (r.erp_refund_id, *r.quoted_ids) if x),
                    return_key=returns.get(r.refund_id), payment_id=r.payment_id)


def _store_return_key(t: ShopTransaction, returns: tuple[MergedReturn, ...]) -> str | None:
    if t.refund_id is None:
        return None
    return next((r.key for r in returns if r.store_return is not None
                 and r.store_return.refund_id == t.refund_id), None)


def _shop_movement(t: ShopTransaction, returns: tuple[MergedReturn, ...]) -> Movement:
    return Movement(key=t.transaction_id, amount=t.amount, at=t.created_at,
                    live=t.status is not ShopTransactionStatus.FAILED,
                    ids=frozenset(x for x in (t.transaction_id, t.refund_id) if x),
                    return_key=_store_return_key(t, returns), tender=_tender_key(t.tender))


def _entry_movement(e: LedgerEntry) -> Movement:
    """A store return or a portal credit, as a shop-side movement an ERP booking may record."""
    assert e.amount is not None
    return Movement(key=e.key, amount=e.amount, at=e.at, live=True, ids=frozenset({e.key}),
                    return_key=e.return_key, tender=_tender_key(e.tender))


def _tender_key(tender: Tender) -> str | None:
    """The tender as pairing compares it; unknown matches anything."""
    return None if tender in (Tender.UNKNOWN, Tender.OTHER) else tender.value


def _shop_state(status: ShopTransactionStatus) -> str:
    return {ShopTransactionStatus.SUCCESS: "succeeded"}.get(status, status.value)


@dataclass(frozen=True)
class _MemoUse:
    """What one part of a credit memo became (a memo can be split between uses)."""

    memo: ErpCreditMemo
    # "refunded" | "open" | "applied_elsewhere" | "applied_here" | "voided" | "applied"
    # | "unknown" (a status we don't know: shown, never taken as paid)
    kind: str
    amount: Money
    key: str  # the memo's tran id for its main part; suffixed for the others


def _bookings(facts: Facts, ra_return: dict[str, str], via_processor: bool,
              credited: set[str]) -> tuple[list[Booking], list[Booking], list[_MemoUse]]:
    """ERP bookings for processor tenders, for shop tenders, and how each memo was used.

    A memo for a return the portal settled with store credit or an exchange books that, not
    a card refund.
    """
    erp = facts.erp
    if erp is None:
        return [], [], []
    memos = {m.internal_id: m for m in erp.credit_memos}
    paid_by: dict[str, list[ErpCustomerRefund]] = {}
    for c in erp.customer_refunds:
        for memo_id in c.applied_to:
            paid_by.setdefault(memo_id, []).append(c)

    def memo_return(m: ErpCreditMemo) -> str | None:
        return ra_return.get(m.created_from or "")

    card: list[Booking] = []
    shop: list[Booking] = []
    for c in erp.customer_refunds:
        its = [memos[i] for i in c.applied_to if i in memos]
        keys = {k for k in (memo_return(m) for m in its) if k}
        if c.created_from and c.created_from in ra_return:
            keys.add(ra_return[c.created_from])
        booking = Booking(
            key=c.tran_id, amount=c.amount, at=c.created_at,
            ids=frozenset({c.tran_id, c.internal_id, *(m.tran_id for m in its),
                           *(m.internal_id for m in its)}),
            quoted=frozenset((*c.quoted_ids, *(q for m in its for q in m.quoted_ids))),
            return_key=keys.pop() if len(keys) == 1 else None, tender=_tender_key(c.tender))
        if c.tender.via_processor and (via_processor or c.tender is not Tender.UNKNOWN):
            card.append(booking)
        else:
            shop.append(booking)
    uses: list[_MemoUse] = []
    for m in erp.credit_memos:
        for use in _memo_uses(m, paid_by):
            uses.append(use)
            if use.kind in ("open", "applied") and via_processor \
                    and memo_return(m) not in credited:
                card.append(Booking(key=use.key, amount=use.amount, at=m.created_at,
                                    ids=frozenset({m.tran_id, m.internal_id}),
                                    quoted=frozenset(m.quoted_ids), return_key=memo_return(m),
                                    paid=use.kind == "applied"))
    return card, shop, uses


def _memo_uses(m: ErpCreditMemo, paid_by: dict[str, list[ErpCustomerRefund]]
               ) -> list[_MemoUse]:
    """A memo split by what its applications say became of each part.

    $40 with $10 applied to another order and nothing else is $10 used elsewhere and $30
    still open (which can still be paid out, or not). A status we don't know with nothing
    applied is "unknown": shown, never booked as paid.
    """
    if m.state is CreditState.VOIDED:
        return [_MemoUse(m, "voided", m.amount, m.tran_id)]
    apps = [a for a in m.applications if a.amount.currency == m.amount.currency]
    if len(apps) != len(m.applications):  # applications in another currency: take it whole
        return [_MemoUse(m, _whole_use(m, paid_by), m.amount, m.tran_id)]
    parts: list[tuple[str, int]] = []
    refunded = sum(a.amount.amount_minor for a in apps if a.to_refund)
    if not refunded and m.internal_id in paid_by:
        refunded = m.amount.amount_minor  # paid by a refund that doesn't say how much of it
    elsewhere = sum(a.amount.amount_minor for a in apps if not a.to_refund and not a.same_order)
    here = sum(a.amount.amount_minor for a in apps if not a.to_refund and a.same_order)
    for kind, minor in (("refunded", refunded), ("applied_elsewhere", elsewhere),
                        ("applied_here", here)):
        if minor > 0:
            parts.append((kind, minor))
    rest = m.amount.amount_minor - refunded - elsewhere - here
    if rest > 0 or not parts:
        parts.append((_residual(m.state), max(rest, 0) if parts else m.amount.amount_minor))
    # The part still in question (open, applied unseen, unknown) keeps the memo's own id:
    # it is what pairing and flags name; the settled parts are labelled by what they became.
    main = next((kind for kind, _ in parts if kind in ("open", "applied", "unknown")),
                parts[0][0])
    return [_MemoUse(m, kind, Money(minor, m.amount.currency),
                     m.tran_id if kind == main else f"{m.tran_id} ({kind.replace('_', ' ')})")
            for kind, minor in parts]


def _whole_use(m: ErpCreditMemo, paid_by: dict[str, list[ErpCustomerRefund]]) -> str:
    if m.internal_id in paid_by or any(a.to_refund for a in m.applications):
        return "refunded"
    if any(not a.to_refund and not a.same_order for a in m.applications):
        return "applied_elsewhere"
    if any(not a.to_refund and a.same_order for a in m.applications):
        return "applied_here"
    return _residual(m.state)


def _residual(state: CreditState) -> str:
    """What a memo's part that no application accounts for is: still open, applied to
    something we can't see (most likely paid out), or unknown (never taken as paid)."""
    if state in (CreditState.OPEN, CreditState.PARTLY_APPLIED):
        return "open"
    return "applied" if state is CreditState.APPLIED else "unknown"


# ---------------------------------------------------------------- entries


def _store_returns_without_transactions(facts: Facts, returns: tuple[MergedReturn, ...]
                                        ) -> list[LedgerEntry]:
    """A store return the shop reported without its payment lines still paid something back."""
    if facts.pos is None or facts.pos.transactions:
        return []
    keys = {r.store_return.refund_id: r.key for r in returns if r.store_return is not None}
    out = []
    for s in facts.pos.store_returns:
        if s.amount is None or s.amount.amount_minor <= 0:
            continue
        out.append(LedgerEntry(
            key=s.refund_id, kind=MoneyOutKind.STORE_REFUND, source=POS, amount=s.amount,
            tender=Tender.UNKNOWN, destination=f"a refund at {s.location or 'the store'}",
            state="succeeded", at=s.created_at, counted=True,
            return_key=keys.get(s.refund_id, s.refund_id)))
    return out


def _with_booked_tenders(entries: list[LedgerEntry], s_pairing: Pairing,
                         facts: Facts) -> list[LedgerEntry]:
    """A shop refund of unknown tender takes the tender of the ERP booking that records it."""
    erp = facts.erp
    if erp is None:
        return entries
    crefs = {c.tran_id: c for c in erp.customer_refunds}
    out = []
    for e in entries:
        match = s_pairing.match_of_movement(e.key) if e.tender is Tender.UNKNOWN else None
        booked = {(crefs[b.key].tender, crefs[b.key].location) for b in match.bookings
                  if b.key in crefs} if match else set()
        if len(booked) == 1:
            tender, location = booked.pop()
            if tender is not Tender.UNKNOWN:
                store = e.destination.removeprefix("a refund at ")
                e = replace(e, tender=tender,
                            destination=tender_words(tender, None, location or store))
        out.append(e)
    return out


def _portal_entries(facts: Facts, reports: dict[SourceName, SourceReport],
                    settings: ReconcileSettings,
                    returns: tuple[MergedReturn, ...]) -> list[LedgerEntry]:
    """Store credit, gift cards and exchanges the portal issued (it is their record)."""
    if facts.portal is None:
        return []
    out: list[LedgerEntry] = []
    gateways = {g.casefold() for g in settings.processor_gateways}
    for ret in facts.portal.returns:
        at = ret.updated_at or ret.created_at
        credit = ret.credit_issued
        if credit is not None and credit.amount_minor > 0:
            # Credit beyond what the goods were worth is the merchant's bonus for choosing
            # credit: the customer has it, but it didn't come out of their payment.
            bonus = None
            if ret.total is not None and ret.total.currency == credit.currency \
                    and credit.amount_minor > ret.total.amount_minor:
                bonus = credit - ret.total
            out.append(LedgerEntry(
                key=f"{ret.return_id}:credit", kind=MoneyOutKind.STORE_CREDIT, source=PORTAL,
                amount=credit, tender=ret.credit_tender,
                destination=tender_words(ret.credit_tender, None), state="issued", at=at,
                counted=True, return_key=ret.return_id, bonus=bonus))
        if ret.exchange_order or ret.exchange_value is not None:
            cancelled = ret.state in RETURN_ABANDONED
            out.append(LedgerEntry(
                key=f"{ret.return_id}:exchange", kind=MoneyOutKind.EXCHANGE, source=PORTAL,
                amount=ret.exchange_value, tender=Tender.OTHER,
                destination=(f"replacement order {ret.exchange_order}" if ret.exchange_order
                             else "a replacement order"),
                state="cancelled" if cancelled else
                "completed" if ret.state.value == "CLOSED" else "in_progress", at=at,
                counted=ret.exchange_value is not None and not cancelled,
                return_key=ret.return_id))
        for i, pr in enumerate(ret.refunds):
            # The portal's word on money the processor or the shop moved: counted only where
            # that system isn't used at all, so it is the only record.
            to_processor = (pr.gateway or "").casefold() in gateways or (
                not gateways and pr.tender.via_processor)
            owner = PROCESSOR if to_processor else POS
            if reports[owner].status.in_use:
                continue
            out.append(LedgerEntry(
                key=f"{ret.return_id}:refund:{pr.provider_refund_id or i}",
                kind=MoneyOutKind.REFUND if to_processor else MoneyOutKind.STORE_REFUND,
                source=PORTAL, amount=pr.amount, tender=pr.tender,
                destination=tender_words(pr.tender, None), state="succeeded", at=at,
                counted=True, return_key=ret.return_id))
    return out


def _booking_entries(facts: Facts, ra_return: dict[str, str], p_pairing: Pairing,
                     s_pairing: Pairing, uses: list[_MemoUse],
                     portal_credits: list[LedgerEntry], covered: set[str]) -> list[LedgerEntry]:
    """The ERP's customer refunds and credit memos, each saying what it books."""
    erp = facts.erp
    if erp is None:
        return []
    confirmed: dict[str, tuple[str, ...]] = {}
    for pairing in (p_pairing, s_pairing):
        for match in pairing.matches:
            keys = tuple(m.key for m in match.movements)
            for b in match.bookings:
                confirmed[b.key] = keys
    shop_keys = {b.key for b in s_pairing.bookings} | {
        b.key for m in s_pairing.matches for b in m.bookings}
    out: list[LedgerEntry] = []
    for c in erp.customer_refunds:
        books = confirmed.get(c.tran_id, ())
        # A refund the shop side handles (cash, cheque …) that no shop refund, store return or
        # portal credit records is the only record of that money: it counts. A card refund
        # never counts from the ERP alone.
        own = c.tran_id in shop_keys and not books and c.tran_id not in covered
        out.append(LedgerEntry(
            key=c.tran_id, kind=MoneyOutKind.ERP_REFUND, source=ERP, amount=c.amount,
            tender=c.tender, destination=tender_words(c.tender, None, c.location),
            state="paid_out", at=c.created_at, counted=own, confirms=books,
            return_key=_first(ra_return.get(c.created_from or ""),
                              *(ra_return.get(m.created_from or "") for m in erp.credit_memos
                                if m.internal_id in c.applied_to))))
    credits: dict[str | None, LedgerEntry] = {}
    for e in portal_credits:  # store credit before an exchange, for a return with both
        if e.kind in (MoneyOutKind.STORE_CREDIT, MoneyOutKind.EXCHANGE):
            credits.setdefault(e.return_key, e)
    for use in uses:
        m = use.memo
        ret = ra_return.get(m.created_from or "")
        credit = credits.get(ret) if ret else None
        books = confirmed.get(use.key, ())
        if credit is not None and use.kind in ("open", "applied_elsewhere", "applied"):
            books = (credit.key,)
        counted = use.kind == "applied_elsewhere" and credit is None
        state = {"refunded": "paid_out", "applied_elsewhere": "applied_to_another_order",
                 "applied_here": "applied_to_this_order"}.get(use.kind, use.kind)
        out.append(LedgerEntry(
            key=use.key, kind=MoneyOutKind.ERP_CREDIT_MEMO, source=ERP, amount=use.amount,
            tender=Tender.STORE_CREDIT if use.kind == "applied_elsewhere" else Tender.UNKNOWN,
            destination=("store credit used on another order" if use.kind == "applied_elsewhere"
                         else "a credit memo"),
            state=state, at=m.created_at, counted=counted, confirms=books, return_key=ret))
    return out


def _first(*values: str | None) -> str | None:
    return next((v for v in values if v), None)


def _unconfirmed_portal_refunds(facts: Facts, settings: ReconcileSettings,
                                refunds: list[ProcessorRefund],
                                payments: tuple[Payment, ...]) -> tuple[tuple[str, str, Money], ...]:
    """Portal refunds quoting a processor reference the processor doesn't have."""
    if facts.portal is None or facts.processor is None or not facts.processor.payments:
        return ()
    known = {r.refund_id for r in refunds} | {p.payment_id for p in payments} | {
        i for p in payments for i in p.ids}
    out = []
    for ret in facts.portal.returns:
        for pr in ret.refunds:
            if not pr.provider_refund_id or pr.provider_refund_id in known:
                continue
            if not _through_processor(pr, settings):
                continue  # refunded through another gateway (a gift card, the shop)
            out.append((ret.return_id, pr.provider_refund_id, pr.amount))
    return tuple(out)


def _through_processor(pr: PortalRefund, settings: ReconcileSettings) -> bool:
    gateways = {g.casefold() for g in settings.processor_gateways}
    if gateways:
        return (pr.gateway or "").casefold() in gateways
    return pr.tender.via_processor


def _portal_claims(facts: Facts, reports: dict[SourceName, SourceReport],
                   settings: ReconcileSettings, refunds: list[ProcessorRefund],
                   shop_refunds: tuple[ShopTransaction, ...], refund_returns: dict[str, str]
                   ) -> tuple[tuple[str, Money, datetime, SourceName], ...]:
    """Portal refunds the system that moved them (processor or shop) doesn't show.

    Whether that system answered without it, knows nothing of the order, or didn't answer:
    the refund is recorded, not confirmed. (Where the merchant doesn't use that system the
    portal's word is the record, counted in the ledger instead.)
    """
    if facts.portal is None:
        return ()
    known = {r.refund_id for r in refunds}
    if facts.processor:
        known.update(p.payment_id for p in facts.processor.payments)
    out = []
    for ret in facts.portal.returns:
        for pr in ret.refunds:
            owner = PROCESSOR if _through_processor(pr, settings) else POS
            if not reports[owner].status.in_use:
                continue
            ref = pr.provider_refund_id
            live_here = [r for r in refunds if r.state in LIVE_REFUND_STATES
                         and refund_returns.get(r.refund_id) in (None, ret.return_id)]
            # Seen: the system quotes its reference, or shows a live refund of that amount for
            # this return (a garbled reference, a gateway named differently), or, when the
            # portal gives no reference, any live refund for it.
            seen = (ref is not None and ref in known) \
                or any(r.amount == pr.amount for r in live_here) \
                or (ref is None and owner is PROCESSOR and bool(live_here)) \
                or any(t.status is not ShopTransactionStatus.FAILED and (
                    (ref is not None and ref in (t.transaction_id, t.refund_id, *t.ids))
                    or (t.amount == pr.amount and tender_family(_tender_key(t.tender))
                        in (None, tender_family(_tender_key(pr.tender)))))
                    for t in shop_refunds)
            if not seen:
                out.append((ret.return_id, pr.amount, ret.updated_at or ret.created_at, owner))
    return tuple(out)


def _merged_refunds(refunds: list[ProcessorRefund], pairing: Pairing, returns: dict[str, str],
                    facts: Facts) -> tuple[MergedRefund, ...]:
    """Processor refunds with the ERP documents that book them, then ERP-only bookings."""
    erp = facts.erp
    crefs = {c.tran_id: c for c in erp.customer_refunds} if erp else {}
    memos = {m.tran_id: m for m in erp.credit_memos} if erp else {}
    memo_by_id = {m.internal_id: m for m in erp.credit_memos} if erp else {}

    def docs(bookings: Iterable[Booking]) -> tuple[tuple[ErpCustomerRefund, ...], tuple[ErpCreditMemo, ...]]:
        cs = tuple(crefs[b.key] for b in bookings if b.key in crefs)
        ms = [memos[b.key] for b in bookings if b.key in memos]
        for c in cs:
            ms.extend(memo_by_id[i] for i in c.applied_to if i in memo_by_id)
        unique = {m.internal_id: m for m in ms}
        return cs, tuple(sorted(unique.values(), key=lambda m: (m.created_at, m.internal_id)))

    out: list[MergedRefund] = []
    for r in refunds:
        match = pairing.match_of_movement(r.refund_id)
        cs, ms = docs(match.bookings) if match else ((), ())
        out.append(MergedRefund(
            key=r.refund_id, amount=r.amount, state=r.state, created_at=r.created_at,
            processor=r, erp_refunds=cs, erp_credit_memos=ms,
            return_key=returns.get(r.refund_id), match=match.how if match else None,
            retry_of=pairing.retries.get(r.refund_id)))
    for b in pairing.bookings:
        cs, ms = docs([b])
        out.append(MergedRefund(key=b.key, amount=b.amount, state=RefundState.APPROVED_IN_ERP,
                                created_at=b.at, erp_refunds=cs, erp_credit_memos=ms,
                                return_key=b.return_key))
    out.sort(key=lambda r: (r.created_at, r.key))
    return tuple(out)


# ---------------------------------------------------------------- balances


@dataclass(frozen=True)
class Balances:
    """Captured and given back, per tender and for the whole order, in the order's currency."""

    tenders: tuple[TenderBalance, ...]
    processor: TenderBalance | None  # the tender agents refund through (the processor's)
    order_captured: Money
    order_given_back: Money
    chargebacks: Money
    refunded: Money  # processor refunds succeeded
    pending: Money  # processor refunds on their way (pending, needs action, unknown)

    @property
    def order_remaining(self) -> Money:
        return self.order_captured - self.order_given_back


def balances(books: Books, facts: Facts, currency: str) -> Balances:
    """Per-tender and order-wide sums; amounts in other currencies are left to a flag."""
    processor = facts.processor
    p_ids = {p.payment_id for p in processor.payments} if processor else set()
    counted = books.counted(currency)
    tenders: list[TenderBalance] = []
    proc_balance = None
    if processor and processor.payments:
        captured = sum_in(currency, (p.amount_captured for p in processor.payments))
        back = sum_in(currency, (e.amount for e in counted if e.kind is MoneyOutKind.REFUND
                                 and e.source is PROCESSOR and e.amount))
        lost = sum_in(currency, (e.amount for e in counted if e.kind is MoneyOutKind.CHARGEBACK
                                 and e.amount))
        first = min(processor.payments, key=lambda p: (p.created_at, p.payment_id))
        proc_balance = TenderBalance(first.tender, first.tender_label, captured, back, lost,
                                     captured - back - lost)
        tenders.append(proc_balance)
    by_tender: dict[Tender, list[Payment]] = {}
    for p in books.payments:
        if p.payment_id not in p_ids:
            by_tender.setdefault(p.tender, []).append(p)
    for tender, pays in sorted(by_tender.items()):
        captured = sum_in(currency, (p.amount_captured for p in pays))
        back = sum_in(currency, (t.amount for t in books.shop_refunds if t.tender is tender
                                 and t.status is not ShopTransactionStatus.FAILED))
        tenders.append(TenderBalance(tender, pays[0].tender_label, captured, back,
                                     Money.zero(currency), captured - back))
    refunded = sum_in(currency, (r.amount for r in (processor.refunds if processor else ())
                                 if r.state is RefundState.SUCCEEDED))
    pending = sum_in(currency, (r.amount for r in (processor.refunds if processor else ())
                                if r.state in LIVE_REFUND_STATES
                                and r.state is not RefundState.SUCCEEDED))
    return Balances(
        tenders=tuple(tenders),
        processor=proc_balance,
        order_captured=sum_in(currency, (p.amount_captured for p in books.payments)),
        order_given_back=sum_in(currency, (e.funded for e in counted if e.funded is not None)),
        chargebacks=sum_in(currency, (e.amount for e in counted
                                      if e.kind is MoneyOutKind.CHARGEBACK and e.amount)),
        refunded=refunded,
        pending=pending,
    )


def latest(entries: list[LedgerEntry]) -> datetime | None:
    return max((e.at for e in entries), default=None)
