"""Make the ERP documents the record shows missing, from the sidebar (zones 1 and 3).

- Zone 1, a portal return the ERP has no return authorization for: the sales order is
  transformed into a return authorization with the returned lines, carrying the portal's
  return id as its external id ("loop-<id>"), the link the record reads.
- Zone 3, goods a store took back that ERP inventory doesn't show: an item receipt at the
  store's location against the store return's return authorization; when the ERP has none,
  one is made from the sales order first (external id "pos-<the shop's refund id>").

`fixes` (pure) says which fixes the record calls for and why any can't be made from here;
`allocate` (pure) lays returned SKUs on document lines. `plan` reads the ERP's lines and
locations; `execute` writes the documents at most once. Every document carries an external
id derived from the return, which the ERP is asked for before each write (and refuses to
duplicate), so a double click, two agents, a timeout or a crash never makes a second one.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from ..connectors.base import UpstreamError
from ..core.model import SourceName
from ..core.record import FlagCode, MergedReturn, OrderTruth
from ..core.returns import received_elsewhere
from ..core.settings import erp_location
from ..core.states import RETURN_ABANDONED
from ..store.models import AuditEntry
from ..tenant_settings import current
from . import Outcome, Permission, Refused, refused_upstream
from .audit import Actor, AuditLog, settle_unsettled

RETURN_AUTHORIZATION = "erp_return_authorization"
ITEM_RECEIPT = "erp_item_receipt"
ACTIONS = (RETURN_AUTHORIZATION, ITEM_RECEIPT)
# Feature and roles setting per action.
FEATURES = {RETURN_AUTHORIZATION: "erp_return_authorizations",
            ITEM_RECEIPT: "erp_item_receipts"}
ROLES = {RETURN_AUTHORIZATION: "erp_return_roles", ITEM_RECEIPT: "erp_receipt_roles"}
STORE_RA_PREFIX = "pos-"  # never the portal's prefix: a store RA names no portal return
RECEIPT_SUFFIX = "-receipt"
# NetSuite's answer to a second record with an external id it already has (see the connector).
DUPLICATE = "DUP_RCRD"
_DEAD_RA = RETURN_ABANDONED  # a cancelled or closed-out RA takes no more goods

Lines = tuple[tuple[str, int], ...]  # (SKU, quantity)


class ErpWriter(Protocol):
    """What an ERP must offer for these fixes (NetSuite's module does)."""

    def ra_external_id(self, portal_return_id: str) -> str: ...

    def sales_order_lines(self, sales_order_id: str) -> list[dict[str, Any]]: ...

    def transaction_lines(self, record_type: str, record_id: str) -> list[dict[str, Any]]: ...

    def find_by_external_id(self, record_type: str, external_id: str) -> str | None: ...

    def location_ids(self, name: str) -> list[str]: ...

    def create_return_authorization(self, sales_order_id: str, lines: list[tuple[int, int]],
                                    external_id: str, memo: str) -> str: ...

    def receive_return(self, ra_id: str, lines: list[tuple[int, int]], location_id: str,
                       external_id: str) -> str: ...


def permission(action: str, features: dict[str, bool], settings: dict[str, Any]) -> Permission:
    doing, do = _WHAT[action]
    return Permission.of(features.get(FEATURES[action]), current(settings)[ROLES[action]],
                         doing, do)


_WHAT = {RETURN_AUTHORIZATION: ("Creating return authorizations in the ERP",
                                "create return authorizations in the ERP"),
         ITEM_RECEIPT: ("Receiving store returns into ERP inventory",
                        "receive store returns into ERP inventory")}


@dataclass(frozen=True)
class ErpFix:
    """A document the record shows missing, and why it can't be made from here (None: it can)."""

    action: str
    subject: str  # the portal's return id, or the shop's refund id for a store return
    lines: Lines
    location: str | None = None  # where a store took the goods back
    ra_id: str | None = None  # the store return's RA, when the ERP has one
    received: Lines = ()  # already received on that RA
    why_not: str | None = None

    @property
    def label(self) -> str:
        items = _items(self.lines)
        if self.action == RETURN_AUTHORIZATION:
            return f"Return {self.subject} ({items}): no return authorization in the ERP"
        return (f"Store return {_external_part(self.subject)} ({items} at {self.location}): "
                "not in ERP inventory")


def fixes(truth: OrderTruth, *, store_inventory_lag: timedelta) -> list[ErpFix]:
    """The documents the record's zone 1 and 3 flags call for, in the record's order.

    Only where the record flags the gap (so only once its sync window has passed), and only
    from a record the ERP answered for.
    """
    erp = truth.sources.get(SourceName.ERP)
    if not truth.found or erp is None or not erp.status.answered:
        return []
    out = [_ra_fix(truth, ret) for ret in truth.returns if ret.channel == "mail"
           and ret.portal is not None and _flagged(truth, FlagCode.RETURN_NOT_IN_ERP,
                                                   ret.portal.return_id)]
    return out + _receipt_fixes(truth, store_inventory_lag)


def _flagged(truth: OrderTruth, code: FlagCode, subject: str) -> bool:
    return any(f.code is code and f.subject == subject for f in truth.flags)


def _no_sales_order(truth: OrderTruth) -> str | None:
    if truth.erp.sales_order_id is None:
        return "The ERP has no sale for this order to return against; book the order first."
    if truth.erp.sale_kind != "sales_order":
        kind = (truth.erp.sale_kind or "sale").replace("_", " ")
        return (f"The ERP booked this order as a {kind} ({truth.erp.sales_order}), not a sales "
                "order; authorize the return from it in the ERP.")
    return None


def _ra_fix(truth: OrderTruth, ret: MergedReturn) -> ErpFix:
    assert ret.portal is not None
    lines = _summed((line.sku, line.quantity) for line in ret.portal.lines)
    why = None if lines else ("The returns portal doesn't list the returned items, so the "
                              "lines can't be chosen here; create it in the ERP.")
    return ErpFix(RETURN_AUTHORIZATION, ret.portal.return_id, lines,
                  why_not=why or _no_sales_order(truth))


def _receipt_fixes(truth: OrderTruth, lag: timedelta) -> list[ErpFix]:
    """Per store return, the units its store still lacks in the ERP.

    What is missing per (SKU, store) is counted the way the flag counts it (returns past the
    sync window against every receipt there), then laid on the store returns oldest first,
    each up to what its own return authorization hasn't received.
    """
    flagged = {f.subject for f in truth.flags
               if f.code is FlagCode.STORE_RETURN_NOT_IN_INVENTORY}
    if not flagged:
        return []
    stores = sorted((r for r in truth.returns if r.channel == "store" and r.store_return),
                    key=lambda r: (r.created_at, r.key))
    receipts = {r.internal_id: r for ret in truth.returns for r in ret.receipts}
    due: dict[tuple[str, str], int] = defaultdict(int)
    old = [r for r in stores if r.store_return
           and truth.generated_at - r.store_return.created_at > lag]
    for ret in old:
        for sku, where, qty in _store_lines(ret):
            due[(sku, where.casefold())] += qty
    for receipt in receipts.values():
        for line in receipt.lines:
            key = (line.sku, (line.location or "").strip().casefold())
            if key in due:
                due[key] -= line.quantity
    out = []
    for ret in old:
        assert ret.store_return is not None
        wanted: dict[str, int] = defaultdict(int)
        places = set()
        for sku, where, qty in _store_lines(ret):
            key = (sku, where.casefold())
            got = sum(line.quantity for r in ret.receipts for line in r.lines
                      if (line.sku, (line.location or "").strip().casefold()) == key)
            take = min(qty - got, due.get(key, 0)) if sku in flagged else 0
            if take > 0:
                wanted[sku] += take
                due[key] -= take
                places.add(where)
        if not wanted:
            continue
        lines = _summed(wanted.items())
        received = _summed((line.sku, line.quantity) for r in ret.receipts for line in r.lines)
        location = sorted(places)[0]
        ra = ret.erp_ra
        why = _receipt_why_not(truth, ret, lines, places)
        out.append(ErpFix(ITEM_RECEIPT, ret.key, lines, location=location,
                          ra_id=ra.internal_id if ra else None, received=received,
                          why_not=why))
    return out


def _store_lines(ret: MergedReturn) -> list[tuple[str, str, int]]:
    store = ret.store_return
    assert store is not None
    return [(line.sku, (line.location or store.location or "").strip(), line.quantity)
            for line in store.lines if line.quantity > 0]


def _receipt_why_not(truth: OrderTruth, ret: MergedReturn, lines: Lines,
                     places: set[str]) -> str | None:
    if "" in places:
        return "The shop doesn't say which store took it back; receive it in the ERP."
    if len(places) > 1:
        return ("The goods went back on more than one store's shelves; receive them in the "
                "ERP, one receipt per store.")
    # Received at a place the shop doesn't name on a document no mail return explains (this
    # store return's own included): receiving it again at the store could count the same
    # goods twice.
    mail_ras = {r.erp_ra.internal_id for r in truth.returns
                if r.channel == "mail" and r.erp_ra is not None}
    receipts = sorted({r.internal_id: r for x in truth.returns for r in x.receipts}.values(),
                      key=lambda r: (r.created_at, r.internal_id))
    for sku, _qty in lines:
        found = received_elsewhere(receipts, sku, _shop_places(truth), mail_ras)
        if found:
            place, _n, doc = found[0]
            return (f"The ERP received {sku} at {place} ({doc}). If that is the store under "
                    "the ERP's own name, an admin can map it in the app settings (Stores); "
                    "if the goods are on the store's shelf, move them with a transfer in the "
                    "ERP rather than receiving them twice.")
    if ret.erp_ra is not None:
        if ret.erp_ra.state in _DEAD_RA:
            return (f"The store return's authorization {ret.erp_ra.tran_id} is "
                    f"{ret.erp_ra.status_raw}; receive the goods in the ERP.")
        return None
    return _no_sales_order(truth)


def _shop_places(truth: OrderTruth) -> set[str]:
    """The places the record's store returns name, casefolded."""
    out = set()
    for r in truth.returns:
        if r.store_return is not None:
            out.add((r.store_return.location or "").strip().casefold())
            out.update((line.location or "").strip().casefold() for line in r.store_return.lines)
    return out - {""}


def _summed(pairs: Iterable[tuple[str, int]]) -> Lines:
    total: dict[str, int] = defaultdict(int)
    for sku, qty in pairs:
        if qty > 0:
            total[sku] += qty
    return tuple(sorted(total.items()))


def _items(lines: Lines) -> str:
    return ", ".join(f"{qty} × {sku}" for sku, qty in lines)


def allocate(wanted: Lines, doc_lines: list[dict[str, Any]],
             taken: Lines = ()) -> list[tuple[int, int]]:
    """(line, quantity) pairs on `doc_lines` for the wanted SKUs, or Refused (409).

    A SKU on several lines fills them in line-number order, whatever order the ERP listed
    them in; `taken` (units of a SKU already returned or received) uses up the first lines
    first. SKUs compare without regard to case or surrounding spaces.
    """
    def norm(sku: str) -> str:
        return sku.strip().casefold()

    room: dict[str, list[list[int]]] = defaultdict(list)
    for line in sorted(doc_lines, key=lambda d: int(d["line"])):
        room[norm(str(line["sku"]))].append([int(line["line"]), int(line["quantity"])])
    for sku, qty in taken:
        for slot in room.get(norm(sku), []):
            used = min(slot[1], qty)
            slot[1] -= used
            qty -= used
    out: list[tuple[int, int]] = []
    for sku, qty in wanted:
        slots = room.get(norm(sku))
        if not slots:
            raise Refused(409, "not_on_document", f"{sku} isn't on the ERP's document, so it "
                                                  "can't be returned from here; do it in the ERP.")
        left = sum(s[1] for s in slots)
        if left < qty:
            raise Refused(409, "over_quantity", f"The ERP has {left} × {sku} left to take back "
                                                f"on this order, not {qty}; check it in the ERP.")
        for slot in slots:
            used = min(slot[1], qty)
            if used:
                out.append((slot[0], used))
                slot[1] -= used
                qty -= used
    return sorted(out)


@dataclass(frozen=True)
class ErpPlan:
    """Exactly which documents will be made, checked against the ERP's own lines."""

    action: str
    ticket_id: str
    order_number: str
    subject: str
    key: str
    sales_order: str | None  # its transaction number, for the agent
    sales_order_id: str | None
    ra_id: str | None  # the RA receipts go against, when it exists already
    ra_external_id: str
    ra_lines: tuple[tuple[int, int], ...]  # sales order (line, quantity), when making the RA
    lines: Lines  # what the documents carry, by SKU
    received: Lines = ()
    location: str | None = None
    location_id: str | None = None
    receipt_external_id: str | None = None

    @property
    def steps(self) -> list[str]:
        items = _items(self.lines)
        out = []
        if self.ra_id is None:
            out.append(f"Create a return authorization from sales order {self.sales_order} for "
                       f"{items}, external id {self.ra_external_id}.")
        if self.action == ITEM_RECEIPT:
            against = f"return authorization {self.ra_id}" if self.ra_id else "it"
            out.append(f"Receive {items} into inventory at {self.location} against {against}, "
                       f"external id {self.receipt_external_id}.")
        return out

    @property
    def summary(self) -> str:
        return " Then: ".join(self.steps)

    def parameters(self) -> dict[str, Any]:
        params: dict[str, Any] = {"subject": self.subject, "lines": _items(self.lines),
                                  "ra_external_id": self.ra_external_id}
        if self.sales_order_id:
            params["sales_order_id"] = self.sales_order_id
        if self.ra_id:
            params["ra_id"] = self.ra_id
        if self.receipt_external_id:
            params.update(receipt_external_id=self.receipt_external_id,
                          location=self.location, location_id=self.location_id)
        return params


def plan(truth: OrderTruth, erp: ErpWriter, *, action: str, subject: str,
         installation_id: int, ticket_id: str, store_inventory_lag: timedelta,
         store_locations: tuple[tuple[str, str], ...] = ()) -> ErpPlan:
    """The documents for `subject`'s fix, from a fresh record and the ERP's lines; Refused
    (409) when there is nothing to fix or it can't be done from here. `store_locations`
    are the admin's (shop name, ERP name) pairs for stores the ERP names otherwise."""
    fix = next((f for f in fixes(truth, store_inventory_lag=store_inventory_lag)
                if f.action == action and f.subject == subject), None)
    if fix is None:
        raise Refused(409, "nothing_to_fix", "The record doesn't show this missing from the "
                                             "ERP (any more); refresh it.")
    if fix.why_not is not None:
        raise Refused(409, "cannot_fix", fix.why_not)
    so_id = truth.erp.sales_order_id
    if action == RETURN_AUTHORIZATION:
        ra_external = erp.ra_external_id(subject)
    else:
        ra_external = STORE_RA_PREFIX + _external_part(subject)
    ra_lines: list[tuple[int, int]] = []
    ra_id = fix.ra_id
    if ra_id is None and action == ITEM_RECEIPT:
        # Made by an earlier try that stopped before the receipt: the record can't tie it to
        # the store return until goods are received on it, but its external id can.
        ra_id = erp.find_by_external_id("returnAuthorization", ra_external)
    if ra_id is None:
        assert so_id is not None  # fixes() said why not otherwise
        ra_lines = allocate(fix.lines, erp.sales_order_lines(so_id),
                            taken=_returned_before(truth, erp, so_id))
    location_id = None
    if action == ITEM_RECEIPT:
        assert fix.location is not None
        erp_name = erp_location(store_locations, fix.location)
        found = erp.location_ids(erp_name)
        if len(found) != 1:
            hint = "" if erp_name != fix.location.strip() else (
                " If the ERP names this store otherwise, an admin can say so under Stores in "
                "the app settings.")
            raise Refused(409, "unknown_location", (
                f"The ERP has {'no' if not found else 'more than one'} active location "
                f"called {erp_name}; receive the goods in the ERP.{hint}"))
        location_id = found[0]
    raw = "|".join((str(installation_id), truth.order_number, action, subject))
    key = "ot-erp-" + hashlib.sha256(raw.encode()).hexdigest()[:40]
    return ErpPlan(
        action=action, ticket_id=ticket_id, order_number=truth.order_number, subject=subject,
        key=key, sales_order=truth.erp.sales_order, sales_order_id=so_id, ra_id=ra_id,
        ra_external_id=ra_external, ra_lines=tuple(ra_lines), lines=fix.lines,
        received=fix.received, location=fix.location, location_id=location_id,
        receipt_external_id=(ra_external + RECEIPT_SUFFIX) if action == ITEM_RECEIPT else None)


def _external_part(shop_id: str) -> str:
    """The shop's refund id as an external-id part ("gid://shopify/Refund/9101004" → 9101004)."""
    return shop_id.rstrip("/").rsplit("/", 1)[-1]


def _returned_before(truth: OrderTruth, erp: ErpWriter, so_id: str) -> Lines:
    """Units already on live return authorizations made from this sales order."""
    ras = {r.erp_ra.internal_id for r in truth.returns if r.erp_ra is not None
           and r.erp_ra.created_from == so_id and r.erp_ra.state not in _DEAD_RA}
    return _summed((str(line["sku"]), int(line["quantity"])) for ra_id in sorted(ras)
                   for line in erp.transaction_lines("returnAuthorization", ra_id))


def execute(audit: AuditLog, erp: ErpWriter, erp_plan: ErpPlan, *, installation_id: int,
            actor: Actor) -> Outcome:
    """Make the plan's documents at most once: the audit entry first, then each document
    only if the ERP has none with its external id."""
    entry, held = audit.begin(
        installation_id=installation_id, actor=actor, ticket_id=erp_plan.ticket_id,
        order_number=erp_plan.order_number, action=erp_plan.action, key=erp_plan.key,
        parameters=erp_plan.parameters(), amount_minor=None, currency=None)
    if entry.status == "done":
        return Outcome("done", f"Already done: {_made(entry.upstream_ids or [])}.", repeat=True)
    if held == "elsewhere":
        return Outcome("in_progress", "This is being done in the ERP already; it won't be "
                                      "done twice.")
    try:
        made = _write(erp, erp_plan)
    except Refused as exc:  # the documents no longer fit (changed in the ERP meanwhile)
        audit.fail(entry, exc.message)
        return Outcome("failed", exc.message)
    except UpstreamError as exc:
        return _after_error(audit, erp, entry, erp_plan, exc)
    audit.complete(entry, made)
    return Outcome("done", f"Done: {_made(made)}.")


def _write(erp: ErpWriter, erp_plan: ErpPlan) -> list[str]:
    ra_id = erp_plan.ra_id or _once(
        erp, "returnAuthorization", erp_plan.ra_external_id,
        lambda: erp.create_return_authorization(
            erp_plan.sales_order_id or "", list(erp_plan.ra_lines), erp_plan.ra_external_id,
            _memo(erp_plan)))
    if erp_plan.action == RETURN_AUTHORIZATION:
        return [ra_id]
    assert erp_plan.receipt_external_id and erp_plan.location_id

    def receive() -> str:
        # Lines of the RA as the ERP has it now (made just now, or the store's own).
        ra_lines = erp.transaction_lines("returnAuthorization", ra_id)
        taken = erp_plan.received if erp_plan.ra_id else ()  # `received`: on the store's RA
        return erp.receive_return(ra_id, allocate(erp_plan.lines, ra_lines, taken),
                                  erp_plan.location_id or "", erp_plan.receipt_external_id or "")

    return [ra_id, _once(erp, "itemReceipt", erp_plan.receipt_external_id, receive)]


def _once(erp: ErpWriter, record_type: str, external_id: str, make: Callable[[], str]) -> str:
    """The document with this external id: found, else made (a duplicate refusal means it
    was made meanwhile, by a retry or the ERP's own sync: found again)."""
    found = erp.find_by_external_id(record_type, external_id)
    if found is not None:
        return found
    try:
        return make()
    except UpstreamError as exc:
        if exc.code != DUPLICATE:
            raise
        again = erp.find_by_external_id(record_type, external_id)
        if again is None:
            raise
        return again


def _memo(erp_plan: ErpPlan) -> str:
    if erp_plan.action == RETURN_AUTHORIZATION:
        return f"Order Truth: portal return {erp_plan.subject}"
    return f"Order Truth: store return {erp_plan.subject} at {erp_plan.location}"


def _made(ids: list[str]) -> str:
    names = ["return authorization", "item receipt"]
    return ", ".join(f"{names[i]} {doc}" for i, doc in enumerate(ids[:2]))


def _final(erp_plan: ErpPlan) -> tuple[str, str]:
    if erp_plan.action == RETURN_AUTHORIZATION:
        return "returnAuthorization", erp_plan.ra_external_id
    return "itemReceipt", erp_plan.receipt_external_id or ""


def _after_error(audit: AuditLog, erp: ErpWriter, entry: AuditEntry, erp_plan: ErpPlan,
                 exc: UpstreamError) -> Outcome:
    try:
        found = _look(erp, entry)
    except UpstreamError:
        found = None
    if found is not None:
        audit.complete(entry, found)
        return Outcome("done", f"Done: {_made(found)}.")
    if refused_upstream(exc):
        audit.fail(entry, str(exc))
        return Outcome("failed", f"The ERP refused it: {exc}")
    audit.unknown(entry, str(exc))
    return Outcome("unknown", f"The ERP didn't confirm it ({exc}). Ask again in a minute: "
                              "it looks for what was made before making anything.")


def _look(erp: ErpWriter, entry: AuditEntry) -> list[str] | None:
    """The entry's documents as the ERP has them by external id; None if the last isn't."""
    params = entry.parameters or {}
    ra = str(params.get("ra_id") or "") or erp.find_by_external_id(
        "returnAuthorization", str(params.get("ra_external_id", "")))
    if entry.action == RETURN_AUTHORIZATION:
        return [ra] if ra else None
    receipt = erp.find_by_external_id("itemReceipt",
                                      str(params.get("receipt_external_id", "")))
    return [ra or "", receipt] if receipt else None


def reconcile(audit: AuditLog,
              erp_for: Callable[[AuditEntry], ErpWriter | None]) -> dict[str, int]:
    """Settle ERP fixes left pending or unknown by asking the ERP for their external ids."""
    counts = {"done": 0, "failed": 0, "skipped": 0}
    for action in ACTIONS:
        got = settle_unsettled(audit, action, erp_for, _look,
                               "The ERP has no such document: it was never made (checked by "
                               "reconcile); ask again to make it.")
        for k, v in got.items():
            counts[k] += v
    return counts
