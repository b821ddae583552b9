"""Turn the domain table (cases.yaml) into source results, and check a record against a row.

The table is data a returns-finance lead can read: amounts as decimals ("40.00", "5.00 EUR"),
times as days/hours before NOW, states in canonical words. See cases.yaml for the fields.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from plugin.core.model import (
    CreditState,
    Dispute,
    DisputeState,
    ErpApplication,
    ErpCreditMemo,
    ErpCustomerRefund,
    ErpFacts,
    ErpItemReceipt,
    ErpReturnAuthorization,
    ErpSale,
    ErrorKind,
    OrderRef,
    Payment,
    PortalFacts,
    PortalRefund,
    PortalReturn,
    PosFacts,
    ProcessorFacts,
    ProcessorRefund,
    RefundState,
    ReturnLine,
    ReturnOutcome,
    ReturnState,
    SaleKind,
    ShippingLabel,
    ShopTransaction,
    ShopTransactionKind,
    ShopTransactionStatus,
    SourceName,
    SourceReport,
    SourceResult,
    SourceResults,
    SourceStatus,
    StockLine,
    StoreReturn,
    StoreReturnLine,
    Tender,
)
from plugin.core.money import Money
from plugin.core.settings import ReconcileSettings, parse_store_locations

from .builders import NOW, SYSTEMS

CASES_FILE = Path(__file__).with_name("cases.yaml")
ORDER = OrderRef(number="1001", name="#1001")


def load_cases() -> list[dict[str, Any]]:
    """Every row, with `extends` resolved (the parent's `given`, overridden key by key)."""
    rows = yaml.safe_load(CASES_FILE.read_text())
    by_id: dict[str, dict[str, Any]] = {}
    out = []
    for row in rows:
        if row["id"] in by_id:
            raise ValueError(f"duplicate case id {row['id']}")
        given = dict(row.get("given") or {})
        parent = row.get("extends")
        if parent:
            given = {**by_id[parent]["given"], **given}
            for key in row.get("without", ()):
                given.pop(key, None)
        row = {**row, "given": given}
        by_id[row["id"]] = row
        out.append(row)
    return out


class _Money:
    def __init__(self, currency: str) -> None:
        self.currency = currency

    def __call__(self, text: Any) -> Money:
        value, _, cur = str(text).partition(" ")
        return Money.from_decimal(value, cur or self.currency)


def _at(item: dict[str, Any], prefix: str = ""):
    days = item.get(f"{prefix}days")
    hours = item.get(f"{prefix}hours")
    if days is None and hours is None:
        return None
    return NOW - timedelta(days=days or 0, hours=hours or 0)


def _when(item: dict[str, Any], default_days: float = 5):
    return _at(item) or NOW - timedelta(days=default_days)


TENDERS = {t.value: t for t in Tender}


def build(row: dict[str, Any]):
    """(SourceResults, ReconcileSettings) for a row."""
    g = row["given"]
    m = _Money(row.get("currency", "USD"))

    payments = tuple(
        Payment(p.get("id", "pi_1"), m(p["amount"]), m(p.get("captured", p["amount"])),
                "succeeded", _when(p, 20), "card", TENDERS[p.get("tender", "card")],
                p.get("label", "Visa ending 4242"), "stripe")
        for p in g.get("payments", ()))
    refunds = tuple(
        ProcessorRefund(r["id"], r.get("pi", "pi_1"), m(r["amount"]),
                        RefundState(r.get("state", "succeeded").upper()),
                        r.get("raw", r.get("state", "succeeded")), _when(r),
                        "requested_by_customer", r.get("return"), r.get("erp"),
                        r.get("failure"), TENDERS[r.get("tender", "card")], r.get("label"),
                        tuple(r.get("quotes", ())))
        for r in g.get("refunds", ()))
    disputes = tuple(
        Dispute(d["id"], d.get("pi", "pi_1"), m(d["amount"]), d.get("raw", d["state"]),
                DisputeState(d["state"]), _when(d, 1), "general",
                NOW + timedelta(days=6) if d["state"] == "open" else None, _at(d, "closed_"))
        for d in g.get("disputes", ()))

    portal = tuple(_portal_return(p, m) for p in g.get("portal", ()))

    sales = tuple(ErpSale(s["id"], s.get("tran", s["id"]), SaleKind(s.get("kind", "sales_order")),
                          "B", m(s["total"]), _when(s, 20)) for s in g.get("sales", ()))
    ras = tuple(ErpReturnAuthorization(
        a["id"], a.get("tran", a["id"]), f"RtnAuth:{a['state']}", ReturnState(a["state"].upper()),
        _when(a, 6), m(a["total"]) if "total" in a else None, a.get("portal"), a.get("from"))
        for a in g.get("ras", ()))
    receipts = tuple(ErpItemReceipt(
        r["id"], r.get("tran", r["id"]), r["ra"], _when(r, 4),
        tuple(StockLine(ln[0], ln[1], ln[2] if len(ln) > 2 else "Main Warehouse")
              for ln in r.get("lines", [["SKU-1", 1]])))
        for r in g.get("receipts", ()))
    memos = tuple(ErpCreditMemo(
        c["id"], c.get("tran", c["id"]), c.get("ra", c.get("from")), m(c["amount"]),
        f"CustCred:{c.get('state', 'applied')}", _when(c),
        CreditState(c.get("state", "applied")),
        tuple(ErpApplication(a["to"], a["to"], m(a["amount"]), a.get("refund", False),
                             not a.get("other_order", False)) for a in c.get("applied", ())),
        tuple(c.get("quotes", ())))
        for c in g.get("memos", ()))
    crefs = tuple(ErpCustomerRefund(
        c["id"], c.get("tran", c["id"]), tuple(c.get("memos", ())), m(c["amount"]), _when(c),
        tuple(c.get("quotes", ())), TENDERS[c.get("tender", "unknown")], c.get("from"),
        c.get("location"))
        for c in g.get("crefs", ()))

    stores = tuple(StoreReturn(
        s["id"], _when(s, 2),
        tuple(StoreReturnLine(ln[0], ln[1], "RETURN", s.get("location", "Brooklyn Store"))
              for ln in s.get("lines", [["SKU-9", 1]])),
        m(s["amount"]) if "amount" in s else None, s.get("location", "Brooklyn Store"))
        for s in g.get("stores", ()))
    shop = tuple(ShopTransaction(
        t["id"], ShopTransactionKind(t.get("kind", "refund")),
        ShopTransactionStatus(t.get("status", "success")), m(t["amount"]),
        TENDERS[t.get("tender", "cash")], t.get("gateway", t.get("tender", "cash")), _when(t, 2),
        t.get("refund"), t.get("location"), t.get("label"),
        m(t["shop_amount"]) if "shop_amount" in t else None)
        for t in g.get("shop", ()))

    facts = {
        SourceName.PORTAL: PortalFacts(ORDER.name, portal),
        SourceName.PROCESSOR: ProcessorFacts(ORDER.name, payments, refunds, disputes),
        SourceName.ERP: ErpFacts(ORDER.name, sales, ras, receipts, memos, crefs),
        SourceName.POS: PosFacts(ORDER.name, g.get("pos_found", True), stores,
                                 row.get("currency", "USD"), g.get("shop_currency"), shop),
    }
    statuses = g.get("sources", {})
    results = {s: _result(s, facts[s], statuses.get(s.value)) for s in SourceName}
    settings = ReconcileSettings(
        processor_gateways=frozenset(g.get("processor_gateways", ["stripe"])),
        timezone=g.get("timezone", "UTC"),
        store_locations=parse_store_locations(g.get("store_locations", "")))
    return SourceResults(**{s.value: results[s] for s in SourceName}), settings


def _portal_return(p: dict[str, Any], m: _Money) -> PortalReturn:
    state = ReturnState(p.get("state", "authorized").upper())
    label = ShippingLabel(p.get("carrier", "USPS"), p.get("tracking", "9400100000000000000000"),
                          p["label"]) if "label" in p else None
    if state is ReturnState.AUTHORIZED and p.get("label") in ("in_transit", "out_for_delivery",
                                                                "delivered"):
        state = ReturnState.IN_TRANSIT
    return PortalReturn(
        p["id"], ORDER.name, state, p.get("raw", p.get("state", "open")), _when(p, 3),
        _at(p, "updated_"), m(p["total"]) if "total" in p else None,
        tuple(ReturnLine(ln[0], ln[1]) for ln in p.get("lines", [["SKU-1", 1]])), label,
        tuple(PortalRefund(m(r["amount"]), r.get("gateway", "stripe"), r.get("ref"),
                           TENDERS[r.get("tender", "card")]) for r in p.get("refunds", ())),
        ReturnOutcome(p.get("outcome", "refund")), p.get("outcome"), p.get("exchange"),
        m(p["exchange_value"]) if "exchange_value" in p else None,
        m(p["credit"]) if "credit" in p else None,
        TENDERS[p.get("credit_tender", "store_credit")])


def _result(source: SourceName, facts, status: str | None) -> SourceResult:
    if status in ("timeout", "error"):
        st = SourceStatus(status)
        kind = ErrorKind.TIMEOUT if st is SourceStatus.TIMEOUT else ErrorKind.UNAVAILABLE
        return SourceResult(SourceReport(source, SYSTEMS[source], st, None, 2500, kind,
                                         f"{SYSTEMS[source]} {status}"))
    if status == "unused":
        return SourceResult(SourceReport(source, SYSTEMS[source], SourceStatus.NOT_CONFIGURED))
    found = facts.found and status != "not_found"
    if not found:
        facts = replace(facts, **_emptied(source))
    return SourceResult(SourceReport(source, SYSTEMS[source],
                                     SourceStatus.OK if found else SourceStatus.NOT_FOUND,
                                     NOW, 120), facts)


def _emptied(source: SourceName) -> dict[str, Any]:
    return {SourceName.POS: {"order_found": False}}.get(source, {})
