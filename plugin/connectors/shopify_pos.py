"""Shopify POS connector: over-the-counter returns from the order's refunds (Admin GraphQL)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import requests
from marshmallow import fields

from plugin.core.model import (
    OrderRef,
    PosFacts,
    SourceName,
    StoreReturn,
    StoreReturnLine,
)
from plugin.core.states import SHOPIFY_RESTOCK_RETURN

from .base import (
    BadResponseError,
    BaseClient,
    ConfigError,
    ConnectorConfig,
    CurrencyCode,
    DecimalAmount,
    RateLimitedError,
    UtcDateTime,
    VendorSchema,
)

DEFAULT_API_VERSION = "2025-07"
_API_VERSION = re.compile(r"^(\d{4}-\d{2}|unstable)$")
_SHOP = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# Characters that make a search value ambiguous unless it is quoted.
_NEEDS_QUOTES = re.compile(r"[\s'\":\\()]")

ORDER_REFUNDS_QUERY = """
query OrderRefunds($query: String!) {
  orders(first: 5, query: $query) {
    nodes {
      id
      name
      currencyCode
      refunds(first: 20) {
        id
        createdAt
        totalRefundedSet { presentmentMoney { amount currencyCode } }
        refundLineItems(first: 50) {
          nodes {
            quantity
            restockType
            restocked
            location { id name }
            lineItem { sku name }
          }
        }
      }
    }
  }
}
""".strip()


def order_search(order_name: str) -> str:
    """Shopify search syntax for an order name ("name:#1001"; quoted only when needed)."""
    if _NEEDS_QUOTES.search(order_name):
        escaped = order_name.replace("\\", "\\\\").replace('"', '\\"')
        return f'name:"{escaped}"'
    return f"name:{order_name}"


class MoneyV2Schema(VendorSchema):
    """MoneyV2."""

    amount = DecimalAmount(required=True)
    currency_code = CurrencyCode(required=True, data_key="currencyCode")


class MoneyBagSchema(VendorSchema):
    """MoneyBag: the presentment currency, the one the customer paid in (and Stripe charged)."""

    presentment_money = fields.Nested(MoneyV2Schema, required=True, data_key="presentmentMoney")


class LocationSchema(VendorSchema):
    """Location."""

    id = fields.String(required=True)
    name = fields.String(load_default=None, allow_none=True)


class LineItemSchema(VendorSchema):
    """LineItem (identity only)."""

    sku = fields.String(load_default=None, allow_none=True)
    name = fields.String(load_default=None, allow_none=True)


class RefundLineItemSchema(VendorSchema):
    """RefundLineItem."""

    quantity = fields.Integer(strict=True, required=True)
    restock_type = fields.String(required=True, data_key="restockType")
    restocked = fields.Boolean(load_default=None, allow_none=True)
    location = fields.Nested(LocationSchema, load_default=None, allow_none=True)
    line_item = fields.Nested(LineItemSchema, load_default=None, allow_none=True,
                              data_key="lineItem")


class RefundLineItemConnectionSchema(VendorSchema):
    """RefundLineItemConnection."""

    nodes = fields.List(fields.Nested(RefundLineItemSchema), required=True)


class RefundSchema(VendorSchema):
    """Refund."""

    id = fields.String(required=True)
    created_at = UtcDateTime(required=True, data_key="createdAt")
    total_refunded_set = fields.Nested(MoneyBagSchema, load_default=None, allow_none=True,
                                       data_key="totalRefundedSet")
    refund_line_items = fields.Nested(RefundLineItemConnectionSchema, required=True,
                                      data_key="refundLineItems")


class OrderSchema(VendorSchema):
    """Order."""

    id = fields.String(required=True)
    name = fields.String(required=True)
    currency_code = CurrencyCode(required=True, data_key="currencyCode")
    refunds = fields.List(fields.Nested(RefundSchema), required=True)


class OrderConnectionSchema(VendorSchema):
    """OrderConnection."""

    nodes = fields.List(fields.Nested(OrderSchema), required=True)


class QueryRootSchema(VendorSchema):
    """The `data` object."""

    orders = fields.Nested(OrderConnectionSchema, required=True)


class ResponseSchema(VendorSchema):
    """A GraphQL response without errors."""

    data = fields.Nested(QueryRootSchema, required=True)


class ShopifyPosClient(BaseClient):
    """Reads the order's refunds and keeps those that restocked goods at a location."""

    system = "shopify_pos"
    source = SourceName.POS
    required_credentials = ("access_token",)

    def __init__(
        self,
        config: ConnectorConfig,
        session: requests.Session | None = None,
        *,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(config, session, sleep=sleep)
        self.api_version = config.options.get("api_version") or DEFAULT_API_VERSION
        self.retail_locations = frozenset(
            name.strip().casefold()
            for name in (config.options.get("retail_locations") or "").split(",") if name.strip())
        if not _API_VERSION.match(self.api_version):
            raise ConfigError("api_version must look like 2025-07", system=self.system)

    def derive_base_url(self) -> str:
        """https://<shop>.myshopify.com from the `shop` option."""
        shop = (self.config.options.get("shop") or "").strip().lower()
        shop = shop.removesuffix(".myshopify.com")
        if not _SHOP.match(shop):
            raise ConfigError("set a base URL or the shop option", system=self.system)
        return f"https://{shop}.myshopify.com"

    def auth_headers(self, method: str, url: str, params: Any) -> dict[str, str]:
        """Admin API access token header."""
        return {"X-Shopify-Access-Token": self.config.credentials["access_token"]}

    def fetch(self, order: OrderRef) -> PosFacts:
        """Store returns (RETURN lines restocked at a location) on the order's refunds."""
        resp = self._request(
            "POST", f"/admin/api/{self.api_version}/graphql.json",
            json={"query": ORDER_REFUNDS_QUERY,
                  "variables": {"query": order_search(order.name)}},
            # A GraphQL query only reads, so a throttled attempt may be repeated.
            idempotent=True,
        )
        body = self._json(resp)
        if isinstance(body, Mapping) and body.get("errors"):
            raise self._graphql_error(body, resp.status_code)
        nodes = self.load(ResponseSchema(), body)["data"]["orders"]["nodes"]
        # Search matches loosely (prefixes, tokens); only the exact order name is this order.
        matches = [n for n in nodes if n["name"] == order.name]
        if not matches:
            return PosFacts(order_name=order.name, order_found=False)
        node = matches[0]
        returns = tuple(r for r in (self._store_return(ref) for ref in node["refunds"]) if r)
        return PosFacts(order_name=order.name, order_found=True, store_returns=returns,
                        currency=node["currency_code"])

    def _is_store(self, location: str | None) -> bool:
        """Whether a restock location is a shop floor rather than a warehouse.

        Shopify doesn't mark a refund as taken at a till, and online returns restock at a
        location too; `retail_locations` (comma-separated names) narrows store returns to the
        shops. Unset, every location counts.
        """
        if not self.retail_locations:
            return True
        return (location or "").strip().casefold() in self.retail_locations

    def _store_return(self, refund: dict[str, Any]) -> StoreReturn | None:
        lines = [
            StoreReturnLine(
                sku=(item["line_item"] or {}).get("sku") or "",
                quantity=item["quantity"],
                restock_type=item["restock_type"],
                location=item["location"]["name"],
            )
            for item in refund["refund_line_items"]["nodes"]
            if item["restock_type"] == SHOPIFY_RESTOCK_RETURN and item["location"] is not None
            and self._is_store(item["location"]["name"])
        ]
        if not lines:
            return None
        money = refund["total_refunded_set"]
        amount = None
        if money is not None:
            amount = self.money(money["presentment_money"]["amount"],
                                money["presentment_money"]["currency_code"])
        return StoreReturn(refund_id=refund["id"], created_at=refund["created_at"],
                           lines=tuple(lines), amount=amount, location=lines[0].location)

    def _graphql_error(self, body: Mapping[str, Any], status: int) -> Exception:
        errors = body["errors"]
        if isinstance(errors, list):
            for err in errors:
                ext = err.get("extensions") if isinstance(err, Mapping) else None
                if isinstance(ext, Mapping) and ext.get("code") == "THROTTLED":
                    return RateLimitedError("query cost throttled", system=self.system,
                                            http_status=status, code="THROTTLED",
                                            retry_after=_throttle_wait(body))
            first = errors[0] if errors else None
            message = first.get("message") if isinstance(first, Mapping) else first
            code = None
            if isinstance(first, Mapping) and isinstance(first.get("extensions"), Mapping):
                code = first["extensions"].get("code")
        else:
            message, code = errors, None
        return BadResponseError(
            self.describe(status, str(code) if code else None,
                          f"GraphQL error: {message}" if message else "GraphQL error"),
            system=self.system, http_status=status, code=code,
        )


def _throttle_wait(body: Mapping[str, Any]) -> float | None:
    """Seconds until the query cost bucket refills enough, from extensions.cost."""
    try:
        cost = body["extensions"]["cost"]
        status = cost["throttleStatus"]
        needed = Decimal(str(cost["requestedQueryCost"])) - Decimal(
            str(status["currentlyAvailable"]))
        rate = Decimal(str(status["restoreRate"]))
        if rate <= 0:
            return None
        return float(max(Decimal(0), needed) / rate)
    except (KeyError, TypeError, ArithmeticError, ValueError):
        return None
