"""The audit trail: an entry before every upstream call, completed after it.

An entry is keyed by (installation, idempotency key), so two agents, a double click and a
retry all land on the same row; whoever holds its lease is the only one calling the upstream.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..connectors.base import UpstreamError
from ..store.models import AuditEntry

C = TypeVar("C")

# How long one request may hold an entry's upstream call before another may take it over
# (after first asking the upstream whether it already happened): well past the longest a
# processor call with its look-ups can take.
LEASE = timedelta(seconds=120)
# After no answer, how long before another request may ask the upstream again.
UNKNOWN_LEASE = timedelta(seconds=15)

CSV_COLUMNS = ("created_at", "completed_at", "installation_id", "actor_id", "actor_name",
               "actor_role", "ticket_id", "order_number", "action", "amount_minor", "currency",
               "status", "upstream_ids", "parameters", "error", "idempotency_key")


@dataclass(frozen=True)
class Actor:
    """Who asked: the helpdesk's own id, name and role for them (never the browser's say)."""

    id: str
    name: str
    role: str


def _now() -> datetime:
    return datetime.now(UTC)


class AuditLog:
    """Audit entries of every installation."""

    def __init__(self, db: Session) -> None:
        self.db = db
        # The lease this log's holder set on each entry it holds, as set (not as re-read:
        # a re-read would show another holder's lease, or none, after a take-over).
        self._held: dict[int, datetime | None] = {}

    def begin(self, *, installation_id: int, actor: Actor, ticket_id: str, order_number: str,
              action: str, key: str, parameters: dict[str, Any], amount_minor: int | None,
              currency: str | None) -> tuple[AuditEntry, str]:
        """The entry for `key`, and who holds its upstream call: "created" (this call, new),
        "taken" (this call, taken over from a holder that went away or a refusal), or
        "elsewhere" (another request holds it, or it is done)."""
        lease = _now() + LEASE
        entry = AuditEntry(installation_id=installation_id, actor_id=actor.id,
                           actor_name=actor.name[:200], actor_role=actor.role[:40],
                           ticket_id=ticket_id, order_number=order_number, action=action,
                           parameters=parameters, amount_minor=amount_minor, currency=currency,
                           idempotency_key=key, status="pending", upstream_ids=[],
                           lease_until=lease)
        self.db.add(entry)
        try:
            self.db.commit()
            self._held[entry.id] = lease
            return entry, "created"
        except IntegrityError:
            self.db.rollback()
        existing = self.db.scalar(select(AuditEntry).where(
            AuditEntry.installation_id == installation_id, AuditEntry.idempotency_key == key))
        if existing is None:  # pragma: no cover - the unique row can't vanish under us
            raise RuntimeError("audit entry disappeared")
        return existing, "taken" if self.claim(existing) else "elsewhere"

    def claim(self, entry: AuditEntry) -> bool:
        """Take an unfinished entry whose holder went away (a crash, a timeout), or one the
        upstream refused (nothing happened, so it may be asked again)."""
        now = _now()
        lease = now + LEASE
        won = self.db.execute(
            update(AuditEntry)
            .where(AuditEntry.id == entry.id,
                   or_(AuditEntry.status == "failed",
                       and_(AuditEntry.status.in_(("pending", "unknown")),
                            or_(AuditEntry.lease_until.is_(None),
                                AuditEntry.lease_until < now))))
            .values(status="pending", lease_until=lease)
            .execution_options(synchronize_session=False))
        self.db.commit()
        self.db.refresh(entry)
        if won.rowcount:  # type: ignore[attr-defined]
            self._held[entry.id] = lease
            return True
        return False

    def release(self, entry: AuditEntry) -> None:
        """Give up the lease without settling the entry (the upstream couldn't be asked)."""
        self._settle(entry, status="unknown", lease_until=None)

    def complete(self, entry: AuditEntry, upstream_ids: Iterable[str]) -> bool:
        """Done at the upstream. Like fail() and unknown(), it changes the entry only while
        this holder's lease is the entry's: a holder that lost its lease overwrites nothing."""
        return self._settle(entry, status="done", upstream_ids=list(upstream_ids),
                            completed_at=_now(), lease_until=None, error=None)

    def fail(self, entry: AuditEntry, error: str, upstream_ids: list[str] | None = None) -> bool:
        """The upstream refused (or what it made failed): no effect, and the reason is kept
        with what it made, if anything."""
        extra = {"upstream_ids": upstream_ids} if upstream_ids else {}
        return self._settle(entry, status="failed", error=error[:2000], completed_at=_now(),
                            lease_until=None, **extra)

    def unknown(self, entry: AuditEntry, error: str) -> bool:
        """No answer: it may or may not have happened; only the upstream can say (reconcile)."""
        return self._settle(entry, status="unknown", error=error[:2000],
                            lease_until=_now() + UNKNOWN_LEASE)

    def refuse(self, entry: AuditEntry, reason: str) -> bool:
        """Refused by a check made after the entry was written (a cap two requests raced
        for): no upstream call was made, and it counts against nothing."""
        return self._settle(entry, status="refused", error=reason[:2000], completed_at=_now(),
                            lease_until=None)

    def _settle(self, entry: AuditEntry, **values: Any) -> bool:
        if entry.id not in self._held:
            return False  # never held here: not ours to settle
        held = self._held.pop(entry.id)
        condition = AuditEntry.lease_until.is_(None) if held is None \
            else AuditEntry.lease_until == held
        won = self.db.execute(update(AuditEntry)
                              .where(AuditEntry.id == entry.id, condition)
                              .values(**values).execution_options(synchronize_session=False))
        self.db.commit()
        self.db.refresh(entry)
        if won.rowcount and values.get("lease_until") is not None:  # type: ignore[attr-defined]
            self._held[entry.id] = values["lease_until"]  # still ours (unknown: a short lease)
        return bool(won.rowcount)  # type: ignore[attr-defined]

    def in_flight(self, installation_id: int, action: str, order_number: str, payment_id: str,
                  exclude: int) -> list[AuditEntry]:
        """Other entries for the same order's payment that may have moved money (pending,
        unknown, done): the record a plan was made on may not show them yet."""
        rows = self.db.scalars(select(AuditEntry).where(
            AuditEntry.installation_id == installation_id, AuditEntry.action == action,
            AuditEntry.order_number == order_number,
            AuditEntry.status.in_(("pending", "unknown", "done")), AuditEntry.id != exclude))
        return [r for r in rows if (r.parameters or {}).get("payment_id") == payment_id]

    def spent_today(self, installation_id: int, actor_id: str, action: str, currency: str,
                    *, now: datetime | None = None) -> int:
        """What this agent moved today (UTC) with `action` in `currency`, done or possibly done."""
        start = (now or _now()).replace(hour=0, minute=0, second=0, microsecond=0)
        total = self.db.scalar(select(func.coalesce(func.sum(AuditEntry.amount_minor), 0)).where(
            AuditEntry.installation_id == installation_id, AuditEntry.actor_id == actor_id,
            AuditEntry.action == action, AuditEntry.currency == currency,
            AuditEntry.status.in_(("pending", "unknown", "done")),
            AuditEntry.created_at >= start))
        return int(total or 0)

    def done_keys(self, installation_id: int, key: str) -> list[str]:
        """Keys of done entries that are `key` or a later round of it (`key-r2`, …)."""
        return list(self.db.scalars(select(AuditEntry.idempotency_key).where(
            AuditEntry.installation_id == installation_id, AuditEntry.status == "done",
            or_(AuditEntry.idempotency_key == key,
                AuditEntry.idempotency_key.like(f"{key}-r%")))))

    def unsettled(self, *, older_than: timedelta = LEASE) -> list[AuditEntry]:
        """Entries left pending or unknown (a crash, a timeout) whose lease has run out."""
        cutoff = _now()
        return list(self.db.scalars(select(AuditEntry).where(
            AuditEntry.status.in_(("pending", "unknown")),
            AuditEntry.created_at <= cutoff - older_than,
            or_(AuditEntry.lease_until.is_(None), AuditEntry.lease_until < cutoff))))

    def entries(self, *, installation_id: int | None, since: datetime,
                until: datetime | None = None, newest_first: bool = False,
                limit: int | None = None) -> list[AuditEntry]:
        conditions = [AuditEntry.created_at >= since]
        if until is not None:
            conditions.append(AuditEntry.created_at < until)
        if installation_id is not None:
            conditions.append(AuditEntry.installation_id == installation_id)
        order = (AuditEntry.created_at.desc(), AuditEntry.id.desc()) if newest_first \
            else (AuditEntry.created_at, AuditEntry.id)
        query = select(AuditEntry).where(and_(*conditions)).order_by(*order)
        if limit is not None:
            query = query.limit(limit)
        return list(self.db.scalars(query))


@dataclass(frozen=True)
class MadeButFailed:
    """What `look` answers when the upstream made it but it failed (a refund that failed)."""

    upstream_ids: list[str]
    reason: str


def settle_unsettled(audit: AuditLog, action: str,
                     client_for: Callable[[AuditEntry], C | None],
                     look: Callable[[C, AuditEntry], list[str] | MadeButFailed | None],
                     never: str) -> dict[str, int]:
    """Settle `action`'s entries left pending or unknown by a crash or a timeout, by asking
    the upstream (`look`: the upstream ids if it happened, MadeButFailed if what it made
    failed, None if it never did); never by doing it again. An upstream that can't be asked
    leaves the entry for the next run."""
    counts = {"done": 0, "failed": 0, "skipped": 0}
    for entry in audit.unsettled():
        if entry.action != action:
            continue
        client = client_for(entry)
        if client is None or not audit.claim(entry):
            counts["skipped"] += 1
            continue
        try:
            found = look(client, entry)
        except UpstreamError:
            audit.release(entry)
            counts["skipped"] += 1
            continue
        if isinstance(found, MadeButFailed):
            audit.fail(entry, found.reason, upstream_ids=found.upstream_ids)
            counts["failed"] += 1
        elif found is not None:
            audit.complete(entry, found)
            counts["done"] += 1
        else:
            audit.fail(entry, never)
            counts["failed"] += 1
    return counts


def parse_day(value: str) -> datetime:
    """Midnight UTC of a YYYY-MM-DD day; ValueError with a plain message otherwise."""
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{value!r} isn't a day written as YYYY-MM-DD.") from None


def to_csv(entries: Iterable[AuditEntry]) -> Iterator[str]:
    """The entries as CSV lines (header first): the same columns on the page and the CLI."""
    yield csv_line(CSV_COLUMNS)
    for e in entries:
        yield csv_line((
            _iso(e.created_at), _iso(e.completed_at), e.installation_id, e.actor_id,
            e.actor_name, e.actor_role, e.ticket_id, e.order_number, e.action,
            "" if e.amount_minor is None else e.amount_minor, e.currency or "", e.status,
            " ".join(e.upstream_ids or []), _params(e.parameters), e.error or "",
            e.idempotency_key))


def _iso(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else ""


def _params(parameters: dict[str, Any] | None) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted((parameters or {}).items()))


def csv_line(values: Iterable[Any]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(
        [_no_formula(str(v)) for v in values])
    return out.getvalue()


def _no_formula(text: str) -> str:
    """Spreadsheets run cells starting with = + - @ as formulas: quote them (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
