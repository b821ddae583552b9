"""Writes back into tickets through an outbox: each click has a key, and a key is done once."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..connectors.base import UpstreamError
from ..store.models import TicketAction
from .base import HostApi
from .note import marker

log = logging.getLogger(__name__)

ATTEMPTS_PER_REQUEST = 3
BACKOFF_SECONDS = (0.3, 1.0)
# After a request gives up, `flask zendesk retry-pending` tries again no sooner than this.
RETRY_LATER = timedelta(minutes=1)
# How long one sender may hold a write before another may take it over.
LEASE = timedelta(seconds=60)
# Total attempts across requests and retries before a write is given up.
MAX_ATTEMPTS = 12
# After a note write whose outcome is unknown (timeout, 500/502/504, a dropped connection),
# Zendesk may still apply it seconds later: nothing is posted again until this long after,
# and never without first looking for the note.
NOTE_SETTLE = timedelta(seconds=20)


@dataclass(frozen=True)
class ActionResult:
    """What the widget shows after a write: done, failed (retryable), rejected or in flight."""

    status: str
    message: str
    action_id: int | None = None
    tags: tuple[str, ...] = ()


def submit(
    db: Session,
    api: HostApi,
    *,
    installation_id: int,
    ticket_id: str,
    order_number: str,
    kind: str,
    key: str,
    payload_factory: Callable[[], dict],
    actor: tuple[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ActionResult:
    """Record the action under its key (once), then perform it unless it is done or in flight."""
    action = db.scalar(select(TicketAction).where(
        TicketAction.installation_id == installation_id, TicketAction.idempotency_key == key))
    if action is None:
        action = TicketAction(installation_id=installation_id, ticket_id=ticket_id,
                              order_number=order_number, kind=kind, idempotency_key=key,
                              payload=payload_factory(), status="sending", attempts=0,
                              lease_until=_now() + LEASE,
                              actor_id=actor[0] if actor else None,
                              actor_name=actor[1][:200] if actor else None)
        db.add(action)
        try:
            db.commit()
        except IntegrityError:
            # A double click raced us to the same key: the other request owns the write.
            db.rollback()
            return ActionResult("in_progress", "Already being sent.")
    else:
        if action.ticket_id != ticket_id or action.kind != kind:
            return ActionResult("failed", "That action key belongs to another ticket or action.")
        if actor is not None and action.actor_id not in (None, actor[0]):
            # Another agent's write: only they may send it (it goes out with their rights).
            return ActionResult("failed", "That action key belongs to another agent.")
        if action.status in ("done", "rejected"):
            return _result(action)
        if not _claim(db, action.id):
            return ActionResult("in_progress", "Already being sent.", action.id)
        db.refresh(action)
    return perform(db, api, action, sleep=sleep)


def posted_notes(db: Session, *, installation_id: int, ticket_id: str,
                 order_number: str, limit: int = 5) -> list[TicketAction]:
    """Summary notes already posted on this ticket for this order, newest first."""
    return list(db.scalars(
        select(TicketAction)
        .where(TicketAction.installation_id == installation_id,
               TicketAction.ticket_id == ticket_id, TicketAction.order_number == order_number,
               TicketAction.kind == "note", TicketAction.status == "done")
        .order_by(TicketAction.done_at.desc(), TicketAction.id.desc())
        .limit(limit)))


def _claim(db: Session, action_id: int) -> bool:
    """Take the lease on a failed or abandoned write; only one caller can win it."""
    now = _now()
    claimed = db.execute(
        update(TicketAction)
        .where(TicketAction.id == action_id,
               or_(TicketAction.status == "failed",
                   and_(TicketAction.status == "sending",
                        or_(TicketAction.lease_until.is_(None), TicketAction.lease_until < now))))
        .values(status="sending", lease_until=now + LEASE)
        .execution_options(synchronize_session=False)  # callers refresh the row they won
    )
    db.commit()
    return claimed.rowcount == 1


def perform(db: Session, api: HostApi, action: TicketAction, *,
            sleep: Callable[[float], None] = time.sleep) -> ActionResult:
    """Try the write a few times with backoff; never post a note that already landed."""
    last_error = ""
    for attempt in range(ATTEMPTS_PER_REQUEST):
        if action.attempts >= MAX_ATTEMPTS:
            return _stop(db, action, "rejected", last_error or action.last_error or "gave up")
        if attempt:
            sleep(BACKOFF_SECONDS[min(attempt - 1, len(BACKOFF_SECONDS) - 1)])
        # Saved before the call: if this process dies mid-request, the next attempt knows a
        # write may have landed and looks for it first.
        first_ever = action.attempts == 0
        action.attempts += 1
        action.lease_until = _now() + LEASE
        db.commit()
        try:
            if action.kind == "note":
                key = marker(action.idempotency_key)
                if not first_ever and api.note_exists(action.ticket_id, key):
                    return _done(db, action)
                settling = action.unconfirmed_until is not None and _now() < action.unconfirmed_until
                if settling:
                    # An earlier write may still land: don't post a second note yet.
                    action.attempts -= 1
                    return _stop(db, action, "failed", "Zendesk hasn't confirmed the earlier "
                                 "attempt yet; checking again before posting.",
                                 status_shown="in_progress")
                api.post_internal_note(action.ticket_id, action.payload["body"])
                return _done(db, action)
            if action.kind == "tags":
                wanted = list(action.payload["tags"])
                return _done(db, action, api.add_tags(action.ticket_id, wanted) if wanted else [])
            raise ValueError(f"unknown action kind {action.kind!r}")
        except UpstreamError as exc:
            last_error = str(exc)
            log.warning("ticket %s %s attempt %d failed: %s", action.ticket_id, action.kind,
                        action.attempts, exc)
            if _permanent(exc):
                return _stop(db, action, "rejected", last_error)
            if action.kind == "note" and _outcome_unknown(exc):
                # It may have been applied (and may be applied late): look now, and post
                # again only after the settle time, never within this request.
                try:
                    if api.note_exists(action.ticket_id, marker(action.idempotency_key)):
                        return _done(db, action)
                except UpstreamError:
                    pass
                action.unconfirmed_until = _now() + NOTE_SETTLE
                action.next_attempt_at = action.unconfirmed_until
                return _stop(db, action, "failed", f"{last_error}. Zendesk may still apply "
                             "it; it won't be posted twice.")
    action.next_attempt_at = _now() + RETRY_LATER
    return _stop(db, action, "failed", last_error)


def _outcome_unknown(exc: UpstreamError) -> bool:
    """The write may have been applied: a timeout, a 500/502/504, or a connection that broke.

    A 429 or 503 is Zendesk refusing before doing anything: safe to try again at once.
    """
    return exc.http_status in (None, 500, 502, 504)


def _permanent(exc: UpstreamError) -> bool:
    """Refusals a retry can't fix (closed ticket, invalid tag); conflicts and limits can be."""
    status = exc.http_status or 0
    return 400 <= status < 500 and status not in (401, 408, 409, 429)


def _stop(db: Session, action: TicketAction, status: str, error: str, *,
          status_shown: str | None = None) -> ActionResult:
    action.status = status
    action.last_error = error
    action.lease_until = None
    db.commit()
    if status == "rejected":
        return ActionResult("rejected", f"Zendesk refused the write: {error}", action.id)
    if status_shown == "in_progress":
        return ActionResult("in_progress", error, action.id)
    return ActionResult("failed", f"Couldn't write to the ticket: {error}", action.id)


def retry_pending(db: Session, api_for: Callable[[TicketAction], HostApi | None], *,
                  now: datetime | None = None, sleep: Callable[[float], None] = time.sleep) -> int:
    """Retry failed writes that are due (and abandoned in-flight ones); returns how many are done.

    Each goes out as the agent who asked for it (`api_for` gives their API, or None while
    they can't be acted for: signed out or revoked; the write waits for them).
    """
    now = now or _now()
    due = db.scalars(select(TicketAction).where(or_(
        and_(TicketAction.status == "failed", TicketAction.next_attempt_at <= now),
        and_(TicketAction.status == "sending", TicketAction.lease_until < now),
    ))).all()
    done = 0
    for action in due:
        if action.actor_id is None:
            if _claim(db, action.id):
                _stop(db, action, "rejected", "it was asked for before writes went out as the "
                      "agent; post it again from the sidebar")
            continue
        api = api_for(action)
        if api is None or not _claim(db, action.id):
            continue
        db.refresh(action)
        if perform(db, api, action, sleep=sleep).status == "done":
            done += 1
    return done


def _now() -> datetime:
    return datetime.now(UTC)


def _done(db: Session, action: TicketAction, tags: list[str] | None = None) -> ActionResult:
    action.status = "done"
    action.done_at = _now()
    action.last_error = None
    action.lease_until = None
    if tags is not None:
        action.payload = {**action.payload, "result_tags": tags}
    db.commit()
    return _result(action)


def _result(action: TicketAction) -> ActionResult:
    if action.status == "rejected":
        return ActionResult("rejected", f"Zendesk refused the write: {action.last_error}", action.id)
    if action.kind == "note":
        return ActionResult("done", "Internal note posted.", action.id)
    tags = tuple(action.payload.get("tags", ()))
    return ActionResult("done", f"Tagged {', '.join(tags) or 'nothing to tag'}.", action.id, tags)
