"""Parse the order ID an agent (or ticket field) supplied, before any upstream is asked."""

from __future__ import annotations

import re

from .model import OrderRef

_ORDER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")


class InvalidOrderId(ValueError):
    """The order ID can't be a storefront order number; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_order_id(raw: str | None, name_prefix: str = "#") -> OrderRef:
    """Turn "1001", "#1001" or " 1001 " into OrderRef(number="1001", name="#1001")."""
    if raw is None or not str(raw).strip():
        raise InvalidOrderId("An order ID is required.")
    text = str(raw).strip()
    if text.startswith("#"):
        text = text[1:].strip()
    if not text:
        raise InvalidOrderId("An order ID is required.")
    if len(text) > 40:
        raise InvalidOrderId("An order ID is at most 40 characters.")
    if not _ORDER_ID.match(text):
        raise InvalidOrderId(
            "An order ID may contain only letters, digits, '.', '_' and '-' "
            "(optionally after a leading '#')."
        )
    return OrderRef(number=text, name=f"{name_prefix}{text}")
