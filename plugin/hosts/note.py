"""The internal note and tags Order Truth writes back into a ticket, as plain, inert text."""

from __future__ import annotations

import re

from ..connectors.base import sanitize_text
from ..core.model import SOURCE_TITLES
from ..core.record import FLAG_TITLES, OrderTruth

# Characters helpdesk editors treat as markup (Markdown, HTML); upstream text gets them escaped.
_MARKUP = re.compile(r"([\\`*_\[\]()#<>!|~])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

TAG_PREFIX = "order-truth-"


# A note line's longest stretch of upstream-derived text.
MAX_NOTE_TEXT = 500


def inert(text: str | None) -> str:
    """Upstream text made safe to embed: no control or bidi characters, markup escaped, one
    line, bounded length."""
    cleaned = _CONTROL.sub(" ", sanitize_text(text or "")).replace("\n", " ").strip()
    if len(cleaned) > MAX_NOTE_TEXT:
        cleaned = cleaned[: MAX_NOTE_TEXT - 1] + "…"
    return _MARKUP.sub(r"\\\1", cleaned)


def marker(action_key: str) -> str:
    """The line that identifies a note, so a retry can tell it was already posted."""
    return f"Order Truth ref {action_key}"


def render_note(truth: OrderTruth, action_key: str) -> str:
    """Headline, flags and per-source status as readable plain text."""
    # The order name passed parse_order_id, so it is plain; upstream text is not.
    lines = [f"Order Truth: order {truth.order_name}", "", inert(truth.headline), ""]
    if truth.flags:
        lines.append(f"To check ({len(truth.flags)}):")
        for flag in truth.flags:
            lines.append(f"- [{flag.severity.value}] {FLAG_TITLES[flag.code]}: {inert(flag.message)}")
            lines.append(f"  Do: {inert(flag.suggested_action)}")
    else:
        lines.append("No discrepancies between the sources.")
    e = truth.eligibility
    if e.remaining is not None:
        lines += ["", f"Refundable: {e.remaining.format()} of {e.captured.format() if e.captured else '?'}"
                  f" captured. {inert(e.reason)}"]
    lines += ["", "Sources:"]
    for source, report in truth.sources.items():
        as_of = report.as_of.strftime("%Y-%m-%d %H:%M UTC") if report.as_of else "no answer"
        state = report.status.value.replace("_", " ")
        detail = f" ({inert(report.error)})" if report.error else ""
        lines.append(f"- {SOURCE_TITLES[source]} ({report.system}): {state}{detail}, as of {as_of}")
    lines += ["", marker(action_key)]
    return "\n".join(lines)


def flag_tags(truth: OrderTruth) -> list[str]:
    """order-truth-<flag code in lower case>, one per distinct flag."""
    seen: list[str] = []
    for flag in truth.flags:
        tag = TAG_PREFIX + flag.code.value.lower()
        if tag not in seen:
            seen.append(tag)
    return seen
