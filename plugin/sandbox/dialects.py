"""Builders for the vendors' JSON dialects, so sandbox scenarios read as domain data."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from ..core.money import Money

JSON = dict[str, Any]

SHOPIFY_SHOP_ID = 5550000000
LOOP_ORDER_ID_BASE = 9000000

# Shopify location ids for the names the scenarios use.
SHOPIFY_LOCATIONS: dict[str, int] = {"Main Warehouse": 81000, "Brooklyn Store": 81001}


def decimal_string(money: Money) -> str:
    """Major units as the decimal string Loop, NetSuite and Shopify use ("40.00", "4500")."""
    return str(money.to_decimal())


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def shopify_order_id(order_number: str) -> int:
    """The numeric Shopify order id the sandbox gives an order number."""
    return SHOPIFY_SHOP_ID + int(order_number)


# ---------------------------------------------------------------- Loop Returns


def loop_line(line_item_id: int, sku: str, title: str, quantity: int | None = None) -> JSON:
    """A returned line; Loop omits `quantity` when the line is a single unit."""
    line: JSON = {"line_item_id": line_item_id, "sku": sku, "title": title}
    if quantity is not None:
        line["quantity"] = quantity
    return line


def loop_label(status: str, tracking_number: str, carrier: str = "USPS") -> JSON:
    """A return shipping label with its carrier status (pre_transit … delivered)."""
    return {
        "url": f"https://labels.loopreturns.test/{tracking_number}.pdf",
        "tracking_number": tracking_number,
        "carrier": carrier,
        "status": status,
    }


def loop_refund(amount: Money, provider_refund_id: str | None = None,
                gateway: str = "stripe") -> JSON:
    """A refund Loop says it issued through a payment gateway."""
    return {
        "gateway": gateway,
        "amount": decimal_string(amount),
        "currency": amount.currency,
        "provider_refund_id": provider_refund_id,
        "provider": gateway,
    }


def loop_return(
    return_id: int,
    order_number: str,
    state: str,
    created: datetime,
    *,
    total: Money,
    lines: Sequence[JSON],
    updated: datetime | None = None,
    labels: Sequence[JSON] = (),
    refunds: Sequence[JSON] = (),
    outcome: str | None = None,
    exchange_order: str | None = None,
    exchange_value: Money | None = None,
    gift_card: Money | None = None,
    flat_label: bool = False,
) -> JSON:
    """A return as GET /api/v1/warehouse/return/details answers it.

    With `flat_label` the label comes as the flat carrier / tracking_number / label_status
    fields the list endpoint documents, rather than a `labels[]` array.
    """
    refunded = sum(Money.from_decimal(r["amount"], r["currency"]).amount_minor for r in refunds)
    zero = decimal_string(Money.zero(total.currency))
    body: JSON = {
        "id": return_id,
        "state": state,
        "created_at": _utc(created).isoformat(timespec="seconds"),
        "updated_at": _utc(updated or created).isoformat(timespec="seconds"),
        "order_id": LOOP_ORDER_ID_BASE + int(order_number),
        "order_name": f"#{order_number}",
        "provider_order_id": str(shopify_order_id(order_number)),
        "currency": total.currency,
        "total": decimal_string(total),
        "return_total": decimal_string(total),
        "refund": decimal_string(Money(refunded, total.currency)),
        "outcome": outcome,
        "exchange_order_name": exchange_order,
        "exchange_order_id": (shopify_order_id(exchange_order.removeprefix("#"))
                              if exchange_order and exchange_order[1:].isdigit() else None),
        "exchange_total": decimal_string(exchange_value) if exchange_value else zero,
        "exchange_credit_total": decimal_string(exchange_value) if exchange_value else zero,
        "gift_card": decimal_string(gift_card) if gift_card else zero,
        "gift_card_order_name": f"#GC-{order_number}" if gift_card else None,
        "line_items": list(lines),
        "refunds": list(refunds),
    }
    if flat_label and labels:
        last = labels[-1]
        body.update(carrier=last["carrier"], tracking_number=last["tracking_number"],
                    label_status=last["status"], label_url=last["url"])
    else:
        body["labels"] = list(labels)
    return body


def loop_error(message: str) -> JSON:
    """Loop's (Laravel's) error body."""
    return {"message": message}


def loop_no_return() -> JSON:
    """What return details answers, with HTTP 200, when nothing matches (public clients)."""
    return {"error": {"message": "No return found with this ID."}}


# ---------------------------------------------------------------- Stripe


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())


def stripe_payment_intent(pi_id: str, amount: Money, created: datetime, order_number: str,
                          *, status: str = "succeeded") -> JSON:
    """A captured card PaymentIntent tagged with metadata.order_id."""
    return {
        "id": pi_id,
        "object": "payment_intent",
        "amount": amount.amount_minor,
        "amount_capturable": 0,
        "amount_received": amount.amount_minor if status == "succeeded" else 0,
        "capture_method": "automatic",
        "created": _unix(created),
        "currency": amount.currency.lower(),
        "description": f"Order #{order_number}",
        "latest_charge": "ch_" + pi_id.removeprefix("pi_"),
        "livemode": False,
        "metadata": {"order_id": order_number},
        "payment_method_types": ["card"],
        "status": status,
    }


def card_method(brand: str = "visa", last4: str = "4242", wallet: str | None = None) -> JSON:
    """A charge's payment_method_details for a card (optionally inside a wallet)."""
    card: JSON = {"brand": brand, "country": "US", "exp_month": 8, "exp_year": 2029,
                  "funding": "credit", "last4": last4, "network": brand, "wallet": None}
    if wallet:
        card["wallet"] = {"type": wallet, wallet: {}, "dynamic_last4": "0001"}
    return {"type": "card", "card": card}


def klarna_method() -> JSON:
    """payment_method_details for Klarna."""
    return {"type": "klarna", "klarna": {"payment_method_category": "pay_later",
                                         "preferred_locale": "en-US"}}


def stripe_charge(payment_intent: JSON, method: JSON | None = None) -> JSON:
    """The PaymentIntent's latest Charge, as `expand[]=data.latest_charge` returns it."""
    return {
        "id": payment_intent["latest_charge"],
        "object": "charge",
        "amount": payment_intent["amount"],
        "amount_captured": payment_intent["amount_received"],
        "captured": payment_intent["status"] == "succeeded",
        "created": payment_intent["created"],
        "currency": payment_intent["currency"],
        "paid": payment_intent["status"] == "succeeded",
        "payment_intent": payment_intent["id"],
        "payment_method_details": method or card_method(),
        "status": "succeeded",
    }


def refund_metadata(order_number: str, return_key: str | None = None,
                    erp_refund_id: str | None = None) -> dict[str, str]:
    """The metadata Order Truth writes on refunds: order, return and ERP document keys."""
    metadata = {"order_id": order_number, "return_key": return_key,
                "erp_refund_id": erp_refund_id}
    return {key: value for key, value in metadata.items() if value is not None}


def stripe_refund(refund_id: str, payment_intent: JSON, amount: Money, created: datetime, *,
                  status: str = "succeeded", reason: str | None = "requested_by_customer",
                  metadata: dict[str, str] | None = None,
                  failure_reason: str | None = None, destination: str = "card") -> JSON:
    """A Refund against a PaymentIntent's charge."""
    refund: JSON = {
        "id": refund_id,
        "object": "refund",
        "amount": amount.amount_minor,
        "balance_transaction": "txn_" + refund_id.removeprefix("re_"),
        "charge": payment_intent["latest_charge"],
        "created": _unix(created),
        "currency": amount.currency.lower(),
        "destination_details": ({"type": "card", "card": {"type": "refund"}}
                                if destination == "card" else
                                {"type": destination, destination: {}}),
        "metadata": dict(metadata or {}),
        "payment_intent": payment_intent["id"],
        "reason": reason,
        "receipt_number": None,
        "status": status,
    }
    if failure_reason is not None:
        refund["failure_reason"] = failure_reason
    return refund


def stripe_dispute(dispute_id: str, payment_intent: JSON, amount: Money, created: datetime, *,
                   status: str, reason: str, due_by: datetime | None,
                   has_evidence: bool = False, is_charge_refundable: bool = False) -> JSON:
    """A Dispute (chargeback) on a PaymentIntent's charge."""
    return {
        "id": dispute_id,
        "object": "dispute",
        "amount": amount.amount_minor,
        "balance_transactions": [],
        "charge": payment_intent["latest_charge"],
        "created": _unix(created),
        "currency": amount.currency.lower(),
        "evidence_details": {
            "due_by": _unix(due_by) if due_by else None,
            "has_evidence": has_evidence,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": is_charge_refundable,
        "livemode": False,
        "metadata": {},
        "payment_intent": payment_intent["id"],
        "reason": reason,
        "status": status,
    }


def stripe_list(url: str, data: Sequence[JSON], has_more: bool) -> JSON:
    """A Stripe list envelope."""
    return {"object": "list", "url": url, "has_more": has_more, "data": list(data)}


def stripe_search_result(url: str, data: Sequence[JSON], next_page: str | None) -> JSON:
    """A Stripe search envelope."""
    return {"object": "search_result", "url": url, "has_more": next_page is not None,
            "next_page": next_page, "data": list(data)}


def stripe_error(error_type: str, message: str, *, code: str | None = None,
                 param: str | None = None) -> JSON:
    """Stripe's error envelope."""
    error = {"type": error_type, "code": code, "message": message, "param": param}
    return {"error": {key: value for key, value in error.items() if value is not None}}


# ---------------------------------------------------------------- NetSuite


def netsuite_row(**columns: object) -> dict[str, str]:
    """A SuiteQL result row: every value a string, absent (None) columns omitted."""
    return {name: str(value) for name, value in columns.items() if value is not None}


class NetSuiteChain:
    """An order's NetSuite documents and the links between them, as SuiteQL chain rows.

    A row per (document, link into it): the document's columns plus `parent` (the linked
    document) and `link` (NetSuite's link type; "Into:Payment" for a document that applies
    to one of the order's own, as the chain query's last branch returns it).
    """

    _PREFIXES = {"SalesOrd": "SO", "CashSale": "CS", "CustInvc": "INV", "RtnAuth": "RA",
                 "ItemRcpt": "IR", "CustCred": "CM", "CustRfnd": "CR", "CashRfnd": "CRF"}

    def __init__(self, order_number: str, currency: str) -> None:
        self.order_number = order_number
        self.currency = currency
        self.rows: list[dict[str, str]] = []
        self.receipt_lines: list[dict[str, str]] = []
        self._docs = 0

    def sales_order(self, total: Money, created: datetime, status: str = "G") -> dict[str, str]:
        """The sales order; its otherrefnum is the storefront order name."""
        return self._add("SalesOrd", created, None, status=status, total=total,
                         otherrefnum=f"#{self.order_number}")

    def cash_sale(self, total: Money, created: datetime, *, location: str | None = None,
                  payment_method: str = "VISA") -> dict[str, str]:
        """A cash sale (paid at once, e.g. at a store) carrying the order name."""
        return self._add("CashSale", created, None, status="C", total=total,
                         otherrefnum=f"#{self.order_number}", location=location,
                         paymentmethod=payment_method)

    def invoice(self, sale: dict[str, str], total: Money, created: datetime,
                status: str = "B") -> dict[str, str]:
        """An invoice billed from the sales order."""
        return self._add("CustInvc", created, sale, link="OrdBill", status=status, total=total,
                         otherrefnum=f"#{self.order_number}")

    def return_authorization(self, sale: dict[str, str], status: str, total: Money,
                             created: datetime, *,
                             loop_return_id: int | None = None) -> dict[str, str]:
        """An RA created from a sale (externalid loop-<id> when synced from a Loop return)."""
        return self._add("RtnAuth", created, sale, link="SaleRet", status=status, total=-total,
                         otherrefnum=f"#{self.order_number}",
                         externalid=f"loop-{loop_return_id}" if loop_return_id else None)

    def item_receipt(self, return_authorization: dict[str, str], created: datetime,
                     lines: Iterable[tuple[str, int, str]]) -> dict[str, str]:
        """Goods received against an RA; `lines` are (sku, quantity, location name)."""
        receipt = self._add("ItemRcpt", created, return_authorization, link="RtnRcpt")
        for sku, quantity, location in lines:
            self.receipt_lines.append(netsuite_row(receipt=receipt["id"], sku=sku,
                                                   quantity=quantity, location=location))
        return receipt

    def credit_memo(self, source: dict[str, str], amount: Money, created: datetime,
                    status: str = "B", memo: str | None = None) -> dict[str, str]:
        """A credit memo from an RA or invoice (status A: open, B: fully applied)."""
        return self._add("CustCred", created, source, link="RtnCred", status=status,
                         total=-amount, memo=memo)

    def customer_refund(self, credit_memos: dict[str, str] | Sequence[dict[str, str]],
                        amount: Money, created: datetime, memo: str | None = None,
                        payment_method: str = "VISA") -> dict[str, str]:
        """Money paid back against one or more credit memos (a Payment link from each)."""
        memos = [credit_memos] if isinstance(credit_memos, dict) else list(credit_memos)
        refund = self._add("CustRfnd", created, memos[0], link="Payment", total=amount,
                           memo=memo, paymentmethod=payment_method, link_amount=amount)
        for other in memos[1:]:
            self.rows.append({**refund, "parent": other["id"]})
        return refund

    def cash_refund(self, source: dict[str, str], amount: Money, created: datetime, *,
                    payment_method: str = "Cash", location: str | None = None,
                    memo: str | None = None) -> dict[str, str]:
        """A cash refund from an RA or cash sale (at a store when `location` is set)."""
        return self._add("CashRfnd", created, source, link="RtnCred", status="C", total=-amount,
                         paymentmethod=payment_method, location=location, memo=memo)

    def applied_to_other_order(self, credit_memo: dict[str, str], other_order: str,
                               amount: Money, created: datetime) -> dict[str, str]:
        """Another order's invoice that this credit memo paid (store credit used)."""
        return self._add("CustInvc", created, credit_memo, link="Into:Payment", status="B",
                         total=amount, otherrefnum=other_order, link_amount=-amount)

    def _add(self, doc_type: str, created: datetime, parent: dict[str, str] | None, *,
             link: str | None = None, status: str | None = None, total: Money | None = None,
             otherrefnum: str | None = None, externalid: str | None = None,
             memo: str | None = None, location: str | None = None,
             paymentmethod: str | None = None, link_amount: Money | None = None
             ) -> dict[str, str]:
        # Ids "<order><seq>" and tranids "<prefix>-<order>[-n]" stay stable across rebuilds,
        # so paging and links by id work between requests.
        same_type = sum(row["type"] == doc_type for row in self._unique())
        self._docs += 1
        tranid = (f"{self._PREFIXES[doc_type]}-{self.order_number}"
                  + (f"-{same_type + 1}" if same_type else ""))
        row = netsuite_row(
            id=f"{self.order_number}{self._docs:02d}",
            type=doc_type,
            tranid=tranid,
            status=status,
            total=decimal_string(total) if total is not None else None,
            currency=self.currency,
            created=_utc(created).strftime("%Y-%m-%d %H:%M:%S"),
            otherrefnum=otherrefnum,
            externalid=externalid,
            memo=memo,
            location=location,
            paymentmethod=paymentmethod,
            voided="F",
            parent=parent["id"] if parent else None,
            link=link if parent else None,
            link_amount=decimal_string(link_amount) if link_amount is not None else None,
        )
        self.rows.append(row)
        return row

    def _unique(self) -> list[dict[str, str]]:
        seen: dict[str, dict[str, str]] = {}
        for row in self.rows:
            seen.setdefault(row["id"], row)
        return list(seen.values())


def suiteql_page(rows: Sequence[dict[str, str]], *, limit: int, offset: int,
                 href: str) -> JSON:
    """One page of SuiteQL results, with NetSuite's paging links (`href` lacks the query)."""
    page = rows[offset:offset + limit]
    has_more = offset + len(page) < len(rows)
    last = max(0, (len(rows) - 1) // limit * limit)
    links = []
    if offset > 0:
        links.append(("previous", max(0, offset - limit)))
        links.append(("first", 0))
    if has_more:
        links.append(("next", offset + limit))
        links.append(("last", last))
    links.append(("self", offset))
    return {
        "links": [{"rel": rel, "href": f"{href}?limit={limit}&offset={at}"} for rel, at in links],
        "count": len(page),
        "hasMore": has_more,
        "offset": offset,
        "totalResults": len(rows),
        "items": [{"links": [], **row} for row in page],
    }


_RFC_SECTIONS = {400: "10.4.1", 401: "10.4.2", 403: "10.4.4", 404: "10.4.5", 405: "10.4.6",
                 500: "10.5.1", 502: "10.5.3", 503: "10.5.4", 504: "10.5.5"}


def netsuite_error(status: int, code: str, detail: str) -> JSON:
    """NetSuite REST's error envelope."""
    section = _RFC_SECTIONS.get(status)
    error_type = (f"https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec{section}"
                  if section else f"https://www.rfc-editor.org/rfc/rfc9110#status.{status}")
    return {
        "type": error_type,
        "title": status_phrase(status),
        "status": status,
        "o:errorDetails": [{"detail": detail, "o:errorCode": code}],
    }


# ---------------------------------------------------------------- Shopify


def _bag(amount: Money) -> JSON:
    money = {"amount": decimal_string(amount), "currencyCode": amount.currency}
    return {"shopMoney": dict(money), "presentmentMoney": dict(money)}


def shopify_transaction(txn_id: int, kind: str, gateway: str, amount: Money,
                        created: datetime, *, status: str = "SUCCESS",
                        card: tuple[str, str] | None = None, wallet: str | None = None,
                        parent: int | None = None, authorization: str | None = None) -> JSON:
    """An OrderTransaction (SALE, REFUND, CHANGE …) on a gateway (cash, gift_card, …)."""
    details: JSON | None = {}
    if card:
        details = {"company": card[0], "number": f"•••• •••• •••• {card[1]}", "wallet": wallet}
    return {
        "id": f"gid://shopify/OrderTransaction/{txn_id}",
        "kind": kind,
        "status": status,
        "gateway": gateway,
        "createdAt": _utc(created).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "processedAt": _utc(created).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "authorizationCode": authorization,
        "amountSet": _bag(amount),
        "parentTransaction": {"id": f"gid://shopify/OrderTransaction/{parent}"} if parent else None,
        "paymentDetails": details,
    }


def shopify_refund_line(sku: str, name: str, quantity: int = 1, *,
                        restock_type: str = "RETURN", location: str | None = None,
                        restocked: bool = True, price: Money | None = None) -> JSON:
    """A RefundLineItem; a RETURN line with a location is a store return."""
    line: JSON = {
        "quantity": quantity,
        "restockType": restock_type,
        "restocked": restocked,
        "location": ({"id": f"gid://shopify/Location/{SHOPIFY_LOCATIONS[location]}",
                      "name": location} if location else None),
        "lineItem": {"sku": sku, "name": name},
        "subtotalSet": None,
    }
    if price is not None:
        line["subtotalSet"] = _bag(Money(price.amount_minor * quantity, price.currency))
    return line


def shopify_refund(refund_id: int, created: datetime, amount: Money,
                   lines: Sequence[JSON], transactions: Sequence[JSON] = ()) -> JSON:
    """A Refund on the order, as selected by the POS connector, with its transactions' ids."""
    return {
        "id": f"gid://shopify/Refund/{refund_id}",
        "createdAt": _utc(created).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "totalRefundedSet": _bag(amount),
        "transactions": {"nodes": [{"id": t["id"]} for t in transactions]},
        "refundLineItems": {"nodes": list(lines)},
    }


def shopify_order(order_number: str, currency: str, refunds: Sequence[JSON] = (),
                  transactions: Sequence[JSON] = (), *, source_name: str = "web",
                  retail_location: str | None = None) -> JSON:
    """An Order node with its transactions and refunds."""
    return {
        "id": f"gid://shopify/Order/{shopify_order_id(order_number)}",
        "name": f"#{order_number}",
        "currencyCode": currency,
        "presentmentCurrencyCode": currency,
        "sourceName": source_name,
        "retailLocation": {"name": retail_location} if retail_location else None,
        "transactions": list(transactions),
        "refunds": list(refunds),
    }


def shopify_orders_response(nodes: Sequence[JSON]) -> JSON:
    """The GraphQL answer to orders(first: 5, query: …), with a query-cost extension."""
    return {
        "data": {"orders": {"nodes": list(nodes)}},
        "extensions": {"cost": {
            "requestedQueryCost": 23,
            "actualQueryCost": 4 + 2 * len(nodes),
            "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1996,
                               "restoreRate": 100.0},
        }},
    }


def shopify_error(message: str) -> JSON:
    """Shopify's top-level error body (HTTP-level failures)."""
    return {"errors": message}


def shopify_graphql_error(message: str, code: str) -> JSON:
    """A GraphQL `errors[]` body (HTTP 200 or 429), e.g. THROTTLED."""
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


def status_phrase(status: int) -> str:
    """The standard reason phrase for an HTTP status ("Service Unavailable")."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
