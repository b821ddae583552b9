"""Reconciliation windows and tolerances (per installation; defaults from the reference)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@dataclass(frozen=True)
class ReconcileSettings:
    """Time windows that keep normal sync lag from being flagged as a gap."""

    # Portal → ERP return sync is batched; an RA may lag the RMA by this much.
    return_sync_lag: timedelta = timedelta(hours=2)
    # Processor search is eventually consistent; don't call an ERP refund missing before this.
    processor_lag: timedelta = timedelta(hours=1)
    # Finance posts credit memos / customer refunds for processor refunds within a day.
    erp_posting_lag: timedelta = timedelta(hours=24)
    # An order the processor captured reaches the ERP within this.
    order_sync_lag: timedelta = timedelta(hours=24)
    # Store returns reach ERP inventory within a day.
    store_inventory_lag: timedelta = timedelta(hours=24)
    refund_pending_stale_business_days: int = 5
    received_not_refunded_after: timedelta = timedelta(days=3)
    # Two refunds of one return (or of none) for the same amount this close are a duplicate.
    duplicate_window: timedelta = timedelta(hours=24)
    # Among several same-amount candidates, bookings this close to a refund pair first.
    refund_match_window: timedelta = timedelta(hours=48)
    # Extra tolerance on top of one minor unit of rounding per document.
    amount_tolerance_minor: int = 0
    rounding_minor_per_document: int = 1
    # The merchant's time zone: dates in the customer sentence are written in it.
    timezone: str = "UTC"
    # The shop's gateway names for the configured processor (so the shop's record of a
    # processor payment isn't counted twice); set by the service from the processor connector.
    processor_gateways: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"not an IANA time zone: {self.timezone!r}") from exc

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def from_mapping(cls, data: dict[str, Any] | None, **overrides: Any) -> ReconcileSettings:
        """Build from stored settings: durations in hours (or business days), unknown keys ignored."""
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if not data:
                break
            hours_key = f"{f.name}_hours"
            if hours_key in data and f.type in ("timedelta", timedelta):
                kwargs[f.name] = timedelta(hours=float(data[hours_key]))
            elif f.name in data and f.type in ("int", int):
                kwargs[f.name] = int(data[f.name])
            elif f.name in data and f.type in ("str", str):
                kwargs[f.name] = str(data[f.name])
        kwargs.update(overrides)
        return cls(**kwargs)
