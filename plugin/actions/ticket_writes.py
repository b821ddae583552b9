"""The summary note and the flag tags, in the same framework as every other sidebar action.

The helpdesk outbox (plugin/hosts/actions.py) writes each note or tag set once under its key
and retries it; here the admin's roles are checked before any upstream call, and each write
gets an audit entry (who, ticket, order, what, how it ended) that is settled from the
outbox's row, now or by `audit reconcile` once a retry has finished it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..store.models import AuditEntry
from ..tenant_settings import current
from . import Refused
from .audit import Actor, AuditLog, settle_unsettled

ACTIONS = ("note", "tags")
FEATURES = {"note": "post_notes", "tags": "add_tags"}
ROLES = {"note": "note_roles", "tags": "tag_roles"}
_WHAT = {"note": "Posting the summary as a note", "tags": "Tagging tickets with the flags"}


@dataclass(frozen=True)
class WritePolicy:
    kind: str
    enabled: bool
    roles: frozenset[str]

    @classmethod
    def of(cls, kind: str, features: dict[str, bool], settings: dict[str, Any]) -> WritePolicy:
        roles = str(current(settings)[ROLES[kind]])
        return cls(kind, bool(features.get(FEATURES[kind], True)),
                   frozenset(r.strip() for r in roles.split(",") if r.strip()))


def check_enabled(policy: WritePolicy) -> None:
    """Turned off is said before anything else, signed in or not."""
    if not policy.enabled:
        raise Refused(403, "disabled", f"{_WHAT[policy.kind]} is turned off; an admin can "
                                       "turn it on in the app settings.")


def check_policy(policy: WritePolicy, actor: Actor) -> None:
    what = _WHAT[policy.kind]
    check_enabled(policy)
    if actor.role not in policy.roles:
        raise Refused(403, "forbidden_role", f"Your helpdesk role ({actor.role}) may not do "
                                             f"this ({what.lower()}); an admin can allow it.")


def settle(audit: AuditLog, entry: AuditEntry, status: str, message: str,
           tags: tuple[str, ...] = ()) -> None:
    """Settle the entry from the outbox's answer: done, rejected (for good) or failed (the
    outbox retries it; the entry waits for reconcile). In progress leaves it pending."""
    if status == "done":
        audit.complete(entry, list(tags))
    elif status == "rejected":
        audit.fail(entry, message)
    elif status == "failed":
        audit.unknown(entry, message)


def reconcile(audit: AuditLog,
              outbox_row: Callable[[AuditEntry], tuple[str, tuple[str, ...]] | None]
              ) -> dict[str, int]:
    """Settle note and tag entries from the outbox: `outbox_row` gives the write's status and
    tags once it has finished (done or rejected), None while it may still be retried."""
    counts = {"done": 0, "failed": 0, "skipped": 0}

    def finished(entry: AuditEntry) -> tuple[str, tuple[str, ...]] | None:
        return outbox_row(entry)

    def look(row: tuple[str, tuple[str, ...]], entry: AuditEntry) -> list[str] | None:
        status, tags = row
        return list(tags) if status == "done" else None

    for kind in ACTIONS:
        got = settle_unsettled(audit, kind, finished, look,
                               "The helpdesk refused the write (checked by reconcile).")
        for k, v in got.items():
            counts[k] += v
    return counts
