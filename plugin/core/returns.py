"""One return across the portal, the ERP and the store: its state, outcome and quantities."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from .model import (
    ErpFacts,
    ErpItemReceipt,
    ErpReturnAuthorization,
    Facts,
    PortalReturn,
    ReturnOutcome,
    ReturnState,
    ShopTransactionKind,
    ShopTransactionStatus,
    StoreReturn,
)
from .money import Money
from .record import MergedReturn
from .states import RETURN_ABANDONED

# How far along the goods are; the most advanced account wins unless the portal ended it.
_PROGRESS = {
    ReturnState.REQUESTED: 0,
    ReturnState.AUTHORIZED: 1,
    ReturnState.IN_TRANSIT: 2,
    ReturnState.PARTIALLY_RECEIVED: 3,
    ReturnState.RECEIVED: 4,
    ReturnState.CLOSED: 5,
}


def merge_returns(facts: Facts) -> tuple[MergedReturn, ...]:
    """Store returns with their RAs first, then portal returns with theirs, then the rest.

    Store RAs are claimed first: an RA whose goods came back at a store is never a mail
    return's, however few of each there are.
    """
    portal_returns = list(facts.portal.returns) if facts.portal else []
    erp = facts.erp
    ras = list(erp.return_authorizations) if erp else []
    stores = list(facts.pos.store_returns) if facts.pos else []
    at_store = _store_ras(stores, ras, facts)
    store_ra_ids = {ra.internal_id for ra in at_store.values()}
    pairs = _pair_with_ras(portal_returns, [ra for ra in ras if ra.internal_id not in store_ra_ids],
                           _store_locations(facts), erp)
    merged: list[MergedReturn] = []
    used = set(store_ra_ids)
    for ret in portal_returns:
        ra = pairs.get(ret.return_id)
        if ra is not None:
            used.add(ra.internal_id)
        merged.append(_merged(ret.return_id, "mail", ret, ra, erp))
    for ra in ras:
        if ra.internal_id not in used:
            merged.append(_merged(ra.tran_id, "erp", None, ra, erp))
    merged.extend(_store(store, at_store.get(store.refund_id), erp) for store in stores)
    return tuple(merged)


def _store_locations(facts: Facts) -> set[str]:
    """The shop floors the store returns name (casefolded)."""
    if facts.pos is None:
        return set()
    names = {(s.location or "").casefold() for s in facts.pos.store_returns}
    names.update((line.location or "").casefold() for s in facts.pos.store_returns
                 for line in s.lines)
    return names - {""}


def _store_ras(stores: list[StoreReturn], ras: list[ErpReturnAuthorization],
               facts: Facts) -> dict[str, ErpReturnAuthorization]:
    """The ERP's RA for each store return.

    The one whose item receipts took those SKUs in at that store; else, before its receipt
    posts, the one the ERP's refund at that same store was made from.
    """
    out: dict[str, ErpReturnAuthorization] = {}
    erp = facts.erp
    if erp is None:
        return out
    candidates = [ra for ra in ras if not ra.portal_return_id]
    taken: set[str] = set()
    for store in stores:
        wanted = {(line.sku, (line.location or store.location or "").casefold())
                  for line in store.lines}
        for ra in candidates:
            if ra.internal_id in taken:
                continue
            got = {(line.sku, (line.location or "").casefold()) for r in erp.item_receipts
                   if r.created_from == ra.internal_id for line in r.lines}
            if wanted and wanted <= got:
                out[store.refund_id] = ra
                taken.add(ra.internal_id)
                break
    for store in stores:
        if store.refund_id in out:
            continue
        where = {(store.location or "").casefold()} | _till_locations(facts, store)
        where.discard("")
        refunded_from = [ra for ra in candidates if ra.internal_id not in taken
                         and not any(r.created_from == ra.internal_id for r in erp.item_receipts)
                         and any(c.created_from == ra.internal_id
                                 and (c.location or "").casefold() in where
                                 for c in erp.customer_refunds)]
        if len(refunded_from) == 1:
            out[store.refund_id] = refunded_from[0]
            taken.add(refunded_from[0].internal_id)
    # The ERP names a store otherwise (and nobody mapped it): an RA no portal return could
    # claim, whose cash refund at a place the shop doesn't name pays exactly what the till
    # paid for a store return, and whose receipts, if any, took exactly that return's SKUs
    # at such a place, is that store return's: its money isn't a second refund. Its goods
    # still don't count as received at the store.
    named = shop_places(facts)
    quoted = {ra.portal_return_id for ra in ras if ra.portal_return_id}
    mail_totals = {r.total for r in (facts.portal.returns if facts.portal else ())
                   if r.return_id not in quoted and r.total is not None}

    def elsewhere(place: str | None) -> bool:
        name = (place or "").strip().casefold()
        return bool(name) and name not in named

    def fits(ra: ErpReturnAuthorization, store: StoreReturn, paid: Money) -> bool:
        lines = [line for r in erp.item_receipts if r.created_from == ra.internal_id
                 for line in r.lines]
        skus = {line.sku for line in store.lines if line.quantity > 0}
        return (ra.total is None or ra.total not in mail_totals) \
            and all(elsewhere(line.location) for line in lines) \
            and {line.sku for line in lines} in (set(), skus) \
            and any(c.created_from == ra.internal_id and c.amount == paid
                    and not c.tender.via_processor and elsewhere(c.location)
                    for c in erp.customer_refunds)

    # Store returns and RAs are in time order (canonical), so when two store returns paid
    # the same, the older takes the older RA whatever order the vendors listed them in.
    for store in stores:
        paid = _till_paid(facts, store)
        if store.refund_id in out or paid is None:
            continue
        same = [ra for ra in candidates if ra.internal_id not in taken and fits(ra, store, paid)]
        if same:
            out[store.refund_id] = same[0]
            taken.add(same[0].internal_id)
    return out


def received_elsewhere(receipts: Iterable[ErpItemReceipt], sku: str, shop_places: set[str],
                       mail_ras: set[str]) -> list[tuple[str, int, str]]:
    """Units of `sku` the ERP received at places the shop doesn't name (`shop_places`,
    casefolded), on documents no mail return explains: (place, quantity, receipt tran id),
    in the receipts' order. Maybe a store under the ERP's own name, maybe a transfer."""
    out = []
    for r in receipts:
        if r.created_from in mail_ras:
            continue
        for line in r.lines:
            place = (line.location or "").strip()
            if line.sku == sku and place and place.casefold() not in shop_places:
                out.append((place, line.quantity, r.tran_id))
    return out


def shop_places(facts: Facts) -> set[str]:
    """Every place the shop names (store returns' and tills' locations), casefolded."""
    tills = {(t.location or "").strip().casefold()
             for t in (facts.pos.transactions if facts.pos else ())}
    return (_store_locations(facts) | tills) - {""}


def _till_paid(facts: Facts, store: StoreReturn) -> Money | None:
    """What the shop paid back for a store return: its refund transactions (None when in
    more than one currency), else the amount the POS gives the return."""
    if facts.pos is None:
        return None
    paid = [t.amount for t in facts.pos.transactions
            if t.refund_id == store.refund_id and t.kind is ShopTransactionKind.REFUND
            and t.status is ShopTransactionStatus.SUCCESS]
    if len({m.currency for m in paid}) > 1:
        return None
    if not paid:
        return store.amount
    total = paid[0]
    for m in paid[1:]:
        total = total + m
    return total


def _till_locations(facts: Facts, store: StoreReturn) -> set[str]:
    """Where the shop says it paid a store return's refund."""
    if facts.pos is None:
        return set()
    return {(t.location or "").casefold() for t in facts.pos.transactions
            if t.refund_id == store.refund_id}


def _pair_with_ras(portal_returns: list[PortalReturn], ras: list[ErpReturnAuthorization],
                   store_locations: set[str],
                   erp: ErpFacts | None) -> dict[str, ErpReturnAuthorization]:
    """Link by the portal id the RA carries; else by total when that is unambiguous.

    ERPs that don't carry the portal id: a return and an RA pair when their totals agree and
    neither has another candidate, or when exactly one of each is left. An RA whose goods
    were received at a store is never a mail return's.
    """
    by_portal_id: dict[str, ErpReturnAuthorization] = {}
    for ra in ras:  # inputs are sorted, so the oldest RA quoting an id keeps it
        if ra.portal_return_id and ra.portal_return_id not in by_portal_id:
            by_portal_id[ra.portal_return_id] = ra
    pairs = {r.return_id: by_portal_id[r.return_id] for r in portal_returns
             if r.return_id in by_portal_id}
    at_store = {r.created_from for r in (erp.item_receipts if erp else ())
                if any((line.location or "").casefold() in store_locations for line in r.lines)}
    unmatched = [r for r in portal_returns if r.return_id not in pairs]
    unlinked = [ra for ra in ras if not ra.portal_return_id and ra.internal_id not in at_store]

    def same_total(r: PortalReturn, ra: ErpReturnAuthorization) -> bool:
        return r.total is not None and ra.total is not None and r.total == ra.total

    for ret in list(unmatched):
        fits = [ra for ra in unlinked if same_total(ret, ra)]
        if len(fits) == 1 and sum(same_total(r, fits[0]) for r in unmatched) == 1:
            pairs[ret.return_id] = fits[0]
            unmatched.remove(ret)
            unlinked.remove(fits[0])
    if len(unmatched) == 1 and len(unlinked) == 1:
        pairs[unmatched[0].return_id] = unlinked[0]
    return pairs


def _merged(key: str, channel: str, portal: PortalReturn | None,
            ra: ErpReturnAuthorization | None, erp: ErpFacts | None) -> MergedReturn:
    ra_id = ra.internal_id if ra else None
    receipts = tuple(r for r in erp.item_receipts if r.created_from == ra_id) if erp and ra else ()
    memos = tuple(m for m in erp.credit_memos if m.created_from == ra_id) if erp and ra else ()
    authorized = portal.authorized_quantity if portal and portal.lines else None
    received = _received_quantity(portal, receipts)
    received_at = min((r.created_at for r in receipts), default=None)
    return MergedReturn(
        key=key,
        state=_state(portal, ra, authorized, received),
        channel=channel,
        portal=portal,
        erp_ra=ra,
        receipts=receipts,
        credit_memos=memos,
        outcome=portal.outcome if portal else ReturnOutcome.UNKNOWN,
        authorized_quantity=authorized,
        received_quantity=received,
        received_at=received_at,
    )


def _received_quantity(portal: PortalReturn | None,
                       receipts: tuple[ErpItemReceipt, ...]) -> int | None:
    """Units back: the ERP's item receipts, else what the portal says arrived, else unknown."""
    if receipts:
        return sum(line.quantity for receipt in receipts for line in receipt.lines)
    if portal is not None and any(line.received_quantity is not None for line in portal.lines):
        return sum(line.received_quantity or 0 for line in portal.lines)
    return None


def _state(portal: PortalReturn | None, ra: ErpReturnAuthorization | None,
           authorized: int | None, received: int | None) -> ReturnState:
    """What the customer is told: a portal that ended the return wins; else the furthest along."""
    portal_state = portal.state if portal else None
    if portal_state in RETURN_ABANDONED or portal_state is ReturnState.CLOSED:
        return portal_state
    if portal_state is ReturnState.HELD:
        # Held for the merchant's review: that, not the parcel's position, is what blocks it.
        return ReturnState.HELD
    candidates: list[ReturnState] = []
    if portal_state in _PROGRESS:
        candidates.append(portal_state)
    if ra is not None:
        if portal is None and ra.state in RETURN_ABANDONED:
            return ra.state
        if ra.state in _PROGRESS and ra.state is not ReturnState.CLOSED:
            candidates.append(ra.state)
        elif ra.state is ReturnState.CLOSED:
            # The ERP closed it (refunded): the goods came back, whatever the portal says.
            candidates.append(ReturnState.RECEIVED if portal is not None else ReturnState.CLOSED)
    if received:
        full = authorized is None or received >= authorized
        candidates.append(ReturnState.RECEIVED if full else ReturnState.PARTIALLY_RECEIVED)
    if candidates:
        best = max(candidates, key=_PROGRESS.__getitem__)
        if best is ReturnState.RECEIVED and received is not None and authorized is not None \
                and received < authorized:
            # The RA says "received" but fewer units came back than were authorized.
            return ReturnState.PARTIALLY_RECEIVED
        return best
    return portal_state or (ra.state if ra else ReturnState.UNKNOWN)


def _store(store: StoreReturn, ra: ErpReturnAuthorization | None,
           erp: ErpFacts | None) -> MergedReturn:
    units = sum(line.quantity for line in store.lines)
    ra_id = ra.internal_id if ra else None
    receipts = tuple(r for r in erp.item_receipts if r.created_from == ra_id) if erp and ra else ()
    return MergedReturn(key=store.refund_id, state=ReturnState.RECEIVED, channel="store",
                        store_return=store, erp_ra=ra, receipts=receipts,
                        outcome=ReturnOutcome.REFUND, authorized_quantity=units,
                        received_quantity=units, received_at=store.created_at)


def return_value(ret: MergedReturn) -> Money | None:
    """What a return is worth: the portal's total, else its RA's, else its credit memos'."""
    if ret.portal is not None and ret.portal.total is not None:
        return ret.portal.total
    if ret.erp_ra is not None and ret.erp_ra.total is not None:
        return ret.erp_ra.total
    if ret.store_return is not None and ret.store_return.amount is not None:
        return ret.store_return.amount
    return None


def received_since(ret: MergedReturn) -> datetime | None:
    """When the goods came back, as best any source says."""
    return ret.received_at
