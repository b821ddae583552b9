"""The order ID an agent (or ticket) supplied, parsed before any upstream is asked."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .model import OrderRef

_ORDER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
# What a shop's order number looks like unless an admin says otherwise: digits.
DEFAULT_SHAPE = r"\d{3,20}"
MAX_SHAPE_LENGTH = 64
# Quantified groups that themselves repeat ("(a+)+", "(\d*)*"): catastrophic backtracking.
_NESTED_QUANTIFIER = re.compile(r"\([^)]*[*+}][^)]*\)\s*[*+{]")
# Words that introduce an order number in a ticket: "order 1001", "order no. 1001",
# "order number: #1001", "#1001".
_MARKER = r"(?:\border(?:\s+(?:no\.?|number|num|id|ref))?\s*[:#]?\s*#?\s*|#\s*)"


class InvalidOrderId(ValueError):
    """The order ID can't be a storefront order number; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_order_id(raw: str | None, name_prefix: str = "#") -> OrderRef:
    """"1001", "#1001", "EU-1001" → OrderRef(number="1001", name="<prefix>1001").

    The shop's order-name prefix is applied once: typed with or without it (or with "#"),
    the number is the same and the name gets the prefix exactly once.
    """
    if raw is None or not str(raw).strip():
        raise InvalidOrderId("An order ID is required.")
    text = str(raw).strip()
    # "#" first, then the shop's prefix: "#EU-1001" with prefix "EU-" is order 1001.
    for prefix in dict.fromkeys(("#", name_prefix)):
        if prefix and text[: len(prefix)].casefold() == prefix.casefold():
            text = text[len(prefix):].strip()
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


def check_shape(shape: str) -> str:
    """An admin's order-number shape, if safe to run on ticket text; else ValueError."""
    shape = shape.strip()
    if not shape or len(shape) > MAX_SHAPE_LENGTH:
        raise ValueError(f"give a regular expression of 1 to {MAX_SHAPE_LENGTH} characters")
    if _NESTED_QUANTIFIER.search(shape) or "(?" in shape or "\\" + "1" in shape:
        raise ValueError("nested repeats, look-arounds and back-references aren't allowed")
    try:
        compiled = re.compile(shape)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None
    if compiled.groups:
        raise ValueError("use (?:…) rather than capturing groups")
    if compiled.match(""):
        raise ValueError("the shape must not match an empty string")
    return shape


@dataclass(frozen=True)
class Candidate:
    """An order ID found in a ticket, and where."""

    order_id: str
    where: str  # "the ticket subject", "the ticket description"


def find_candidates(texts: list[tuple[str, str | None]], *, name_prefix: str = "#",
                    shape: str = DEFAULT_SHAPE, limit: int = 5) -> list[Candidate]:
    """Order IDs named in ticket texts, in order: every match in the first text, then the next.

    Only a token that looks like the shop's order numbers counts, and only after "order",
    "#" or the shop's order-name prefix: "my order hasn't arrived, order #9999" gives 9999.
    """
    prefix = re.escape(name_prefix) if name_prefix and name_prefix != "#" else None
    marker = f"(?:{_MARKER}|{prefix})" if prefix else _MARKER
    pattern = re.compile(rf"{marker}(?:{prefix})?({shape})(?![\w-])" if prefix
                         else rf"{marker}({shape})(?![\w-])", re.IGNORECASE)
    found: list[Candidate] = []
    for where, text in texts:
        for match in pattern.finditer((text or "")[:20000]):
            token = match.group(1)
            if token not in {c.order_id for c in found}:
                found.append(Candidate(token, where))
            if len(found) >= limit:
                return found
    return found
