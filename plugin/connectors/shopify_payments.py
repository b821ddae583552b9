"""Shopify Payments connector: the processor's view of an order, from the Admin GraphQL API.

Captures and refunds are the order's transactions on the `shopify_payments` gateway;
chargebacks are the order's disputes (`Order.disputes`, then `ShopifyPaymentsDispute`
nodes for their amounts and deadlines). Scopes: read_orders and
read_shopify_payments_disputes; write_orders for refunds from the sidebar.

Refunds from the sidebar are `refundCreate` with one REFUND transaction against the sale,
sent with Shopify's `@idempotent(key:)` directive (mandatory from API version 2026-04) and
our key in the refund's note, so the order's refunds can be searched for it before any
retry. Shopify Payments has no way to cancel a refund once made.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, time
from typing import Any

from marshmallow import fields

from plugin.core.model import (
    Dispute,
    DisputeState,
    OrderRef,
    Payment,
    ProcessorFacts,
    ProcessorRefund,
    RefundState,
    SourceName,
)
from plugin.core.money import Money

from .base import (
    OPTIONAL,
    BadResponseError,
    CurrencyCode,
    NotFoundError,
    NotSentError,
    UpstreamError,
    UtcDateTime,
    VendorSchema,
)
from .descriptor import Connector, Field, state_table
from .shopify_pos import (
    DEFAULT_API_VERSION,
    TRANSACTION_FIELDS,
    MoneyV2Schema,
    ShopifyAdminClient,
    TransactionSchema,
    order_search,
    orders_response,
    transaction_tender,
)

logger = logging.getLogger(__name__)

GATEWAY = "shopify_payments"
# OrderTransactionStatus → a refund's state (an unlisted value is UNKNOWN, shown as such).
REFUND_STATES: dict[str, RefundState] = {
    "SUCCESS": RefundState.SUCCEEDED,
    "PENDING": RefundState.PENDING,
    "AWAITING_RESPONSE": RefundState.PENDING,
    "FAILURE": RefundState.FAILED,
    "ERROR": RefundState.FAILED,
}
# DisputeStatus. ACCEPTED is conceded: like LOST, the money stays with the cardholder.
DISPUTE_STATES: dict[str, DisputeState] = {
    "NEEDS_RESPONSE": DisputeState.OPEN,
    "UNDER_REVIEW": DisputeState.OPEN,
    "WON": DisputeState.WON,
    "LOST": DisputeState.LOST,
    "ACCEPTED": DisputeState.LOST,
    "CHARGE_REFUNDED": DisputeState.CLOSED,
    "PREVENTED": DisputeState.CLOSED,
}
_PAYMENT_KINDS = frozenset({"SALE", "CAPTURE"})

ORDER_PAYMENTS_QUERY = """
query OrderPayments($query: String!) {
  orders(first: 5, query: $query) {
    nodes {
      id
      name
      currencyCode
      presentmentCurrencyCode
      transactions(first: 50) { ...TransactionFields }
      disputes { id status initiatedAs }
    }
  }
}
""".strip() + "\n" + TRANSACTION_FIELDS

DISPUTES_QUERY = """
query Disputes($ids: [ID!]!) {
  nodes(ids: $ids) {
    ... on ShopifyPaymentsDispute {
      id
      status
      type
      initiatedAt
      finalizedOn
      evidenceDueBy
      amount { amount currencyCode }
      reasonDetails { reason }
    }
  }
}
""".strip()


REFUND_FIELDS = """
fragment RefundFields on Refund {
  id
  note
  createdAt
  transactions(first: 10) { nodes { ...TransactionFields } }
}
""".strip() + "\n" + TRANSACTION_FIELDS

# The sale's order, and the order's refunds (to find one our key made).
PAYMENT_REFUNDS_QUERY = """
query PaymentRefunds($id: ID!) {
  node(id: $id) {
    ... on OrderTransaction {
      id
      order { id refunds(first: 100) { ...RefundFields } }
    }
  }
}
""".strip() + "\n" + REFUND_FIELDS

# The key goes in as a literal, as Shopify's examples write it (ours is [a-z0-9-] only).
REFUND_CREATE_MUTATION = """
mutation RefundCreate($input: RefundInput!) {
  refundCreate(input: $input) @idempotent(key: %s) {
    refund { ...RefundFields }
    userErrors { field message }
  }
}
""".strip() + "\n" + REFUND_FIELDS


class DisputeSummarySchema(VendorSchema):
    """OrderDisputeSummary."""

    id = fields.String(required=True)
    status = fields.String(required=True)
    initiated_as = fields.String(data_key="initiatedAs", **OPTIONAL)


class PaymentsOrderSchema(VendorSchema):
    """The Order fields this connector reads."""

    id = fields.String(required=True)
    name = fields.String(required=True)
    currency_code = CurrencyCode(required=True, data_key="currencyCode")
    presentment_currency_code = CurrencyCode(data_key="presentmentCurrencyCode", **OPTIONAL)
    transactions = fields.List(fields.Nested(TransactionSchema), load_default=list,
                               allow_none=True)
    disputes = fields.List(fields.Nested(DisputeSummarySchema), load_default=list,
                           allow_none=True)


ORDERS_RESPONSE = orders_response(PaymentsOrderSchema)


class ReasonSchema(VendorSchema):
    """ShopifyPaymentsDisputeReasonDetails."""

    reason = fields.String(**OPTIONAL)


class DisputeNodeSchema(VendorSchema):
    """ShopifyPaymentsDispute (a node the query didn't match comes back empty)."""

    id = fields.String(**OPTIONAL)
    status = fields.String(**OPTIONAL)
    initiated_at = UtcDateTime(data_key="initiatedAt", **OPTIONAL)
    finalized_on = fields.Date(data_key="finalizedOn", **OPTIONAL)
    evidence_due_by = fields.Date(data_key="evidenceDueBy", **OPTIONAL)
    amount = fields.Nested(MoneyV2Schema, **OPTIONAL)
    reason_details = fields.Nested(ReasonSchema, data_key="reasonDetails", **OPTIONAL)


class _Nodes(VendorSchema):
    nodes = fields.List(fields.Nested(DisputeNodeSchema, allow_none=True), required=True)


class DisputesResponseSchema(VendorSchema):
    """The answer to DISPUTES_QUERY."""

    data = fields.Nested(_Nodes, required=True)


class _TransactionNodes(VendorSchema):
    nodes = fields.List(fields.Nested(TransactionSchema), load_default=list)


class RefundSchema(VendorSchema):
    """Refund (its transactions carry the money)."""

    id = fields.String(required=True)
    note = fields.String(**OPTIONAL)
    created_at = UtcDateTime(data_key="createdAt", **OPTIONAL)
    transactions = fields.Nested(_TransactionNodes, load_default=dict)


class _RefundsOrder(VendorSchema):
    id = fields.String(required=True)
    refunds = fields.List(fields.Nested(RefundSchema), load_default=list)


class _PaymentNode(VendorSchema):
    id = fields.String(**OPTIONAL)
    order = fields.Nested(_RefundsOrder, **OPTIONAL)


class _NodeRoot(VendorSchema):
    node = fields.Nested(_PaymentNode, allow_none=True, load_default=None)


class PaymentRefundsResponseSchema(VendorSchema):
    """The answer to PAYMENT_REFUNDS_QUERY."""

    data = fields.Nested(_NodeRoot, required=True)


class RefundCreatePayloadSchema(VendorSchema):
    """RefundCreatePayload once its userErrors were found empty."""

    refund = fields.Nested(RefundSchema, required=True)


class ShopifyPaymentsClient(ShopifyAdminClient):
    """Payments, refunds and chargebacks on the shopify_payments gateway for an order."""

    system = "shopify_payments"
    source = SourceName.PROCESSOR

    def fetch(self, order: OrderRef) -> ProcessorFacts:
        """The order's Shopify Payments captures, refunds and disputes."""
        body = self.graphql(ORDER_PAYMENTS_QUERY, {"query": order_search(order.name)})
        nodes = self.load(ORDERS_RESPONSE, body)["data"]["orders"]["nodes"]
        node = next((n for n in nodes if n["name"] == order.name), None)
        if node is None:
            return ProcessorFacts(order_name=order.name)
        ours = [t for t in node["transactions"] or []
                if (t["gateway"] or "").strip().lower() == GATEWAY]
        payments = [self._payment(t) for t in ours if t["kind"] in _PAYMENT_KINDS
                    and (t["status"] or "").upper() == "SUCCESS"]
        if not payments:
            return ProcessorFacts(order_name=order.name)
        first = payments[0].payment_id
        refunds = [self._refund(t, first) for t in ours if t["kind"] == "REFUND"]
        disputes = self._disputes(node["disputes"] or [], payments)
        return ProcessorFacts(order_name=order.name, payments=tuple(payments),
                              refunds=tuple(refunds), disputes=tuple(disputes))

    # -- refunds from the sidebar

    # The note that names our key: Shopify shows it on the order's refund, and we search
    # the order's refunds for it before any retry.
    KEY_NOTE = "[{key}]"

    def create_refund(self, *, payment_id: str, amount: int, currency: str,
                      reason: str | None, metadata: Mapping[str, str],
                      idempotency_key: str) -> dict[str, Any]:
        """refundCreate: one REFUND transaction of `amount` (minor units of the order's
        presentment currency) against the sale `payment_id`, notifying nobody (the agent
        writes to the customer). A refund our key already made is returned instead."""
        try:
            order_id, found = self._order_and_refund(payment_id, idempotency_key)
        except UpstreamError as exc:
            raise NotSentError(f"couldn't read the order's refunds first, so nothing was sent "
                               f"({exc})", system=self.system) from exc
        if found is not None:
            return found
        money = Money(amount, currency)
        words = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(metadata.items()))
        why = f" ({reason.replace('_', ' ')})" if reason else ""
        note = (f"Refund from the helpdesk{why}: {words} "
                f"{self.KEY_NOTE.format(key=idempotency_key)}")
        refund_input = {
            "orderId": order_id, "note": note, "notify": False, "currency": money.currency,
            "transactions": [{"orderId": order_id, "parentId": payment_id,
                              "amount": str(money.to_decimal()), "gateway": GATEWAY,
                              "kind": "REFUND"}],
        }
        payload = self.mutate(REFUND_CREATE_MUTATION % json.dumps(idempotency_key),
                              {"input": refund_input}, "refundCreate")
        refund = self.load(RefundCreatePayloadSchema, payload)["refund"]
        return self._answer(refund, payment_id)

    def find_refund(self, payment_id: str, idempotency_key: str) -> dict[str, Any] | None:
        """The refund of this sale's order that our key made, if Shopify has one."""
        return self._order_and_refund(payment_id, idempotency_key)[1]

    def _order_and_refund(self, payment_id: str, key: str) -> tuple[str, dict[str, Any] | None]:
        body = self.graphql(PAYMENT_REFUNDS_QUERY, {"id": payment_id})
        node = self.load(PaymentRefundsResponseSchema, body)["data"]["node"]
        if not node or not node.get("order"):
            raise NotFoundError(f"has no order transaction {payment_id}", system=self.system)
        order = node["order"]
        marker = self.KEY_NOTE.format(key=key)
        mine = [r for r in order["refunds"] if marker in (r.get("note") or "")]
        return order["id"], self._answer(mine[0], payment_id) if mine else None

    def _answer(self, refund: dict[str, Any], payment_id: str) -> dict[str, Any]:
        """The refund as the record names it: its REFUND transaction against the sale (the
        id the record lists), with the Refund's own id beside it."""
        txns = [t for t in refund["transactions"].get("nodes") or []
                if t["kind"] == "REFUND"
                and ((t["parent_transaction"] or {}).get("id") == payment_id
                     or (t["gateway"] or "").strip().lower() == GATEWAY)]
        txn = txns[0] if txns else None
        return {"id": txn["id"] if txn else refund["id"], "refund": refund["id"],
                "status": (txn["status"] or "").lower() if txn else None,
                "note": refund.get("note")}

    def _payment(self, t: dict[str, Any]) -> Payment:
        amount = self.money_of(t["amount_set"])
        tender, label = transaction_tender(t, at_store=False)
        return Payment(payment_id=t["id"], amount=amount, amount_captured=amount,
                       status_raw=t["status"] or "", created_at=t["processed_at"] or t["created_at"],
                       payment_method=tender.value, tender=tender, tender_label=label,
                       gateway=t["gateway"], amount_shop=self.shop_money_of(t["amount_set"]))

    def _refund(self, t: dict[str, Any], first_payment: str) -> ProcessorRefund:
        status = (t["status"] or "").upper()
        tender, label = transaction_tender(t, at_store=False)
        return ProcessorRefund(
            refund_id=t["id"],
            payment_id=(t["parent_transaction"] or {}).get("id") or first_payment,
            amount=self.money_of(t["amount_set"]),
            state=REFUND_STATES.get(status, RefundState.UNKNOWN),
            status_raw=status,
            created_at=t["processed_at"] or t["created_at"],
            tender=tender,
            tender_label=label,
            amount_shop=self.shop_money_of(t["amount_set"]),
        )

    def _disputes(self, summaries: list[dict[str, Any]], payments: list[Payment]) -> list[Dispute]:
        """Each dispute with its amount and deadline (one more query, only when there are any)."""
        if not summaries:
            return []
        try:
            body = self.graphql(DISPUTES_QUERY, {"ids": [d["id"] for d in summaries]})
        except BadResponseError as e:
            if e.code != "ACCESS_DENIED":
                raise
            # Token without read_shopify_payments_disputes: the order's summaries still say
            # a chargeback exists and its status; amounts and deadlines are unknown.
            logger.warning("shopify_payments: no dispute details (%s)", e)
            body = {"data": {"nodes": []}}
        details = {n["id"]: n for n in self.load(DisputesResponseSchema, body)["data"]["nodes"]
                   if n and n.get("id")}
        captured = payments[0].amount_captured
        out = []
        for summary in summaries:
            detail = details.get(summary["id"], {})
            status = (detail.get("status") or summary["status"]).upper()
            amount = detail.get("amount")
            out.append(Dispute(
                dispute_id=summary["id"],
                payment_id=payments[0].payment_id,
                # Without the dispute's own amount (scope missing), a chargeback is for the
                # whole payment: the cautious figure for what may go back.
                amount=self.money(amount["amount"], amount["currency_code"]) if amount
                else captured,
                status_raw=status,
                state=DISPUTE_STATES.get(status, DisputeState.UNKNOWN),
                created_at=detail.get("initiated_at") or payments[0].created_at,
                reason=(detail.get("reason_details") or {}).get("reason"),
                due_by=_end_of(detail.get("evidence_due_by")),
                closed_at=_end_of(detail.get("finalized_on")),
            ))
        return out


def _end_of(day: Any) -> datetime | None:
    return datetime.combine(day, time(23, 59, 59), UTC) if day else None


DESCRIPTOR = Connector(
    system="shopify_payments",
    title="Shopify Payments",
    source=SourceName.PROCESSOR,
    client=ShopifyPaymentsClient,
    hosts=(".myshopify.com",),
    credentials=(Field("access_token", "Admin API access token",
                       "A custom app token with read_orders and "
                       "read_shopify_payments_disputes, and write_orders for refunds from "
                       "the sidebar (shpat_…).", secret=True,
                       env="SHOPIFY_PAYMENTS_ACCESS_TOKEN"),),
    options=(
        Field("shop", "Shop", "acme (for acme.myshopify.com)", required=False,
              env="SHOPIFY_PAYMENTS_SHOP"),
        Field("api_version", "API version", f"default {DEFAULT_API_VERSION}", required=False,
              env="SHOPIFY_PAYMENTS_API_VERSION", default=DEFAULT_API_VERSION),
    ),
    base_url_env="SHOPIFY_PAYMENTS_BASE_URL",
    shop_gateways=frozenset({GATEWAY}),
    quotes="Orders are found by name; its payments and refunds are the order's transactions on "
           "the shopify_payments gateway (their gids are the payment and refund ids).",
    states={"transaction status (refunds)": state_table(REFUND_STATES),
            "dispute status": state_table(DISPUTE_STATES)},
    sandbox="shopify_payments",
    writes=frozenset({"refund"}),
)
