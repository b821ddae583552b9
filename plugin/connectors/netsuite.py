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
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from marshmallow import fields, validate

from plugin.core.model import (
    ErpCreditMemo,
    ErpCustomerRefund,
    ErpFacts,
    ErpItemReceipt,
    ErpReturnAuthorization,
    ErpSalesOrder,
    InventoryLine,
    OrderRef,
    SourceName,
)
from plugin.core.money import Money
from plugin.core.states import netsuite_ra_state

from .base import (
    AuthError,
    BaseClient,
    ConfigError,
    ConnectorConfig,
    CurrencyCode,
    DecimalAmount,
    Identifier,
    RateLimitedError,
    UpstreamError,
    UtcDateTime,
    VendorSchema,
    WholeNumber,
)

logger = logging.getLogger(__name__)

SUITEQL_PATH = "/services/rest/query/v1/suiteql"
PAGE_LIMIT = 1000
MAX_PAGES = 10
DEFAULT_RA_PREFIX = "loop-"
RATE_LIMIT_CODES = frozenset({"SSS_REQUEST_LIMIT_EXCEEDED", "CONCURRENCY_LIMIT_EXCEEDED"})
_ACCOUNT_ID = re.compile(r"^[A-Za-z0-9_-]+$")
_STRIPE_REFUND_ID = re.compile(r"re_[A-Za-z0-9]+")
_INTERNAL_ID = validate.Regexp(r"^\d+$", error="Not a NetSuite internal id.")


# ---------------------------------------------------------------- OAuth 1.0a (TBA)


def percent_encode(value: str) -> str:
    """RFC 5849 §3.6 encoding: UTF-8, everything but ALPHA / DIGIT / - . _ ~ escaped."""
    return quote(value, safe="~")


def normalize_parameters(params: Iterable[tuple[str, str]]) -> str:
    """RFC 5849 §3.4.1.3.2: encode, sort by name then value, join with & and =."""
    encoded = sorted((percent_encode(k), percent_encode(v)) for k, v in params)
    return "&".join(f"{k}={v}" for k, v in encoded)


def base_string_uri(url: str) -> str:
    """RFC 5849 §3.4.1.2: lower-case scheme and host, default port dropped, no query."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    return f"{scheme}://{host}{parts.path or '/'}"


def signature_base_string(method: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """RFC 5849 §3.4.1.1: METHOD & URI & parameters (URL query plus `params`)."""
    query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    return "&".join((
        method.upper(),
        percent_encode(base_string_uri(url)),
        percent_encode(normalize_parameters([*query, *params])),
    ))


def hmac_sha256_signature(base_string: str, consumer_secret: str, token_secret: str) -> str:
    """Base64 HMAC-SHA256 of the base string keyed with "consumer_secret&token_secret"."""
    key = f"{percent_encode(consumer_secret)}&{percent_encode(token_secret)}"
    digest = hmac.new(key.encode(), base_string.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


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
    """The `Authorization: OAuth ...` value for one TBA request."""
    oauth = {
        "oauth_consumer_key": consumer_key,
        "oauth_token": token_id,
        "oauth_nonce": nonce,
        "oauth_timestamp": str(timestamp),
        "oauth_signature_method": "HMAC-SHA256",
        "oauth_version": "1.0",
    }
    query = [(str(k), str(v)) for k, v in (params or {}).items()]
    base = signature_base_string(method, url, [*oauth.items(), *query])
    oauth["oauth_signature"] = hmac_sha256_signature(base, consumer_secret, token_secret)
    fields_ = [f'realm="{realm}"'] + [f'{k}="{percent_encode(v)}"' for k, v in oauth.items()]
    return "OAuth " + ", ".join(fields_)


# ---------------------------------------------------------------- SuiteQL


def suiteql_literal(value: str) -> str:
    """A SuiteQL string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


_DOC_COLUMNS = """{t}.id, {t}.type, {t}.tranid, {t}.status, {t}.foreigntotal AS total,
       cur.symbol AS currency, TO_CHAR({t}.createddate, 'YYYY-MM-DD HH24:MI:SS') AS created,
       {t}.otherrefnum, {t}.externalid, {t}.memo"""

# One row per document. NextTransactionLineLink has a row per linked *line*, hence DISTINCT.
_CHAIN_SQL = """
SELECT DISTINCT {so_cols}, NULL AS parent
  FROM transaction so
  JOIN currency cur ON cur.id = so.currency
 WHERE so.type = 'SalesOrd' AND so.otherrefnum = {order}
UNION ALL
SELECT DISTINCT {ra_cols}, so.id AS parent
  FROM transaction so
  JOIN NextTransactionLineLink l1 ON l1.previousdoc = so.id
  JOIN transaction ra ON ra.id = l1.nextdoc AND ra.type = 'RtnAuth'
  JOIN currency cur ON cur.id = ra.currency
 WHERE so.type = 'SalesOrd' AND so.otherrefnum = {order}
UNION ALL
SELECT DISTINCT {doc_cols}, ra.id AS parent
  FROM transaction so
  JOIN NextTransactionLineLink l1 ON l1.previousdoc = so.id
  JOIN transaction ra ON ra.id = l1.nextdoc AND ra.type = 'RtnAuth'
  JOIN NextTransactionLineLink l2 ON l2.previousdoc = ra.id
  JOIN transaction doc ON doc.id = l2.nextdoc AND doc.type IN ('ItemRcpt', 'CustCred')
  JOIN currency cur ON cur.id = doc.currency
 WHERE so.type = 'SalesOrd' AND so.otherrefnum = {order}
UNION ALL
SELECT DISTINCT {rf_cols}, cm.id AS parent
  FROM transaction so
  JOIN NextTransactionLineLink l1 ON l1.previousdoc = so.id
  JOIN transaction ra ON ra.id = l1.nextdoc AND ra.type = 'RtnAuth'
  JOIN NextTransactionLineLink l2 ON l2.previousdoc = ra.id
  JOIN transaction cm ON cm.id = l2.nextdoc AND cm.type = 'CustCred'
  JOIN NextTransactionLineLink l3 ON l3.previousdoc = cm.id
  JOIN transaction rf ON rf.id = l3.nextdoc AND rf.type = 'CustRfnd'
  JOIN currency cur ON cur.id = rf.currency
 WHERE so.type = 'SalesOrd' AND so.otherrefnum = {order}
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


def chain_query(order_name: str) -> str:
    """SuiteQL for the order's document chain, walked three link levels from the SO."""
    return _CHAIN_SQL.format(
        order=suiteql_literal(order_name),
        so_cols=_DOC_COLUMNS.format(t="so"),
        ra_cols=_DOC_COLUMNS.format(t="ra"),
        doc_cols=_DOC_COLUMNS.format(t="doc"),
        rf_cols=_DOC_COLUMNS.format(t="rf"),
    ).strip()


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


class _TxnRowSchema(VendorSchema):
    """A chain row; every value arrives as a string and absent values are omitted."""

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
    parent = Identifier(load_default=None, validate=_INTERNAL_ID)


class SalesOrderRowSchema(_TxnRowSchema):
    """A SalesOrd row."""

    status = fields.String(required=True)
    total = DecimalAmount(required=True)
    currency = CurrencyCode(required=True)


class ReturnAuthorizationRowSchema(_TxnRowSchema):
    """A RtnAuth row."""

    status = fields.String(required=True)


class ItemReceiptRowSchema(_TxnRowSchema):
    """An ItemRcpt row."""

    parent = Identifier(required=True, validate=_INTERNAL_ID)


class CreditMemoRowSchema(_TxnRowSchema):
    """A CustCred row."""

    parent = Identifier(required=True, validate=_INTERNAL_ID)
    total = DecimalAmount(required=True)
    currency = CurrencyCode(required=True)


class CustomerRefundRowSchema(_TxnRowSchema):
    """A CustRfnd row."""

    total = DecimalAmount(required=True)
    currency = CurrencyCode(required=True)


ROW_SCHEMAS: dict[str, type[_TxnRowSchema]] = {
    "SalesOrd": SalesOrderRowSchema,
    "RtnAuth": ReturnAuthorizationRowSchema,
    "ItemRcpt": ItemReceiptRowSchema,
    "CustCred": CreditMemoRowSchema,
    "CustRfnd": CustomerRefundRowSchema,
}


class ReceiptLineRowSchema(VendorSchema):
    """A receipt line row from query 2."""

    receipt = Identifier(required=True, validate=_INTERNAL_ID)
    sku = fields.String(required=True)
    quantity = WholeNumber(required=True)
    location = fields.String(load_default=None)


class _RowTypeSchema(VendorSchema):
    type = fields.String(required=True)


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
        return row["created"].replace(tzinfo=self.timezone).astimezone(UTC)

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
        """The SO, RAs, item receipts, credit memos and customer refunds for the order."""
        rows = self._dedupe(self.suiteql(chain_query(order.name)))
        docs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in ROW_SCHEMAS}
        for row in rows:
            kind = self.load(_RowTypeSchema(), row)["type"]
            if kind not in ROW_SCHEMAS:
                logger.debug("netsuite: ignoring %s row in the chain", kind)
                continue
            docs[kind].append(self.load(ROW_SCHEMAS[kind](), row))
        if not docs["SalesOrd"] and not docs["RtnAuth"]:
            return ErpFacts(order_name=order.name)
        receipt_lines: dict[str, list[InventoryLine]] = {}
        if docs["ItemRcpt"]:
            receipt_lines = self._receipt_lines([r["id"] for r in docs["ItemRcpt"]])
        sales_order = docs["SalesOrd"][0] if docs["SalesOrd"] else None
        return ErpFacts(
            order_name=order.name,
            sales_order=self._sales_order(sales_order) if sales_order else None,
            return_authorizations=tuple(self._ra(r) for r in docs["RtnAuth"]),
            item_receipts=tuple(
                ErpItemReceipt(internal_id=r["id"], tran_id=r["tranid"],
                               created_from=r["parent"], created_at=self._when(r),
                               lines=tuple(receipt_lines.get(r["id"], ())))
                for r in docs["ItemRcpt"]
            ),
            credit_memos=tuple(
                ErpCreditMemo(internal_id=r["id"], tran_id=r["tranid"],
                              created_from=r["parent"], amount=self._amount(r),
                              status_raw=_status_raw("CustCred", r["status"]),
                              created_at=self._when(r))
                for r in docs["CustCred"]
            ),
            customer_refunds=tuple(
                ErpCustomerRefund(internal_id=r["id"], tran_id=r["tranid"],
                                  applied_to=r["parent"], amount=self._amount(r),
                                  created_at=self._when(r),
                                  processor_refund_id=_stripe_refund_id(r))
                for r in docs["CustRfnd"]
            ),
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
            page = self.load(SuiteQLPageSchema(), self._json(resp))
            items.extend(page["items"])
            if not page["has_more"] or not page["items"]:
                return items
            offset = page["offset"] + len(page["items"])
        logger.warning("netsuite: SuiteQL stopped after %d pages", MAX_PAGES)
        return items

    def _receipt_lines(self, receipt_ids: list[str]) -> dict[str, list[InventoryLine]]:
        by_receipt: dict[str, dict[tuple[str, str | None], int]] = {}
        for row in self.suiteql(receipt_lines_query(receipt_ids)):
            line = self.load(ReceiptLineRowSchema(), row)
            key = (line["sku"], line["location"])
            lines = by_receipt.setdefault(line["receipt"], {})
            # NetSuite signs line quantities by direction; the fact is how many units moved.
            lines[key] = lines.get(key, 0) + abs(line["quantity"])
        return {
            receipt: [InventoryLine(sku=sku, quantity=qty, location=loc)
                      for (sku, loc), qty in lines.items()]
            for receipt, lines in by_receipt.items()
        }

    # -- normalising

    @staticmethod
    def _dedupe(rows: list[Any]) -> list[Any]:
        seen: set[str] = set()
        out = []
        for row in rows:
            key = str(row.get("id")) if isinstance(row, Mapping) else None
            if key is not None and key in seen:
                continue
            if key is not None:
                seen.add(key)
            out.append(row)
        return out

    def _amount(self, row: dict[str, Any]) -> Money:
        # foreigntotal is signed by posting direction (credits are negative); facts hold
        # magnitudes in the transaction currency.
        return self.money(abs(row["total"]), row["currency"])

    def _sales_order(self, r: dict[str, Any]) -> ErpSalesOrder:
        return ErpSalesOrder(internal_id=r["id"], tran_id=r["tranid"],
                             status_raw=_status_raw("SalesOrd", r["status"]),
                             total=self._amount(r), created_at=self._when(r))

    def _ra(self, r: dict[str, Any]) -> ErpReturnAuthorization:
        state = netsuite_ra_state(r["status"])
        if state is None:
            raise self.bad_response(f"unknown return authorization status {r['status']!r}")
        external = r["externalid"]
        portal_id = None
        if external and external.startswith(self.ra_prefix):
            portal_id = external[len(self.ra_prefix):] or None
        total = None
        if r["total"] is not None and r["currency"] is not None:
            total = self._amount(r)
        return ErpReturnAuthorization(
            internal_id=r["id"], tran_id=r["tranid"],
            status_raw=_status_raw("RtnAuth", r["status"]), state=state,
            created_at=self._when(r), total=total, portal_return_id=portal_id,
        )


def _status_raw(kind: str, status: str | None) -> str:
    """NetSuite's "Type:Letter" status form from a bare SuiteQL letter."""
    if not status:
        return kind
    return status if ":" in status else f"{kind}:{status}"


def _stripe_refund_id(row: Mapping[str, Any]) -> str | None:
    for text in (row.get("memo"), row.get("externalid")):
        match = _STRIPE_REFUND_ID.search(text or "")
        if match:
            return match.group(0)
    return None


def _recast(error: UpstreamError, cls: type[UpstreamError]) -> UpstreamError:
    return cls(error.message, system=error.system, http_status=error.http_status,
               retry_after=error.retry_after, code=error.code)
