"""Jinja filters for the widget: money, dates, ages, labels."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from flask import Flask

from ..connectors.base import sanitize_text
from ..core.model import SOURCE_TITLES, SourceName
from ..core.money import Money, format_totals
from ..core.record import FLAG_TITLES, MoneyOutKind

ORDER_STATUS_LABELS = {
    "not_found": "Not found",
    "disputed": "Disputed",
    "refunded": "Refunded",
    "partially_refunded": "Partly refunded",
    "return_in_progress": "Return in progress",
    "refund_pending": "Refund pending",
    "paid": "Paid",
    "open": "Open",
}


def money(value: Money | None) -> str:
    return "—" if value is None else value.format()


def minor(amount: int | None, currency: str | None) -> str:
    """An amount stored as minor units and a currency, written out (1250, USD → $12.50)."""
    if amount is None or not currency:
        return "" if amount is None else str(amount)
    return Money(amount, currency).format()


def totals(values: Iterable[Money | None]) -> str:
    """"$40.00" or "$5.00 and €5.00": a total per currency (never summed across them)."""
    return format_totals(v for v in values if v is not None)


def when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%-d %b %Y %H:%M UTC")


def day(value: datetime | None) -> str:
    return "—" if value is None else value.astimezone(UTC).strftime("%-d %b")


def ago(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "never"
    seconds = int(((now or datetime.now(UTC)) - value).total_seconds())
    if seconds < 5:
        return "just now"
    if seconds < 90:
        return f"{seconds} s ago"
    if seconds < 5400:
        return f"{seconds // 60} min ago"
    if seconds < 172800:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


def source_label(source: SourceName | str) -> str:
    return SOURCE_TITLES[SourceName(source)]


def humanize(value: str) -> str:
    return value.replace("_", " ").lower()


def clip(value: object, limit: int = 80) -> str:
    """Upstream text cut to a display length (a 10 kB field must not grow the widget), with
    no characters that reorder what is shown around it."""
    text = "" if value is None else sanitize_text(str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


LEDGER_KINDS = {
    MoneyOutKind.REFUND: "Refund",
    MoneyOutKind.STORE_REFUND: "Store refund",
    MoneyOutKind.STORE_CREDIT: "Store credit",
    MoneyOutKind.EXCHANGE: "Exchange",
    MoneyOutKind.CHARGEBACK: "Chargeback",
    MoneyOutKind.ERP_REFUND: "ERP refund",
    MoneyOutKind.ERP_CREDIT_MEMO: "ERP credit memo",
}


def register(app: Flask) -> None:
    app.add_template_filter(money)
    app.add_template_filter(totals)
    app.add_template_filter(minor)
    app.add_template_filter(when)
    app.add_template_filter(day)
    app.add_template_filter(ago)
    app.add_template_filter(source_label)
    app.add_template_filter(humanize)
    app.add_template_filter(clip)
    app.jinja_env.globals["LEDGER_KINDS"] = LEDGER_KINDS
    app.jinja_env.globals["ORDER_STATUS_LABELS"] = ORDER_STATUS_LABELS
    app.jinja_env.globals["SOURCES"] = list(SourceName)
    app.jinja_env.globals["FLAG_TITLES"] = FLAG_TITLES
