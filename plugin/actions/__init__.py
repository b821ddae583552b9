"""Actions an agent takes from the sidebar that move money or documents (refunds first).

Each is planned from a fresh record (pure: what would happen and whether it may), checked
against the admin's policy, written to the audit trail before the upstream call and
completed after it, and safe to ask twice: the same request has the same idempotency key,
which the audit trail and the upstream both remember.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..connectors.base import NotSentError, RejectedError, UpstreamError


class Refused(Exception):
    """Not done: `status` and `code` for the API, `message` to show the agent."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Outcome:
    """How an action request ended: done (also for a repeat), in_progress, refused, failed
    (the upstream refused: nothing happened) or unknown (no answer: reconcile decides)."""

    status: str
    message: str
    refund_id: str | None = None
    repeat: bool = False


@dataclass(frozen=True)
class Permission:
    """Whether an admin turned an action on, and for which helpdesk roles; checked on the
    server before any upstream call."""

    enabled: bool
    roles: frozenset[str]
    doing: str  # "Cancelling refunds": said when it is turned off
    do: str  # "cancel refunds": said to a role that may not

    @classmethod
    def of(cls, enabled: object, roles: object, doing: str, do: str) -> Permission:
        """From a feature switch and a comma-separated roles setting."""
        return cls(bool(enabled), frozenset(r.strip() for r in str(roles).split(",")
                                            if r.strip()), doing, do)

    def check_enabled(self) -> None:
        if not self.enabled:
            raise Refused(403, "disabled", f"{self.doing} from the sidebar is turned off; an "
                                           "admin can turn it on in the app settings.")

    def check(self, role: str) -> None:
        self.check_enabled()
        if role not in self.roles:
            raise Refused(403, "forbidden_role", f"Your helpdesk role ({role}) may not "
                                                 f"{self.do} from here; an admin can allow it.")


def refused_upstream(exc: UpstreamError) -> bool:
    """The upstream said no, so nothing happened. A 409 (a request with the same key still
    running), a 429 and an idempotency error say nothing about whether it happened; a
    refusal in a 200 answer (GraphQL userErrors) does, and so does a write never sent."""
    if isinstance(exc, RejectedError | NotSentError):
        return True
    undecided = exc.http_status in (409, 429) or exc.code == "idempotency_error"
    return not undecided and exc.http_status is not None and 400 <= exc.http_status < 500
