"""NetSuite connector: the ERP document chain (SO → RA → receipt / credit memo → refund)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from marshmallow import fields, validate
from urllib3.util import parse_url

from plugin.core.model import (
    CreditState,
    ErpApplication,
    ErpCreditMemo,
    ErpCustomerRefund,
    ErpFacts,
    ErpItemReceipt,
    ErpReturnAuthorization,
    ErpSale,
    OrderRef,
    ReturnState,
    SaleKind,
    SourceName,
    StockLine,
    Tender,
)
from plugin.core.money import Money

from .base import (
    AuthError,
    BadResponseError,
    BaseClient,
    ConfigError,
    ConnectorConfig,
    CurrencyCode,
    DecimalAmount,
    Identifier,
    NotFoundError,
    RateLimitedError,
    UpstreamError,
    UtcDateTime,
    VendorSchema,
    WholeNumber,
)
from .descriptor import Connector, Field, state_table

logger = logging.getLogger(__name__)

SUITEQL_PATH = "/services/rest/query/v1/suiteql"
RECORD_PATH = "/services/rest/record/v1"
PAGE_LIMIT = 1000
MAX_PAGES = 10
DEFAULT_RA_PREFIX = "loop-"
RATE_LIMIT_CODES = frozenset({"SSS_REQUEST_LIMIT_EXCEEDED", "CONCURRENCY_LIMIT_EXCEEDED"})
_ACCOUNT_ID = re.compile(r"^[A-Za-z0-9_-]+$")
_INTERNAL_ID = validate.Regexp(r"^\d+$", error="Not a NetSuite internal id.")
_NUMERIC = re.compile(r"^\d+$")
_RECORD_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Oracle: an external ID may contain letters, numbers, "_" and "-" (others, like "|", can't
# be used in an `eid:` URL).
_EXTERNAL_ID = re.compile(r"^[A-Za-z0-9_-]+$")
# Ids other systems may be quoted by in a memo or external id (re_…, ch_…, 37603922, CM-12).
_QUOTED = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]*[0-9][A-Za-z0-9_.:/-]*")

# Return authorization status letters (SuiteQL `status` holds the bare letter).
RA_STATES: dict[str, ReturnState] = {
    "A": ReturnState.REQUESTED,  # Pending Approval
    "B": ReturnState.AUTHORIZED,  # Pending Receipt
    "C": ReturnState.CANCELED,  # Cancelled
    "D": ReturnState.PARTIALLY_RECEIVED,  # Partially Received
    "E": ReturnState.PARTIALLY_RECEIVED,  # Pending Refund/Partially Received
    "F": ReturnState.RECEIVED,  # Pending Refund
    "G": ReturnState.CLOSED,  # Refunded
    "H": ReturnState.CLOSED,  # Closed
}
# Credit memo status letters: A Open, B Fully Applied, V Voided.
CREDIT_STATES: dict[str, CreditState] = {
    "A": CreditState.OPEN, "B": CreditState.APPLIED, "V": CreditState.VOIDED,
}
SALE_KINDS: dict[str, SaleKind] = {
    "SalesOrd": SaleKind.SALES_ORDER, "CashSale": SaleKind.CASH_SALE, "CustInvc": SaleKind.INVOICE,
}
# Payment methods are named per account; these words name the tender.
_TENDER_WORDS: tuple[tuple[tuple[str, ...], Tender], ...] = (
    (("cash",), Tender.CASH),
    (("check", "cheque"), Tender.CHECK),
    (("gift",), Tender.GIFT_CARD),
    (("store credit", "credit note"), Tender.STORE_CREDIT),
    (("klarna", "afterpay", "affirm", "clearpay", "sezzle", "zip"), Tender.BNPL),
    (("paypal", "apple pay", "google pay", "wallet", "venmo"), Tender.WALLET),
    (("ach", "bank", "wire", "transfer", "sepa"), Tender.BANK),
    (("visa", "master", "amex", "american express", "discover", "card", "stripe", "jcb",
      "diners", "shopify payments"), Tender.CARD),
)


def tender_of(payment_method: str | None) -> Tender:
    """An account's payment method name ("VISA", "Cash", "Gift Certificate") as a tender."""
    name = (payment_method or "").strip().lower()
    if not name:
        return Tender.UNKNOWN
    for words, tender in _TENDER_WORDS:
        if any(word in name for word in words):
            return tender
    return Tender.OTHER


def ra_state(status: str | None) -> ReturnState:
    """An RA status ("F" or "RtnAuth:F") as a canonical state; UNKNOWN for a new letter."""
    return RA_STATES.get((status or "").split(":")[-1].strip().upper(), ReturnState.UNKNOWN)


# ---------------------------------------------------------------- OAuth 1.0a (TBA)


def netsuite_realm(account_id: str) -> str:
    """The OAuth realm: the account id upper-cased with "-" as "_" (1234567-sb1 → 1234567_SB1)."""
    return account_id.strip().upper().replace("-", "_")


def netsuite_base_url(account_id: str) -> str:
    """Default REST host for an account (1234567_SB1 → https://1234567-sb1.suitetalk...)."""
    account = account_id.strip()
    if not _ACCOUNT_ID.match(account):
        raise ConfigError("account_id must be letters, digits, '-' or '_'", system="netsuite")
    return f"https://{account.lower().replace('_', '-')}.suitetalk.api.netsuite.com"


def oauth_header(
    method: str,
    url: str,
    params: Mapping[str, Any] | None,
    *,
    realm: str,
    consumer_key: str,
    consumer_secret: str,
    token_id: str,
    token_secret: str,
    nonce: str,
    timestamp: int,
) -> str:
    """The `Authorization: OAuth ...` value for one TBA request (RFC 5849, HMAC-SHA256).

    Signs the method, the base URI and every query parameter (the URL's own and `params`)
    with the protocol parameters; a JSON body isn't signed. Computed directly (a few dozen
    microseconds) rather than by building and preparing a throwaway request per call.
    """
    protocol = {
        "oauth_nonce": nonce,
        "oauth_timestamp": str(timestamp),
        "oauth_version": "1.0",
        "oauth_signature_method": "HMAC-SHA256",
        "oauth_consumer_key": consumer_key,
        "oauth_token": token_id,
    }
    # The URL as requests will send it (unsafe characters quoted, dot segments removed).
    on_the_wire = requests.PreparedRequest()
    on_the_wire.prepare_url(url, None)
    wire = on_the_wire.url or url
    parts = urlsplit(wire)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    for key, value in (params or {}).items():
        values = value if isinstance(value, list | tuple) else [value]
        pairs.extend((str(key), v.decode() if isinstance(v, bytes) else str(v))
                     for v in values if v is not None)
    pairs.extend(protocol.items())
    normalized = "&".join(f"{k}={v}" for k, v in sorted(
        (_pct(k), _pct(v)) for k, v in pairs))
    host = (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    default_port = {"http": 80, "https": 443}.get(parts.scheme.lower())
    if parts.port and parts.port != default_port:
        host = f"{host}:{parts.port}"
    # The path as it goes on the wire (urllib3 removes dot segments before sending).
    path = parse_url(wire).path or "/"
    base_uri = f"{parts.scheme.lower()}://{host}{path}"
    base = "&".join([method.upper(), _pct(base_uri), _pct(normalized)])
    key = f"{_pct(consumer_secret)}&{_pct(token_secret)}"
    signature = base64.b64encode(
        hmac.new(key.encode(), base.encode(), hashlib.sha256).digest()).decode()
    fields = [("realm", realm), *protocol.items(), ("oauth_signature", signature)]
    return "OAuth " + ", ".join(
        f'{k}="{v if k == "realm" else _pct(v)}"' for k, v in fields)


def _pct(value: str) -> str:
    """RFC 5849 §3.6 percent-encoding (RFC 3986 unreserved characters kept)."""
    return quote(value, safe="-._~")


# ---------------------------------------------------------------- SuiteQL


def suiteql_literal(value: str) -> str:
    """A SuiteQL string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


_DOC_COLUMNS = """t.id, t.type, t.tranid, t.status, t.foreigntotal AS total,
       cur.symbol AS currency, TO_CHAR(t.createddate, 'YYYY-MM-DD HH24:MI:SS') AS created,
       t.otherrefnum, t.externalid, t.memo, BUILTIN.DF(t.location) AS location,
       BUILTIN.DF(t.paymentmethod) AS paymentmethod, t.voided"""

# The documents this reconciler reads; other linked documents (fulfilments, payments) are skipped.
DOC_TYPES = ("SalesOrd", "CashSale", "CustInvc", "RtnAuth", "ItemRcpt", "CustCred", "CustRfnd",
             "CashRfnd")
# Documents that carry the web order's reference themselves.
_ROOT_TYPES = "'SalesOrd', 'CashSale', 'CustInvc', 'RtnAuth', 'CustCred', 'CashRfnd'"
_TYPES = ", ".join(f"'{t}'" for t in DOC_TYPES)
_SALE_TYPES = "'SalesOrd', 'CashSale', 'CustInvc'"

# One row per (document, link into it). The order's own documents carry its reference
# (otherrefnum); everything else is reached through NextTransactionLineLink, up to three
# links on (sale → RA → credit memo → refund, sale → invoice → credit memo → refund), plus
# the documents that link *into* one of ours (a credit memo applied to another order's
# invoice, a refund that pays a memo, whichever way the account records the application),
# and the sale one of ours was created from when that sale doesn't carry the reference (a
# return authorization from a store's cash sale or an invoice). NextTransactionLineLink has
# a row per linked line, hence DISTINCT.
_CHAIN_SQL = """
SELECT DISTINCT {cols}, NULL AS parent, NULL AS link, NULL AS link_amount
  FROM transaction t
  JOIN currency cur ON cur.id = t.currency
 WHERE t.type IN ({roots}) AND t.otherrefnum = {order}
UNION ALL
SELECT DISTINCT {cols}, l1.previousdoc AS parent, l1.linktype AS link,
       l1.foreignamount AS link_amount
  FROM transaction r
  JOIN NextTransactionLineLink l1 ON l1.previousdoc = r.id
  JOIN transaction t ON t.id = l1.nextdoc AND t.type IN ({types})
  JOIN currency cur ON cur.id = t.currency
 WHERE r.type IN ({roots}) AND r.otherrefnum = {order}
UNION ALL
SELECT DISTINCT {cols}, l2.previousdoc AS parent, l2.linktype AS link,
       l2.foreignamount AS link_amount
  FROM transaction r
  JOIN NextTransactionLineLink l1 ON l1.previousdoc = r.id
  JOIN NextTransactionLineLink l2 ON l2.previousdoc = l1.nextdoc
  JOIN transaction t ON t.id = l2.nextdoc AND t.type IN ({types})
  JOIN currency cur ON cur.id = t.currency
 WHERE r.type IN ({roots}) AND r.otherrefnum = {order}
UNION ALL
SELECT DISTINCT {cols}, l3.previousdoc AS parent, l3.linktype AS link,
       l3.foreignamount AS link_amount
  FROM transaction r
  JOIN NextTransactionLineLink l1 ON l1.previousdoc = r.id
  JOIN NextTransactionLineLink l2 ON l2.previousdoc = l1.nextdoc
  JOIN NextTransactionLineLink l3 ON l3.previousdoc = l2.nextdoc
  JOIN transaction t ON t.id = l3.nextdoc AND t.type IN ({types})
  JOIN currency cur ON cur.id = t.currency
 WHERE r.type IN ({roots}) AND r.otherrefnum = {order}
UNION ALL
SELECT DISTINCT {cols}, la.nextdoc AS parent, 'Into:' || la.linktype AS link,
       la.foreignamount AS link_amount
  FROM NextTransactionLineLink la
  JOIN transaction t ON t.id = la.previousdoc AND t.type IN ({types})
  JOIN currency cur ON cur.id = t.currency
 WHERE la.linktype = 'Payment' AND la.nextdoc IN (
       SELECT r.id FROM transaction r WHERE r.type IN ({roots}) AND r.otherrefnum = {order}
       UNION
       SELECT l1.nextdoc FROM transaction r
         JOIN NextTransactionLineLink l1 ON l1.previousdoc = r.id
        WHERE r.type IN ({roots}) AND r.otherrefnum = {order}
       UNION
       SELECT l2.nextdoc FROM transaction r
         JOIN NextTransactionLineLink l1 ON l1.previousdoc = r.id
         JOIN NextTransactionLineLink l2 ON l2.previousdoc = l1.nextdoc
        WHERE r.type IN ({roots}) AND r.otherrefnum = {order})
UNION ALL
SELECT DISTINCT {cols}, lb.nextdoc AS parent, 'From:' || lb.linktype AS link,
       lb.foreignamount AS link_amount
  FROM NextTransactionLineLink lb
  JOIN transaction t ON t.id = lb.previousdoc AND t.type IN ({sales})
  JOIN currency cur ON cur.id = t.currency
 WHERE lb.linktype <> 'Payment' AND lb.nextdoc IN (
       SELECT r.id FROM transaction r WHERE r.type IN ({roots}) AND r.otherrefnum = {order})
 ORDER BY created, id
"""

_RECEIPT_LINES_SQL = """
SELECT tl.transaction AS receipt, item.itemid AS sku, tl.quantity AS quantity,
       loc.name AS location
  FROM transactionline tl
  JOIN item ON item.id = tl.item
  LEFT JOIN location loc ON loc.id = tl.location
 WHERE tl.transaction IN ({ids}) AND tl.mainline = 'F'
 ORDER BY tl.transaction, tl.id
"""

# Active locations by name: a POS location is matched to NetSuite's by its name, the same
# name the receipt-lines query reads back (so a receipt made there clears the store flag).
# `isinactive` is 'T'/'F' (Oracle's Locations table: "Location is inactive").
LOCATIONS_QUERY = """
SELECT loc.id AS id, loc.name AS name
  FROM location loc
 WHERE loc.isinactive = 'F'
 ORDER BY loc.id
""".strip()


def chain_query(order_name: str) -> str:
    """SuiteQL for every document of the order and the links between them (see _CHAIN_SQL)."""
    return _CHAIN_SQL.format(order=suiteql_literal(order_name), cols=_DOC_COLUMNS,
                             roots=_ROOT_TYPES, types=_TYPES, sales=_SALE_TYPES).strip()


def receipt_lines_query(receipt_ids: Iterable[str]) -> str:
    """SuiteQL for the item lines of the given item receipts (ids must be numeric)."""
    ids = list(receipt_ids)
    if not ids or not all(i.isdigit() for i in ids):
        raise ValueError("receipt ids must be non-empty numeric strings")
    return _RECEIPT_LINES_SQL.format(ids=", ".join(ids)).strip()


# ---------------------------------------------------------------- schemas


class SuiteQLPageSchema(VendorSchema):
    """The SuiteQL result envelope."""

    count = fields.Integer(strict=True, required=True)
    has_more = fields.Boolean(required=True, data_key="hasMore")
    offset = fields.Integer(strict=True, load_default=0)
    total_results = fields.Integer(strict=True, load_default=None, allow_none=True,
                                   data_key="totalResults")
    items = fields.List(fields.Dict(), required=True)


class DocumentRowSchema(VendorSchema):
    """A document row; every value arrives as a string and absent values are omitted."""

    id = Identifier(required=True, validate=_INTERNAL_ID)
    type = fields.String(required=True)
    tranid = fields.String(required=True)
    status = fields.String(load_default=None)
    total = DecimalAmount(load_default=None)
    currency = CurrencyCode(load_default=None)
    created = UtcDateTime("%Y-%m-%d %H:%M:%S", required=True)
    otherrefnum = fields.String(load_default=None)
    externalid = fields.String(load_default=None)
    memo = fields.String(load_default=None)
    location = fields.String(load_default=None)
    paymentmethod = fields.String(load_default=None)
    voided = fields.String(load_default=None)
    parent = Identifier(load_default=None, validate=_INTERNAL_ID)
    link = fields.String(load_default=None)
    link_amount = DecimalAmount(load_default=None)


# Documents that carry money need their amount and currency.
_MONEY_DOCS = frozenset({"SalesOrd", "CashSale", "CustInvc", "CustCred", "CustRfnd", "CashRfnd"})

class ReceiptLineRowSchema(VendorSchema):
    """A receipt line row from query 2."""

    receipt = Identifier(required=True, validate=_INTERNAL_ID)
    sku = fields.String(required=True)
    quantity = WholeNumber(required=True)
    location = fields.String(load_default=None)


class LocationRowSchema(VendorSchema):
    """A row of the locations query (SuiteQL sends every value as a string)."""

    id = Identifier(required=True, validate=_INTERNAL_ID)
    name = fields.String(load_default=None, allow_none=True)


class RecordRefSchema(VendorSchema):
    """A reference to another record: `{"links": [...], "id": "42", "refName": "..."}`."""

    id = Identifier(required=True)
    ref_name = fields.String(load_default=None, allow_none=True, data_key="refName")


class RecordLineSchema(VendorSchema):
    """One line of an expanded `item` sublist."""

    line = WholeNumber(required=True)
    item = fields.Nested(RecordRefSchema, load_default=None, allow_none=True)
    quantity = WholeNumber(load_default=None, allow_none=True)


class SublistSchema(VendorSchema):
    """An expanded sublist: `{"links": [...], "items": [...], "totalResults": n, ...}`."""

    items = fields.List(fields.Nested(RecordLineSchema), required=True)


class LinedRecordSchema(VendorSchema):
    """A transaction record read with expandSubResources=true (only what we use)."""

    id = Identifier(required=True, validate=_INTERNAL_ID)
    item = fields.Nested(SublistSchema, required=True)


class RecordIdSchema(VendorSchema):
    """Any record instance; only its internal id is read."""

    id = Identifier(required=True, validate=_INTERNAL_ID)


# ---------------------------------------------------------------- client


class NetSuiteClient(BaseClient):
    """Reads the order's transaction chain from NetSuite with SuiteQL over TBA."""

    system = "netsuite"
    source = SourceName.ERP
    required_credentials = ("account_id", "consumer_key", "consumer_secret", "token_id",
                            "token_secret")

    def __init__(
        self,
        config: ConnectorConfig,
        session: requests.Session | None = None,
        *,
        sleep: Callable[[float], None] | None = None,
        nonce: Callable[[], str] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(config, session, sleep=sleep)
        self._nonce = nonce or (lambda: secrets.token_hex(16))
        self._clock = clock or time.time
        self.ra_prefix = config.options.get("ra_external_id_prefix", DEFAULT_RA_PREFIX)
        # TO_CHAR renders createddate in the integration user's time zone (a NetSuite user
        # preference), so the account's zone is configuration, UTC unless told otherwise.
        try:
            self.timezone = ZoneInfo(config.options.get("timezone") or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError("timezone must be an IANA zone such as America/New_York",
                              system=self.system) from None

    def _when(self, row: dict[str, Any]) -> datetime:
        """A row's `created`, read in the account's time zone, as UTC."""
        created: datetime = row["created"]
        return created.replace(tzinfo=self.timezone).astimezone(UTC)

    def derive_base_url(self) -> str:
        """https://<account>.suitetalk.api.netsuite.com from the account id."""
        return netsuite_base_url(self.config.credentials["account_id"])

    def auth_headers(self, method: str, url: str, params: Any) -> dict[str, str]:
        """A freshly signed OAuth 1.0a (TBA, HMAC-SHA256) Authorization header."""
        creds = self.config.credentials
        return {"Authorization": oauth_header(
            method, url, params,
            realm=netsuite_realm(creds["account_id"]),
            consumer_key=creds["consumer_key"],
            consumer_secret=creds["consumer_secret"],
            token_id=creds["token_id"],
            token_secret=creds["token_secret"],
            nonce=self._nonce(),
            timestamp=int(self._clock()),
        )}

    def error_message(self, payload: Any) -> tuple[str | None, str | None]:
        """First o:errorDetails entry (code, detail), else the title."""
        if isinstance(payload, Mapping):
            details = payload.get("o:errorDetails")
            if isinstance(details, list) and details and isinstance(details[0], Mapping):
                return details[0].get("o:errorCode"), details[0].get("detail")
        return super().error_message(payload)

    def error_from_response(self, resp: requests.Response) -> UpstreamError:
        """INVALID_LOGIN is an auth failure; request/concurrency limits are rate limiting."""
        error = super().error_from_response(resp)
        if error.code == "INVALID_LOGIN" and not isinstance(error, AuthError):
            return _recast(error, AuthError)
        if error.code in RATE_LIMIT_CODES and not isinstance(error, RateLimitedError):
            return _recast(error, RateLimitedError)
        return error

    # -- reads

    def fetch(self, order: OrderRef) -> ErpFacts:
        """Every sale, RA, receipt, credit memo and refund of the order, with their links."""
        graph = _Graph(order.name)
        for raw in self.suiteql(chain_query(order.name)):
            row = self.load(DocumentRowSchema, raw)
            if row["type"] not in DOC_TYPES:
                logger.debug("netsuite: ignoring %s row in the chain", row["type"])
                continue
            if row["type"] in _MONEY_DOCS and (row["total"] is None or row["currency"] is None):
                raise self.bad_response(f"{row['type']} {row['tranid']} has no amount")
            graph.add(row)
        if not graph.ours(("SalesOrd", "CashSale", "CustInvc", "RtnAuth")):
            return ErpFacts(order_name=order.name)
        receipts = graph.ours(("ItemRcpt",))
        lines = self._receipt_lines([r["id"] for r in receipts]) if receipts else {}
        return ErpFacts(
            order_name=order.name,
            sales=tuple(self._sale(r) for r in graph.ours(tuple(SALE_KINDS))),
            return_authorizations=tuple(self._ra(r, graph) for r in graph.ours(("RtnAuth",))),
            item_receipts=tuple(
                ErpItemReceipt(internal_id=r["id"], tran_id=r["tranid"],
                               created_from=graph.created_from(r["id"], ("RtnAuth",)) or "",
                               created_at=self._when(r), lines=tuple(lines.get(r["id"], ())))
                for r in receipts),
            credit_memos=tuple(self._memo(r, graph) for r in graph.ours(("CustCred",))),
            customer_refunds=tuple(self._refund(r, graph)
                                   for r in graph.ours(("CustRfnd", "CashRfnd"))),
        )

    def suiteql(self, query: str) -> list[Any]:
        """All result rows of a SuiteQL query, following hasMore with offset (bounded)."""
        items: list[Any] = []
        offset = 0
        for _ in range(MAX_PAGES):
            resp = self._request(
                "POST", SUITEQL_PATH,
                params={"limit": PAGE_LIMIT, "offset": offset},
                json={"q": query},
                headers={"Prefer": "transient"},
                # A SuiteQL POST only reads, so a throttled attempt may be repeated.
                idempotent=True,
            )
            page = self.load(SuiteQLPageSchema, self._json(resp))
            items.extend(page["items"])
            if not page["has_more"] or not page["items"]:
                return items
            offset = page["offset"] + len(page["items"])
        logger.warning("netsuite: SuiteQL stopped after %d pages", MAX_PAGES)
        return items

    # -- record reads and writes (REST Record API)

    def ra_external_id(self, portal_return_id: str) -> str:
        """The external id an RA for this portal return carries (what `fetch` reads back)."""
        return f"{self.ra_prefix}{portal_return_id}"

    def sales_order_lines(self, sales_order_id: str) -> list[dict[str, Any]]:
        """The sales order's item lines: `{"line", "item_id", "sku", "quantity"}` each.

        `line` is what a transform's `orderLine` names (Oracle: "call GET
        /record/v1/salesOrder/{id}/item" to find it; line numbers need not be consecutive).
        """
        return self.transaction_lines("salesOrder", sales_order_id)

    def transaction_lines(self, record_type: str, record_id: str) -> list[dict[str, Any]]:
        """A transaction's `item` sublist lines, read in one request.

        `GET /record/v1/{type}/{id}?expandSubResources=true`: Oracle documents that sublists
        come back as links unless expanded, and an expanded line carries `line`, `item`
        (`id`, `refName`) and `quantity`; `GET .../{id}/item` would list only links, one
        more request per line. Lines without an item or a quantity (subtotal, description
        lines) are left out.
        """
        path = self._record_path(record_type, record_id)
        resp = self._request("GET", path, params={"expandSubResources": "true"})
        record = self.load(LinedRecordSchema, self._json(resp))
        lines: list[dict[str, Any]] = []
        for raw in record["item"]["items"]:
            item, quantity = raw["item"], raw["quantity"]
            if item is None or quantity is None:
                continue
            # A matrix item's refName is its full name ("HOODIE : HOODIE-GRY-L"); the last
            # part is the item's own name, the itemid SuiteQL reads as the SKU.
            name = (item["ref_name"] or "").split(" : ")[-1].strip()
            lines.append({"line": raw["line"], "item_id": item["id"], "sku": name,
                          "quantity": abs(quantity)})
        return lines

    def find_by_external_id(self, record_type: str, external_id: str) -> str | None:
        """The internal id of the `record_type` carrying this external id, or None.

        `GET /record/v1/{type}/eid:{externalId}` (Oracle: external ids work wherever an
        internal id does in the URL); 404 means there is none.
        """
        path = self._record_path(record_type, f"eid:{_checked_external_id(external_id)}")
        try:
            resp = self._request("GET", path)
        except NotFoundError:
            return None
        record_id: str = self.load(RecordIdSchema, self._json(resp))["id"]
        return record_id

    def transform(self, source_type: str, source_id: str, target_type: str,
                  body: Mapping[str, Any], *, replace: str | None = None) -> str:
        """`POST /record/v1/{source}/{id}/!transform/{target}`; the new record's internal id.

        NetSuite answers 204 No Content with the new record's URL in `Location`. Never
        retried once it may have been sent (a second transform would make a second
        document): after a timeout, look the document up by its external id
        (`find_by_external_id`) before trying again.
        """
        target = _checked_record_type(target_type)
        path = f"{self._record_path(source_type, source_id)}/!transform/{target}"
        resp = self._request("POST", path, params={"replace": replace} if replace else None,
                             json=dict(body), retry_if_unsent=True)
        return self._created_id(resp, target)

    def create_return_authorization(self, sales_order_id: str, lines: list[tuple[int, int]],
                                    external_id: str, memo: str) -> str:
        """An RA for `lines` ((order line, quantity)) of the sales order; its internal id.

        UNCONFIRMED in Oracle's docs (no RA example): whether an RA's `item` sublist is
        keyed by `orderLine`. The safest reading is taken: `?replace=item` with only the
        returned lines, each `orderLine` + `quantity`, so no other order line is copied.
        The RA's externalId is what `fetch` reads the portal return from
        (`ra_external_id(portal_return_id)`, "loop-<id>" by default).
        """
        body = {
            "externalId": _checked_external_id(external_id),
            "memo": memo,
            "item": {"items": [{"orderLine": line, "quantity": qty}
                               for line, qty in _checked_lines(lines)]},
        }
        return self.transform("salesOrder", sales_order_id, "returnAuthorization", body,
                              replace="item")

    def receive_return(self, ra_id: str, lines: list[tuple[int, int]], location_id: str,
                       external_id: str) -> str:
        """An item receipt against the RA for `lines` ((RA line, quantity)); its internal id.

        Modelled on Oracle's only line-selection example (item fulfillment): lines keyed by
        `orderLine`, each with `quantity`, the receive flag and its `location`. UNCONFIRMED,
        with the choices made: the flag is spelled `itemReceive` (REST field-name casing;
        Oracle's example writes `itemreceive`), `location` is a reference object `{"id"}`
        (the example sends a bare number), and it goes on every line (line vs header level
        has no Oracle example). `?replace=item` keeps the RA's other lines out of the receipt.
        """
        if not _NUMERIC.match(location_id):
            raise ValueError("location_id must be a NetSuite internal id")
        body = {
            "externalId": _checked_external_id(external_id),
            "item": {"items": [{"orderLine": line, "quantity": qty, "itemReceive": True,
                                "location": {"id": location_id}}
                               for line, qty in _checked_lines(lines)]},
        }
        return self.transform("returnAuthorization", ra_id, "itemReceipt", body,
                              replace="item")

    def location_ids(self, name: str) -> list[str]:
        """Internal ids of the active locations called `name` (without regard to case or
        surrounding spaces). A row that can't be read is left out and logged: one odd
        location never hides the others."""
        wanted = name.strip().casefold()
        found = []
        for row in self.suiteql(LOCATIONS_QUERY):
            try:
                loc = self.load(LocationRowSchema, row)
            except BadResponseError as exc:
                logger.warning("netsuite: a location row was left out: %s", exc)
                continue
            if wanted and (loc["name"] or "").strip().casefold() == wanted:
                found.append(loc["id"])
        return found

    def _record_path(self, record_type: str, record_id: str) -> str:
        rtype = _checked_record_type(record_type)
        if not (_NUMERIC.match(record_id) or (record_id.startswith("eid:")
                                              and _EXTERNAL_ID.match(record_id[4:]))):
            raise ValueError("record id must be a NetSuite internal id or eid:<external id>")
        return f"{RECORD_PATH}/{rtype}/{record_id}"

    def _created_id(self, resp: requests.Response, target_type: str) -> str:
        """The internal id at the end of a 204's Location header."""
        if resp.status_code == 202:  # only with Prefer: respond-async, which we never send
            raise self.bad_response("the request was queued as an asynchronous job (HTTP 202)")
        location = resp.headers.get("Location") or ""
        path = urlsplit(location).path.rstrip("/")
        parent, _, new_id = path.rpartition("/")
        if not location:
            raise BadResponseError(
                f"couldn't read the {self.system} answer: HTTP {resp.status_code} without "
                "a Location header (the new record's id is unknown)",
                system=self.system, http_status=resp.status_code)
        if not _NUMERIC.match(new_id) or \
                not parent.lower().endswith(f"/record/v1/{target_type.lower()}"):
            raise BadResponseError(
                f"couldn't read the {self.system} answer: the Location header doesn't name "
                f"a new {target_type}", system=self.system, http_status=resp.status_code)
        return new_id

    def _receipt_lines(self, receipt_ids: list[str]) -> dict[str, list[StockLine]]:
        by_receipt: dict[str, dict[tuple[str, str | None], int]] = {}
        for row in self.suiteql(receipt_lines_query(receipt_ids)):
            line = self.load(ReceiptLineRowSchema, row)
            key = (line["sku"], line["location"])
            lines = by_receipt.setdefault(line["receipt"], {})
            # NetSuite signs line quantities by direction; the fact is how many units moved.
            lines[key] = lines.get(key, 0) + abs(line["quantity"])
        return {
            receipt: [StockLine(sku=sku, quantity=qty, location=loc)
                      for (sku, loc), qty in lines.items()]
            for receipt, lines in by_receipt.items()
        }

    # -- normalising

    def _amount(self, row: dict[str, Any]) -> Money:
        # foreigntotal is signed by posting direction (credits are negative); facts hold
        # magnitudes in the transaction currency.
        return self.money(abs(row["total"]), row["currency"])

    def _sale(self, r: dict[str, Any]) -> ErpSale:
        return ErpSale(internal_id=r["id"], tran_id=r["tranid"], kind=SALE_KINDS[r["type"]],
                       status_raw=_status_raw(r["type"], r["status"]), total=self._amount(r),
                       created_at=self._when(r))

    def _ra(self, r: dict[str, Any], graph: _Graph) -> ErpReturnAuthorization:
        external = r["externalid"]
        portal_id = None
        if external and external.startswith(self.ra_prefix):
            portal_id = external[len(self.ra_prefix):] or None
        total = None
        if r["total"] is not None and r["currency"] is not None:
            total = self._amount(r)
        return ErpReturnAuthorization(
            internal_id=r["id"], tran_id=r["tranid"],
            status_raw=_status_raw("RtnAuth", r["status"]), state=ra_state(r["status"]),
            created_at=self._when(r), total=total, portal_return_id=portal_id,
            created_from=graph.created_from(r["id"], tuple(SALE_KINDS)),
        )

    def _memo(self, r: dict[str, Any], graph: _Graph) -> ErpCreditMemo:
        applications = []
        for other, amount in graph.applications(r["id"]):
            to_refund = other["type"] in ("CustRfnd", "CashRfnd")
            if not to_refund and other["type"] != "CustInvc":
                continue
            applied = self.money(abs(amount), r["currency"]) if amount is not None \
                else self._amount(other)
            applications.append(ErpApplication(
                doc_id=other["id"], tran_id=other["tranid"], amount=applied,
                to_refund=to_refund, same_order=graph.is_ours(other["id"])))
        state = CREDIT_STATES.get((r["status"] or "").split(":")[-1].upper(), CreditState.UNKNOWN)
        if state is CreditState.OPEN and applications:
            state = CreditState.PARTLY_APPLIED
        return ErpCreditMemo(
            internal_id=r["id"], tran_id=r["tranid"],
            created_from=graph.created_from(r["id"], ("RtnAuth", *SALE_KINDS)),
            amount=self._amount(r), status_raw=_status_raw("CustCred", r["status"]),
            created_at=self._when(r), state=state, applications=tuple(applications),
            quoted_ids=_quoted(r))

    def _refund(self, r: dict[str, Any], graph: _Graph) -> ErpCustomerRefund:
        memos = tuple(other["id"] for other, _ in graph.applications(r["id"])
                      if other["type"] == "CustCred")
        return ErpCustomerRefund(
            internal_id=r["id"], tran_id=r["tranid"], applied_to=memos, amount=self._amount(r),
            created_at=self._when(r), quoted_ids=_quoted(r), tender=tender_of(r["paymentmethod"]),
            created_from=graph.created_from(r["id"], ("RtnAuth", *SALE_KINDS)),
            location=r["location"])


class _Graph:
    """The order's documents and the links between them, as the chain query returned them."""

    def __init__(self, order_name: str) -> None:
        self.order_name = order_name
        self.docs: dict[str, dict[str, Any]] = {}
        self.links: list[tuple[str, str, str, Decimal | None]] = []  # (from, to, type, amount)
        self.reversed: set[str] = set()  # reached only by a link into one of ours

    def add(self, row: dict[str, Any]) -> None:
        doc_id = row["id"]
        if row.get("voided") == "T" or (row["status"] or "").upper().endswith("V") and \
                row["type"] in ("CustCred", "CustRfnd", "CashRfnd", "CustInvc"):
            return
        link = row["link"] or ""
        into = link.startswith("Into:")  # another order's document linking into ours
        source_sale = link.startswith("From:")  # the sale one of ours was created from
        if doc_id not in self.docs:
            self.docs[doc_id] = row
            if into:
                self.reversed.add(doc_id)
        elif not into:
            self.reversed.discard(doc_id)
        if row["parent"]:
            edge = (doc_id, row["parent"]) if into or source_sale else (row["parent"], doc_id)
            kind = link.removeprefix("Into:").removeprefix("From:")
            self.links.append((*edge, kind, row["link_amount"]))

    def is_ours(self, doc_id: str) -> bool:
        """This order's document: not another order's, however the walk reached it.

        A document carrying another order's reference is that order's (the invoice a memo
        of ours was applied to, reached forward through the application), and one reached
        only by a link into ours is ours only if it carries our reference.
        """
        row = self.docs.get(doc_id)
        if row is None:
            return False
        ref = (row.get("otherrefnum") or "").strip()
        if ref and ref != self.order_name.strip():
            return False
        return doc_id not in self.reversed or ref == self.order_name.strip()

    def ours(self, types: tuple[str, ...]) -> list[dict[str, Any]]:
        return [r for r in self.docs.values() if r["type"] in types and self.is_ours(r["id"])]

    def created_from(self, doc_id: str, types: tuple[str, ...]) -> str | None:
        """The document this one was created from (a link that isn't an application)."""
        for src, dst, kind, _ in self.links:
            if dst == doc_id and kind != "Payment" and src in self.docs \
                    and self.docs[src]["type"] in types:
                return src
        return None

    def applications(self, doc_id: str) -> list[tuple[dict[str, Any], Decimal | None]]:
        """Documents linked to this one by an application, whichever way it was recorded."""
        out: dict[str, tuple[dict[str, Any], Decimal | None]] = {}
        for src, dst, kind, amount in self.links:
            if doc_id not in (src, dst):
                continue
            other = dst if src == doc_id else src
            if other not in self.docs:
                continue
            applies = kind == "Payment" or {self.docs[other]["type"],
                                            self.docs[doc_id]["type"]} == {"CustCred", "CustRfnd"}
            if applies:
                out.setdefault(other, (self.docs[other], amount))
        return [out[k] for k in sorted(out)]


def _status_raw(kind: str, status: str | None) -> str:
    """NetSuite's "Type:Letter" status form from a bare SuiteQL letter."""
    if not status:
        return kind
    return status if ":" in status else f"{kind}:{status}"


def _quoted(row: Mapping[str, Any]) -> tuple[str, ...]:
    """Identifiers a memo or external id quotes (another system's refund id, a return id)."""
    found: list[str] = []
    for text in (row.get("externalid"), row.get("memo")):
        for token in _QUOTED.findall(text or ""):
            token = token.rstrip(".:/-")
            if len(token) >= 4 and token not in found:
                found.append(token)
    return tuple(found)


def _checked_record_type(record_type: str) -> str:
    if not _RECORD_TYPE.match(record_type):
        raise ValueError("record type must be a NetSuite record type name such as salesOrder")
    return record_type


def _checked_external_id(external_id: str) -> str:
    if not _EXTERNAL_ID.match(external_id):
        raise ValueError("external id may hold only letters, digits, '_' and '-'")
    return external_id


def _checked_lines(lines: list[tuple[int, int]]) -> list[tuple[int, int]]:
    if not lines:
        raise ValueError("at least one line is needed")
    for line, qty in lines:
        if isinstance(line, bool) or isinstance(qty, bool) or not isinstance(line, int) \
                or not isinstance(qty, int) or line < 0 or qty < 1:
            raise ValueError("lines are (order line, quantity ≥ 1) pairs of integers")
    return list(lines)


def _recast(error: UpstreamError, cls: type[UpstreamError]) -> UpstreamError:
    return cls(error.message, system=error.system, http_status=error.http_status,
               retry_after=error.retry_after, code=error.code)


DESCRIPTOR = Connector(
    system="netsuite",
    title="NetSuite",
    source=SourceName.ERP,
    client=NetSuiteClient,
    hosts=(".suitetalk.api.netsuite.com",),
    credentials=(
        Field("account_id", "Account ID", "e.g. 1234567 or 1234567_SB1", env="NETSUITE_ACCOUNT_ID"),
        Field("consumer_key", "Consumer key", "Token-based authentication: the integration's "
              "consumer key.", secret=True, env="NETSUITE_CONSUMER_KEY"),
        Field("consumer_secret", "Consumer secret", secret=True, env="NETSUITE_CONSUMER_SECRET"),
        Field("token_id", "Token ID", "The access token of a role that can run SuiteQL on "
              "transactions.", secret=True, env="NETSUITE_TOKEN_ID"),
        Field("token_secret", "Token secret", secret=True, env="NETSUITE_TOKEN_SECRET"),
    ),
    options=(
        Field("ra_external_id_prefix", "RA external id prefix",
              f"How RAs name the portal return (default {DEFAULT_RA_PREFIX})", required=False,
              env="NETSUITE_RA_EXTERNAL_ID_PREFIX", default=DEFAULT_RA_PREFIX),
        Field("timezone", "Time zone", "The integration user's time zone, e.g. America/New_York "
              "(default UTC)", required=False, env="NETSUITE_TIMEZONE", default="UTC"),
    ),
    base_url_env="NETSUITE_BASE_URL",
    quotes="Sale documents carry the web order name in otherrefnum; RAs carry the portal "
           "return as externalid; refunds may quote other systems' ids in memo or externalid.",
    states={"return authorization": state_table(RA_STATES),
            "credit memo": state_table(CREDIT_STATES)},
    sandbox="netsuite",
    writes=frozenset({"erp_return_authorization", "erp_item_receipt"}),
)
