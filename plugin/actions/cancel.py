"""Cancel a refund the record flags as one too many (a duplicate or an over-refund), while the
processor still allows it: Stripe cancels only a refund that waits on the customer
(`requires_action`); Shopify Payments cancels none. Any other is shown with the reason it
can't be cancelled from here.

Like a refund: planned from a fresh record, allowed by the admin's policy, written to the
audit trail before the call and completed after, and done at most once per key (the
processor is asked how the refund stands before any retry).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..connectors.base import UpstreamError
from ..connectors.registry import CONNECTORS
from ..core.model import RefundState, SourceName
from ..core.money import Money
from ..core.record import FlagCode, MergedRefund, OrderTruth
from ..store.models import AuditEntry
from ..tenant_settings import current
from . import Outcome, Permission, Refused, refused_upstream
from .audit import Actor, AuditLog, settle_unsettled

ACTION = "cancel_refund"
# Said of a processor that has no way to cancel a refund (its connector doesn't list ACTION).
CANNOT_CANCEL = "{title} can't cancel a refund once it's made. Recover the money another way."
# Flags that say money is going out twice or beyond what was paid.
_TOO_MUCH = (FlagCode.DUPLICATE_REFUND, FlagCode.OVER_REFUND)


class RefundCanceller(Protocol):
    """What a processor must offer to cancel refunds (Stripe's module does)."""

    def get_refund(self, refund_id: str) -> dict[str, Any]: ...

    def cancel_refund(self, refund_id: str, idempotency_key: str) -> dict[str, Any]: ...


def permission(features: dict[str, bool], settings: dict[str, Any]) -> Permission:
    return Permission.of(features.get("cancel_refunds"), current(settings)["cancel_refund_roles"],
                         "Cancelling refunds", "cancel refunds")


@dataclass(frozen=True)
class Candidate:
    """A processor refund on a flagged order, and why it can't be cancelled (None: it can)."""

    refund_id: str
    amount: Money
    state: RefundState
    why_not: str | None


@dataclass(frozen=True)
class CancelPlan:
    ticket_id: str
    order_number: str
    refund_id: str
    amount: Money
    key: str

    @property
    def summary(self) -> str:
        return (f"Cancel refund {self.refund_id} of {self.amount.format()}: the money stays "
                "with the shop and the customer is not paid it.")


def candidates(truth: OrderTruth) -> list[Candidate]:
    """The refunds an agent might cancel: only on an order flagged as refunded too much, and
    only the processor's refunds that haven't finished (in the record's own order)."""
    if not any(f.code in _TOO_MUCH for f in truth.flags):
        return []
    report = truth.sources.get(SourceName.PROCESSOR)
    connector = CONNECTORS.get(report.system) if report else None
    cannot = None if connector is not None and ACTION in connector.writes else \
        CANNOT_CANCEL.format(title=connector.title if connector else "This processor")
    out = []
    for r in truth.refunds:
        if r.processor is None or r.state not in (RefundState.PENDING,
                                                  RefundState.REQUIRES_ACTION):
            continue
        out.append(Candidate(r.processor.refund_id, r.amount, r.state, cannot or _why_not(r)))
    return out


def _why_not(r: MergedRefund) -> str | None:
    if r.state is RefundState.REQUIRES_ACTION:
        return None
    return ("It is already on its way to the customer's bank; the processor cancels only a "
            "refund still waiting on the customer. Recover the money another way.")


def plan(truth: OrderTruth, *, installation_id: int, ticket_id: str,
         refund_id: str) -> CancelPlan:
    """Cancelling `refund_id`, from a fresh record; Refused (409) if it shouldn't or can't."""
    if not truth.found:
        raise Refused(409, "not_cancellable", "The order wasn't found.")
    found = next((c for c in candidates(truth) if c.refund_id == refund_id), None)
    if found is None and any(r.processor and r.processor.refund_id == refund_id
                             and r.state is RefundState.CANCELED for r in truth.refunds):
        raise Refused(409, "already_cancelled", f"Refund {refund_id} is already cancelled.")
    if found is None:
        if any(r.processor and r.processor.refund_id == refund_id for r in truth.refunds):
            raise Refused(409, "not_cancellable", "Only an unfinished refund on an order "
                                                  "flagged as refunded twice or too much can "
                                                  "be cancelled from here.")
        raise Refused(409, "not_cancellable", f"Refund {refund_id} isn't one of this order's "
                                              "refunds.")
    if found.why_not is not None:
        raise Refused(409, "processor_cannot_cancel", found.why_not)
    raw = "|".join((str(installation_id), ticket_id, truth.order_number, ACTION, refund_id))
    key = "ot-cancel-" + hashlib.sha256(raw.encode()).hexdigest()[:40]
    return CancelPlan(ticket_id, truth.order_number, refund_id, found.amount, key)


def execute(audit: AuditLog, processor: RefundCanceller, cancel_plan: CancelPlan, *,
            installation_id: int, actor: Actor) -> Outcome:
    entry, held = audit.begin(
        installation_id=installation_id, actor=actor, ticket_id=cancel_plan.ticket_id,
        order_number=cancel_plan.order_number, action=ACTION, key=cancel_plan.key,
        parameters={"refund_id": cancel_plan.refund_id},
        amount_minor=cancel_plan.amount.amount_minor, currency=cancel_plan.amount.currency)
    if entry.status == "done":
        return Outcome("done", f"Already cancelled: refund {cancel_plan.refund_id}.",
                       repeat=True)
    if held == "elsewhere":
        return Outcome("in_progress", "This refund is being cancelled already.")
    try:
        # Taken over from a timeout or a crash: ask how the refund stands first.
        if held != "created" and processor.get_refund(cancel_plan.refund_id).get(
                "status") == "canceled":
            audit.complete(entry, [cancel_plan.refund_id])
            return _done(cancel_plan)
        answer = processor.cancel_refund(cancel_plan.refund_id, cancel_plan.key)
    except UpstreamError as exc:
        return _after_error(audit, processor, entry, cancel_plan, exc)
    if answer.get("status") != "canceled":
        audit.fail(entry, f"The processor answered with status {answer.get('status')!r}.")
        return Outcome("failed", f"The processor didn't cancel it: its status is "
                                 f"{answer.get('status')}.")
    audit.complete(entry, [cancel_plan.refund_id])
    return _done(cancel_plan)


def _done(cancel_plan: CancelPlan) -> Outcome:
    return Outcome("done", f"Cancelled refund {cancel_plan.refund_id} of "
                           f"{cancel_plan.amount.format()}.")


def _after_error(audit: AuditLog, processor: RefundCanceller, entry: AuditEntry,
                 cancel_plan: CancelPlan, exc: UpstreamError) -> Outcome:
    if refused_upstream(exc):
        audit.fail(entry, str(exc))
        return Outcome("failed", f"The processor refused to cancel it: {exc}")
    try:
        now = processor.get_refund(cancel_plan.refund_id).get("status")
    except UpstreamError:
        now = None
    if now == "canceled":
        audit.complete(entry, [cancel_plan.refund_id])
        return _done(cancel_plan)
    audit.unknown(entry, str(exc))
    return Outcome("unknown", f"The processor didn't confirm the cancellation ({exc}). Ask "
                              "again in a minute to see how it stands.")


def reconcile(audit: AuditLog,
              processor_for: Callable[[AuditEntry], RefundCanceller | None]) -> dict[str, int]:
    """Settle cancellations left pending or unknown by reading the refund at the processor."""
    def look(processor: RefundCanceller, entry: AuditEntry) -> list[str] | None:
        refund_id = str(entry.parameters.get("refund_id", ""))
        return [refund_id] if processor.get_refund(refund_id).get("status") == "canceled" \
            else None

    return settle_unsettled(audit, ACTION, processor_for, look,
                            "The refund is not cancelled: the cancellation never reached the "
                            "processor (checked by reconcile).")
