"""Writes back into tickets through an outbox: each click has a key, and a key is done once."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
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


@dataclass(frozen=True)
class ActionResult:
    """What the widget shows after a write: done, failed (retryable) or still in flight."""

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
    sleep: Callable[[float], None] = time.sleep,
) -> ActionResult:
    """Record the action under its key (once), then perform it unless it is already done."""
    action = db.scalar(select(TicketAction).where(
        TicketAction.installation_id == installation_id, TicketAction.idempotency_key == key))
    if action is None:
        action = TicketAction(installation_id=installation_id, ticket_id=ticket_id,
                              order_number=order_number, kind=kind, idempotency_key=key,
                              payload=payload_factory(), status="sending", attempts=0)
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
        if action.status == "done":
            return _result(action)
        if action.status == "sending" and action.created_at and _age(action) < timedelta(seconds=60):
            return ActionResult("in_progress", "Already being sent.", action.id)
        action.status = "sending"
        db.commit()
    return perform(db, api, action, sleep=sleep)


def perform(db: Session, api: HostApi, action: TicketAction, *,
            sleep: Callable[[float], None] = time.sleep) -> ActionResult:
    """Try the write a few times with backoff; never post a note that already landed."""
    last_error = ""
    for attempt in range(ATTEMPTS_PER_REQUEST):
        if attempt:
            sleep(BACKOFF_SECONDS[min(attempt - 1, len(BACKOFF_SECONDS) - 1)])
        action.attempts += 1
        try:
            if action.kind == "note":
                # A previous attempt may have posted before its response was lost.
                if action.attempts > 1 and api.note_exists(action.ticket_id,
                                                           marker(action.idempotency_key)):
                    return _done(db, action)
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
    action.status = "failed"
    action.last_error = last_error
    action.next_attempt_at = datetime.now(UTC) + RETRY_LATER
    db.commit()
    return ActionResult("failed", f"Couldn't write to the ticket: {last_error}", action.id)


def retry_pending(db: Session, api_for: Callable[[int], HostApi | None], *,
                  now: datetime | None = None, sleep: Callable[[float], None] = time.sleep) -> int:
    """Retry failed writes that are due; returns how many are now done."""
    now = now or datetime.now(UTC)
    due = db.scalars(select(TicketAction).where(
        TicketAction.status == "failed", TicketAction.next_attempt_at <= now)).all()
    done = 0
    for action in due:
        api = api_for(action.installation_id)
        if api is None:
            continue
        if perform(db, api, action, sleep=sleep).status == "done":
            done += 1
    return done


def _done(db: Session, action: TicketAction, tags: list[str] | None = None) -> ActionResult:
    action.status = "done"
    action.done_at = datetime.now(UTC)
    action.last_error = None
    if tags is not None:
        action.payload = {**action.payload, "result_tags": tags}
    db.commit()
    return _result(action)


def _result(action: TicketAction) -> ActionResult:
    if action.kind == "note":
        return ActionResult("done", "Internal note posted.", action.id)
    tags = tuple(action.payload.get("tags", ()))
    return ActionResult("done", f"Tagged {', '.join(tags) or 'nothing to tag'}.", action.id, tags)


def _age(action: TicketAction) -> timedelta:
    created = action.created_at
    if created.tzinfo is None:  # SQLite drops the zone
        created = created.replace(tzinfo=UTC)
    return datetime.now(UTC) - created
