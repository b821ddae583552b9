"""Small builders for core facts so each test states only what matters to it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from plugin.connectors.loop import return_state as loop_return_state
from plugin.connectors.netsuite import ra_state as netsuite_ra_state
from plugin.connectors.stripe import DISPUTE_STATES
from plugin.core.model import (
    CreditState,
    Dispute,
    DisputeState,
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
    PortalReturn,
    PosFacts,
    ProcessorFacts,
    ProcessorRefund,
    RefundState,
    ReturnLine,
    SaleKind,
    ShippingLabel,
    SourceName,
    SourceReport,
    SourceResult,
    SourceResults,
    SourceStatus,
    StockLine,
    StoreReturn,
    StoreReturnLine,
)
from plugin.core.money import Money

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # a Tuesday
ORDER = OrderRef(number="1001", name="#1001")


def ago(**kw) -> datetime:
    return NOW - timedelta(**kw)


def money(minor: int, currency: str = "USD") -> Money:
    return Money(minor, currency)


def payment(amount=12000, currency="USD", pid="pi_1", created=None) -> Payment:
    return Payment(pid, money(amount, currency), money(amount, currency), "succeeded",
                   created or ago(days=20), "card")


def p_refund(rid="re_1", amount=4000, state=RefundState.SUCCEEDED, created=None, return_key=None,
             erp_refund_id=None, pid="pi_1", currency="USD", failure_reason=None) -> ProcessorRefund:
    return ProcessorRefund(rid, pid, money(amount, currency), state, state.value.lower(),
                           created or ago(days=5), "requested_by_customer", return_key,
                           erp_refund_id, failure_reason)


def dispute(did="dp_1", amount=12000, status="needs_response", pid="pi_1", due_days=6) -> Dispute:
    return Dispute(did, pid, money(amount), status, DISPUTE_STATES.get(status, DisputeState.UNKNOWN),
                   ago(days=1), "product_not_received", NOW + timedelta(days=due_days))


def portal_return(rid="R1", raw="open", created=None, lines=(("SKU-1", 1),), total=4000,
                  currency="USD", label=None, updated=None) -> PortalReturn:
    lab = ShippingLabel("USPS", "9400100000000000000000", label) if label else None
    state = loop_return_state(raw, label)
    return PortalReturn(rid, ORDER.name, state, raw, created or ago(days=3), updated,
                        money(total, currency), tuple(ReturnLine(s, q) for s, q in lines), lab)


def sales_order(total=12000, currency="USD") -> ErpSale:
    return ErpSale("4411", "SO-4411", SaleKind.SALES_ORDER, "F", money(total, currency),
                   ago(days=20))


def ra(iid="RA1", tran="RMA-1", code="B", portal_id="R1", created=None) -> ErpReturnAuthorization:
    state = netsuite_ra_state(code)
    return ErpReturnAuthorization(iid, tran, f"RtnAuth:{code}", state, created or ago(days=3),
                                  money(4000), portal_id)


def receipt(iid="IR1", ra_id="RA1", created=None, sku="SKU-1", qty=1,
            location="Main Warehouse") -> ErpItemReceipt:
    return ErpItemReceipt(iid, f"IR-{iid}", ra_id, created or ago(days=2),
                          (StockLine(sku, qty, location),))


def memo(iid="CM1", tran="CM-1", ra_id="RA1", amount=4000, created=None,
         currency="USD") -> ErpCreditMemo:
    return ErpCreditMemo(iid, tran, ra_id, money(amount, currency), "CustCred:B",
                         created or ago(days=2), CreditState.APPLIED)


def cref(iid="CR1", tran="CR-1", memo_id="CM1", amount=4000, created=None, re=None,
         currency="USD") -> ErpCustomerRefund:
    return ErpCustomerRefund(iid, tran, (memo_id,) if memo_id else (), money(amount, currency),
                             created or ago(days=2), (re,) if re else ())


def store_return(rid="gid://shopify/Refund/1", sku="SKU-9", qty=1, location="Brooklyn Store",
                 created=None) -> StoreReturn:
    return StoreReturn(rid, created or ago(days=2),
                       (StoreReturnLine(sku, qty, "RETURN", location),), money(3000), location)


SYSTEMS = {SourceName.PORTAL: "loop", SourceName.PROCESSOR: "stripe", SourceName.ERP: "netsuite",
           SourceName.POS: "shopify_pos"}


def _result(source: SourceName, value):
    if isinstance(value, str):  # a failure status: "timeout" / "error"
        status = SourceStatus(value)
        kind = ErrorKind.TIMEOUT if status is SourceStatus.TIMEOUT else ErrorKind.UNAVAILABLE
        return SourceResult(SourceReport(source, SYSTEMS[source], status, None, 2500, kind,
                                         f"{SYSTEMS[source]} {value}"))
    status = SourceStatus.OK if value.found else SourceStatus.NOT_FOUND
    return SourceResult(SourceReport(source, SYSTEMS[source], status, NOW, 120), value)


def results(*, portal=(), payments=(), refunds=(), disputes=(), so=None, ras=(), receipts=(),
            memos=(), crefs=(), stores=(), pos_found=True, portal_status=None,
            processor_status=None, erp_status=None, pos_status=None) -> SourceResults:
    """SourceResults from facts; pass e.g. erp_status="timeout" to make a source fail."""
    return SourceResults(
        portal=_result(SourceName.PORTAL, portal_status or PortalFacts(ORDER.name, tuple(portal))),
        processor=_result(SourceName.PROCESSOR, processor_status or ProcessorFacts(
            ORDER.name, tuple(payments), tuple(refunds), tuple(disputes))),
        erp=_result(SourceName.ERP, erp_status or ErpFacts(
            ORDER.name, (so,) if so else (), tuple(ras), tuple(receipts), tuple(memos),
            tuple(crefs))),
        pos=_result(SourceName.POS, pos_status or PosFacts(ORDER.name, pos_found, tuple(stores))),
    )
