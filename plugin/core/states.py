"""Canonical return and refund states mapped from each vendor's status vocabulary."""

from __future__ import annotations

from .model import RefundState, ReturnState

# Loop return `state` (webhook docs: open, cancelled, closed, expired, "needs review";
# the MCP tool also lists partial/processing/processed/review).
LOOP_RETURN_STATES: dict[str, ReturnState] = {
    "open": ReturnState.AUTHORIZED,
    "partial": ReturnState.AUTHORIZED,
    "review": ReturnState.REQUESTED,
    "needs review": ReturnState.REQUESTED,
    "needs_review": ReturnState.REQUESTED,
    "processing": ReturnState.AUTHORIZED,
    "processed": ReturnState.CLOSED,
    "closed": ReturnState.CLOSED,
    "cancelled": ReturnState.CANCELED,
    "canceled": ReturnState.CANCELED,
    "expired": ReturnState.EXPIRED,
}

# Loop label statuses that mean the parcel has left the customer.
LOOP_LABEL_MOVING = frozenset({"in_transit", "out_for_delivery"})
LOOP_LABEL_DELIVERED = "delivered"

# NetSuite return authorization status codes (SuiteQL `status`, "RtnAuth:X" or bare letter).
NETSUITE_RA_STATES: dict[str, ReturnState] = {
    "A": ReturnState.REQUESTED,  # Pending Approval
    "B": ReturnState.AUTHORIZED,  # Pending Receipt
    "C": ReturnState.CANCELED,  # Cancelled
    "D": ReturnState.PARTIALLY_RECEIVED,  # Partially Received
    "E": ReturnState.PARTIALLY_RECEIVED,  # Pending Refund/Partially Received
    "F": ReturnState.RECEIVED,  # Pending Refund
    "G": ReturnState.CLOSED,  # Refunded
    "H": ReturnState.CLOSED,  # Closed
}

NETSUITE_RA_LABELS: dict[str, str] = {
    "A": "Pending Approval",
    "B": "Pending Receipt",
    "C": "Cancelled",
    "D": "Partially Received",
    "E": "Pending Refund/Partially Received",
    "F": "Pending Refund",
    "G": "Refunded",
    "H": "Closed",
}

# Stripe Refund.status.
STRIPE_REFUND_STATES: dict[str, RefundState] = {
    "pending": RefundState.PENDING,
    "requires_action": RefundState.REQUIRES_ACTION,
    "succeeded": RefundState.SUCCEEDED,
    "failed": RefundState.FAILED,
    "canceled": RefundState.CANCELED,
}

# Stripe Dispute.status values that still need the merchant.
STRIPE_OPEN_DISPUTES = frozenset(
    {"warning_needs_response", "warning_under_review", "needs_response", "under_review"}
)

# Shopify RefundLineItem.restockType
SHOPIFY_RESTOCK_RETURN = "RETURN"


def netsuite_ra_code(status_raw: str) -> str:
    """Return the bare letter of a NetSuite RA status ("RtnAuth:B" -> "B")."""
    return status_raw.split(":")[-1].strip().upper()


def netsuite_ra_state(status_raw: str) -> ReturnState | None:
    """Map a NetSuite RA status ("RtnAuth:F" or "F") to the canonical state."""
    return NETSUITE_RA_STATES.get(netsuite_ra_code(status_raw))


def loop_return_state(state_raw: str, label_status: str | None) -> ReturnState | None:
    """Map Loop's return state (plus label movement) to the canonical state."""
    state = LOOP_RETURN_STATES.get(state_raw.strip().lower())
    if state is ReturnState.AUTHORIZED and label_status:
        if label_status in LOOP_LABEL_MOVING or label_status == LOOP_LABEL_DELIVERED:
            return ReturnState.IN_TRANSIT
    return state


# States after which a return is no longer moving.
TERMINAL_RETURN_STATES = frozenset(
    {ReturnState.CLOSED, ReturnState.REJECTED, ReturnState.CANCELED, ReturnState.EXPIRED}
)
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
LIVE_REFUND_STATES = frozenset(
    {RefundState.PENDING, RefundState.REQUIRES_ACTION, RefundState.SUCCEEDED}
)
