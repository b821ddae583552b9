"""Simulated Shopify Payments: the same shop when Shopify Payments is its card processor.

Every seeded order is served as a Shopify Payments merchant would see it: the card sale on
the `shopify_payments` gateway, each card refund as a REFUND transaction, each chargeback
as an order dispute (`Order.disputes`) and a `ShopifyPaymentsDispute` node with its amount
and deadline. The POS connector of the installation that uses it reads the same shop here.

`refundCreate` refunds the card sale (one shared ledger with the simulated Stripe: the same
shop's card money), keeps the `@idempotent(key:)` directive's key (required from API
version 2026-04; the same key replays the first answer, with other input it is an error),
and refuses with userErrors what Shopify refuses: more than is left, a disputed sale, a
parent that isn't the order's sale. `node(id:)` on a sale answers with its order's refunds.
"""

from __future__ import annotations

import json
import re
import uuid
import zlib
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Response, request

from ...core.model import SourceName
from ...core.money import Money, MoneyError
from ..dialects import (
    JSON,
    shopify_graphql_error,
    shopify_orders_response,
    shopify_transaction,
    stripe_refund,
)
from ..scenarios import OrderData
from ..state import IdempotencyConflict
from .common import Refusal, SandboxVendor, json_response, order_fault, state, vendor_blueprint
from .shopify import CREDENTIALS, OPTIONS, error, graphql_request, searched_order
from .stripe import charged_back, refundable_left

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
    compact = query.replace(" ", "")
    if "refundCreate(" in compact:
        response = json_response(_refund_create(version, query, variables))
    elif "node(id:" in compact:
        response = json_response({"data": {"node": _sale_node(variables.get("id"))}})
    elif "nodes(ids:" in compact:
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
        txns.append(_refund_transaction(refund, sale_id))
    node["transactions"] = txns
    node["disputes"] = [{"id": _dispute_gid(number, i), "status": _DISPUTE_STATUS.get(
        d["status"], "UNDER_REVIEW"), "initiatedAs": "CHARGEBACK"}
        for i, d in enumerate(data.disputes)]
    return node


def _refund_transaction(refund: JSON, sale_id: int | None) -> JSON:
    """A card refund as the REFUND transaction Shopify Payments lists for it."""
    refund = state().ledger.as_now(refund)
    return shopify_transaction(
        zlib.crc32(refund["id"].encode()), "REFUND", GATEWAY,
        Money(refund["amount"], refund["currency"].upper()),
        datetime.fromtimestamp(refund["created"], UTC),
        status=_REFUND_STATUS.get(refund["status"] or "", "UNKNOWN"), card=("Visa", "4242"),
        parent=sale_id)


# -- refunds (refundCreate) and the sale's refunds (node)

_KEY_LITERAL = re.compile(r"""@idempotent\(\s*key:\s*"((?:[^"\\]|\\.)*)"\s*\)""")
_KEY_VARIABLE = re.compile(r"@idempotent\(\s*key:\s*\$(\w+)\s*\)")
# From this version on Shopify refuses refundCreate without the directive.
_KEY_REQUIRED_FROM = "2026-04"


def _sale(number: str, data: OrderData) -> tuple[str, JSON] | None:
    """The order's card sale (its gid on Shopify Payments) and the card payment behind it."""
    assert data.shopify_order is not None
    for txn in data.shopify_order["transactions"]:
        if txn["gateway"] == "stripe" and txn["kind"] in ("SALE", "CAPTURE"):
            payment = next((p for p in data.payment_intents
                            if p["latest_charge"] == txn.get("authorizationCode")), None)
            if payment is None and data.payment_intents:
                payment = data.payment_intents[0]
            if payment is not None:
                return txn["id"], payment
    return None


def _order_of_sale(sale_gid: Any) -> tuple[str, OrderData, JSON] | None:
    for number, data in state().orders().items():
        if data.shopify_order is not None:
            sale = _sale(number, data)
            if sale is not None and sale[0] == sale_gid:
                return number, data, sale[1]
    return None


def _refund_node(refund: JSON, sale_gid: str) -> JSON:
    meta = refund.get("metadata") or {}
    return {
        "id": meta["shopify_refund"],
        "note": meta.get("shopify_note"),
        "createdAt": datetime.fromtimestamp(refund["created"], UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"),
        "transactions": {"nodes": [_refund_transaction(
            refund, int(sale_gid.rsplit("/", 1)[1]))]},
    }


def _sale_node(sale_gid: Any) -> JSON | None:
    """node(id:) on a sale: the transaction and its order's refunds made through refundCreate."""
    found = _order_of_sale(sale_gid)
    if found is None:
        return None
    number, data, payment = found
    order_fault(number)
    assert data.shopify_order is not None
    refunds = [_refund_node(r, sale_gid) for r in state().ledger.refunds()
               if r["payment_intent"] == payment["id"]
               and (r.get("metadata") or {}).get("shopify_refund")]
    return {"id": sale_gid, "order": {"id": data.shopify_order["id"], "refunds": refunds}}


def _user_errors(field: list[str], message: str) -> JSON:
    return {"data": {"refundCreate": {"refund": None, "userErrors": [
        {"field": field, "message": message}]}}}


def _refund_create(version: str, query: str, variables: dict[str, Any]) -> JSON:
    """refundCreate(input:) @idempotent(key:) for one REFUND transaction on the card sale."""
    literal, named = _KEY_LITERAL.search(query), _KEY_VARIABLE.search(query)
    key = json.loads(f'"{literal[1]}"') if literal else (
        variables.get(named[1]) if named else None)
    if key is None and version != "unstable" and version >= _KEY_REQUIRED_FROM:
        return shopify_graphql_error("The @idempotent directive is required for this "
                                     "mutation.", "BAD_REQUEST")
    refund_input = variables.get("input")
    if not isinstance(refund_input, dict):
        return shopify_graphql_error("Variable $input of type RefundInput! was provided "
                                     "invalid value", "argumentLiteralsIncompatible")
    txns = refund_input.get("transactions") or []
    if len(txns) != 1 or not isinstance(txns[0], dict):
        return _user_errors(["transactions"], "The sandbox refunds one transaction at a time.")
    txn = txns[0]
    found = _order_of_sale(txn.get("parentId"))
    if found is None:
        return _user_errors(["transactions", "0", "parentId"], "Parent transaction not found")
    number, data, payment = found
    order_fault(number)
    assert data.shopify_order is not None
    if refund_input.get("orderId") != data.shopify_order["id"] \
            or txn.get("orderId") != data.shopify_order["id"]:
        return _user_errors(["orderId"], "Order does not exist")
    if txn.get("kind") != "REFUND" or txn.get("gateway") != GATEWAY:
        return _user_errors(["transactions", "0", "gateway"],
                            "Refunds must be made on the parent transaction's gateway")
    currency = payment["currency"].upper()
    if (refund_input.get("currency") or currency).upper() != currency:
        return _user_errors(["currency"], f"Currency must be the order's presentment "
                                          f"currency ({currency})")
    try:
        amount = Money.from_decimal(Decimal(str(txn.get("amount"))), currency)
    except (InvalidOperation, MoneyError, ValueError):
        return _user_errors(["transactions", "0", "amount"], "Amount is invalid")
    fingerprint = json.dumps(refund_input, sort_keys=True)
    ledger = state().ledger
    with ledger.lock:
        if key is not None:
            try:
                prior = ledger.replay(f"shopify:{key}", fingerprint)
            except IdempotencyConflict:
                return shopify_graphql_error("The idempotency key was already used with "
                                             "different input.", "IDEMPOTENCY_CONFLICT")
            if prior is not None:
                return prior
        if amount.amount_minor <= 0:
            return _user_errors(["transactions", "0", "amount"],
                                "Amount must be greater than zero")
        if charged_back(data, payment):
            return _user_errors(["transactions", "0", "parentId"],
                                "The transaction has an open chargeback and can't be refunded")
        left = refundable_left(data, payment)
        if amount.amount_minor > left:
            return _user_errors(["transactions", "0", "amount"],
                                f"Amount cannot exceed the refundable amount of "
                                f"{Money(max(left, 0), currency).to_decimal()}")
        refund_id = f"re_Sbx{uuid.uuid4().hex[:24]}"
        refund_gid = f"gid://shopify/Refund/{zlib.crc32(refund_id.encode()) + 1}"
        refund = stripe_refund(refund_id, payment, amount,
                               state().now(), reason=None,
                               metadata={"shopify_refund": refund_gid,
                                         "shopify_note": str(refund_input.get("note") or "")})
        answer = {"data": {"refundCreate": {"refund": _refund_node(refund, txn["parentId"]),
                                            "userErrors": []}}}
        ledger.record(refund, f"shopify:{key}" if key is not None else None, fingerprint)
        if key is not None:
            ledger.remember(f"shopify:{key}", fingerprint, answer)
    return answer


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
