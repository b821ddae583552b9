"""Calendar arithmetic the rules and the customer sentence share."""

from __future__ import annotations

from datetime import datetime, timedelta


def business_days_between(start: datetime, end: datetime) -> int:
    """Whole weekdays elapsed from start to end."""
    if end <= start:
        return 0
    days = 0
    cursor = start
    while cursor + timedelta(days=1) <= end:
        cursor += timedelta(days=1)
        if cursor.weekday() < 5:
            days += 1
    return days
