"""How an order ended, as the record says and as an admin maps it to ticket changes
(kept apart from resolve.py so the settings schema can name them without importing it)."""

from __future__ import annotations

OUTCOMES: dict[str, str] = {
    "refunded": "Refunded in full",
    "partially_refunded": "Partly refunded",
    "refund_pending": "Refund on its way",
    "return_in_progress": "Return in progress",
    "needs_attention": "Needs attention (a critical or high flag, or a dispute)",
    "nothing_to_refund": "Paid, nothing returned or refunded",
}
# Ticket statuses an admin may map an outcome to ("" leaves the status as it is).
STATUSES = ("", "open", "pending", "solved")
