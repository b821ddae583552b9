"""Logging filter that keeps credentials out of log lines, whatever a caller passes in."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "[redacted]"),  # JWTs
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 [redacted]"),
    (re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{4,}"), "[redacted]"),
    (re.compile(r"\bshp(?:at|ca|pa|ss)_[A-Za-z0-9]{4,}"), "[redacted]"),
    (re.compile(r"(?i)\b(token|secret|password|api_key|code)=[^&\s]+"), r"\1=[redacted]"),
]


# Every credential this process has decrypted or been configured with: redacted by value,
# whatever shape it has (a NetSuite token secret looks like any other hex string).
_KNOWN: set[str] = set()
_KNOWN_LOCK = threading.Lock()
_MAX_KNOWN = 10_000


# The same, longest first (a secret containing another is replaced whole): rebuilt when the
# set grows, so a log line costs no sort.
_LONGEST_FIRST: tuple[str, ...] = ()


def remember_secrets(values: Iterable[object]) -> None:
    """Register configured credentials so no log line ever shows them."""
    global _LONGEST_FIRST
    with _KNOWN_LOCK:
        before = len(_KNOWN)
        for value in values:
            text = str(value or "")
            if len(text) >= 6 and len(_KNOWN) < _MAX_KNOWN:
                _KNOWN.add(text)
        if len(_KNOWN) != before:
            _LONGEST_FIRST = tuple(sorted(_KNOWN, key=len, reverse=True))


def redact(text: str) -> str:
    """Replace every known credential, and anything that looks like one, with [redacted]."""
    for secret in _LONGEST_FIRST:
        if secret in text:
            text = text.replace(secret, "[redacted]")
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites each record's message with credentials redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call must not break logging
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True
