"""Plain JSON-ready dicts from the record's dataclasses (money, dates and enums spelled out)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from enum import Enum
from typing import Any

from .money import Money
from .record import OrderTruth


def to_plain(value: Any) -> Any:
    """Recursively convert dataclasses, Money, datetimes and enums to JSON types."""
    if isinstance(value, Money):
        return {"amount_minor": value.amount_minor, "currency": value.currency,
                "display": value.format()}
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {to_plain(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    return value


def truth_to_dict(truth: OrderTruth) -> dict[str, Any]:
    """The merged record as the JSON API and CLI print it."""
    data: dict[str, Any] = to_plain(truth)
    data["partial"] = truth.partial
    return data
