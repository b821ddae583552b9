"""Refund at the processor from the sidebar: planned from a fresh record, capped, audited,
and made at most once per idempotency key.

The key is derived from installation, ticket, order, action, payment and amount, so a
double click, a retry after a timeout and two agents asking for the same refund share it.
It travels as the processor's idempotency key (Stripe's `Idempotency-Key`, Shopify's
`@idempotent` directive) and on the refund itself (Stripe's metadata, Shopify's note);
before any retry the processor is asked whether the key already made a refund. A crash between the processor's
answer and the audit's completion is settled by `flask --app app audit reconcile`, which
asks the processor, and never by refunding again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..connectors.base import NotSentError, UpstreamError
from ..connectors.stripe import StripeClient
from ..core.model import LIVE_REFUND_STATES, DisputeState, Payment, SourceName
from ..core.money import Money
from ..core.record import OrderTruth
from ..store.models import AuditEntry
from ..tenant_settings import current
from . import Outcome, Permission, Refused, refused_upstream
from .audit import Actor, AuditLog, MadeButFailed, settle_unsettled

ACTION = "refund"
# Why a refund is made: Stripe's words, which Shopify Payments gets in the refund's note.
REASONS = StripeClient.REFUND_REASONS


class RefundProcessor(Protocol):
    """What a processor must offer for refunds from the sidebar (Stripe's and Shopify
    Payments' modules do). Both answer with the refund as a dict whose "id" is the refund's
    id as the record lists it."""

    def create_refund(self, *, payment_id: str, amount: int, currency: str,
                      reason: str | None, metadata: dict[str, str],
                      idempotency_key: str) -> dict[str, Any]: ...

    def find_refund(self, payment_id: str, idempotency_key: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class RefundPolicy:
    """What an admin allows: on or off, which roles, and caps per role (one currency)."""

    permission: Permission
    cap_currency: str
    per_refund: dict[str, int]
    per_day: dict[str, int]

    @classmethod
    def of(cls, features: dict[str, bool], settings: dict[str, Any]) -> RefundPolicy:
        values = current(settings)
        return cls(Permission.of(features.get("refunds"), values["refund_roles"], "Refunding",
                                 "refund"), str(values["refund_cap_currency"]),
                   {"agent": int(values["refund_cap_agent_minor"]),
                    "admin": int(values["refund_cap_admin_minor"])},
                   {"agent": int(values["refund_daily_cap_agent_minor"]),
                    "admin": int(values["refund_daily_cap_admin_minor"])})


@dataclass(frozen=True)
class RefundRequest:
    """What the agent asked for: which payment, how much (minor units), why."""

    ticket_id: str
    order_number: str
    payment_id: str
    amount_minor: int
    reason: str | None = None


@dataclass(frozen=True)
class RefundPlan:
    """Exactly what will happen, shown in the confirm step and then done."""

    request: RefundRequest
    amount: Money
    refundable: Money
    destination: str
    key: str
    # The processor refunds the record already counted (others in the audit trail are not).
    known_refunds: frozenset[str] = frozenset()
    # The processor it goes through ("stripe" …), so reconcile asks that one.
    processor: str = ""

    @property
    def summary(self) -> str:
        return f"Refund {self.amount.format()} to {self.destination}."

    def parameters(self) -> dict[str, Any]:
        return {"payment_id": self.request.payment_id, "amount_minor": self.amount.amount_minor,
                "currency": self.amount.currency, "reason": self.request.reason or "",
                "processor": self.processor}


def refund_key(installation_id: int, req: RefundRequest) -> str:
    """The same request always gets the same key (and a different one any other)."""
    raw = "|".join((str(installation_id), req.ticket_id, req.order_number, ACTION,
                    req.payment_id, str(req.amount_minor), req.reason or ""))
    return "ot-refund-" + hashlib.sha256(raw.encode()).hexdigest()[:40]


def check_policy(policy: RefundPolicy, actor: Actor, amount: Money, spent_today: int) -> None:
    """Refuse (403, with the reason) what the admin hasn't allowed this agent."""
    policy.permission.check(actor.role)
    if amount.currency != policy.cap_currency:
        raise Refused(403, "over_limit", f"Refund caps are set in {policy.cap_currency}; a "
                                         f"{amount.currency} refund needs an admin to set caps "
                                         "for it.")
    per_refund = policy.per_refund.get(actor.role, 0)
    if amount.amount_minor > per_refund:
        raise Refused(403, "over_limit", f"{amount.format()} is over your limit of "
                                         f"{Money(per_refund, amount.currency).format()} per "
                                         "refund.")
    per_day = policy.per_day.get(actor.role, 0)
    if spent_today + amount.amount_minor > per_day:
        left = max(0, per_day - spent_today)
        raise Refused(403, "over_limit", f"That would take you over your daily limit of "
                                         f"{Money(per_day, amount.currency).format()}; "
                                         f"{Money(left, amount.currency).format()} is left today.")


def plan(truth: OrderTruth, req: RefundRequest, installation_id: int) -> RefundPlan:
    """What refunding `req` would do, from a fresh record; Refused (409) if it shouldn't."""
    if not truth.found or truth.currency is None:
        raise Refused(409, "not_refundable", "The order wasn't found, so nothing can be refunded.")
    eligibility = truth.eligibility
    if not eligibility.eligible or eligibility.remaining is None:
        raise Refused(409, "not_refundable", eligibility.reason)
    payment = _processor_payment(truth, req.payment_id)
    if req.amount_minor <= 0:
        raise Refused(400, "bad_request", "The amount must be more than zero.")
    amount = Money(req.amount_minor, payment.amount_captured.currency)
    refundable = min(payment_refundable(truth, payment), eligibility.remaining)
    if amount > refundable:
        raise Refused(409, "over_refundable", f"{amount.format()} is more than the "
                                              f"{refundable.format()} that can still be "
                                              "refunded to this payment.")
    destination = f"{payment.tender_label or 'the original payment'} (payment {payment.payment_id})"
    known = frozenset(r.processor.refund_id for r in truth.refunds if r.processor)
    report = truth.sources.get(SourceName.PROCESSOR)
    return RefundPlan(req, amount, refundable, destination, refund_key(installation_id, req),
                      known, report.system if report else "")


def refundable_payments(truth: OrderTruth) -> list[tuple[Payment, Money]]:
    """The processor payments a refund may go to, with what each can still take back
    (none when the record says no refund should be made now)."""
    remaining = truth.eligibility.remaining
    if not truth.eligibility.eligible or remaining is None:
        return []
    out = []
    for p in truth.payments:
        if p.source is SourceName.PROCESSOR:
            left = min(payment_refundable(truth, p), remaining)
            if left.amount_minor > 0:
                out.append((p, left))
    return out


def _processor_payment(truth: OrderTruth, payment_id: str) -> Payment:
    """The processor's payment `payment_id` (a cash, gift card or store payment the shop
    holds can't be refunded through the processor)."""
    processor = truth.sources.get(SourceName.PROCESSOR)
    for p in truth.payments:
        if p.payment_id == payment_id and p.source is SourceName.PROCESSOR:
            return p
    system = processor.system if processor else "the processor"
    raise Refused(409, "not_refundable", f"Payment {payment_id} isn't one of this order's "
                                         f"payments at {system}.")


def payment_refundable(truth: OrderTruth, payment: Payment) -> Money:
    """What the processor can still refund on this payment: captured, less refunds that
    succeeded or are on their way, less lost disputes."""
    out = payment.amount_captured
    for r in truth.refunds:
        if r.processor and r.processor.payment_id == payment.payment_id \
                and r.state in LIVE_REFUND_STATES and r.amount.currency == out.currency:
            out = out - r.amount
    for d in truth.disputes:
        if d.payment_id == payment.payment_id and d.state is DisputeState.LOST \
                and d.amount.currency == out.currency:
            out = out - d.amount
    return max(out, Money.zero(out.currency))


def execute(audit: AuditLog, processor: RefundProcessor, refund_plan: RefundPlan, *,
            installation_id: int, actor: Actor, metadata: dict[str, str],
            daily_cap: int | None = None) -> Outcome:
    """Make the refund at most once: audit entry first, processor asked before any retry.

    `metadata` must be the same for every request with this plan's key (Stripe compares
    the parameters sent with a key), so it names the order and ticket, never the agent.
    """
    req = refund_plan.request
    entry, held = audit.begin(
        installation_id=installation_id, actor=actor, ticket_id=req.ticket_id,
        order_number=req.order_number, action=ACTION, key=refund_plan.key,
        parameters=refund_plan.parameters(), amount_minor=refund_plan.amount.amount_minor,
        currency=refund_plan.amount.currency)
    if entry.status == "done":
        return _done(refund_plan, entry, repeat=True)
    if held == "elsewhere":
        return Outcome("in_progress", "This refund is already being made; it won't be made "
                                      "twice.")
    raced = _raced(audit, entry, refund_plan, installation_id, actor, daily_cap)
    if raced is not None:
        audit.refuse(entry, raced)
        return Outcome("refused", raced)
    fresh = held == "created"
    pi = req.payment_id
    try:
        # Taken over from a timeout, a crash or a refusal: ask before trying again.
        found = None if fresh else processor.find_refund(pi, refund_plan.key)
        if found is None:
            found = processor.create_refund(
                payment_id=pi, amount=refund_plan.amount.amount_minor,
                currency=refund_plan.amount.currency, reason=req.reason, metadata=metadata,
                idempotency_key=refund_plan.key)
    except UpstreamError as exc:
        return _after_error(audit, processor, entry, refund_plan, exc)
    return _settled(audit, entry, refund_plan, found)


# The processor made the refund but says it failed: no money went back.
_FAILED = frozenset({"failed", "failure", "error"})


def _settled(audit: AuditLog, entry: AuditEntry, refund_plan: RefundPlan,
             found: dict[str, Any]) -> Outcome:
    status = str(found.get("status") or "").lower()
    if status in _FAILED:
        audit.fail(entry, f"The processor made refund {found['id']}, but it failed (status "
                          f"{status}).", upstream_ids=[str(found["id"])])
        return Outcome("failed", f"The processor made refund {found['id']}, but it failed: "
                                 "no money went back. Check the payment at the processor.",
                       str(found["id"]))
    audit.complete(entry, [str(found["id"])])
    return _done(refund_plan, entry)


def _raced(audit: AuditLog, entry: AuditEntry, refund_plan: RefundPlan, installation_id: int,
           actor: Actor, daily_cap: int | None) -> str | None:
    """Checks repeated once this entry is written, so two requests racing each other can't
    both pass them: each sees the other's entry (both may be refused; neither overspends)."""
    amount = refund_plan.amount
    if daily_cap is not None:
        spent = audit.spent_today(installation_id, actor.id, ACTION, amount.currency)
        if spent > daily_cap:
            return (f"That would take you over your daily limit of "
                    f"{Money(daily_cap, amount.currency).format()} (another refund was being "
                    "made at the same moment).")
    req = refund_plan.request
    others = audit.in_flight(installation_id, ACTION, req.order_number, req.payment_id,
                             entry.id)
    unseen = sum(o.amount_minor or 0 for o in others
                 if not set(o.upstream_ids or ()) & refund_plan.known_refunds
                 and o.currency == amount.currency)
    if amount.amount_minor + unseen > refund_plan.refundable.amount_minor:
        return (f"Another refund of {Money(unseen, amount.currency).format()} on this payment "
                "is being made or was just made; refresh the record and check what's left.")
    return None


def _after_error(audit: AuditLog, processor: RefundProcessor, entry: AuditEntry,
                 refund_plan: RefundPlan, exc: UpstreamError) -> Outcome:
    if isinstance(exc, NotSentError):
        audit.fail(entry, str(exc))
        return Outcome("failed", f"Nothing was refunded: the processor {exc}. Try again.")
    if refused_upstream(exc):
        audit.fail(entry, str(exc))
        return Outcome("failed", f"The processor refused the refund: {exc}")
    # No answer, 429 or 5xx: it may have been made. Look once; else leave it to reconcile.
    try:
        found = processor.find_refund(refund_plan.request.payment_id, refund_plan.key)
    except UpstreamError:
        found = None
    if found is not None:
        return _settled(audit, entry, refund_plan, found)
    audit.unknown(entry, str(exc))
    return Outcome("unknown", f"The processor didn't confirm the refund ({exc}). It won't be "
                              "made twice: ask again in a minute to see whether it went through.")


def _done(refund_plan: RefundPlan, entry: AuditEntry, *, repeat: bool = False) -> Outcome:
    refund_id = entry.upstream_ids[0] if entry.upstream_ids else None
    said = "Already refunded" if repeat else "Refunded"
    return Outcome("done", f"{said} {refund_plan.amount.format()} to {refund_plan.destination}"
                           f" (refund {refund_id}).", refund_id, repeat)


def reconcile(audit: AuditLog, processor_for: Callable[[AuditEntry], RefundProcessor | None]
              ) -> dict[str, int]:
    """Settle refunds left pending or unknown by asking the processor; never refund again."""
    def look(processor: RefundProcessor, entry: AuditEntry) -> list[str] | MadeButFailed | None:
        found = processor.find_refund(str(entry.parameters.get("payment_id", "")),
                                      entry.idempotency_key)
        if found is None:
            return None
        if str(found.get("status") or "").lower() in _FAILED:
            return MadeButFailed([str(found["id"])], f"The processor made refund {found['id']} "
                                                     "but it failed (checked by reconcile).")
        return [str(found["id"])]

    return settle_unsettled(audit, ACTION, processor_for, look,
                            "The processor has no refund for this request: it never reached "
                            "the processor (checked by reconcile). Safe to ask again.")
