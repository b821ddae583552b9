"""Normalised facts each upstream source reports about one order.

Connectors turn their vendor dialect into these types; the reconciler reads only these, so
every state here is canonical (a vendor's own word survives only as `*_raw`, for display).
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

    @property
    def in_use(self) -> bool:
        """False for a source this merchant doesn't use: it is never "missing" anything."""
        return self is not SourceStatus.NOT_CONFIGURED


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
    """Canonical return lifecycle."""

    REQUESTED = "REQUESTED"
    HELD = "HELD"  # waiting on the merchant's review (flagged, inspection)
    AUTHORIZED = "AUTHORIZED"
    IN_TRANSIT = "IN_TRANSIT"
    PARTIALLY_RECEIVED = "PARTIALLY_RECEIVED"
    RECEIVED = "RECEIVED"
    CLOSED = "CLOSED"
    REJECTED = "REJECTED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    UNKNOWN = "UNKNOWN"  # a state word the vendor sent that we don't know


class ReturnOutcome(StrEnum):
    """What the customer gets back for a return."""

    REFUND = "refund"
    EXCHANGE = "exchange"
    STORE_CREDIT = "store_credit"  # store credit or a gift card
    MIXED = "mixed"  # some lines refunded, some exchanged or credited
    UNKNOWN = "unknown"


class RefundState(StrEnum):
    """Canonical refund lifecycle."""

    APPROVED_IN_ERP = "APPROVED_IN_ERP"
    PENDING = "PENDING"
    REQUIRES_ACTION = "REQUIRES_ACTION"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    UNKNOWN = "UNKNOWN"  # no status, or one we don't know: shown, never assumed


# Refunds that are (or may be) money on its way out: they count against what is refundable.
LIVE_REFUND_STATES = frozenset(
    {RefundState.PENDING, RefundState.REQUIRES_ACTION, RefundState.SUCCEEDED, RefundState.UNKNOWN}
)


class DisputeState(StrEnum):
    """Canonical chargeback lifecycle."""

    OPEN = "open"  # needs a response or under review: funds held
    WON = "won"
    LOST = "lost"  # lost or accepted: the money went back through the bank
    CLOSED = "closed"  # inquiry closed, prevented or refunded: no money moved by the dispute
    UNKNOWN = "unknown"


class Tender(StrEnum):
    """How money moved: the kind of instrument, whichever system moved it."""

    CARD = "card"
    CARD_PRESENT = "card_present"  # a card at the till
    WALLET = "wallet"  # Apple Pay, Google Pay, PayPal …
    BNPL = "bnpl"  # Klarna, Afterpay, Affirm …
    BANK = "bank"
    CASH = "cash"
    GIFT_CARD = "gift_card"
    STORE_CREDIT = "store_credit"
    CHECK = "check"
    OTHER = "other"
    UNKNOWN = "unknown"

    @property
    def via_processor(self) -> bool:
        """Tenders a card processor pays back (the others go back at the till or as credit)."""
        return self in (Tender.CARD, Tender.WALLET, Tender.BNPL, Tender.BANK, Tender.UNKNOWN)


class CreditState(StrEnum):
    """An ERP credit memo's state."""

    OPEN = "open"  # approved, nothing applied or paid yet
    PARTLY_APPLIED = "partly_applied"
    APPLIED = "applied"  # fully applied (to a refund, or to another sale)
    VOIDED = "voided"
    UNKNOWN = "unknown"


# ---------------------------------------------------------------- returns portal


@dataclass(frozen=True)
class ReturnLine:
    """One SKU on a return: how many were authorized, and how many the portal saw arrive."""

    sku: str
    quantity: int
    title: str | None = None
    received_quantity: int | None = None  # None: the portal doesn't say


@dataclass(frozen=True)
class ShippingLabel:
    """The return label the portal issued (raw carrier status, e.g. in_transit, delivered)."""

    carrier: str | None
    tracking_number: str | None
    status: str | None


@dataclass(frozen=True)
class PortalRefund:
    """Money the portal says it sent back, through which gateway and tender."""

    amount: Money
    gateway: str | None = None
    provider_refund_id: str | None = None
    tender: Tender = Tender.UNKNOWN


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
    outcome: ReturnOutcome = ReturnOutcome.UNKNOWN
    outcome_raw: str | None = None
    exchange_order: str | None = None  # the replacement order's name
    exchange_value: Money | None = None  # what the exchange was worth (no money moves)
    credit_issued: Money | None = None  # store credit / gift card issued for the return
    credit_tender: Tender = Tender.STORE_CREDIT

    @property
    def authorized_quantity(self) -> int:
        return sum(line.quantity for line in self.lines)


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
    """A captured payment for the order, on one tender."""

    payment_id: str
    amount: Money
    amount_captured: Money
    status_raw: str
    created_at: datetime
    payment_method: str | None = None
    tender: Tender = Tender.CARD
    tender_label: str | None = None  # "Visa ending 4242", "Klarna", "gift card ending 7788"
    gateway: str | None = None  # the shop's name for the gateway that took it
    amount_shop: Money | None = None  # the same amount in the shop's currency, when it differs
    ids: tuple[str, ...] = ()  # other ids it goes by (charge ids …)
    # Who holds it: the processor (a refund can go back through it) or the shop (POS).
    source: SourceName | None = None


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
    tender: Tender = Tender.CARD
    tender_label: str | None = None
    quoted_ids: tuple[str, ...] = ()  # any other document ids its metadata names
    amount_shop: Money | None = None  # the same amount in the shop's currency, when it differs


@dataclass(frozen=True)
class Dispute:
    """A chargeback on the order's payment."""

    dispute_id: str
    payment_id: str
    amount: Money
    status_raw: str
    state: DisputeState
    created_at: datetime
    reason: str | None = None
    due_by: datetime | None = None
    closed_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.state is DisputeState.OPEN


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
class StockLine:
    """Quantity of a SKU moved at a location."""

    sku: str
    quantity: int
    location: str | None = None


class SaleKind(StrEnum):
    """The ERP documents that record a sale."""

    SALES_ORDER = "sales_order"
    CASH_SALE = "cash_sale"
    INVOICE = "invoice"


@dataclass(frozen=True)
class ErpSale:
    """A sale document for the web/store order (sales order, cash sale or invoice)."""

    internal_id: str
    tran_id: str
    kind: SaleKind
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
    created_from: str | None = None  # the sale document's internal id


@dataclass(frozen=True)
class ErpItemReceipt:
    """Goods received against an RA: the inventory credit."""

    internal_id: str
    tran_id: str
    created_from: str
    created_at: datetime
    lines: tuple[StockLine, ...] = ()


@dataclass(frozen=True)
class ErpApplication:
    """Where a credit memo's money went: a refund, or another sale (store credit used)."""

    doc_id: str
    tran_id: str
    amount: Money
    to_refund: bool  # True: applied to a customer refund; False: to a sale/invoice
    same_order: bool = True


@dataclass(frozen=True)
class ErpCreditMemo:
    """A credit memo (the refund approved in the ERP), from an RA, invoice or cash sale."""

    internal_id: str
    tran_id: str
    created_from: str | None
    amount: Money
    status_raw: str
    created_at: datetime
    state: CreditState = CreditState.UNKNOWN
    applications: tuple[ErpApplication, ...] = ()
    quoted_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ErpCustomerRefund:
    """Money the ERP records as paid back to the customer (customer refund or cash refund)."""

    internal_id: str
    tran_id: str
    applied_to: tuple[str, ...]  # credit memos it pays
    amount: Money
    created_at: datetime
    quoted_ids: tuple[str, ...] = ()  # ids it quotes (processor refund ids, portal ids …)
    tender: Tender = Tender.UNKNOWN
    created_from: str | None = None  # a cash refund's RA or cash sale
    location: str | None = None


@dataclass(frozen=True)
class ErpFacts:
    """The ERP's documents for an order: sales → RA → receipt / credit memo → refund."""

    order_name: str
    sales: tuple[ErpSale, ...] = ()
    return_authorizations: tuple[ErpReturnAuthorization, ...] = ()
    item_receipts: tuple[ErpItemReceipt, ...] = ()
    credit_memos: tuple[ErpCreditMemo, ...] = ()
    customer_refunds: tuple[ErpCustomerRefund, ...] = ()

    @property
    def sales_order(self) -> ErpSale | None:
        """The first sale document (a sales order before a cash sale or invoice)."""
        order = {SaleKind.SALES_ORDER: 0, SaleKind.CASH_SALE: 1, SaleKind.INVOICE: 2}
        ranked = sorted(self.sales, key=lambda s: (order[s.kind], s.created_at, s.internal_id))
        return ranked[0] if ranked else None

    @property
    def found(self) -> bool:
        return bool(self.sales) or bool(self.return_authorizations)


# ---------------------------------------------------------------- shop / store POS


@dataclass(frozen=True)
class StoreReturnLine:
    """A line returned over the counter (restock type as the POS reports it)."""

    sku: str
    quantity: int
    restock_type: str
    location: str | None = None
    amount: Money | None = None


class ShopTransactionKind(StrEnum):
    """Money into or out of the shop's books."""

    PAYMENT = "payment"
    REFUND = "refund"


class ShopTransactionStatus(StrEnum):
    """Whether a shop transaction moved the money."""

    SUCCESS = "success"
    PENDING = "pending"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ShopTransaction:
    """One payment or refund the shop recorded, on one tender."""

    transaction_id: str
    kind: ShopTransactionKind
    status: ShopTransactionStatus
    amount: Money
    tender: Tender
    gateway: str
    created_at: datetime
    refund_id: str | None = None  # the shop refund it belongs to
    location: str | None = None
    tender_label: str | None = None
    amount_shop: Money | None = None
    ids: tuple[str, ...] = ()  # the processor's ids it quotes, when the gateway is a processor


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
    """Everything the shop (online store and POS) knows about an order's money and returns."""

    order_name: str
    order_found: bool = False
    store_returns: tuple[StoreReturn, ...] = ()
    currency: str | None = None
    shop_currency: str | None = None
    transactions: tuple[ShopTransaction, ...] = ()

    @property
    def found(self) -> bool:
        return self.order_found


SourceFacts = PortalFacts | ProcessorFacts | ErpFacts | PosFacts
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
class Facts:
    """The facts of the sources that answered about one order (None: that source didn't)."""

    portal: PortalFacts | None
    processor: ProcessorFacts | None
    erp: ErpFacts | None
    pos: PosFacts | None

    @classmethod
    def from_results(cls, order: OrderRef, results: SourceResults) -> Facts:
        """Each answered source's facts (an empty set for "no such order"), else None."""
        return cls(
            portal=_answered(results.portal, PortalFacts(order.name)),
            processor=_answered(results.processor, ProcessorFacts(order.name)),
            erp=_answered(results.erp, ErpFacts(order.name)),
            pos=_answered(results.pos, PosFacts(order.name)),
        )


def _answered(result: SourceResult[F], empty: F) -> F | None:
    if not result.report.status.answered:
        return None
    return result.facts if result.facts is not None else empty


@dataclass(frozen=True)
class OrderRef:
    """The order an agent asked about, in the forms each upstream keys it by.

    `number` is the bare identifier ("1001": Stripe metadata order_id); `name` is the
    storefront's order name ("#1001": Loop order_name, NetSuite otherrefnum, Shopify name).
    """

    number: str
    name: str
