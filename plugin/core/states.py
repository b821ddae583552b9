"""Groupings of the canonical states the rules reason with (vendor words live in connectors)."""

from __future__ import annotations

from .model import LIVE_REFUND_STATES, RefundState, ReturnState

__all__ = [
    "AUTHORIZED_OR_LATER",
    "ERP_RETURN_OPEN",
    "LIVE_REFUND_STATES",
    "PORTAL_RETURN_OPEN",
    "RECEIVED_STATES",
    "REFUND_IN_FLIGHT",
    "REFUND_NOT_PAID",
    "RETURN_ABANDONED",
    "TERMINAL_RETURN_STATES",
]

# States after which a return is no longer moving.
TERMINAL_RETURN_STATES = frozenset(
    {ReturnState.CLOSED, ReturnState.REJECTED, ReturnState.CANCELED, ReturnState.EXPIRED}
)
# Returns that ended without the goods coming back for credit.
RETURN_ABANDONED = frozenset({ReturnState.REJECTED, ReturnState.CANCELED, ReturnState.EXPIRED})
# States meaning the merchant accepted the return (AUTHORIZED or later, not abandoned).
AUTHORIZED_OR_LATER = frozenset(
    {
        ReturnState.AUTHORIZED,
        ReturnState.IN_TRANSIT,
        ReturnState.PARTIALLY_RECEIVED,
        ReturnState.RECEIVED,
        ReturnState.CLOSED,
    }
)
RECEIVED_STATES = frozenset({ReturnState.PARTIALLY_RECEIVED, ReturnState.RECEIVED})
# A portal return still on its way (not yet received, not finished).
PORTAL_RETURN_OPEN = frozenset(
    {ReturnState.REQUESTED, ReturnState.HELD, ReturnState.AUTHORIZED, ReturnState.IN_TRANSIT}
)
# An ERP return authorization still waiting for (some of) the goods.
ERP_RETURN_OPEN = frozenset(
    {ReturnState.REQUESTED, ReturnState.AUTHORIZED, ReturnState.PARTIALLY_RECEIVED}
)
REFUND_IN_FLIGHT = frozenset({RefundState.PENDING, RefundState.REQUIRES_ACTION})
REFUND_NOT_PAID = frozenset({RefundState.FAILED, RefundState.CANCELED})
