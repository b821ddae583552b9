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
    ReturnOutcome,
    ReturnState,
    SourceName,
    SourceReport,
    StoreReturn,
    Tender,
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
    ORDER_NOT_IN_ERP = "ORDER_NOT_IN_ERP"
    PORTAL_REFUND_NOT_AT_PROCESSOR = "PORTAL_REFUND_NOT_AT_PROCESSOR"
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
    state: ReturnState  # what the customer is told (a terminal portal state wins)
    channel: str  # "mail" | "erp" | "store"
    portal: PortalReturn | None = None
    erp_ra: ErpReturnAuthorization | None = None
    receipts: tuple[ErpItemReceipt, ...] = ()
    credit_memos: tuple[ErpCreditMemo, ...] = ()
    store_return: StoreReturn | None = None
    outcome: ReturnOutcome = ReturnOutcome.UNKNOWN
    authorized_quantity: int | None = None
    received_quantity: int | None = None  # None: nobody says
    received_at: datetime | None = None

    @property
    def created_at(self) -> datetime | None:
        for source in (self.portal, self.erp_ra, self.store_return):
            if source is not None:
                return source.created_at
        return None


@dataclass(frozen=True)
class MergedRefund:
    """One refund at the processor with the ERP documents that book it (or an ERP-only one)."""

    key: str
    amount: Money
    state: RefundState
    created_at: datetime
    processor: ProcessorRefund | None = None
    erp_refunds: tuple[ErpCustomerRefund, ...] = ()
    erp_credit_memos: tuple[ErpCreditMemo, ...] = ()
    return_key: str | None = None
    match: str | None = None  # how the ERP side was paired: "id", "retry", "sum", "amount"
    retry_of: str | None = None  # a failed attempt this refund retried

    @property
    def erp_refund(self) -> ErpCustomerRefund | None:
        return self.erp_refunds[0] if self.erp_refunds else None

    @property
    def erp_credit_memo(self) -> ErpCreditMemo | None:
        return self.erp_credit_memos[0] if self.erp_credit_memos else None

    @property
    def erp_documents(self) -> tuple[str, ...]:
        return (*(m.tran_id for m in self.erp_credit_memos),
                *(r.tran_id for r in self.erp_refunds))


class MoneyOutKind(StrEnum):
    """Every way value goes back to a customer, whichever system recorded it."""

    REFUND = "refund"  # at the payment processor
    STORE_REFUND = "store_refund"  # at the till or by the shop (cash, card present, gift card)
    STORE_CREDIT = "store_credit"  # store credit or a gift card issued
    EXCHANGE = "exchange"  # a replacement order: no money
    CHARGEBACK = "chargeback"  # a lost or accepted dispute: money out through the bank
    ERP_REFUND = "erp_refund"  # a customer refund / cash refund in the ERP
    ERP_CREDIT_MEMO = "erp_credit_memo"


@dataclass(frozen=True)
class LedgerEntry:
    """One movement of value back to the customer (or a booking that confirms one)."""

    key: str
    kind: MoneyOutKind
    source: SourceName
    amount: Money | None
    tender: Tender
    destination: str  # plain words: "Visa ending 4242", "cash at Brooklyn Store", "store credit"
    state: str  # succeeded, pending, requires_action, failed, canceled, unknown, lost, open, …
    at: datetime
    counted: bool  # counts toward what was given back (bookings of another entry don't)
    return_key: str | None = None
    payment_id: str | None = None
    confirms: tuple[str, ...] = ()  # for a booking: the entries it books
    amount_shop: Money | None = None
    bonus: Money | None = None  # part of `amount` the merchant added (credit bonus), not a payback
    decided_at: datetime | None = None  # a chargeback: when the bank decided, if a source says

    @property
    def funded(self) -> Money | None:
        """What of it came out of the customer's payment."""
        if self.amount is None or self.bonus is None:
            return self.amount
        return self.amount - self.bonus


@dataclass(frozen=True)
class TenderBalance:
    """What one tender took and what went back to it."""

    tender: Tender
    label: str | None
    captured: Money
    paid_back: Money  # refunds succeeded or on their way
    chargebacks: Money  # lost disputes
    refundable: Money


@dataclass(frozen=True)
class RefundEligibility:
    """How much can still be refunded to the original payment, and whether an agent should."""

    captured: Money | None
    refunded: Money | None
    pending: Money | None
    remaining: Money | None
    eligible: bool
    reason: str
    # Across every tender and way of paying back, in the order's currency.
    order_captured: Money | None = None
    order_given_back: Money | None = None
    order_remaining: Money | None = None
    chargebacks: Money | None = None
    tenders: tuple[TenderBalance, ...] = ()


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
    sales_order_id: str | None = None  # the sale document's internal id (what fixes start from)
    sale_kind: str | None = None  # "sales_order" | "cash_sale" | "invoice"


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
    payments: tuple[Payment, ...]  # every tender: processor payments, then the shop's others
    disputes: tuple[Dispute, ...]
    returns: tuple[MergedReturn, ...]
    refunds: tuple[MergedRefund, ...]
    inventory: tuple[InventoryLine, ...]
    erp: ErpConfirmation
    timeline: tuple[TimelineEvent, ...]
    sources: dict[SourceName, SourceReport]
    flags: tuple[Flag, ...] = field(default=())
    ledger: tuple[LedgerEntry, ...] = ()
    headline_meanings: tuple[str, ...] = ()

    @property
    def partial(self) -> bool:
        """True when at least one configured source did not answer."""
        return any(
            not r.status.answered and r.status.in_use
            for r in self.sources.values()
        )

    def freshness(self, source: SourceName) -> timedelta | None:
        """How old a source's answer is, relative to when this record was built."""
        as_of = self.sources[source].as_of
        return None if as_of is None else self.generated_at - as_of


# Which of the recurring gaps a flag belongs to (zones 1-3), or which other check raised it.
FLAG_ZONES: dict[FlagCode, str] = {
    FlagCode.RETURN_NOT_IN_ERP: "zone 1: not in ERP",
    FlagCode.ORDER_NOT_IN_ERP: "zone 1: not in ERP",
    FlagCode.ERP_REFUND_NOT_AT_PROCESSOR: "zone 2: refund not confirmed at processor",
    FlagCode.PROCESSOR_REFUND_NOT_IN_ERP: "zone 2: refund not confirmed at processor",
    FlagCode.PORTAL_REFUND_NOT_AT_PROCESSOR: "zone 2: refund not confirmed at processor",
    FlagCode.STORE_RETURN_NOT_IN_INVENTORY: "zone 3: store return not in inventory",
    FlagCode.DUPLICATE_REFUND: "money",
    FlagCode.OVER_REFUND: "money",
    FlagCode.REFUND_AMOUNT_MISMATCH: "money",
    FlagCode.CURRENCY_MISMATCH: "money",
    FlagCode.REFUND_PENDING_STALE: "money",
    FlagCode.REFUND_FAILED_ERP_REFUNDED: "money",
    FlagCode.DISPUTE_WITH_REFUND: "money",
    FlagCode.RECEIVED_NOT_REFUNDED: "returns",
    FlagCode.RETURN_STATE_DIVERGENCE: "returns",
    FlagCode.SOURCE_UNAVAILABLE: "sources",
}

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
    FlagCode.ORDER_NOT_IN_ERP: "Order not in ERP",
    FlagCode.PORTAL_REFUND_NOT_AT_PROCESSOR: "Portal refund not at processor",
    FlagCode.SOURCE_UNAVAILABLE: "Source unavailable",
}
