"""Shopify Payments connector: the processor's view of an order, from the Admin GraphQL API.

Captures and refunds are the order's transactions on the `shopify_payments` gateway;
chargebacks are the order's disputes (`Order.disputes`, then `ShopifyPaymentsDispute`
nodes for their amounts and deadlines). Scopes: read_orders and
read_shopify_payments_disputes.
"""

from __future__ import annotations

import logging
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

from .base import OPTIONAL, BadResponseError, CurrencyCode, UtcDateTime, VendorSchema
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
                       "read_shopify_payments_disputes (shpat_…).", secret=True,
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
)
