"""Simulated Shopify Payments: the same shop when Shopify Payments is its card processor.

Every seeded order is served as a Shopify Payments merchant would see it: the card sale on
the `shopify_payments` gateway, each card refund as a REFUND transaction, each chargeback
as an order dispute (`Order.disputes`) and a `ShopifyPaymentsDispute` node with its amount
and deadline. The POS connector of the installation that uses it reads the same shop here.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from typing import Any

from flask import Response, request

from ...core.model import SourceName
from ...core.money import Money
from ..dialects import JSON, shopify_orders_response, shopify_transaction
from ..scenarios import OrderData
from .common import Refusal, SandboxVendor, json_response, order_fault, state, vendor_blueprint
from .shopify import CREDENTIALS, OPTIONS, error, graphql_request, searched_order

PATH = "shopify-payments"
GATEWAY = "shopify_payments"
_REFUND_STATUS = {"succeeded": "SUCCESS", "pending": "PENDING", "requires_action": "PENDING",
                  "failed": "FAILURE", "canceled": "FAILURE"}
_DISPUTE_STATUS = {"warning_needs_response": "NEEDS_RESPONSE", "needs_response": "NEEDS_RESPONSE",
                   "warning_under_review": "UNDER_REVIEW", "under_review": "UNDER_REVIEW",
                   "won": "WON", "lost": "LOST", "warning_closed": "PREVENTED",
                   "prevented": "PREVENTED"}


def _auth() -> None:
    if request.headers.get("X-Shopify-Access-Token") != CREDENTIALS["access_token"]:
        raise Refusal(error(401))


blueprint = vendor_blueprint("shopify_payments", PATH, SourceName.PROCESSOR, error, _auth)


@blueprint.post("/admin/api/<version>/graphql.json")
def graphql(version: str) -> Response:
    """Answer the orders query, or nodes(ids:) for the disputes it named."""
    query, variables = graphql_request(version)
    if "nodes(ids:" in query.replace(" ", ""):
        response = json_response({"data": {"nodes": _dispute_nodes(variables.get("ids") or [])}})
    else:
        number = searched_order(variables)
        order_fault(number)
        data = state().order(number)
        nodes = [_as_shopify_payments(number, data)] if number and data and data.shopify_order \
            else []
        response = json_response(shopify_orders_response(nodes))
    response.headers["X-Shopify-API-Version"] = version
    return response


def _as_shopify_payments(number: str, data: OrderData) -> JSON:
    """The order node with its card money on Shopify Payments instead of Stripe."""
    assert data.shopify_order is not None
    node = dict(data.shopify_order)
    txns = []
    sale_id = None
    for txn in node["transactions"]:
        if txn["gateway"] == "stripe":
            txn = {**txn, "gateway": GATEWAY, "authorizationCode": None}
            sale_id = sale_id or int(txn["id"].rsplit("/", 1)[1])
        txns.append(txn)
    for refund in _stripe_refunds(data):
        txns.append(shopify_transaction(
            zlib.crc32(refund["id"].encode()), "REFUND", GATEWAY,
            Money(refund["amount"], refund["currency"].upper()),
            datetime.fromtimestamp(refund["created"], UTC),
            status=_REFUND_STATUS.get(refund["status"] or "", "UNKNOWN"), card=("Visa", "4242"),
            parent=sale_id))
    node["transactions"] = txns
    node["disputes"] = [{"id": _dispute_gid(number, i), "status": _DISPUTE_STATUS.get(
        d["status"], "UNDER_REVIEW"), "initiatedAs": "CHARGEBACK"}
        for i, d in enumerate(data.disputes)]
    return node


def _stripe_refunds(data: OrderData) -> list[JSON]:
    ids = {p["id"] for p in data.payment_intents}
    created = [r for r in state().ledger.refunds() if r["payment_intent"] in ids]
    return [*data.refunds, *created]


def _dispute_gid(number: str, index: int) -> str:
    return f"gid://shopify/ShopifyPaymentsDispute/{number}{index:02d}"


def _dispute_nodes(ids: list[Any]) -> list[JSON | None]:
    out: list[JSON | None] = []
    orders = state().orders()
    for gid in ids:
        out.append(next((_dispute_node(number, i, d) for number, data in orders.items()
                         for i, d in enumerate(data.disputes)
                         if _dispute_gid(number, i) == gid), None))
    return out


def _dispute_node(number: str, index: int, d: JSON) -> JSON:
    money = Money(d["amount"], d["currency"].upper())
    due = d["evidence_details"]["due_by"]
    return {
        "id": _dispute_gid(number, index),
        "status": _DISPUTE_STATUS.get(d["status"], "UNDER_REVIEW"),
        "type": "CHARGEBACK",
        "initiatedAt": datetime.fromtimestamp(d["created"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "finalizedOn": None,
        "evidenceDueBy": datetime.fromtimestamp(due, UTC).date().isoformat() if due else None,
        "amount": {"amount": str(money.to_decimal()), "currencyCode": money.currency},
        "reasonDetails": {"reason": str(d["reason"]).upper()},
    }


VENDOR = SandboxVendor("shopify_payments", PATH, SourceName.PROCESSOR, blueprint, error,
                       CREDENTIALS, OPTIONS, serves=("shopify_pos",))
