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
    # Stores the ERP names otherwise: (the shop's location name, the ERP's location name).
    store_locations: tuple[tuple[str, str], ...] = ()

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
            elif f.name == "store_locations" and data.get(f.name):
                kwargs[f.name] = parse_store_locations(str(data[f.name]))
        kwargs.update(overrides)
        return cls(**kwargs)


def parse_store_locations(text: str) -> tuple[tuple[str, str], ...]:
    """"Brooklyn Store = BK01 Brooklyn Retail; SoHo = NY-SoHo" (or one pair per line) as
    (shop name, ERP name) pairs; ValueError naming the problem. Neither side may repeat
    (case and surrounding spaces aside): a store has one ERP location and the other way."""
    pairs: list[tuple[str, str]] = []
    for part in (p.strip() for p in text.replace("\n", ";").split(";")):
        if not part:
            continue
        shop, sep, erp = (x.strip() for x in part.partition("="))
        if not sep or not shop or not erp:
            raise ValueError(f"“{part}” isn't “shop name = ERP name”.")
        if len(shop) > 100 or len(erp) > 100:
            raise ValueError("A location name is at most 100 characters.")
        pairs.append((shop, erp))
    for side, label in ((0, "shop"), (1, "ERP")):
        names = [p[side].casefold() for p in pairs]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"The {label} name “{twice[0]}” is given twice.")
    return tuple(pairs)


def erp_location(store_locations: tuple[tuple[str, str], ...], shop_name: str) -> str:
    """The ERP's name for a shop location (the same name unless an admin mapped it)."""
    wanted = shop_name.strip().casefold()
    return next((erp for shop, erp in store_locations if shop.casefold() == wanted),
                shop_name.strip())
