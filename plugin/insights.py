"""Insights for support and finance leads: what the sidebar found and saved, per day.

Counts only — lookups, flags by code and zone, refunds the checks prevented — kept per
installation and UTC day; actions and their outcomes come from the audit trail. Nothing
that names a customer, an order or a ticket is kept here.

Counting a lookup must not cost the agent a database round trip, so counts gather in the
process and are written at most every few seconds (and before any report is read). A
process killed between two writes loses at most those seconds of counts: the page is an
estimate, and says so.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .core.record import FLAG_ZONES, FlagCode, OrderTruth
from .store.models import AuditEntry, InsightCount

LOOKUP = "lookup"
# Every source answered: the agent had the whole picture without opening a tab.
COMPLETE = "lookup_complete"
FLAGGED = "lookup_flagged"  # at least one flag
FLAG = "flag:"
PREVENTED = "prevented:"
# What the refund checks stop, by reason.
PREVENTED_REASONS = {
    "cap": "over the agent's limit per refund or per day",
    "duplicate": "the same refund asked again (double click, retry, second agent)",
    "over_refundable": "more than the payment can still take back",
    "race": "two refunds at once would have gone past a limit",
}
# The time an agent spends reconciling the three systems by hand, per contact.
MINUTES_SAVED = (5, 8)
FLUSH_SECONDS = 5.0


def _today(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%d")


class Tally:
    """Counts gathered in this process, written to the store now and then."""

    def __init__(self, flush_seconds: float = FLUSH_SECONDS) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[int, str, str]] = Counter()
        self._flushed_at = time.monotonic()
        self.flush_seconds = flush_seconds

    def lookup(self, installation_id: int, truth: OrderTruth) -> None:
        """One record shown to an agent: counted, with each distinct flag code once."""
        day = _today()
        with self._lock:
            self._counts[(installation_id, day, LOOKUP)] += 1
            if truth.found and not truth.partial:
                self._counts[(installation_id, day, COMPLETE)] += 1
            if truth.flags:
                self._counts[(installation_id, day, FLAGGED)] += 1
            for code in {f.code for f in truth.flags}:
                self._counts[(installation_id, day, FLAG + code.value)] += 1

    def prevented(self, installation_id: int, reason: str) -> None:
        if reason not in PREVENTED_REASONS:
            raise ValueError(reason)
        with self._lock:
            self._counts[(installation_id, _today(), PREVENTED + reason)] += 1

    def due(self) -> bool:
        return time.monotonic() - self._flushed_at >= self.flush_seconds

    def flush(self, db: Session) -> int:
        """Add what was gathered to the stored counts; what fails to be written is kept."""
        with self._lock:
            pending, self._counts = self._counts, Counter()
            self._flushed_at = time.monotonic()
        if not pending:
            return 0
        try:
            for (installation_id, day, metric), n in sorted(pending.items()):
                _add(db, installation_id, day, metric, n)
            db.commit()
        except Exception:
            db.rollback()
            with self._lock:
                self._counts.update(pending)  # tried again at the next flush
            raise
        return sum(pending.values())


def _add(db: Session, installation_id: int, day: str, metric: str, n: int) -> None:
    """count += n for the row, creating it if needed (safe with other processes doing so)."""
    where = (InsightCount.installation_id == installation_id, InsightCount.day == day,
             InsightCount.metric == metric)
    for _ in range(3):
        done = db.execute(update(InsightCount).where(*where)
                          .values(count=InsightCount.count + n)
                          .execution_options(synchronize_session=False))
        if done.rowcount:  # type: ignore[attr-defined]
            return
        try:
            with db.begin_nested():
                db.add(InsightCount(installation_id=installation_id, day=day, metric=metric,
                                    count=n))
            return
        except IntegrityError:
            continue  # another process created it first: add to theirs
    raise RuntimeError(f"could not count {metric}")


@dataclass
class Day:
    """One day's figures."""

    day: str
    lookups: int = 0
    complete: int = 0
    flagged: int = 0
    flags: Counter[str] = field(default_factory=Counter)
    prevented: Counter[str] = field(default_factory=Counter)
    actions: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def minutes_saved(self) -> tuple[int, int]:
        return self.complete * MINUTES_SAVED[0], self.complete * MINUTES_SAVED[1]


@dataclass
class Report:
    days: list[Day]

    def total(self) -> Day:
        out = Day("total")
        for d in self.days:
            out.lookups += d.lookups
            out.complete += d.complete
            out.flagged += d.flagged
            out.flags.update(d.flags)
            out.prevented.update(d.prevented)
            out.actions.update(d.actions)
        return out

    def by_zone(self) -> Counter[str]:
        zones: Counter[str] = Counter()
        for code, n in self.total().flags.items():
            zones[zone_of(code)] += n
        return zones


def zone_of(code: str) -> str:
    try:
        return FLAG_ZONES[FlagCode(code)]
    except ValueError:
        return "other"


def report(db: Session, installation_id: int, since: date, until: date) -> Report:
    """Every day from `since` up to (not including) `until`, empty days included."""
    days = {(since + timedelta(days=i)).isoformat(): Day((since + timedelta(days=i)).isoformat())
            for i in range((until - since).days)}
    rows = db.execute(select(InsightCount.day, InsightCount.metric, InsightCount.count).where(
        InsightCount.installation_id == installation_id, InsightCount.day >= since.isoformat(),
        InsightCount.day < until.isoformat()))
    for day, metric, n in rows:
        d = days[day]
        if metric == LOOKUP:
            d.lookups += n
        elif metric == COMPLETE:
            d.complete += n
        elif metric == FLAGGED:
            d.flagged += n
        elif metric.startswith(FLAG):
            d.flags[metric[len(FLAG):]] += n
        elif metric.startswith(PREVENTED):
            d.prevented[metric[len(PREVENTED):]] += n
    start = datetime.combine(since, datetime.min.time(), UTC)
    end = datetime.combine(until, datetime.min.time(), UTC)
    # Few rows (one per action taken): grouped here, by the UTC day of each.
    for created, action, status in db.execute(
            select(AuditEntry.created_at, AuditEntry.action, AuditEntry.status)
            .where(AuditEntry.installation_id == installation_id,
                   AuditEntry.created_at >= start, AuditEntry.created_at < end)):
        day = created.astimezone(UTC).strftime("%Y-%m-%d")
        if day in days:
            days[day].actions[(action, status)] += 1
    return Report(list(days.values()))


CSV_COLUMNS = ("day", "measure", "zone", "count")


def csv_rows(rep: Report) -> Iterator[tuple[str, str, str, int]]:
    """The report as (day, measure, zone, count) rows: codes and counts, no customer data."""
    for d in rep.days:
        yield d.day, "lookups", "", d.lookups
        yield d.day, "lookups with every system answering", "", d.complete
        yield d.day, "lookups with at least one flag", "", d.flagged
        low, high = d.minutes_saved
        yield d.day, f"minutes saved, low estimate ({MINUTES_SAVED[0]} per complete lookup)", \
            "", low
        yield d.day, f"minutes saved, high estimate ({MINUTES_SAVED[1]} per complete lookup)", \
            "", high
        for code, n in sorted(d.flags.items()):
            yield d.day, f"flag {code}", zone_of(code), n
        for reason, n in sorted(d.prevented.items()):
            yield d.day, f"refund prevented: {reason}", "", n
        for (action, status), n in sorted(d.actions.items()):
            yield d.day, f"action {action} {status}", "", n
