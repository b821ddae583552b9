"""The merged order record the reconciler produces and the widget renders."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from .model import (
    Dispute,
    ErpCreditMemo,
    ErpCustomerRefund,
    ErpItemReceipt,
    ErpReturnAuthorization,
    Payment,
    PortalReturn,
    ProcessorRefund,
    RefundState,
    ReturnState,
    SourceName,
    SourceReport,
    StoreReturn,
)
from .money import Money


class Severity(StrEnum):
    """How urgently an agent should act on a flag."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}


class FlagCode(StrEnum):
    """Every discrepancy the reconciler can raise."""

    RETURN_NOT_IN_ERP = "RETURN_NOT_IN_ERP"
    ERP_REFUND_NOT_AT_PROCESSOR = "ERP_REFUND_NOT_AT_PROCESSOR"
    STORE_RETURN_NOT_IN_INVENTORY = "STORE_RETURN_NOT_IN_INVENTORY"
    PROCESSOR_REFUND_NOT_IN_ERP = "PROCESSOR_REFUND_NOT_IN_ERP"
    DUPLICATE_REFUND = "DUPLICATE_REFUND"
    OVER_REFUND = "OVER_REFUND"
    REFUND_AMOUNT_MISMATCH = "REFUND_AMOUNT_MISMATCH"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    REFUND_PENDING_STALE = "REFUND_PENDING_STALE"
    REFUND_FAILED_ERP_REFUNDED = "REFUND_FAILED_ERP_REFUNDED"
    DISPUTE_WITH_REFUND = "DISPUTE_WITH_REFUND"
    RECEIVED_NOT_REFUNDED = "RECEIVED_NOT_REFUNDED"
    RETURN_STATE_DIVERGENCE = "RETURN_STATE_DIVERGENCE"
    SOURCE_UNAVAILABLE = "SOURCE_UNAVAILABLE"


@dataclass(frozen=True)
class Evidence:
    """What one source said that backs a flag."""

    source: SourceName
    said: str


@dataclass(frozen=True)
class Flag:
    """A discrepancy between sources, in words an agent can act on."""

    code: FlagCode
    severity: Severity
    message: str
    evidence: tuple[Evidence, ...]
    suggested_action: str
    subject: str | None = None


@dataclass(frozen=True)
class TimelineEvent:
    """One thing that happened to the order, as one source recorded it."""

    at: datetime
    source: SourceName
    text: str


@dataclass(frozen=True)
class MergedReturn:
    """One return seen across the portal, the ERP and the store."""

    key: str
    state: ReturnState
    channel: str
    portal: PortalReturn | None = None
    erp_ra: ErpReturnAuthorization | None = None
    receipts: tuple[ErpItemReceipt, ...] = ()
    credit_memos: tuple[ErpCreditMemo, ...] = ()
    store_return: StoreReturn | None = None

    @property
    def created_at(self) -> datetime | None:
        for source in (self.portal, self.erp_ra, self.store_return):
            if source is not None:
                return source.created_at
        return None


@dataclass(frozen=True)
class MergedRefund:
    """One refund seen across the processor and the ERP."""

    key: str
    amount: Money
    state: RefundState
    created_at: datetime
    processor: ProcessorRefund | None = None
    erp_refund: ErpCustomerRefund | None = None
    erp_credit_memo: ErpCreditMemo | None = None
    return_key: str | None = None


@dataclass(frozen=True)
class RefundEligibility:
    """How much can still be refunded, and whether an agent should."""

    captured: Money | None
    refunded: Money | None
    pending: Money | None
    remaining: Money | None
    eligible: bool
    reason: str


@dataclass(frozen=True)
class InventoryLine:
    """A returned SKU and whether the ERP has credited it back to stock."""

    sku: str
    quantity: int
    channel: str
    location: str | None
    received_quantity: int
    status: str  # "credited" | "pending" | "unknown"


@dataclass(frozen=True)
class ErpConfirmation:
    """Which ERP documents confirm the return and refund."""

    sales_order: str | None
    return_authorizations: tuple[str, ...]
    item_receipts: tuple[str, ...]
    credit_memos: tuple[str, ...]
    customer_refunds: tuple[str, ...]
    status: str  # "confirmed" | "partial" | "none" | "unknown"


@dataclass(frozen=True)
class OrderTruth:
    """The one authoritative record for an order, with its discrepancies flagged."""

    order_number: str
    order_name: str
    generated_at: datetime
    found: bool
    currency: str | None
    order_status: str
    headline: str
    eligibility: RefundEligibility
    payments: tuple[Payment, ...]
    disputes: tuple[Dispute, ...]
    returns: tuple[MergedReturn, ...]
    refunds: tuple[MergedRefund, ...]
    inventory: tuple[InventoryLine, ...]
    erp: ErpConfirmation
    timeline: tuple[TimelineEvent, ...]
    sources: dict[SourceName, SourceReport]
    flags: tuple[Flag, ...] = field(default=())

    @property
    def partial(self) -> bool:
        """True when at least one configured source did not answer."""
        return any(
            not r.status.answered and r.status != "not_configured"
            for r in self.sources.values()
        )

    def freshness(self, source: SourceName) -> timedelta | None:
        """How old a source's answer is, relative to when this record was built."""
        as_of = self.sources[source].as_of
        return None if as_of is None else self.generated_at - as_of


FLAG_TITLES: dict[FlagCode, str] = {
    FlagCode.RETURN_NOT_IN_ERP: "Return not in ERP",
    FlagCode.ERP_REFUND_NOT_AT_PROCESSOR: "ERP refund never reached the processor",
    FlagCode.STORE_RETURN_NOT_IN_INVENTORY: "Store return not in inventory",
    FlagCode.PROCESSOR_REFUND_NOT_IN_ERP: "Processor refund not booked in ERP",
    FlagCode.DUPLICATE_REFUND: "Duplicate refund",
    FlagCode.OVER_REFUND: "Over-refund",
    FlagCode.REFUND_AMOUNT_MISMATCH: "Refund amounts differ",
    FlagCode.CURRENCY_MISMATCH: "Currencies differ",
    FlagCode.REFUND_PENDING_STALE: "Refund stuck",
    FlagCode.REFUND_FAILED_ERP_REFUNDED: "Refund failed, ERP says paid",
    FlagCode.DISPUTE_WITH_REFUND: "Dispute on a refunded order",
    FlagCode.RECEIVED_NOT_REFUNDED: "Received, not refunded",
    FlagCode.RETURN_STATE_DIVERGENCE: "Return state differs",
    FlagCode.SOURCE_UNAVAILABLE: "Source unavailable",
}
