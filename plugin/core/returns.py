"""One return across the portal, the ERP and the store: its state, outcome and quantities."""

from __future__ import annotations

from datetime import datetime

from .model import (
    ErpFacts,
    ErpItemReceipt,
    ErpReturnAuthorization,
    Facts,
    PortalReturn,
    ReturnOutcome,
    ReturnState,
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
    """Portal returns paired with ERP RAs, RAs the portal doesn't have, then store returns."""
    portal_returns = list(facts.portal.returns) if facts.portal else []
    erp = facts.erp
    ras = list(erp.return_authorizations) if erp else []
    pairs = _pair_with_ras(portal_returns, ras)
    merged: list[MergedReturn] = []
    used: set[str] = set()
    for ret in portal_returns:
        ra = pairs.get(ret.return_id)
        if ra is not None:
            used.add(ra.internal_id)
        merged.append(_merged(ret.return_id, "mail", ret, ra, erp))
    stores = list(facts.pos.store_returns) if facts.pos else []
    at_store = _store_ras(stores, [ra for ra in ras if ra.internal_id not in used], erp)
    used.update(ra.internal_id for ra in at_store.values())
    for ra in ras:
        if ra.internal_id not in used:
            merged.append(_merged(ra.tran_id, "erp", None, ra, erp))
    merged.extend(_store(store, at_store.get(store.refund_id), erp) for store in stores)
    return tuple(merged)


def _store_ras(stores: list[StoreReturn], ras: list[ErpReturnAuthorization],
               erp: ErpFacts | None) -> dict[str, ErpReturnAuthorization]:
    """The ERP's RA for a store return: the one whose receipts took those SKUs in at that store."""
    out: dict[str, ErpReturnAuthorization] = {}
    if erp is None:
        return out
    taken: set[str] = set()
    for store in stores:
        wanted = {(line.sku, (line.location or store.location or "").casefold())
                  for line in store.lines}
        for ra in ras:
            if ra.internal_id in taken:
                continue
            got = {(line.sku, (line.location or "").casefold()) for r in erp.item_receipts
                   if r.created_from == ra.internal_id for line in r.lines}
            if wanted and wanted <= got:
                out[store.refund_id] = ra
                taken.add(ra.internal_id)
                break
    return out


def _pair_with_ras(portal_returns: list[PortalReturn],
                   ras: list[ErpReturnAuthorization]) -> dict[str, ErpReturnAuthorization]:
    """Link by the portal id the RA carries; one unlinked RA and one unlinked return pair too."""
    by_portal_id: dict[str, ErpReturnAuthorization] = {}
    for ra in ras:  # inputs are sorted, so the oldest RA quoting an id keeps it
        if ra.portal_return_id and ra.portal_return_id not in by_portal_id:
            by_portal_id[ra.portal_return_id] = ra
    pairs = {r.return_id: by_portal_id[r.return_id] for r in portal_returns
             if r.return_id in by_portal_id}
    unmatched = [r for r in portal_returns if r.return_id not in pairs]
    unlinked = [ra for ra in ras if not ra.portal_return_id]
    if len(unmatched) == 1 and len(unlinked) == 1:
        # ERPs that don't carry the portal id: with one of each there is nothing to confuse.
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
