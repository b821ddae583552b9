"""Stripe connector: the payment processor's payments, refunds and disputes for an order."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from marshmallow import Schema, fields

from plugin.core.model import (
    Dispute,
    DisputeState,
    OrderRef,
    Payment,
    ProcessorFacts,
    ProcessorRefund,
    RefundState,
    SourceName,
    Tender,
)
from plugin.core.money import Money, MoneyError, exponent

from .base import (
    BaseClient,
    CurrencyCode,
    MinorUnits,
    UnixTime,
    VendorSchema,
)
from .descriptor import Connector, Field, state_table

logger = logging.getLogger(__name__)

# Refund.status (nullable in the API; an unknown or missing value is UNKNOWN, never an error).
REFUND_STATES: dict[str, RefundState] = {
    "pending": RefundState.PENDING,
    "requires_action": RefundState.REQUIRES_ACTION,
    "succeeded": RefundState.SUCCEEDED,
    "failed": RefundState.FAILED,
    "canceled": RefundState.CANCELED,
}
# Dispute.status. A lost dispute (or one the merchant accepted: Stripe closes it as lost)
# leaves the money with the cardholder; prevented and warning_closed move none.
DISPUTE_STATES: dict[str, DisputeState] = {
    "warning_needs_response": DisputeState.OPEN,
    "warning_under_review": DisputeState.OPEN,
    "needs_response": DisputeState.OPEN,
    "under_review": DisputeState.OPEN,
    "won": DisputeState.WON,
    "lost": DisputeState.LOST,
    "warning_closed": DisputeState.CLOSED,
    "prevented": DisputeState.CLOSED,
    "charge_refunded": DisputeState.CLOSED,
}
# payment_method_details.type / destination_details.type → tender.
_BNPL = {"klarna", "afterpay_clearpay", "affirm", "zip", "scalapay", "alma"}
_WALLETS = {"paypal", "cashapp", "amazon_pay", "wechat_pay", "alipay", "grabpay", "link",
            "revolut_pay", "mb_way", "swish", "twint", "mobilepay"}
_NAMES = {"afterpay_clearpay": "Afterpay", "amazon_pay": "Amazon Pay", "cashapp": "Cash App Pay",
          "paypal": "PayPal", "klarna": "Klarna", "affirm": "Affirm", "zip": "Zip",
          "apple_pay": "Apple Pay", "google_pay": "Google Pay", "samsung_pay": "Samsung Pay",
          "link": "Link", "wechat_pay": "WeChat Pay", "alipay": "Alipay"}
_BRANDS = {"amex": "American Express", "visa": "Visa", "mastercard": "Mastercard",
           "discover": "Discover", "jcb": "JCB", "diners": "Diners Club",
           "unionpay": "UnionPay", "cartes_bancaires": "Cartes Bancaires"}


def tender_of(method_type: str | None) -> Tender:
    """A Stripe payment method type as a tender."""
    kind = (method_type or "").lower()
    if kind in ("card", "card_present", "interac_present"):
        return Tender.CARD
    if kind in _BNPL:
        return Tender.BNPL
    if kind in _WALLETS:
        return Tender.WALLET
    if kind.endswith("bank_transfer") or kind in ("us_bank_account", "sepa_debit", "bacs_debit",
                                                   "acss_debit", "au_becs_debit",
                                                   "customer_cash_balance", "ach_debit"):
        return Tender.BANK
    return Tender.UNKNOWN if not kind else Tender.OTHER


def method_label(details: Mapping[str, Any] | None) -> tuple[Tender, str | None]:
    """Tender and plain words ("Visa ending 4242", "Apple Pay (Visa ending 4242)", "Klarna")."""
    if not isinstance(details, Mapping):
        return Tender.CARD, None
    kind = str(details.get("type") or "")
    tender = tender_of(kind)
    sub = details.get(kind)
    if tender is Tender.CARD and isinstance(sub, Mapping):
        brand = _BRANDS.get(str(sub.get("brand") or "").lower(), "Card")
        last4 = sub.get("last4")
        card = f"{brand} ending {last4}" if last4 else brand
        wallet = sub.get("wallet")
        if isinstance(wallet, Mapping) and wallet.get("type"):
            name = _NAMES.get(str(wallet["type"]), str(wallet["type"]).replace("_", " ").title())
            return Tender.WALLET, f"{name} ({card})"
        return tender, card
    return tender, _NAMES.get(kind) if kind else None

MAX_PAGES = 5
SEARCH_LIMIT = 10
LIST_LIMIT = 100

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
    # Expanded on search: the charge's payment_method_details say what the customer used.
    latest_charge = fields.Raw(load_default=None, allow_none=True)


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
    status = fields.String(load_default=None, allow_none=True)
    reason = fields.String(load_default=None, allow_none=True)
    created = UnixTime(required=True)
    failure_reason = fields.String(load_default=None, allow_none=True)
    metadata = _metadata
    destination_details = fields.Raw(load_default=None, allow_none=True)


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


def page_schema(item: type[Schema]) -> type[Schema]:
    """A schema for Stripe's list/search envelope around `item` objects."""
    return VendorSchema.from_dict({
        "object": fields.String(required=True),
        "has_more": fields.Boolean(required=True),
        "next_page": fields.String(load_default=None, allow_none=True),
        "data": fields.List(fields.Nested(item), required=True),
    }, name=f"{item.__name__.removesuffix('Schema')}PageSchema")


PAGE_SCHEMAS: dict[type[Schema], type[Schema]] = {
    item: page_schema(item) for item in (PaymentIntentSchema, RefundSchema, DisputeSchema)
}


def search_literal(value: str) -> str:
    """Quote a value for Stripe's search query language (quotes escaped with a backslash)."""
    return "'" + value.replace("'", "\\'") + "'"


class StripeClient(BaseClient):
    """Reads PaymentIntents, refunds and disputes for an order; creates refunds."""

    system = "stripe"
    source = SourceName.PROCESSOR
    shop_gateways = frozenset({"stripe"})
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

    # -- reads

    def fetch(self, order: OrderRef) -> ProcessorFacts:
        """Payments, refunds and disputes for the order's PaymentIntents."""
        intents = self._search_payment_intents(order.number)
        payments = [self._payment(pi) for pi in intents]
        tenders = {p.payment_id: (p.tender, p.tender_label) for p in payments}
        refunds: list[ProcessorRefund] = []
        disputes: list[Dispute] = []
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
                            refunds.append(self._refund(r, pi_id, *tenders[pi_id]))
                    disputes.extend(self._dispute(d, pi_id) for d in dispute_job.result())
        return ProcessorFacts(order_name=order.name, payments=tuple(payments),
                              refunds=tuple(refunds), disputes=tuple(disputes))

    def _search_payment_intents(self, order_number: str) -> list[dict[str, Any]]:
        params: dict[str, Any] = {
            "query": f"metadata['order_id']:{search_literal(order_number)}",
            "limit": SEARCH_LIMIT,
            "expand[]": "data.latest_charge",
        }
        schema = PAGE_SCHEMAS[PaymentIntentSchema]
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
        schema = PAGE_SCHEMAS[item]
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

    # -- writes (refunds from the sidebar)

    # Stripe's refund reasons; anything else is sent without one.
    REFUND_REASONS = ("requested_by_customer", "duplicate", "fraudulent")
    # The metadata key carrying our idempotency key, so a refund can be found by it later.
    KEY_METADATA = "order_truth_key"

    def create_refund(self, *, payment_id: str, amount: int, currency: str,
                      reason: str | None, metadata: Mapping[str, str],
                      idempotency_key: str) -> dict[str, Any]:
        """POST /v1/refunds with an Idempotency-Key (and the key in metadata) against the
        PaymentIntent `payment_id`; `currency` is the PaymentIntent's own, so it isn't sent.

        Never retried here once it may have been sent: the caller first asks Stripe whether
        the key already made a refund (`find_refund`), then tries again with the same key.
        """
        data: dict[str, str] = {"payment_intent": payment_id, "amount": str(amount),
                                f"metadata[{self.KEY_METADATA}]": idempotency_key}
        if reason in self.REFUND_REASONS:
            data["reason"] = str(reason)
        for name, value in metadata.items():
            data[f"metadata[{name}]"] = value
        resp = self._request("POST", "/v1/refunds", data=data, retry_if_unsent=True,
                             headers={"Idempotency-Key": idempotency_key})
        refund: dict[str, Any] = self.load(RefundSchema, self._json(resp))
        return refund

    def find_refund(self, payment_id: str, idempotency_key: str) -> dict[str, Any] | None:
        """The refund of this PaymentIntent that our key made, if Stripe has one."""
        for refund in self._list("/v1/refunds", {"payment_intent": payment_id}, RefundSchema):
            if (refund["metadata"] or {}).get(self.KEY_METADATA) == idempotency_key:
                return refund
        return None

    # Stripe cancels a refund only while it waits on the customer (docs.stripe.com/api/refunds/cancel).
    CANCELLABLE = "requires_action"

    def get_refund(self, refund_id: str) -> dict[str, Any]:
        """GET /v1/refunds/{id}: one refund as Stripe has it now."""
        resp = self._request("GET", f"/v1/refunds/{quote(refund_id, safe='')}")
        refund: dict[str, Any] = self.load(RefundSchema, self._json(resp))
        return refund

    def cancel_refund(self, refund_id: str, idempotency_key: str) -> dict[str, Any]:
        """POST /v1/refunds/{id}/cancel (only a requires_action refund; Stripe refuses others
        with an invalid_request_error). Never retried once it may have been sent: the caller
        reads the refund (`get_refund`) to see whether it was cancelled."""
        resp = self._request("POST", f"/v1/refunds/{quote(refund_id, safe='')}/cancel",
                             data={}, retry_if_unsent=True,
                             headers={"Idempotency-Key": idempotency_key})
        refund: dict[str, Any] = self.load(RefundSchema, self._json(resp))
        return refund

    # -- normalising

    def _payment(self, pi: dict[str, Any]) -> Payment:
        methods = pi["payment_method_types"] or []
        charge = pi["latest_charge"]
        details = charge.get("payment_method_details") if isinstance(charge, Mapping) else None
        tender, label = method_label(details)
        if details is None and methods:
            tender = tender_of(methods[0])
        charge_id = charge.get("id") if isinstance(charge, Mapping) else charge
        return Payment(
            payment_id=pi["id"],
            amount=self.stripe_money(pi["amount"], pi["currency"]),
            amount_captured=self.stripe_money(pi["amount_received"], pi["currency"]),
            status_raw=pi["status"],
            created_at=pi["created"],
            payment_method=(details or {}).get("type") if details else
            (methods[0] if methods else None),
            tender=tender,
            tender_label=label,
            gateway="stripe",
            ids=(str(charge_id),) if isinstance(charge_id, str) else (),
        )

    def _refund(self, r: dict[str, Any], payment_id: str, tender: Tender = Tender.CARD,
                label: str | None = None) -> ProcessorRefund:
        status = r["status"]
        state = REFUND_STATES.get(status or "", RefundState.UNKNOWN)
        if state is RefundState.UNKNOWN:
            logger.info("stripe refund %s has status %r; shown as unknown", r["id"], status)
        destination = r["destination_details"]
        kind = destination.get("type") if isinstance(destination, Mapping) else None
        if kind and kind != "card":
            # A card refund goes back the way the payment came (a wallet's card stays a
            # wallet); other destinations name themselves.
            tender, label = tender_of(kind), _NAMES.get(kind, label)
        metadata = r["metadata"] or {}
        return ProcessorRefund(
            refund_id=r["id"],
            payment_id=r["payment_intent"] or payment_id,
            amount=self.stripe_money(r["amount"], r["currency"]),
            state=state,
            status_raw=status or "",
            created_at=r["created"],
            reason=r["reason"],
            return_key=metadata.get("return_key") or None,
            erp_refund_id=metadata.get("erp_refund_id") or None,
            failure_reason=r["failure_reason"],
            tender=tender,
            tender_label=label,
        )

    def _dispute(self, d: dict[str, Any], payment_id: str) -> Dispute:
        evidence = d["evidence_details"] or {}
        return Dispute(
            dispute_id=d["id"],
            payment_id=d["payment_intent"] or payment_id,
            amount=self.stripe_money(d["amount"], d["currency"]),
            status_raw=d["status"],
            state=DISPUTE_STATES.get(d["status"], DisputeState.UNKNOWN),
            created_at=d["created"],
            reason=d["reason"],
            due_by=evidence.get("due_by"),
        )

    def stripe_money(self, amount: int, currency: str) -> Money:
        """Money from a Stripe amount, whose decimals can differ from ISO 4217's."""
        try:
            places = stripe_exponent(currency)
            return Money.from_decimal(Decimal(amount).scaleb(-places), currency)
        except (MoneyError, ArithmeticError) as e:
            raise self.bad_response(str(e)) from e



DESCRIPTOR = Connector(
    system="stripe",
    title="Stripe",
    source=SourceName.PROCESSOR,
    client=StripeClient,
    hosts=("api.stripe.com",),
    credentials=(Field("secret_key", "Secret key",
                       "A restricted key with read access to PaymentIntents, Refunds and "
                       "Disputes, and write access to Refunds for refunds from the sidebar "
                       "(sk_live_… or rk_live_…).", secret=True,
                       env="STRIPE_SECRET_KEY"),),
    options=(Field("stripe_version", "API version", "Pin an API version, e.g. 2025-04-30.basil",
                   required=False, env="STRIPE_VERSION"),),
    base_url_env="STRIPE_BASE_URL",
    shop_gateways=frozenset({"stripe"}),
    quotes="PaymentIntents carry metadata.order_id; refunds may carry metadata.return_key "
           "and metadata.erp_refund_id. Its refund ids (re_…) appear in ERP memos.",
    states={"refund status": state_table(REFUND_STATES),
            "dispute status": state_table(DISPUTE_STATES)},
    sandbox="stripe",
    writes=frozenset({"refund", "cancel_refund"}),
)
