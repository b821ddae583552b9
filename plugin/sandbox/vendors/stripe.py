"""Simulated Stripe: PaymentIntent search, refunds and disputes, refund creation."""

from __future__ import annotations

import re
import uuid

from flask import Response, request

from ...core.model import SourceName
from ...core.money import Money
from ..dialects import (
    JSON,
    status_phrase,
    stripe_error,
    stripe_list,
    stripe_refund,
    stripe_search_result,
)
from ..scenarios import OrderData
from ..state import IdempotencyConflict
from .common import Refusal, SandboxVendor, json_response, order_fault, state, vendor_blueprint

CREDENTIALS = {"secret_key": "sk_test_sandbox"}
RATE_LIMITED = (
    "Too many requests hit the API too quickly. We recommend an exponential backoff of your "
    "requests."
)


def error(status: int, message: str | None = None) -> Response:
    """Stripe's error envelope."""
    if status == 429:
        body = stripe_error("invalid_request_error", message or RATE_LIMITED, code="rate_limit")
    elif status >= 500:
        body = stripe_error("api_error", message or "An unknown error occurred.")
    else:
        body = stripe_error("invalid_request_error", message or status_phrase(status))
    return json_response(body, status)


def _stripe_refusal(status: int, message: str, *, error_type: str = "invalid_request_error",
                    code: str | None = None, param: str | None = None) -> Refusal:
    return Refusal(json_response(stripe_error(error_type, message, code=code, param=param), status))


def _stripe_auth() -> None:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise _stripe_refusal(
            401, "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
            "YOUR_SECRET_KEY').")
    if key != CREDENTIALS["secret_key"]:
        masked = f"{key[:8]}****{key[-4:]}" if len(key) > 16 else f"{key[:8]}****"
        raise _stripe_refusal(401, f"Invalid API Key provided: {masked}")


stripe = vendor_blueprint("stripe", "stripe", SourceName.PROCESSOR, error, _stripe_auth)

_ORDER_QUERY = re.compile(
    r"""metadata\[(['"])order_id\1\]\s*:\s*(['"])(?P<value>(?:\\.|(?!\2)[^\\])*)\2""")
_ESCAPED = re.compile(r"\\(.)")
_PAGE_TOKEN = re.compile(r"sbx_page_(\d+)")
_DIGITS = re.compile(r"\d+")
_METADATA_PARAM = re.compile(r"metadata\[([^\[\]]+)\]")
_REFUND_PARAMS = frozenset({"payment_intent", "amount", "reason", "currency"})
_REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def _stripe_int(name: str, default: int, low: int, high: int | None = None) -> int:
    raw = request.args.get(name, request.form.get(name))
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw):
        raise _stripe_refusal(400, f"Invalid integer: {raw}", param=name)
    value = int(raw)
    if value < low:
        raise _stripe_refusal(400, f"This value must be greater than or equal to {low}.",
                              param=name)
    if high is not None and value > high:
        raise _stripe_refusal(400, f"This value must be less than or equal to {high}.",
                              param=name)
    return value


def _payment_intent_owner(orders: dict[str, OrderData], pi_id: str) -> tuple[str, JSON]:
    """The order number and PaymentIntent for an id, or a Stripe 404."""
    for number, data in orders.items():
        for payment in data.payment_intents:
            if payment["id"] == pi_id:
                return number, payment
    raise _stripe_refusal(404, f"No such payment_intent: '{pi_id}'", code="resource_missing",
                          param="payment_intent")


def _all_refunds(orders: dict[str, OrderData]) -> list[JSON]:
    ledger = state().ledger
    seeded = [refund for data in orders.values() for refund in data.refunds]
    return [ledger.as_now(refund) for refund in seeded + ledger.refunds()]


def _refund_or_404(orders: dict[str, OrderData], refund_id: str) -> JSON:
    for refund in _all_refunds(orders):
        if refund["id"] == refund_id:
            return refund
    raise _stripe_refusal(404, f"No such refund: '{refund_id}'", code="resource_missing",
                          param="id")


@stripe.get("/v1/refunds/<refund_id>")
def get_refund(refund_id: str) -> Response:
    """Retrieve one refund."""
    orders = state().orders()
    refund = _refund_or_404(orders, refund_id)
    order_fault(_payment_intent_owner(orders, refund["payment_intent"])[0])
    return json_response(refund)


@stripe.post("/v1/refunds/<refund_id>/cancel")
def cancel_refund(refund_id: str) -> Response:
    """Cancel a refund that requires action; Stripe refuses any other state."""
    for name in request.form:
        if name != "expand[]":
            raise _stripe_refusal(400, f"Received unknown parameter: {name}", param=name)
    sandbox = state()
    orders = sandbox.orders()
    key = request.headers.get("Idempotency-Key")
    fingerprint = (request.path, tuple(sorted(request.form.items(multi=True))))
    with sandbox.ledger.lock:
        refund = _refund_or_404(orders, refund_id)
        order_fault(_payment_intent_owner(orders, refund["payment_intent"])[0])
        if key is not None:
            try:
                prior = sandbox.ledger.replay(key, fingerprint)
            except IdempotencyConflict:
                raise _stripe_refusal(
                    409, "Keys for idempotent requests can only be used with the same "
                    "parameters they were first used with.", error_type="idempotency_error") \
                    from None
            if prior is not None:
                response = json_response(prior)
                response.headers["Idempotent-Replayed"] = "true"
                return response
        if refund["status"] != "requires_action":
            raise _stripe_refusal(400, f"Refund {refund_id} has a status of "
                                       f"{refund['status']}; only a refund that requires action "
                                       "can be canceled.")
        sandbox.ledger.cancel(refund_id)
        canceled = sandbox.ledger.as_now(refund)
        if key is not None:
            sandbox.ledger.remember(key, fingerprint, canceled)
    return json_response(canceled)


def _for_payment_intent(objects: list[JSON], orders: dict[str, OrderData]) -> list[JSON]:
    """Apply the payment_intent / charge list filters (and the order's fault)."""
    pi_id = request.args.get("payment_intent")
    if pi_id is not None:
        number, _ = _payment_intent_owner(orders, pi_id)
        order_fault(number)
        objects = [obj for obj in objects if obj["payment_intent"] == pi_id]
    charge = request.args.get("charge")
    if charge is not None:
        objects = [obj for obj in objects if obj["charge"] == charge]
    return objects


def _stripe_page(url: str, kind: str, objects: list[JSON]) -> Response:
    """A list page, newest first, honouring limit / starting_after / ending_before."""
    limit = _stripe_int("limit", 10, 1, 100)
    ordered = [obj for _, obj in sorted(enumerate(objects), reverse=True,
                                        key=lambda pair: (pair[1]["created"], pair[0]))]
    after, before = request.args.get("starting_after"), request.args.get("ending_before")
    if after and before:
        raise _stripe_refusal(400, "You may only specify one of these parameters: "
                                   "ending_before, starting_after.")
    if after:
        ordered = ordered[_position(ordered, after, kind, "starting_after") + 1:]
        page = ordered[:limit]
    elif before:
        ordered = ordered[:_position(ordered, before, kind, "ending_before")]
        page = ordered[-limit:]
    else:
        page = ordered[:limit]
    return json_response(stripe_list(url, page, len(ordered) > limit))


def _position(objects: list[JSON], object_id: str, kind: str, param: str) -> int:
    for index, obj in enumerate(objects):
        if obj["id"] == object_id:
            return index
    raise _stripe_refusal(400, f"No such {kind}: '{object_id}'", code="resource_missing",
                          param=param)


@stripe.get("/v1/payment_intents/search")
def search_payment_intents() -> Response:
    """Search PaymentIntents; only metadata['order_id']:'<number>' is supported."""
    query = request.args.get("query", "")
    match = _ORDER_QUERY.fullmatch(query.strip())
    if match is None:
        raise _stripe_refusal(
            400, f"Unsupported search query: {query!r}. The sandbox answers "
            "metadata['order_id']:'<order number>'.", param="query")
    limit = _stripe_int("limit", 10, 1, 100)
    page_token = request.args.get("page")
    token = _PAGE_TOKEN.fullmatch(page_token) if page_token else None
    if page_token and token is None:
        raise _stripe_refusal(400, f"Invalid page: {page_token}", param="page")
    start = int(token[1]) if token else 0
    number = _ESCAPED.sub(r"\1", match["value"])
    order_fault(number)
    data = state().order(number)
    found = data.payment_intents if data else []
    if "data.latest_charge" in request.args.getlist("expand[]"):
        charges = {c["id"]: c for c in data.charges} if data else {}
        found = [{**pi, "latest_charge": charges.get(pi["latest_charge"], pi["latest_charge"])}
                 for pi in found]
    next_page = f"sbx_page_{start + limit}" if start + limit < len(found) else None
    return json_response(stripe_search_result("/v1/payment_intents/search",
                                      found[start:start + limit], next_page))


@stripe.get("/v1/refunds")
def list_refunds() -> Response:
    """List refunds (seeded and created), optionally for one PaymentIntent or charge."""
    orders = state().orders()
    return _stripe_page("/v1/refunds", "refund",
                        _for_payment_intent(_all_refunds(orders), orders))


@stripe.get("/v1/disputes")
def list_disputes() -> Response:
    """List disputes, optionally for one PaymentIntent or charge."""
    orders = state().orders()
    disputes = [dispute for data in orders.values() for dispute in data.disputes]
    return _stripe_page("/v1/disputes", "dispute", _for_payment_intent(disputes, orders))


@stripe.post("/v1/refunds")
def create_refund() -> Response:
    """Create a refund; an Idempotency-Key replays the first result or conflicts (409)."""
    form = request.form
    for name in form:
        if name not in _REFUND_PARAMS and not _METADATA_PARAM.fullmatch(name):
            raise _stripe_refusal(400, f"Received unknown parameter: {name}", param=name)
    pi_id = form.get("payment_intent")
    if not pi_id:
        raise _stripe_refusal(400, "One of the following params should be provided for this "
                                   "request: payment_intent or charge.",
                              code="parameter_missing")
    sandbox = state()
    orders = sandbox.orders()
    number, payment = _payment_intent_owner(orders, pi_id)
    order_fault(number)
    amount = _stripe_int("amount", 0, 1) or None
    reason = form.get("reason") or None
    if reason is not None and reason not in _REFUND_REASONS:
        raise _stripe_refusal(400, "Invalid reason: must be one of duplicate, fraudulent, or "
                                   "requested_by_customer", param="reason")
    currency = form.get("currency")
    if currency and currency.lower() != payment["currency"]:
        raise _stripe_refusal(400, f"Currency {currency} does not match the charge's currency "
                                   f"{payment['currency']}.", param="currency")
    metadata = {match[1]: value for name, value in form.items()
                if (match := _METADATA_PARAM.fullmatch(name))}
    key = request.headers.get("Idempotency-Key")
    fingerprint = (request.path, tuple(sorted(form.items(multi=True))))
    with sandbox.ledger.lock:
        if key is not None:
            try:
                prior = sandbox.ledger.replay(key, fingerprint)
            except IdempotencyConflict:
                raise _stripe_refusal(
                    409, "Keys for idempotent requests can only be used with the same "
                    "parameters they were first used with. Try using a key other than "
                    f"'{key}' if you meant to execute a different request.",
                    error_type="idempotency_error") from None
            if prior is not None:
                response = json_response(prior)
                response.headers["Idempotent-Replayed"] = "true"
                return response
        refund = _refund_within_limits(orders[number], payment, amount, reason, metadata)
        sandbox.ledger.record(refund, key, fingerprint)
    return json_response(refund)


# Stripe's own words: disputes that still hold the charge, refunds that count against it.
_OPEN_DISPUTES = frozenset({"warning_needs_response", "warning_under_review", "needs_response",
                            "under_review"})
_LIVE_REFUNDS = frozenset({"pending", "requires_action", "succeeded"})


def charged_back(data: OrderData, payment: JSON) -> bool:
    """A chargeback still holds the payment, so no refund can be made on it."""
    return any(d["payment_intent"] == payment["id"] and d["status"] in _OPEN_DISPUTES
               and not d["is_charge_refundable"] for d in data.disputes)


def refundable_left(data: OrderData, payment: JSON) -> int:
    """What the payment can still refund (minor units): received less live refunds."""
    ledger = state().ledger
    refunded = sum(
        refund["amount"] for refund in map(ledger.as_now, data.refunds + ledger.refunds())
        if refund["payment_intent"] == payment["id"]
        and refund["status"] in _LIVE_REFUNDS
    )
    return int(payment["amount_received"]) - refunded


def _refund_within_limits(data: OrderData, payment: JSON, amount: int | None,
                          reason: str | None, metadata: dict[str, str]) -> JSON:
    """Build the refund, refusing as Stripe does when the charge cannot take it."""
    charge = payment["latest_charge"]
    if charged_back(data, payment):
        raise _stripe_refusal(400, f"Charge {charge} has been charged back; cannot issue a "
                                   "refund.", code="charge_disputed")
    remaining = refundable_left(data, payment)
    if remaining <= 0:
        raise _stripe_refusal(400, f"Charge {charge} has already been refunded.",
                              code="charge_already_refunded")
    currency = payment["currency"].upper()
    if amount is not None and amount > remaining:
        raise _stripe_refusal(
            400, f"Refund amount ({Money(amount, currency)}) is greater than unrefunded amount "
            f"on charge ({Money(remaining, currency)})", code="charge_exceeds_source_limit",
            param="amount")
    return stripe_refund(f"re_Sbx{uuid.uuid4().hex[:24]}", payment,
                         Money(amount or remaining, currency), state().now(),
                         reason=reason, metadata=metadata)


VENDOR = SandboxVendor("stripe", "stripe", SourceName.PROCESSOR, stripe, error, CREDENTIALS)
