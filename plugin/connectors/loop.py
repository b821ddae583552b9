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
    ShippingLabel,
    SourceName,
)
from plugin.core.states import loop_return_state

from .base import (
    BaseClient,
    CurrencyCode,
    DecimalAmount,
    Identifier,
    NotFoundError,
    UtcDateTime,
    VendorSchema,
)

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
    outcome = fields.String(load_default=None, allow_none=True)


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
        """The order's returns at the portal (none when Loop answers 404)."""
        try:
            resp = self._request("GET", DETAILS_PATH, params={"order_name": order.name})
        except NotFoundError:
            # Loop answers 404 when the order has no return: a definite "not found".
            return PortalFacts(order_name=order.name)
        body = self._json(resp)
        # One return comes back as an object, several as an array.
        items = body if isinstance(body, list) else [body]
        loaded = [self.load(LoopReturnSchema(), item) for item in items]
        return PortalFacts(
            order_name=order.name,
            returns=tuple(self._normalise(raw, order) for raw in loaded),
            currency=loaded[0]["currency"] if loaded else None,
        )

    def _normalise(self, raw: dict[str, Any], order: OrderRef) -> PortalReturn:
        currency = raw["currency"]
        labels = raw["labels"] or []
        # The details endpoint lists labels oldest first; the last one is the live label.
        label_raw = labels[-1] if labels else None
        label = None
        if label_raw is not None:
            label = ShippingLabel(carrier=label_raw["carrier"],
                                  tracking_number=label_raw["tracking_number"],
                                  status=label_raw["status"])
        state = loop_return_state(raw["state"], label.status if label else None)
        if state is None:
            raise self.bad_response(f"unknown return state {raw['state']!r}")
        return PortalReturn(
            return_id=raw["id"],
            order_name=raw["order_name"] or order.name,
            state=state,
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
                )
                for r in raw["refunds"] or []
            ),
            outcome=raw["outcome"],
        )

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
