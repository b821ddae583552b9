"""Stripe connector: the payment processor's payments, refunds and disputes for an order."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from marshmallow import Schema, fields
from requests import Response

from plugin.core.model import (
    Dispute,
    OrderRef,
    Payment,
    ProcessorFacts,
    ProcessorRefund,
    SourceName,
)
from plugin.core.money import Money, MoneyError, exponent
from plugin.core.states import STRIPE_OPEN_DISPUTES, STRIPE_REFUND_STATES

from .base import (
    BaseClient,
    CurrencyCode,
    IdempotencyConflict,
    MinorUnits,
    UnixTime,
    UpstreamError,
    VendorSchema,
)

logger = logging.getLogger(__name__)

MAX_PAGES = 5
SEARCH_LIMIT = 10
LIST_LIMIT = 100
_MAX_IDEMPOTENCY_KEY = 255

_metadata = fields.Dict(keys=fields.String(), values=fields.String(allow_none=True),
                        load_default=dict, allow_none=True)


class PaymentIntentSchema(VendorSchema):
    """The PaymentIntent fields we read."""

    id = fields.String(required=True)
    amount = MinorUnits(required=True)
    amount_received = MinorUnits(required=True)
    currency = CurrencyCode(required=True)
    status = fields.String(required=True)
    created = UnixTime(required=True)
    metadata = _metadata
    payment_method_types = fields.List(fields.String(), load_default=list, allow_none=True)


# Stripe's decimals per currency where they differ from ISO 4217 (docs.stripe.com/currencies):
# these are zero-decimal at Stripe; ISK is zero-decimal in ISO but two-decimal in Stripe's API.
STRIPE_ZERO_DECIMAL = frozenset({
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
})
STRIPE_TWO_DECIMAL = frozenset({"ISK"})


def stripe_exponent(currency: str) -> int:
    """How many decimals Stripe's integer amounts carry for `currency`."""
    code = currency.upper()
    if code in STRIPE_ZERO_DECIMAL:
        return 0
    if code in STRIPE_TWO_DECIMAL:
        return 2
    return exponent(code)


class RefundSchema(VendorSchema):
    """The Refund fields we read."""

    id = fields.String(required=True)
    amount = MinorUnits(required=True)
    currency = CurrencyCode(required=True)
    payment_intent = fields.String(load_default=None, allow_none=True)
    charge = fields.String(load_default=None, allow_none=True)
    status = fields.String(required=True)
    reason = fields.String(load_default=None, allow_none=True)
    created = UnixTime(required=True)
    failure_reason = fields.String(load_default=None, allow_none=True)
    metadata = _metadata


class EvidenceDetailsSchema(VendorSchema):
    """A dispute's evidence deadline."""

    due_by = UnixTime(load_default=None, allow_none=True)
    has_evidence = fields.Boolean(load_default=None, allow_none=True)


class DisputeSchema(VendorSchema):
    """The Dispute fields we read."""

    id = fields.String(required=True)
    amount = MinorUnits(required=True)
    currency = CurrencyCode(required=True)
    payment_intent = fields.String(load_default=None, allow_none=True)
    charge = fields.String(load_default=None, allow_none=True)
    status = fields.String(required=True)
    reason = fields.String(load_default=None, allow_none=True)
    created = UnixTime(required=True)
    is_charge_refundable = fields.Boolean(load_default=None, allow_none=True)
    evidence_details = fields.Nested(EvidenceDetailsSchema, load_default=None, allow_none=True)


def page_schema(item: type[Schema]) -> type[VendorSchema]:
    """A schema for Stripe's list/search envelope around `item` objects."""
    return VendorSchema.from_dict({
        "object": fields.String(required=True),
        "has_more": fields.Boolean(required=True),
        "next_page": fields.String(load_default=None, allow_none=True),
        "data": fields.List(fields.Nested(item), required=True),
    }, name=f"{item.__name__.removesuffix('Schema')}PageSchema")


PAGE_SCHEMAS: dict[type[Schema], type[VendorSchema]] = {
    item: page_schema(item) for item in (PaymentIntentSchema, RefundSchema, DisputeSchema)
}


def search_literal(value: str) -> str:
    """Quote a value for Stripe's search query language (quotes escaped with a backslash)."""
    return "'" + value.replace("'", "\\'") + "'"


class StripeClient(BaseClient):
    """Reads PaymentIntents, refunds and disputes for an order; creates refunds."""

    system = "stripe"
    source = SourceName.PROCESSOR
    required_credentials = ("secret_key",)
    default_base_url = "https://api.stripe.com"

    def auth_headers(self, method: str, url: str, params: Any) -> dict[str, str]:
        """Bearer secret key, plus a pinned API version when configured."""
        headers = {"Authorization": f"Bearer {self.config.credentials['secret_key']}"}
        version = self.config.options.get("stripe_version")
        if version:
            headers["Stripe-Version"] = version
        return headers

    def error_message(self, payload: Any) -> tuple[str | None, str | None]:
        """Code and message from Stripe's {"error": {...}} envelope."""
        if isinstance(payload, Mapping) and isinstance(payload.get("error"), Mapping):
            err = payload["error"]
            code = err.get("code") or err.get("type")
            return code, err.get("message")
        return super().error_message(payload)

    def error_from_response(self, resp: Response) -> UpstreamError:
        """Typed error from Stripe's envelope; idempotency_error / 409 is IdempotencyConflict."""
        error = super().error_from_response(resp)
        try:
            error_type = resp.json()["error"]["type"]
        except (ValueError, KeyError, TypeError):
            error_type = None
        if error_type == "idempotency_error" or resp.status_code == 409:
            return IdempotencyConflict(error.message, system=self.system,
                                       http_status=resp.status_code, code=error.code)
        return error

    # -- reads

    def fetch(self, order: OrderRef) -> ProcessorFacts:
        """Payments, refunds and disputes for the order's PaymentIntents."""
        intents = self._search_payment_intents(order.number)
        payments = [self._payment(pi) for pi in intents]
        refunds, disputes = [], []
        if intents:
            # Search lags writes by up to an hour; the list endpoints are read-after-write.
            # Refunds and disputes are independent reads, so ask for them side by side:
            # this source is otherwise three round trips deep.
            with ThreadPoolExecutor(max_workers=min(4, 2 * len(intents))) as pool:
                jobs = [(pi["id"], pool.submit(self._list, "/v1/refunds",
                                               {"payment_intent": pi["id"]}, RefundSchema),
                         pool.submit(self._list, "/v1/disputes",
                                     {"payment_intent": pi["id"]}, DisputeSchema))
                        for pi in intents]
                seen: set[str] = set()
                for pi_id, refund_job, dispute_job in jobs:
                    for r in refund_job.result():
                        # Pages can overlap while refunds are being created; count each once.
                        if r["id"] not in seen:
                            seen.add(r["id"])
                            refunds.append(self._refund(r, pi_id))
                    disputes.extend(self._dispute(d, pi_id) for d in dispute_job.result())
        return ProcessorFacts(order_name=order.name, payments=tuple(payments),
                              refunds=tuple(refunds), disputes=tuple(disputes))

    def _search_payment_intents(self, order_number: str) -> list[dict[str, Any]]:
        params: dict[str, Any] = {
            "query": f"metadata['order_id']:{search_literal(order_number)}",
            "limit": SEARCH_LIMIT,
        }
        schema = PAGE_SCHEMAS[PaymentIntentSchema]()
        found: list[dict[str, Any]] = []
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            page = self.load(schema, self._json(
                self._request("GET", "/v1/payment_intents/search", params=params)))
            for pi in page["data"]:
                if pi["id"] not in seen:
                    seen.add(pi["id"])
                    found.append(pi)
            if not page["has_more"] or not page["next_page"]:
                break
            params = {**params, "page": page["next_page"]}
        return found

    def _list(self, path: str, params: dict[str, Any],
              item: type[Schema]) -> list[dict[str, Any]]:
        """All objects of a list endpoint, following has_more (bounded)."""
        schema = PAGE_SCHEMAS[item]()
        params = {**params, "limit": LIST_LIMIT}
        out: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            page = self.load(schema, self._json(self._request("GET", path, params=params)))
            out.extend(page["data"])
            if not page["has_more"] or not page["data"]:
                return out
            params = {**params, "starting_after": page["data"][-1]["id"]}
        logger.warning("stripe %s: stopped after %d pages for %s", path, MAX_PAGES,
                       params.get("payment_intent"))
        return out

    # -- normalising

    def _payment(self, pi: dict[str, Any]) -> Payment:
        methods = pi["payment_method_types"] or []
        return Payment(
            payment_id=pi["id"],
            amount=self.stripe_money(pi["amount"], pi["currency"]),
            amount_captured=self.stripe_money(pi["amount_received"], pi["currency"]),
            status_raw=pi["status"],
            created_at=pi["created"],
            payment_method=methods[0] if methods else None,
        )

    def _refund(self, r: dict[str, Any], payment_id: str) -> ProcessorRefund:
        state = STRIPE_REFUND_STATES.get(r["status"])
        if state is None:
            raise self.bad_response(f"unknown refund status {r['status']!r}")
        metadata = r["metadata"] or {}
        return ProcessorRefund(
            refund_id=r["id"],
            payment_id=r["payment_intent"] or payment_id,
            amount=self.stripe_money(r["amount"], r["currency"]),
            state=state,
            status_raw=r["status"],
            created_at=r["created"],
            reason=r["reason"],
            return_key=metadata.get("return_key") or None,
            erp_refund_id=metadata.get("erp_refund_id") or None,
            failure_reason=r["failure_reason"],
        )

    def _dispute(self, d: dict[str, Any], payment_id: str) -> Dispute:
        evidence = d["evidence_details"] or {}
        return Dispute(
            dispute_id=d["id"],
            payment_id=d["payment_intent"] or payment_id,
            amount=self.stripe_money(d["amount"], d["currency"]),
            status_raw=d["status"],
            is_open=d["status"] in STRIPE_OPEN_DISPUTES,
            created_at=d["created"],
            reason=d["reason"],
            due_by=evidence.get("due_by"),
        )

    # -- writes

    def stripe_money(self, amount: int, currency: str) -> Money:
        """Money from a Stripe amount, whose decimals can differ from ISO 4217's."""
        try:
            places = stripe_exponent(currency)
            return Money.from_decimal(Decimal(amount).scaleb(-places), currency)
        except (MoneyError, ArithmeticError) as e:
            raise self.bad_response(str(e)) from e

    def create_refund(
        self,
        payment_intent: str,
        amount: Money,
        *,
        idempotency_key: str,
        reason: str = "requested_by_customer",
        metadata: Mapping[str, str],
    ) -> ProcessorRefund:
        """Refund part or all of a PaymentIntent; safe to repeat with the same idempotency key."""
        if not isinstance(amount, Money) or amount.amount_minor <= 0:
            raise ValueError("amount must be a positive Money")
        stripe_amount = amount.to_decimal().scaleb(stripe_exponent(amount.currency))
        if stripe_amount != stripe_amount.to_integral_value():
            raise ValueError(f"{amount.format()} can't be expressed in Stripe's units")
        if not idempotency_key or len(idempotency_key) > _MAX_IDEMPOTENCY_KEY:
            raise ValueError("idempotency_key must be 1-255 characters")
        form: list[tuple[str, str]] = [
            ("payment_intent", payment_intent),
            ("amount", str(int(stripe_amount))),
            ("currency", amount.currency.lower()),
            ("reason", reason),
        ]
        form.extend((f"metadata[{key}]", str(value)) for key, value in metadata.items())
        # Not retried on errors: Stripe stores the first response for a key, even a 500.
        # A request that never connected did not reach Stripe, so resending it is safe.
        resp = self._request(
            "POST", "/v1/refunds", data=form,
            headers={"Idempotency-Key": idempotency_key},
            idempotent=False, retry_if_unsent=True,
        )
        refund = self.load(RefundSchema(), self._json(resp))
        return self._refund(refund, payment_intent)
