"""Reconciliation windows and tolerances (per installation; defaults from the reference)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any


@dataclass(frozen=True)
class ReconcileSettings:
    """Time windows that keep normal sync lag from being flagged as a gap."""

    # Portal → ERP return sync is batched; an RA may lag the RMA by this much.
    return_sync_lag: timedelta = timedelta(hours=2)
    # Stripe search is eventually consistent; don't call an ERP refund missing before this.
    processor_lag: timedelta = timedelta(hours=1)
    # Finance posts credit memos / customer refunds for processor refunds within a day.
    erp_posting_lag: timedelta = timedelta(hours=24)
    # Store returns reach ERP inventory within a day.
    store_inventory_lag: timedelta = timedelta(hours=24)
    refund_pending_stale_business_days: int = 5
    received_not_refunded_after: timedelta = timedelta(days=3)
    duplicate_window: timedelta = timedelta(hours=24)
    refund_match_window: timedelta = timedelta(hours=48)
    amount_tolerance_minor: int = 0

    @classmethod
    def from_mapping(cls, data: dict[str, Any] | None) -> ReconcileSettings:
        """Build from stored settings: durations in hours (or business days), unknown keys ignored."""
        if not data:
            return cls()
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            hours_key = f"{f.name}_hours"
            if hours_key in data and f.type in ("timedelta", timedelta):
                kwargs[f.name] = timedelta(hours=float(data[hours_key]))
            elif f.name in data and f.type in ("int", int):
                kwargs[f.name] = int(data[f.name])
        return cls(**kwargs)
