"""Normalised facts each upstream source reports about one order.

Connectors turn their vendor dialect into these types; the reconciler reads only these.
All datetimes are timezone-aware UTC; all money is `Money` (integer minor units).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

from .money import Money


class SourceName(StrEnum):
    """The four roles an upstream system can play for an order."""

    PORTAL = "portal"
    PROCESSOR = "processor"
    ERP = "erp"
    POS = "pos"


SOURCE_LABELS: dict[SourceName, str] = {
    SourceName.PORTAL: "returns portal",
    SourceName.PROCESSOR: "payment processor",
    SourceName.ERP: "ERP",
    SourceName.POS: "store POS",
}
# The same, at the start of a line or label.
SOURCE_TITLES: dict[SourceName, str] = {s: label[0].upper() + label[1:] for s, label in SOURCE_LABELS.items()}


class SourceStatus(StrEnum):
    """How a source answered: ok / knew nothing of the order / did not answer usefully."""

    OK = "ok"
    NOT_FOUND = "not_found"
    TIMEOUT = "timeout"
    ERROR = "error"
    NOT_CONFIGURED = "not_configured"

    @property
    def answered(self) -> bool:
        """True when the source gave a trustworthy answer (even "no such order")."""
        return self in (SourceStatus.OK, SourceStatus.NOT_FOUND)


class ErrorKind(StrEnum):
    """Typed upstream failure classes shared by every connector."""

    AUTH = "auth"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    UNAVAILABLE = "unavailable"
    BAD_RESPONSE = "bad_response"
    CONFIG = "config"


class ReturnState(StrEnum):
    """Canonical return lifecycle, ordered roughly by progress."""

    REQUESTED = "REQUESTED"
    AUTHORIZED = "AUTHORIZED"
    IN_TRANSIT = "IN_TRANSIT"
    PARTIALLY_RECEIVED = "PARTIALLY_RECEIVED"
    RECEIVED = "RECEIVED"
    CLOSED = "CLOSED"
    REJECTED = "REJECTED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"


class RefundState(StrEnum):
    """Canonical refund lifecycle."""

    APPROVED_IN_ERP = "APPROVED_IN_ERP"
    PENDING = "PENDING"
    REQUIRES_ACTION = "REQUIRES_ACTION"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


# ---------------------------------------------------------------- returns portal


@dataclass(frozen=True)
class ReturnLine:
    """One SKU and quantity on a return."""

    sku: str
    quantity: int
    title: str | None = None


@dataclass(frozen=True)
class ShippingLabel:
    """The return label the portal issued (raw carrier status, e.g. in_transit, delivered)."""

    carrier: str | None
    tracking_number: str | None
    status: str | None


@dataclass(frozen=True)
class PortalRefund:
    """A refund the portal says it issued or requested."""

    amount: Money
    gateway: str | None = None
    provider_refund_id: str | None = None


@dataclass(frozen=True)
class PortalReturn:
    """A return (RMA) as the returns portal sees it."""

    return_id: str
    order_name: str
    state: ReturnState
    state_raw: str
    created_at: datetime
    updated_at: datetime | None = None
    total: Money | None = None
    lines: tuple[ReturnLine, ...] = ()
    label: ShippingLabel | None = None
    refunds: tuple[PortalRefund, ...] = ()
    outcome: str | None = None


@dataclass(frozen=True)
class PortalFacts:
    """Everything the returns portal knows about an order."""

    order_name: str
    returns: tuple[PortalReturn, ...] = ()
    currency: str | None = None

    @property
    def found(self) -> bool:
        return bool(self.returns)


# ---------------------------------------------------------------- payment processor


@dataclass(frozen=True)
class Payment:
    """A captured payment (Stripe PaymentIntent) for the order."""

    payment_id: str
    amount: Money
    amount_captured: Money
    status_raw: str
    created_at: datetime
    payment_method: str | None = None


@dataclass(frozen=True)
class ProcessorRefund:
    """A refund as the processor sees it."""

    refund_id: str
    payment_id: str
    amount: Money
    state: RefundState
    status_raw: str
    created_at: datetime
    reason: str | None = None
    return_key: str | None = None
    erp_refund_id: str | None = None
    failure_reason: str | None = None


@dataclass(frozen=True)
class Dispute:
    """A chargeback on the order's payment."""

    dispute_id: str
    payment_id: str
    amount: Money
    status_raw: str
    is_open: bool
    created_at: datetime
    reason: str | None = None
    due_by: datetime | None = None


@dataclass(frozen=True)
class ProcessorFacts:
    """Everything the payment processor knows about an order."""

    order_name: str
    payments: tuple[Payment, ...] = ()
    refunds: tuple[ProcessorRefund, ...] = ()
    disputes: tuple[Dispute, ...] = ()

    @property
    def found(self) -> bool:
        return bool(self.payments)


# ---------------------------------------------------------------- ERP


@dataclass(frozen=True)
class InventoryLine:
    """Quantity of a SKU moved at a location."""

    sku: str
    quantity: int
    location: str | None = None


@dataclass(frozen=True)
class ErpSalesOrder:
    """The ERP's sales order for the web/store order."""

    internal_id: str
    tran_id: str
    status_raw: str
    total: Money
    created_at: datetime


@dataclass(frozen=True)
class ErpReturnAuthorization:
    """A return authorization (RA) in the ERP."""

    internal_id: str
    tran_id: str
    status_raw: str
    state: ReturnState
    created_at: datetime
    total: Money | None = None
    portal_return_id: str | None = None


@dataclass(frozen=True)
class ErpItemReceipt:
    """Goods received against an RA: the inventory credit."""

    internal_id: str
    tran_id: str
    created_from: str
    created_at: datetime
    lines: tuple[InventoryLine, ...] = ()


@dataclass(frozen=True)
class ErpCreditMemo:
    """A credit memo raised from an RA (the refund approved in the ERP)."""

    internal_id: str
    tran_id: str
    created_from: str
    amount: Money
    status_raw: str
    created_at: datetime


@dataclass(frozen=True)
class ErpCustomerRefund:
    """Money the ERP records as paid back to the customer."""

    internal_id: str
    tran_id: str
    applied_to: str | None
    amount: Money
    created_at: datetime
    processor_refund_id: str | None = None


@dataclass(frozen=True)
class ErpFacts:
    """The ERP document chain for an order: SO → RA → receipt / credit memo → refund."""

    order_name: str
    sales_order: ErpSalesOrder | None = None
    return_authorizations: tuple[ErpReturnAuthorization, ...] = ()
    item_receipts: tuple[ErpItemReceipt, ...] = ()
    credit_memos: tuple[ErpCreditMemo, ...] = ()
    customer_refunds: tuple[ErpCustomerRefund, ...] = ()

    @property
    def found(self) -> bool:
        return self.sales_order is not None or bool(self.return_authorizations)


# ---------------------------------------------------------------- store POS


@dataclass(frozen=True)
class StoreReturnLine:
    """A line returned over the counter (restock type as the POS reports it)."""

    sku: str
    quantity: int
    restock_type: str
    location: str | None = None


@dataclass(frozen=True)
class StoreReturn:
    """A refund logged at the store POS that put goods back on a shelf."""

    refund_id: str
    created_at: datetime
    lines: tuple[StoreReturnLine, ...]
    amount: Money | None = None
    location: str | None = None


@dataclass(frozen=True)
class PosFacts:
    """Everything the store POS knows about an order's returns."""

    order_name: str
    order_found: bool = False
    store_returns: tuple[StoreReturn, ...] = ()
    currency: str | None = None

    @property
    def found(self) -> bool:
        return self.order_found


Facts = PortalFacts | ProcessorFacts | ErpFacts | PosFacts
F = TypeVar("F", PortalFacts, ProcessorFacts, ErpFacts, PosFacts)


@dataclass(frozen=True)
class SourceReport:
    """How one source answered this time, and when."""

    source: SourceName
    system: str
    status: SourceStatus
    as_of: datetime | None = None
    elapsed_ms: int | None = None
    error_kind: ErrorKind | None = None
    error: str | None = None
    http_status: int | None = None
    cached: bool = False


@dataclass(frozen=True)
class SourceResult(Generic[F]):
    """A source's report plus its facts (None unless it answered)."""

    report: SourceReport
    facts: F | None = None


@dataclass(frozen=True)
class SourceResults:
    """The four sources' results for one order."""

    portal: SourceResult[PortalFacts]
    processor: SourceResult[ProcessorFacts]
    erp: SourceResult[ErpFacts]
    pos: SourceResult[PosFacts]

    def reports(self) -> dict[SourceName, SourceReport]:
        return {
            SourceName.PORTAL: self.portal.report,
            SourceName.PROCESSOR: self.processor.report,
            SourceName.ERP: self.erp.report,
            SourceName.POS: self.pos.report,
        }

    def answered(self, source: SourceName) -> bool:
        return self.reports()[source].status.answered


@dataclass(frozen=True)
class OrderRef:
    """The order an agent asked about, in the forms each upstream keys it by.

    `number` is the bare identifier ("1001": Stripe metadata order_id); `name` is the
    storefront's order name ("#1001": Loop order_name, NetSuite otherrefnum, Shopify name).
    """

    number: str
    name: str
