"""Resolve the ticket from the sidebar: the admin's mapping from the record's outcome to
ticket changes (status, tags, a custom field), applied as the agent in one ticket update
that also carries the internal note saying what was done.

The outcome is read from a freshly fetched record. It is never more certain than the
record: a record some source didn't answer for can't resolve a ticket, and one with a
critical or high flag is "needs attention" whatever its money says.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from ..connectors.base import UpstreamError
from ..core.record import OrderTruth, Severity
from ..store.models import AuditEntry
from ..tenant_settings import current
from . import Outcome, Permission, Refused, refused_upstream
from .audit import Actor, AuditLog, settle_unsettled
from .outcomes import OUTCOMES

ACTION = "resolve"

_BLOCKING = (Severity.CRITICAL, Severity.HIGH)
_BY_STATUS = {"refunded": "refunded", "partially_refunded": "partially_refunded",
              "refund_pending": "refund_pending", "return_in_progress": "return_in_progress",
              "disputed": "needs_attention", "paid": "nothing_to_refund",
              "open": "nothing_to_refund"}


class TicketState(Protocol):
    """What resolving reads of the ticket now (a host's ticket has it)."""

    @property
    def status(self) -> str: ...

    @property
    def tags(self) -> tuple[str, ...]: ...

    @property
    def custom_fields(self) -> dict[str, Any]: ...


class TicketWriter(Protocol):
    """What resolving needs from the helpdesk, acting as the agent (hosts implement it)."""

    def update_ticket(self, ticket_id: str, *, status: str | None, add_tags: list[str],
                      custom_fields: dict[int, str], note: str) -> str: ...

    def note_exists(self, ticket_id: str, marker: str) -> bool: ...


@dataclass(frozen=True)
class TicketChanges:
    """What resolving does to the ticket for one outcome."""

    status: str | None
    tags: tuple[str, ...]
    field_id: int | None
    field_value: str | None

    @property
    def empty(self) -> bool:
        return not self.status and not self.tags and not (self.field_id and self.field_value)

    def describe(self) -> list[str]:
        out = []
        if self.status:
            out.append(f"Set the status to {self.status}.")
        if self.tags:
            out.append(f"Add the tag{'s' if len(self.tags) > 1 else ''} "
                       f"{', '.join(self.tags)}.")
        if self.field_id and self.field_value:
            out.append(f"Set field {self.field_id} to “{self.field_value}”.")
        out.append("Post an internal note saying what was done.")
        return out


@dataclass(frozen=True)
class ResolvePolicy:
    """What an admin allows: on or off, which roles, and the outcome → changes mapping."""

    permission: Permission
    mapping: dict[str, TicketChanges]

    @classmethod
    def of(cls, features: dict[str, bool], settings: dict[str, Any]) -> ResolvePolicy:
        values = current(settings)
        field_id = int(values["resolve_field_id"]) or None
        mapping = {}
        for outcome in OUTCOMES:
            tags = tuple(dict.fromkeys(
                t.strip() for t in str(values[f"resolve_{outcome}_tags"]).split(",") if t.strip()))
            mapping[outcome] = TicketChanges(
                str(values[f"resolve_{outcome}_status"]) or None, tags, field_id,
                str(values[f"resolve_{outcome}_field"]) or None)
        return cls(Permission.of(features.get("resolve_ticket"), values["resolve_roles"],
                                 "Resolving tickets", "resolve tickets"), mapping)


@dataclass(frozen=True)
class ResolvePlan:
    """Exactly what resolving will do, shown in the confirm step and then done."""

    ticket_id: str
    order_number: str
    outcome: str
    changes: TicketChanges
    key: str

    @property
    def summary(self) -> str:
        return f"{OUTCOMES[self.outcome]}: " + " ".join(self.changes.describe())

    def parameters(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "status": self.changes.status or "",
                "tags": ",".join(self.changes.tags),
                "field": f"{self.changes.field_id}={self.changes.field_value}"
                if self.changes.field_id and self.changes.field_value else ""}


def outcome_of(truth: OrderTruth) -> str:
    """The record's outcome, or Refused (409) when the record can't support resolving."""
    if not truth.found:
        raise Refused(409, "not_resolvable", "The order wasn't found, so the ticket can't be "
                                             "resolved from it.")
    if truth.partial:
        raise Refused(409, "incomplete_record", "Not every system answered, so the record "
                                                "can't say how this order ended; try again "
                                                "when they do.")
    if any(f.severity in _BLOCKING for f in truth.flags):
        return "needs_attention"
    return _BY_STATUS.get(truth.order_status, "needs_attention")


def check_policy(policy: ResolvePolicy, actor: Actor) -> None:
    policy.permission.check(actor.role)


def plan(truth: OrderTruth, policy: ResolvePolicy, *, installation_id: int,
         ticket_id: str) -> ResolvePlan:
    outcome = outcome_of(truth)
    changes = policy.mapping[outcome]
    if changes.empty:
        raise Refused(409, "nothing_to_change", f"“{OUTCOMES[outcome]}” changes nothing on "
                                                "the ticket; an admin can map it to ticket "
                                                "changes in the app settings.")
    canonical = json.dumps([outcome, changes.status, changes.tags, changes.field_id,
                            changes.field_value])
    raw = "|".join((str(installation_id), ticket_id, truth.order_number, ACTION, canonical))
    key = "ot-resolve-" + hashlib.sha256(raw.encode()).hexdigest()[:40]
    return ResolvePlan(ticket_id, truth.order_number, outcome, changes, key)


def shows(changes: TicketChanges, ticket: TicketState) -> bool:
    """Whether the ticket still carries these changes (a reopened one doesn't)."""
    if changes.status and ticket.status != changes.status:
        return False
    if any(tag not in ticket.tags for tag in changes.tags):
        return False
    return not (changes.field_id and changes.field_value
                and ticket.custom_fields.get(str(changes.field_id)) != changes.field_value)


def this_round(resolve_plan: ResolvePlan, audit: AuditLog, installation_id: int,
               ticket: TicketState | None) -> ResolvePlan:
    """The plan under the key of this round: a ticket resolved with these changes and then
    reopened (or changed by hand) is resolved again, under a new key; one that still shows
    them keeps the last key, so a double click changes nothing twice."""
    done = audit.done_keys(installation_id, resolve_plan.key)
    if not done or ticket is None or shows(resolve_plan.changes, ticket):
        latest = max(done, key=_round_of, default=resolve_plan.key)
        return replace(resolve_plan, key=latest)
    return replace(resolve_plan, key=f"{resolve_plan.key}-r{len(done) + 1}")


def _round_of(key: str) -> int:
    head, _, tail = key.rpartition("-r")
    return int(tail) if head and tail.isdigit() else 1


def note_text(resolve_plan: ResolvePlan, actor: Actor, marker: str) -> str:
    lines = [f"Order Truth: {actor.name or 'An agent'} resolved this ticket for order "
             f"{resolve_plan.order_number}: {OUTCOMES[resolve_plan.outcome].lower()}."]
    lines += [f"- {line}" for line in resolve_plan.changes.describe()[:-1]]
    return "\n".join(lines + [marker])


def execute(audit: AuditLog, writer: TicketWriter, resolve_plan: ResolvePlan, *,
            installation_id: int, actor: Actor, marker: str) -> Outcome:
    """Apply the changes at most once per key: the note's marker tells whether they were."""
    entry, held = audit.begin(
        installation_id=installation_id, actor=actor, ticket_id=resolve_plan.ticket_id,
        order_number=resolve_plan.order_number, action=ACTION, key=resolve_plan.key,
        parameters=resolve_plan.parameters(), amount_minor=None, currency=None)
    if entry.status == "done":
        return Outcome("done", f"Already resolved: {resolve_plan.summary}", repeat=True)
    if held == "elsewhere":
        return Outcome("in_progress", "This ticket is being resolved already; it won't be "
                                      "changed twice.")
    try:
        # Taken over from a timeout or a crash: the note's marker says whether it landed.
        if held != "created" and writer.note_exists(resolve_plan.ticket_id, marker):
            audit.complete(entry, [f"ticket:{resolve_plan.ticket_id}"])
            return Outcome("done", f"Resolved: {resolve_plan.summary}")
        audit_id = writer.update_ticket(
            resolve_plan.ticket_id, status=resolve_plan.changes.status,
            add_tags=list(resolve_plan.changes.tags),
            custom_fields={resolve_plan.changes.field_id: resolve_plan.changes.field_value}
            if resolve_plan.changes.field_id and resolve_plan.changes.field_value else {},
            note=note_text(resolve_plan, actor, marker))
    except UpstreamError as exc:
        return _after_error(audit, writer, entry, resolve_plan, marker, exc)
    audit.complete(entry, [f"ticket:{resolve_plan.ticket_id}", f"audit:{audit_id}"])
    return Outcome("done", f"Resolved: {resolve_plan.summary}")


def _after_error(audit: AuditLog, writer: TicketWriter, entry: AuditEntry,
                 resolve_plan: ResolvePlan, marker: str, exc: UpstreamError) -> Outcome:
    if refused_upstream(exc):
        audit.fail(entry, str(exc))
        return Outcome("failed", f"The helpdesk refused the changes: {exc}")
    try:
        landed = writer.note_exists(resolve_plan.ticket_id, marker)
    except UpstreamError:
        landed = False
    if landed:
        audit.complete(entry, [f"ticket:{resolve_plan.ticket_id}"])
        return Outcome("done", f"Resolved: {resolve_plan.summary}")
    audit.unknown(entry, str(exc))
    return Outcome("unknown", f"The helpdesk didn't confirm the changes ({exc}). They won't "
                              "be made twice: ask again in a minute.")


class NoteReader(Protocol):
    def note_exists(self, ticket_id: str, marker: str) -> bool: ...


def reconcile(audit: AuditLog, reader_for: Callable[[AuditEntry], NoteReader | None],
              marker_for: Callable[[str], str]) -> dict[str, int]:
    """Settle resolves left pending or unknown: the ticket's note says whether the changes
    landed (they went in one update with it); never applied again from here."""
    def look(reader: NoteReader, entry: AuditEntry) -> list[str] | None:
        landed = reader.note_exists(entry.ticket_id, marker_for(entry.idempotency_key))
        return [f"ticket:{entry.ticket_id}"] if landed else None

    return settle_unsettled(audit, ACTION, reader_for, look,
                            "The ticket has no note for this request: its changes never "
                            "reached the helpdesk (checked by reconcile). Safe to ask again.")
