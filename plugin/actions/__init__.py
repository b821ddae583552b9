"""Actions an agent takes from the sidebar that move money or documents (refunds first).

Each is planned from a fresh record (pure: what would happen and whether it may), checked
against the admin's policy, written to the audit trail before the upstream call and
completed after it, and safe to ask twice: the same request has the same idempotency key,
which the audit trail and the upstream both remember.
"""

from __future__ import annotations


class Refused(Exception):
    """Not done: `status` and `code` for the API, `message` to show the agent."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
