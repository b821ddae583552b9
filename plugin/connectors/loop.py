"""Loop Returns connector: the returns portal's view of an order's returns."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from plugin.core.model import (
    OrderRef,
    PortalFacts,
    PortalRefund,
    PortalReturn,
    ReturnLine,
    ReturnOutcome,
    ReturnState,
    ShippingLabel,
    SourceName,
    Tender,
)
from plugin.core.money import Money

from .base import (
    OPTIONAL,
    BaseClient,
    CurrencyCode,
    DecimalAmount,
    Identifier,
    NotFoundError,
    UtcDateTime,
    VendorSchema,
)
from .descriptor import Connector, Field, state_table

# Loop's return `state` (webhook docs: open, cancelled, closed, expired, "needs review"; the
# list filter spells the last one "review"). A flagged return waits in review.
RETURN_STATES: dict[str, ReturnState] = {
    "open": ReturnState.AUTHORIZED,
    "closed": ReturnState.CLOSED,
    "cancelled": ReturnState.CANCELED,
    "canceled": ReturnState.CANCELED,
    "expired": ReturnState.EXPIRED,
    "review": ReturnState.HELD,
    "needs review": ReturnState.HELD,
    "needs_review": ReturnState.HELD,
    "flagged": ReturnState.HELD,
    "rejected": ReturnState.REJECTED,
    "declined": ReturnState.REJECTED,
}
# Label statuses that mean the parcel has left the customer.
LABEL_MOVING = frozenset({"in_transit", "out_for_delivery", "delivered"})
# Loop's `outcome` hint (third-party schemas: refund, exchange, store_credit, gift_card).
OUTCOMES: dict[str, ReturnOutcome] = {
    "refund": ReturnOutcome.REFUND,
    "exchange": ReturnOutcome.EXCHANGE,
    "store_credit": ReturnOutcome.STORE_CREDIT,
    "gift_card": ReturnOutcome.STORE_CREDIT,
    "credit": ReturnOutcome.STORE_CREDIT,
}
# Gateways a Loop refund can go through that aren't a card processor.
GATEWAY_TENDERS: dict[str, Tender] = {
    "gift_card": Tender.GIFT_CARD,
    "store_credit": Tender.STORE_CREDIT,
    "cash": Tender.CASH,
}


def return_state(state_raw: str, label_status: str | None) -> ReturnState:
    """Loop's state (plus label movement) as a canonical state; UNKNOWN for a new word."""
    state = RETURN_STATES.get(" ".join(state_raw.strip().lower().split()), ReturnState.UNKNOWN)
    if state is ReturnState.AUTHORIZED and (label_status or "").lower() in LABEL_MOVING:
        return ReturnState.IN_TRANSIT
    return state


DETAILS_PATH = "/api/v1/warehouse/return/details"




class LoopRefundSchema(VendorSchema):
    """A `refunds[]` entry on a Loop return."""

    amount = DecimalAmount(required=True)
    currency = CurrencyCode(load_default=None, allow_none=True)
    gateway = fields.String(load_default=None, allow_none=True)
    provider_refund_id = fields.String(load_default=None, allow_none=True)
    provider = fields.String(load_default=None, allow_none=True)


class LoopLineItemSchema(VendorSchema):
    """A `line_items[]` entry; `quantity` is absent when the line is one unit."""

    line_item_id = Identifier(load_default=None, allow_none=True)
    sku = fields.String(load_default=None, allow_none=True)
    title = fields.String(load_default=None, allow_none=True)
    quantity = fields.Integer(strict=True, load_default=None, allow_none=True,
                              validate=validate.Range(min=1))


class LoopLabelSchema(VendorSchema):
    """A `labels[]` entry (the shipping label Loop issued)."""

    url = fields.String(load_default=None, allow_none=True)
    tracking_number = fields.String(load_default=None, allow_none=True)
    carrier = fields.String(load_default=None, allow_none=True)
    status = fields.String(load_default=None, allow_none=True)
    label_status = fields.String(load_default=None, allow_none=True)


class LoopReturnSchema(VendorSchema):
    """One return object from `GET /warehouse/return/details`."""

    id = Identifier(required=True)
    state = fields.String(required=True)
    created_at = UtcDateTime(required=True)
    updated_at = UtcDateTime(load_default=None, allow_none=True)
    order_id = Identifier(load_default=None, allow_none=True)
    order_name = fields.String(load_default=None, allow_none=True)
    currency = CurrencyCode(required=True)
    total = DecimalAmount(load_default=None, allow_none=True)
    refunds = fields.List(fields.Nested(LoopRefundSchema), load_default=list, allow_none=True)
    line_items = fields.List(fields.Nested(LoopLineItemSchema), load_default=list,
                             allow_none=True)
    labels = fields.List(fields.Nested(LoopLabelSchema), load_default=list, allow_none=True)
    # The label as flat fields (the documented list shape); `labels[]` also seen.
    carrier = fields.String(**OPTIONAL)
    tracking_number = fields.String(**OPTIONAL)
    label_status = fields.String(**OPTIONAL)
    label_url = fields.String(**OPTIONAL)
    outcome = fields.String(**OPTIONAL)
    exchange_order_name = fields.String(**OPTIONAL)
    exchange_order_id = Identifier(**OPTIONAL)
    exchange_credit_total = DecimalAmount(**OPTIONAL)
    exchange_total = DecimalAmount(**OPTIONAL)
    gift_card = DecimalAmount(**OPTIONAL)
    gift_card_order_name = fields.String(**OPTIONAL)
    refund = DecimalAmount(**OPTIONAL)


class LoopClient(BaseClient):
    """Reads an order's returns from Loop's warehouse return-details endpoint."""

    system = "loop"
    source = SourceName.PORTAL
    required_credentials = ("api_key",)
    default_base_url = "https://api.loopreturns.com"

    def _resolve_base_url(self) -> str:
        url = super()._resolve_base_url()
        # Loop's docs give the base as …/api/v1; our paths already carry it, and a doubled
        # prefix would 404 — which this endpoint uses for "no return" — on every order.
        return url[: -len("/api/v1")] if url.endswith("/api/v1") else url

    def auth_headers(self, method: str, url: str, params: Any) -> dict[str, str]:
        """Loop authenticates with the raw API key in X-Authorization."""
        return {"X-Authorization": self.config.credentials["api_key"]}

    def fetch(self, order: OrderRef) -> PortalFacts:
        """The order's returns at the portal, amounts in the currency the customer paid."""
        try:
            resp = self._request("GET", DETAILS_PATH, params={
                "order_name": order.name, "currency_type": "presentment"})
        except NotFoundError:
            return PortalFacts(order_name=order.name)
        body = self._json(resp)
        if _no_return(body):
            # Loop answers "no return for this order" with HTTP 200 and an error body.
            return PortalFacts(order_name=order.name)
        # One return comes back as an object, several as an array.
        items = body if isinstance(body, list) else [body]
        loaded = [self.load(LoopReturnSchema, item) for item in items]
        return PortalFacts(
            order_name=order.name,
            returns=tuple(self._normalise(raw, order) for raw in loaded),
            currency=loaded[0]["currency"] if loaded else None,
        )

    def _normalise(self, raw: dict[str, Any], order: OrderRef) -> PortalReturn:
        currency = raw["currency"]
        label = _label(raw)
        outcome, exchange_value, credit = self._outcome(raw, currency)
        return PortalReturn(
            return_id=raw["id"],
            order_name=raw["order_name"] or order.name,
            state=return_state(raw["state"], label.status if label else None),
            state_raw=raw["state"],
            created_at=raw["created_at"],
            updated_at=raw["updated_at"],
            total=self.money(raw["total"], currency) if raw["total"] is not None else None,
            lines=self._lines(raw["line_items"] or []),
            label=label,
            refunds=tuple(
                PortalRefund(
                    amount=self.money(r["amount"], r["currency"] or currency),
                    gateway=r["gateway"],
                    provider_refund_id=r["provider_refund_id"],
                    tender=GATEWAY_TENDERS.get((r["gateway"] or "").strip().lower(),
                                               Tender.UNKNOWN),
                )
                for r in raw["refunds"] or []
            ),
            outcome=outcome,
            outcome_raw=raw["outcome"],
            exchange_order=raw["exchange_order_name"] or raw["exchange_order_id"],
            exchange_value=exchange_value,
            credit_issued=credit,
            credit_tender=Tender.GIFT_CARD,
        )

    def _outcome(self, raw: dict[str, Any], currency: str
                 ) -> tuple[ReturnOutcome, Money | None, Money | None]:
        """What the customer gets, read from the data (exchange order, gift card, refunds).

        Loop's own `outcome` is only a hint: a return can mix an exchange with a refund.
        """
        exchanged = bool(raw["exchange_order_name"] or raw["exchange_order_id"])
        value_raw = raw["exchange_credit_total"] or raw["exchange_total"]
        exchange_value = self.money(value_raw, currency) if exchanged and value_raw else None
        gift = raw["gift_card"]
        credit = self.money(gift, currency) if gift is not None and gift > 0 else None
        refunded = bool(raw["refunds"]) or (raw["refund"] is not None and raw["refund"] > 0)
        kinds = [k for k, present in ((ReturnOutcome.EXCHANGE, exchanged),
                                      (ReturnOutcome.STORE_CREDIT, credit is not None),
                                      (ReturnOutcome.REFUND, refunded)) if present]
        if len(kinds) > 1:
            return ReturnOutcome.MIXED, exchange_value, credit
        if kinds:
            return kinds[0], exchange_value, credit
        hint = OUTCOMES.get((raw["outcome"] or "").strip().lower(), ReturnOutcome.UNKNOWN)
        return hint, exchange_value, credit

    @staticmethod
    def _lines(items: list[dict[str, Any]]) -> tuple[ReturnLine, ...]:
        """Group line items by SKU (Loop sends one entry per unit unless quantity is given)."""
        quantities: dict[str, int] = {}
        titles: dict[str, str | None] = {}
        for item in items:
            sku = item["sku"] or ""
            quantities[sku] = quantities.get(sku, 0) + (item["quantity"] or 1)
            titles.setdefault(sku, item["title"])
        return tuple(ReturnLine(sku=sku, quantity=qty, title=titles[sku])
                     for sku, qty in quantities.items())


def _label(raw: dict[str, Any]) -> ShippingLabel | None:
    """The live label: the last of `labels[]`, else the flat carrier/tracking/status fields."""
    labels = raw["labels"] or []
    if labels:
        last = labels[-1]
        return ShippingLabel(carrier=last["carrier"], tracking_number=last["tracking_number"],
                             status=last["status"] or last["label_status"])
    if raw["carrier"] or raw["tracking_number"] or raw["label_status"]:
        return ShippingLabel(carrier=raw["carrier"], tracking_number=raw["tracking_number"],
                             status=raw["label_status"])
    return None


def _no_return(body: Any) -> bool:
    """Loop's 200 answer for "no return": an error body and no return id."""
    if isinstance(body, list):
        return not body
    if not isinstance(body, dict) or "id" in body:
        return False
    error = body.get("error") if "error" in body else body.get("errors")
    return error is not None or isinstance(body.get("message"), str)


DESCRIPTOR = Connector(
    system="loop",
    title="Loop Returns",
    source=SourceName.PORTAL,
    client=LoopClient,
    hosts=("api.loopreturns.com",),
    credentials=(Field("api_key", "API key", "A Loop API key with the Returns scope.",
                       secret=True, env="LOOP_API_KEY"),),
    base_url_env="LOOP_BASE_URL",
    quotes="Returns carry the processor's refund id (refunds[].provider_refund_id); the ERP "
           "quotes a return as externalid loop-<return id>.",
    states={"return state": state_table(RETURN_STATES),
            "outcome hint": state_table(OUTCOMES)},
    sandbox="loop",
)
