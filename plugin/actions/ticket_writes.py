"""The summary note and the flag tags, in the same framework as every other sidebar action.

The helpdesk outbox (plugin/hosts/actions.py) writes each note or tag set once under its key
and retries it; here the admin's roles are checked before any upstream call, and each write
gets an audit entry (who, ticket, order, what, how it ended) that is settled from the
outbox's row, now or by `audit reconcile` once a retry has finished it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..store.models import AuditEntry
from ..tenant_settings import current
from . import Permission
from .audit import AuditLog, settle_unsettled

ACTIONS = ("note", "tags")
FEATURES = {"note": "post_notes", "tags": "add_tags"}
ROLES = {"note": "note_roles", "tags": "tag_roles"}
_WHAT = {"note": ("Posting the summary as a note", "post the summary as a note"),
         "tags": ("Tagging tickets with the flags", "tag tickets with the flags")}


def permission(kind: str, features: dict[str, bool], settings: dict[str, Any]) -> Permission:
    doing, do = _WHAT[kind]
    return Permission.of(features.get(FEATURES[kind], True), current(settings)[ROLES[kind]],
                         doing, do)


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

    def look(row: tuple[str, tuple[str, ...]], entry: AuditEntry) -> list[str] | None:
        status, tags = row
        return list(tags) if status == "done" else None

    for kind in ACTIONS:
        got = settle_unsettled(audit, kind, outbox_row, look,
                               "The helpdesk refused the write (checked by reconcile).")
        for k, v in got.items():
            counts[k] += v
    return counts
