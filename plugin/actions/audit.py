"""The audit trail: an entry before every upstream call, completed after it.

An entry is keyed by (installation, idempotency key), so two agents, a double click and a
retry all land on the same row; whoever holds its lease is the only one calling the upstream.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..store.models import AuditEntry

# How long one request may hold an entry's upstream call before another may take it over
# (after first asking the upstream whether it already happened).
LEASE = timedelta(seconds=60)

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


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class AuditLog:
    """Audit entries of every installation."""

    def __init__(self, db: Session) -> None:
        self.db = db

    def begin(self, *, installation_id: int, actor: Actor, ticket_id: str, order_number: str,
              action: str, key: str, parameters: dict[str, Any], amount_minor: int | None,
              currency: str | None) -> tuple[AuditEntry, str]:
        """The entry for `key`, and who holds its upstream call: "created" (this call, new),
        "taken" (this call, taken over from a holder that went away or a refusal), or
        "elsewhere" (another request holds it, or it is done)."""
        entry = AuditEntry(installation_id=installation_id, actor_id=actor.id,
                           actor_name=actor.name[:200], actor_role=actor.role[:40],
                           ticket_id=ticket_id, order_number=order_number, action=action,
                           parameters=parameters, amount_minor=amount_minor, currency=currency,
                           idempotency_key=key, status="pending", upstream_ids=[],
                           lease_until=_now() + LEASE)
        self.db.add(entry)
        try:
            self.db.commit()
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
        won = self.db.execute(
            update(AuditEntry)
            .where(AuditEntry.id == entry.id,
                   or_(AuditEntry.status == "failed",
                       and_(AuditEntry.status.in_(("pending", "unknown")),
                            or_(AuditEntry.lease_until.is_(None),
                                AuditEntry.lease_until < now))))
            .values(status="pending", lease_until=now + LEASE)
            .execution_options(synchronize_session=False))
        self.db.commit()
        self.db.refresh(entry)
        return bool(won.rowcount)  # type: ignore[attr-defined]

    def release(self, entry: AuditEntry) -> None:
        """Give up the lease without settling the entry (the upstream couldn't be asked)."""
        entry.lease_until = None
        if entry.status == "pending":
            entry.status = "unknown"
        self.db.commit()

    def complete(self, entry: AuditEntry, upstream_ids: Iterable[str]) -> None:
        entry.status, entry.upstream_ids = "done", list(upstream_ids)
        entry.completed_at, entry.lease_until, entry.error = _now(), None, None
        self.db.commit()

    def fail(self, entry: AuditEntry, error: str) -> None:
        """The upstream refused: nothing happened, and the reason is kept."""
        entry.status, entry.error = "failed", error[:2000]
        entry.completed_at, entry.lease_until = _now(), None
        self.db.commit()

    def unknown(self, entry: AuditEntry, error: str) -> None:
        """No answer: it may or may not have happened; only the upstream can say (reconcile)."""
        entry.status, entry.error, entry.lease_until = "unknown", error[:2000], None
        self.db.commit()

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

    def unsettled(self, *, older_than: timedelta = LEASE) -> list[AuditEntry]:
        """Entries left pending or unknown (a crash, a timeout) whose lease has run out."""
        cutoff = _now()
        return list(self.db.scalars(select(AuditEntry).where(
            AuditEntry.status.in_(("pending", "unknown")),
            AuditEntry.created_at <= cutoff - older_than,
            or_(AuditEntry.lease_until.is_(None), AuditEntry.lease_until < cutoff))))

    def entries(self, *, installation_id: int | None, since: datetime,
                until: datetime | None = None) -> list[AuditEntry]:
        conditions = [AuditEntry.created_at >= since]
        if until is not None:
            conditions.append(AuditEntry.created_at < until)
        if installation_id is not None:
            conditions.append(AuditEntry.installation_id == installation_id)
        return list(self.db.scalars(select(AuditEntry).where(and_(*conditions))
                                    .order_by(AuditEntry.created_at, AuditEntry.id)))


def to_csv(entries: Iterable[AuditEntry]) -> Iterator[str]:
    """The entries as CSV lines (header first): the same columns on the page and the CLI."""
    yield _csv_line(CSV_COLUMNS)
    for e in entries:
        yield _csv_line((
            _iso(e.created_at), _iso(e.completed_at), e.installation_id, e.actor_id,
            e.actor_name, e.actor_role, e.ticket_id, e.order_number, e.action,
            "" if e.amount_minor is None else e.amount_minor, e.currency or "", e.status,
            " ".join(e.upstream_ids or []), _params(e.parameters), e.error or "",
            e.idempotency_key))


def _iso(moment: datetime | None) -> str:
    aware = _aware(moment)
    return aware.isoformat(timespec="seconds") if aware else ""


def _params(parameters: dict[str, Any] | None) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted((parameters or {}).items()))


def _csv_line(values: Iterable[Any]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(
        [_no_formula(str(v)) for v in values])
    return out.getvalue()


def _no_formula(text: str) -> str:
    """Spreadsheets run cells starting with = + - @ as formulas: quote them (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
