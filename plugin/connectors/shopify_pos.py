"""Shopify POS connector: over-the-counter returns from the order's refunds (Admin GraphQL)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

import requests
from marshmallow import Schema, fields

from plugin.core.model import (
    OrderRef,
    PosFacts,
    ShopTransaction,
    ShopTransactionKind,
    ShopTransactionStatus,
    SourceName,
    StoreReturn,
    StoreReturnLine,
    Tender,
)
from plugin.core.money import Money

from .base import (
    OPTIONAL,
    BadResponseError,
    BaseClient,
    ConfigError,
    ConnectorConfig,
    CurrencyCode,
    DecimalAmount,
    RateLimitedError,
    RejectedError,
    UpstreamError,
    UtcDateTime,
    VendorSchema,
    safe_message,
)
from .descriptor import Connector, Field, state_table

# The Admin API version this connector is written against (one place; an option overrides it).
DEFAULT_API_VERSION = "2026-10"
_API_VERSION = re.compile(r"^(\d{4}-\d{2}|unstable)$")
_SHOP = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# Characters that make a search value ambiguous unless it is quoted.
_NEEDS_QUOTES = re.compile(r"[\s'\":\\()]")

# RefundLineItem.restockType: a RETURN line at a location is goods back on a shelf.
RESTOCK_RETURN = "RETURN"
# OrderTransaction.kind → money in or out (AUTHORIZATION, VOID, SUGGESTED_REFUND move none;
# CHANGE is cash handed back at the till, netted against the cash sale).
TRANSACTION_KINDS: dict[str, ShopTransactionKind] = {
    "SALE": ShopTransactionKind.PAYMENT,
    "CAPTURE": ShopTransactionKind.PAYMENT,
    "REFUND": ShopTransactionKind.REFUND,
}
TRANSACTION_STATES: dict[str, ShopTransactionStatus] = {
    "SUCCESS": ShopTransactionStatus.SUCCESS,
    "PENDING": ShopTransactionStatus.PENDING,
    "AWAITING_RESPONSE": ShopTransactionStatus.PENDING,
    "FAILURE": ShopTransactionStatus.FAILED,
    "ERROR": ShopTransactionStatus.FAILED,
}
# `gateway` is a free string; these name a tender. Others are a card processor's.
GATEWAY_TENDERS: dict[str, Tender] = {
    "cash": Tender.CASH,
    "gift_card": Tender.GIFT_CARD,
    "shopify_store_credit": Tender.STORE_CREDIT,
    "store_credit": Tender.STORE_CREDIT,
    "manual": Tender.OTHER,
    "paypal": Tender.WALLET,
}
_WALLETS = {"APPLE_PAY": "Apple Pay", "GOOGLE_PAY": "Google Pay", "ANDROID_PAY": "Google Pay",
            "SHOPIFY_PAY": "Shop Pay", "AMAZON_PAY": "Amazon Pay", "FACEBOOK_PAY": "Facebook Pay"}

# The OrderTransaction fields both Shopify connectors read (see TransactionSchema).
TRANSACTION_FIELDS = """
fragment TransactionFields on OrderTransaction {
  id
  kind
  status
  gateway
  createdAt
  processedAt
  authorizationCode
  amountSet { shopMoney { amount currencyCode } presentmentMoney { amount currencyCode } }
  parentTransaction { id }
  paymentDetails { ... on CardPaymentDetails { company number wallet } }
}
""".strip()

ORDER_REFUNDS_QUERY = """
query OrderRefunds($query: String!) {
  orders(first: 5, query: $query) {
    nodes {
      id
      name
      currencyCode
      presentmentCurrencyCode
      sourceName
      retailLocation { name }
      transactions(first: 50) { ...TransactionFields }
      refunds(first: 20) {
        id
        createdAt
        totalRefundedSet { presentmentMoney { amount currencyCode } }
        transactions(first: 10) { nodes { id } }
        refundLineItems(first: 50) {
          nodes {
            quantity
            restockType
            restocked
            location { id name }
            lineItem { sku name }
            subtotalSet { presentmentMoney { amount currencyCode } }
          }
        }
      }
    }
  }
}
""".strip() + "\n" + TRANSACTION_FIELDS


def _about_idempotency(text: str) -> bool:
    """An answer about the idempotency key says nothing about whether the write happened."""
    return "idempoten" in text.lower()


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
    """MoneyBag: presentment (what the customer paid in) and shop currency."""

    presentment_money = fields.Nested(MoneyV2Schema, required=True, data_key="presentmentMoney")
    shop_money = fields.Nested(MoneyV2Schema, load_default=None, allow_none=True,
                               data_key="shopMoney")




class LocationSchema(VendorSchema):
    """Location."""

    id = fields.String(load_default=None, allow_none=True)
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
    location = fields.Nested(LocationSchema, **OPTIONAL)
    line_item = fields.Nested(LineItemSchema, load_default=None, allow_none=True,
                              data_key="lineItem")
    subtotal_set = fields.Nested(MoneyBagSchema, data_key="subtotalSet", **OPTIONAL)


class RefundLineItemConnectionSchema(VendorSchema):
    """RefundLineItemConnection."""

    nodes = fields.List(fields.Nested(RefundLineItemSchema), required=True)


class IdSchema(VendorSchema):
    """Any node by id."""

    id = fields.String(required=True)


class IdConnectionSchema(VendorSchema):
    """A connection of nodes we only need the ids of."""

    nodes = fields.List(fields.Nested(IdSchema), required=True)


class RefundSchema(VendorSchema):
    """Refund."""

    id = fields.String(required=True)
    created_at = UtcDateTime(required=True, data_key="createdAt")
    total_refunded_set = fields.Nested(MoneyBagSchema, load_default=None, allow_none=True,
                                       data_key="totalRefundedSet")
    transactions = fields.Nested(IdConnectionSchema, **OPTIONAL)
    refund_line_items = fields.Nested(RefundLineItemConnectionSchema, required=True,
                                      data_key="refundLineItems")


class CardDetailsSchema(VendorSchema):
    """CardPaymentDetails (other payment details come back empty)."""

    company = fields.String(**OPTIONAL)
    number = fields.String(**OPTIONAL)
    wallet = fields.String(**OPTIONAL)


class TransactionSchema(VendorSchema):
    """OrderTransaction."""

    id = fields.String(required=True)
    kind = fields.String(required=True)
    status = fields.String(**OPTIONAL)
    gateway = fields.String(**OPTIONAL)
    created_at = UtcDateTime(required=True, data_key="createdAt")
    processed_at = UtcDateTime(data_key="processedAt", **OPTIONAL)
    authorization_code = fields.String(data_key="authorizationCode", **OPTIONAL)
    amount_set = fields.Nested(MoneyBagSchema, required=True, data_key="amountSet")
    parent_transaction = fields.Nested(IdSchema, data_key="parentTransaction", **OPTIONAL)
    payment_details = fields.Nested(CardDetailsSchema, data_key="paymentDetails", **OPTIONAL)


class OrderSchema(VendorSchema):
    """Order."""

    id = fields.String(required=True)
    name = fields.String(required=True)
    currency_code = CurrencyCode(required=True, data_key="currencyCode")
    presentment_currency_code = CurrencyCode(data_key="presentmentCurrencyCode", **OPTIONAL)
    source_name = fields.String(data_key="sourceName", **OPTIONAL)
    retail_location = fields.Nested(LocationSchema, data_key="retailLocation", **OPTIONAL)
    transactions = fields.List(fields.Nested(TransactionSchema), load_default=list,
                               allow_none=True)
    refunds = fields.List(fields.Nested(RefundSchema), required=True)


def orders_response(order: type[Schema]) -> type[Schema]:
    """`{"data": {"orders": {"nodes": [<order>…]}}}`, the answer to an orders(query:) search."""
    connection = VendorSchema.from_dict(
        {"nodes": fields.List(fields.Nested(order), required=True)}, name="OrderConnection")
    root = VendorSchema.from_dict({"orders": fields.Nested(connection, required=True)},
                                  name="QueryRoot")
    return VendorSchema.from_dict({"data": fields.Nested(root, required=True)},
                                  name=f"{order.__name__}Response")


ORDERS_RESPONSE = orders_response(OrderSchema)


class ShopifyAdminClient(BaseClient):
    """Shopify Admin GraphQL: the shop's host, token, API version, throttling and errors."""

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
        if not _API_VERSION.match(self.api_version):
            raise ConfigError(f"api_version must look like {DEFAULT_API_VERSION}",
                              system=self.system)

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

    def graphql(self, query: str, variables: dict[str, Any]) -> Any:
        """The body of a GraphQL answer with no errors (throttling is rate limiting)."""
        # A GraphQL query only reads, so a throttled attempt may be repeated.
        resp, body = self._post(query, variables, idempotent=True)
        if isinstance(body, Mapping) and body.get("errors"):
            raise self._graphql_error(body, resp.status_code)
        return body

    def _post(self, query: str, variables: dict[str, Any], *,
              idempotent: bool) -> tuple[requests.Response, Any]:
        resp = self._request(
            "POST", f"/admin/api/{self.api_version}/graphql.json",
            json={"query": query, "variables": variables}, idempotent=idempotent,
            retry_if_unsent=not idempotent)
        return resp, self._json(resp)

    # GraphQL error codes Shopify raises before a mutation runs: nothing was done.
    REFUSED_BEFORE_RUNNING = frozenset({
        "ACCESS_DENIED", "BAD_REQUEST", "MAX_COST_EXCEEDED", "argumentLiteralsIncompatible",
        "undefinedField", "undefinedType", "missingRequiredArguments", "variableMismatch",
        "missingRequiredInputObjectAttribute", "argumentNotAccepted"})

    def mutate(self, mutation: str, variables: dict[str, Any], field: str) -> Mapping[str, Any]:
        """Run a mutation and return its payload (`data.<field>`). Sent at most once when it
        may have arrived (the caller looks before trying again).

        RejectedError (nothing was done) only for userErrors without a result and for the
        GraphQL errors Shopify raises before running anything (a missing scope, a
        validation error). Anything else leaves the write unsure: an internal error, a
        throttle, an error without a code, and anything about the idempotency key (another
        request with the key still running, or the key used with other input)."""
        resp, body = self._post(mutation, variables, idempotent=False)
        data = body.get("data") if isinstance(body, Mapping) else None
        payload = data.get(field) if isinstance(data, Mapping) else None
        if isinstance(body, Mapping) and body.get("errors"):
            err = self._graphql_error(body, resp.status_code)
            if payload is None and err.code in self.REFUSED_BEFORE_RUNNING \
                    and not _about_idempotency(err.message):
                raise RejectedError(err.message, system=self.system,
                                    http_status=resp.status_code, code=err.code)
            raise err
        if not isinstance(payload, Mapping):
            raise BadResponseError(f"answered without a {field} result",
                                   system=self.system, http_status=resp.status_code)
        problems = [p for p in payload.get("userErrors") or [] if isinstance(p, Mapping)]
        if problems:
            said = "; ".join(safe_message(p.get("message"), self._secrets())
                             for p in problems) or "refused"
            code = str(problems[0].get("code") or "USER_ERROR")
            made = any(v for k, v in payload.items() if k != "userErrors")
            if made or _about_idempotency(f"{said} {code}"):
                raise BadResponseError(f"{field} answered: {said}", system=self.system,
                                       http_status=resp.status_code, code=code)
            raise RejectedError(f"{field} refused: {said}", system=self.system,
                                http_status=resp.status_code, code=code)
        return payload

    def money_of(self, bag: dict[str, Any]) -> Money:
        """The presentment amount of a loaded MoneyBag: what the customer paid in."""
        money = bag["presentment_money"]
        return self.money(money["amount"], money["currency_code"])

    def shop_money_of(self, bag: dict[str, Any]) -> Money | None:
        """The shop-currency amount of a MoneyBag, when it differs from presentment."""
        shop = bag["shop_money"]
        if shop is None or shop["currency_code"] == bag["presentment_money"]["currency_code"]:
            return None
        return self.money(shop["amount"], shop["currency_code"])

    def _graphql_error(self, body: Mapping[str, Any], status: int) -> UpstreamError:
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


class ShopifyPosClient(ShopifyAdminClient):
    """Reads the order's money by tender and the refunds that restocked goods at a store."""

    system = "shopify_pos"
    source = SourceName.POS

    @property
    def retail_locations(self) -> frozenset[str]:
        """The shop floors named in the `retail_locations` option (none: every location)."""
        named = self.config.options.get("retail_locations") or ""
        return frozenset(n.strip().casefold() for n in named.split(",") if n.strip())

    def fetch(self, order: OrderRef) -> PosFacts:
        """The order's payments and refunds by tender, and its store returns."""
        body = self.graphql(ORDER_REFUNDS_QUERY, {"query": order_search(order.name)})
        nodes = self.load(ORDERS_RESPONSE, body)["data"]["orders"]["nodes"]
        # Search matches loosely (prefixes, tokens); only the exact order name is this order.
        matches = [n for n in nodes if n["name"] == order.name]
        if not matches:
            return PosFacts(order_name=order.name, order_found=False)
        node = matches[0]
        at_pos = (node["source_name"] or "").lower() == "pos" or node["retail_location"] is not None
        returns = [r for r in (self._store_return(ref) for ref in node["refunds"]) if r]
        return PosFacts(
            order_name=order.name, order_found=True, store_returns=tuple(returns),
            currency=node["presentment_currency_code"] or node["currency_code"],
            shop_currency=node["currency_code"],
            transactions=self._transactions(node, returns, at_pos))

    def _transactions(self, node: dict[str, Any], returns: list[StoreReturn],
                      at_pos: bool) -> tuple[ShopTransaction, ...]:
        """Payments and refunds that moved money, each with its tender; change nets off cash."""
        refund_of: dict[str, dict[str, Any]] = {}
        for refund in node["refunds"]:
            for txn in (refund["transactions"] or {}).get("nodes", []):
                refund_of[txn["id"]] = refund
        store_at = {r.refund_id: r.location for r in returns}
        change: dict[str | None, tuple[Money, Money | None]] = {}
        out: list[ShopTransaction] = []
        for t in node["transactions"] or []:
            money = self.money_of(t["amount_set"])
            if t["kind"] == "CHANGE":
                parent = (t["parent_transaction"] or {}).get("id")
                shop = self.shop_money_of(t["amount_set"])
                if parent in change:
                    had, had_shop = change[parent]
                    shop = had_shop + shop if had_shop is not None and shop is not None else None
                    money = had + money
                change[parent] = (money, shop)
                continue
            kind = TRANSACTION_KINDS.get(t["kind"])
            if kind is None:
                continue
            refund = refund_of.get(t["id"])
            location = store_at.get(refund["id"]) if refund else None
            tender, label = transaction_tender(t, at_pos or location is not None)
            out.append(ShopTransaction(
                transaction_id=t["id"], kind=kind,
                status=TRANSACTION_STATES.get((t["status"] or "").upper(),
                                              ShopTransactionStatus.UNKNOWN),
                amount=money, tender=tender, gateway=t["gateway"] or "",
                created_at=t["processed_at"] or t["created_at"],
                refund_id=refund["id"] if refund else None, location=location,
                tender_label=label, amount_shop=self.shop_money_of(t["amount_set"]),
                ids=tuple(x for x in (t["authorization_code"],) if x)))
        return tuple(self._net_change(out, change))

    def _net_change(self, txns: list[ShopTransaction],
                    change: dict[str | None, tuple[Money, Money | None]]
                    ) -> list[ShopTransaction]:
        """Cash handed back as change reduces the cash payment it came from, in both the
        presentment and the shop currency."""
        out = []
        for t in txns:
            back = change.pop(t.transaction_id, None)
            if back is None and t.tender is Tender.CASH and t.kind is ShopTransactionKind.PAYMENT:
                back = change.pop(None, None)  # change not tied to a transaction: the cash sale
            if back is not None and back[0].currency == t.amount.currency:
                back_shop = back[1]
                shop = t.amount_shop
                if shop is not None:
                    shop = shop - back_shop if back_shop is not None \
                        and back_shop.currency == shop.currency else None
                t = replace(t, amount=t.amount - back[0], amount_shop=shop)
            out.append(t)
        return out

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
        items = [item for item in refund["refund_line_items"]["nodes"]
                 if item["restock_type"] == RESTOCK_RETURN and item["location"] is not None
                 and self._is_store(item["location"]["name"])]
        if not items:
            return None
        lines = tuple(
            StoreReturnLine(
                sku=(item["line_item"] or {}).get("sku") or "",
                quantity=item["quantity"],
                restock_type=item["restock_type"],
                location=item["location"]["name"],
                amount=self.money_of(item["subtotal_set"]) if item["subtotal_set"] else None,
            )
            for item in items)
        # The store return is worth its store lines, not the whole refund (which can also
        # cover shipping or lines refunded without coming back).
        amounts = [line.amount for line in lines if line.amount is not None]
        amount = None
        if amounts and len(amounts) == len(lines) and len({a.currency for a in amounts}) == 1:
            amount = amounts[0]
            for extra in amounts[1:]:
                amount = amount + extra
        elif refund["total_refunded_set"] is not None and len(lines) == len(
                refund["refund_line_items"]["nodes"]):
            amount = self.money_of(refund["total_refunded_set"])
        return StoreReturn(refund_id=refund["id"], created_at=refund["created_at"],
                           lines=lines, amount=amount, location=lines[0].location)


def transaction_tender(t: dict[str, Any], at_store: bool) -> tuple[Tender, str | None]:
    """A transaction's tender and plain words for it, from its gateway and card details."""
    gateway = (t["gateway"] or "").strip().lower()
    details = t["payment_details"] or {}
    card = None
    if details.get("number") or details.get("company"):
        last4 = "".join(ch for ch in (details.get("number") or "") if ch.isdigit())[-4:]
        company = details.get("company") or "Card"
        card = f"{company} ending {last4}" if last4 else company
    if gateway in GATEWAY_TENDERS:
        tender = GATEWAY_TENDERS[gateway]
        return tender, ("gift card" if tender is Tender.GIFT_CARD else None)
    wallet = _WALLETS.get((details.get("wallet") or "").upper())
    if wallet:
        return Tender.WALLET, f"{wallet} ({card})" if card else wallet
    return (Tender.CARD_PRESENT if at_store else Tender.CARD), card


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


DESCRIPTOR = Connector(
    system="shopify_pos",
    title="Shopify POS",
    source=SourceName.POS,
    client=ShopifyPosClient,
    hosts=(".myshopify.com",),
    credentials=(Field("access_token", "Admin API access token",
                       "A custom app token with read_orders (shpat_…).", secret=True,
                       env="SHOPIFY_ACCESS_TOKEN"),),
    options=(
        Field("shop", "Shop", "acme (for acme.myshopify.com)", required=False,
              env="SHOPIFY_SHOP"),
        Field("api_version", "API version", f"default {DEFAULT_API_VERSION}", required=False,
              env="SHOPIFY_API_VERSION", default=DEFAULT_API_VERSION),
        Field("retail_locations", "Retail locations",
              "Shop-floor locations, comma-separated (blank: every restock location)",
              required=False, env="SHOPIFY_RETAIL_LOCATIONS"),
    ),
    base_url_env="SHOPIFY_BASE_URL",
    quotes="Orders are found by name; transactions name their gateway (cash, gift_card, "
           "shopify_payments, stripe …) and a processor's charge id in authorizationCode.",
    states={"transaction kind": state_table(TRANSACTION_KINDS),
            "transaction status": state_table(TRANSACTION_STATES),
            "gateway → tender": state_table(GATEWAY_TENDERS)},
    sandbox="shopify",
)
