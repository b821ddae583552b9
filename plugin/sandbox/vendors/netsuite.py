"""Simulated NetSuite: SuiteQL over token-based auth (OAuth 1.0a, HMAC-SHA256)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import zlib
from collections.abc import Iterable
from decimal import Decimal
from typing import Any
from urllib.parse import quote, unquote

from flask import Response, current_app, request

from ...core.model import SourceName
from ...core.money import Money, MoneyError
from ..dialects import (
    JSON,
    NetSuiteChain,
    decimal_string,
    netsuite_error,
    netsuite_row,
    status_phrase,
    suiteql_page,
)
from ..scenarios import STORE, WAREHOUSE, OrderData
from .common import Refusal, SandboxVendor, json_response, order_fault, state, vendor_blueprint

CREDENTIALS = {
    "account_id": "TSTDRV0000",
    "consumer_key": "sandbox-ck",
    "consumer_secret": "sandbox-cs",
    "token_id": "sandbox-token",
    "token_secret": "sandbox-ts",
}
COLLECTION = "application/vnd.oracle.resource+json; type=collection"
ERROR = "application/vnd.oracle.resource+json; type=error"
INVALID_LOGIN = (
    "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI "
    "at Setup > Users/Roles > User Management > View Login Audit Trail."
)
_DIGITS = re.compile(r"\d+")


def error(status: int, message: str | None = None) -> Response:
    """NetSuite REST's error envelope."""
    if status == 401:
        code, detail = "INVALID_LOGIN", INVALID_LOGIN
    elif status == 429:
        code, detail = ("CONCURRENCY_LIMIT_EXCEEDED",
                        "Concurrent request limit exceeded. Request blocked.")
    elif status >= 500:
        code, detail = "UNEXPECTED_ERROR", "An unexpected error occurred. Error ID: sandbox"
    else:
        code, detail = "INVALID_PARAMETER", status_phrase(status)
    return json_response(netsuite_error(status, code, message or detail), status, ERROR)


_OAUTH_FIELD = re.compile(r'([\w-]+)\s*=\s*"([^"]*)"')
_CHAIN_QUERY = re.compile(r"otherrefnum\s*=\s*'((?:[^']|'')*)'", re.IGNORECASE)
_LOCATIONS_QUERY = re.compile(r"\bFROM\s+location\b", re.IGNORECASE)
_RECEIPT_LINES_QUERY = re.compile(r"tl\.transaction\s+IN\s*\(([^)]*)\)", re.IGNORECASE)


def _netsuite_refusal(status: int, code: str, detail: str) -> Refusal:
    return Refusal(json_response(netsuite_error(status, code, detail), status, ERROR))


def _netsuite_auth() -> None:
    problem = _oauth_problem()
    if problem is not None:
        # NetSuite itself only says INVALID_LOGIN; the log tells a connector author why.
        current_app.logger.warning("sandbox NetSuite refused the login: %s", problem)
        raise Refusal(error(401))


def _oauth_problem() -> str | None:
    """Why the request's OAuth 1.0a (TBA, HMAC-SHA256) header is not acceptable, if it isn't."""
    scheme, _, rest = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "oauth":
        return "no 'Authorization: OAuth …' header"
    fields = {name: unquote(value) for name, value in _OAUTH_FIELD.findall(rest)}
    creds = CREDENTIALS
    expected = {
        "realm": creds["account_id"],
        "oauth_consumer_key": creds["consumer_key"],
        "oauth_token": creds["token_id"],
        "oauth_signature_method": "HMAC-SHA256",
    }
    for name, value in expected.items():
        if fields.get(name) != value:
            return f"{name} is {fields.get(name)!r}, expected {value!r}"
    missing = [n for n in ("oauth_nonce", "oauth_timestamp", "oauth_signature") if n not in fields]
    if missing:
        return f"missing {', '.join(missing)}"
    signed = [(k, v) for k, v in fields.items() if k.startswith("oauth_") and k != "oauth_signature"]
    signed += list(request.args.items(multi=True))
    signature = oauth_signature(request.method, _signature_base_url(), signed,
                                creds["consumer_secret"], creds["token_secret"])
    if not hmac.compare_digest(signature, fields["oauth_signature"]):
        return ("oauth_signature does not match the RFC 5849 base string (method, URL without "
                "query, sorted oauth_* and query parameters)")
    return None


def _percent(value: str) -> str:
    return quote(value, safe="-._~")


def _signature_base_url() -> str:
    scheme, host = request.scheme.lower(), request.host.lower()
    host = host.removesuffix({"http": ":80", "https": ":443"}.get(scheme, ""))
    return f"{scheme}://{host}{request.path}"


def oauth_signature(method: str, base_url: str, params: Iterable[tuple[str, str]],
                    consumer_secret: str, token_secret: str) -> str:
    """RFC 5849 HMAC-SHA256 signature (base64) over method, base URL and sorted params."""
    pairs = sorted((_percent(k), _percent(v)) for k, v in params)
    normalized = "&".join(f"{k}={v}" for k, v in pairs)
    base = "&".join([method.upper(), _percent(base_url), _percent(normalized)])
    key = f"{_percent(consumer_secret)}&{_percent(token_secret)}"
    digest = hmac.new(key.encode(), base.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _netsuite_int(name: str, default: int, low: int, high: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw) or int(raw) < low or (high is not None and int(raw) > high):
        raise _netsuite_refusal(400, "INVALID_PARAMETER",
                                f"Invalid value for the '{name}' query parameter: {raw}.")
    return int(raw)


netsuite = vendor_blueprint("netsuite", "netsuite", SourceName.ERP, error, _netsuite_auth)


@netsuite.post("/services/rest/query/v1/suiteql")
def suiteql() -> Response:
    """Answer the SuiteQL queries the connector runs, recognised by their filters."""
    limit = _netsuite_int("limit", 1000, 1, 1000)
    offset = _netsuite_int("offset", 0, 0)
    body = request.get_json(silent=True)
    query = body.get("q") if isinstance(body, dict) else None
    if not isinstance(query, str) or not query.strip():
        raise _netsuite_refusal(400, "INVALID_PARAMETER",
                                "Invalid search query. Send the SuiteQL text in the 'q' "
                                "property of a JSON body.")
    if (chain := _CHAIN_QUERY.search(query)) is not None:
        rows = _document_chain(chain[1].replace("''", "'"))
    elif (receipts := _RECEIPT_LINES_QUERY.search(query)) is not None:
        rows = _receipt_lines({token.strip().strip("'") for token in receipts[1].split(",")})
    elif _LOCATIONS_QUERY.search(query) is not None:
        rows = [{"id": ident, "name": name}
                for ident, name in sorted(NETSUITE_LOCATIONS.items())]
    else:
        raise _netsuite_refusal(
            400, "INVALID_PARAMETER", "Invalid search query. The sandbox answers the "
            "document-chain query (otherrefnum = '<order name>'), the receipt-lines query "
            "(tl.transaction IN (<ids>)) and the active locations (FROM location).")
    return json_response(suiteql_page(rows, limit=limit, offset=offset, href=request.base_url),
                 200, COLLECTION)


def _document_chain(order_name: str) -> list[dict[str, str]]:
    number = order_name[1:] if order_name.startswith("#") else None
    order_fault(number)
    data = state().order(number)
    if not data or not data.netsuite:
        return []
    return _chain_rows(number or "", data.netsuite)


def _receipt_lines(receipt_ids: set[str]) -> list[dict[str, str]]:
    chains = [(number, data.netsuite) for number, data in state().orders().items()
              if data.netsuite]
    created = state().netsuite.docs()
    for number, chain in chains:
        if any(row["id"] in receipt_ids for row in chain.rows) or any(
                doc["order"] == number and doc["id"] in receipt_ids for doc in created):
            order_fault(number)
    seeded = [line for _, chain in chains for line in chain.receipt_lines
              if line["receipt"] in receipt_ids]
    return seeded + [line for doc in created if doc["id"] in receipt_ids
                     for line in doc["receipt_lines"]]


def _chain_rows(number: str, chain: NetSuiteChain) -> list[dict[str, str]]:
    """The seeded chain rows with any status a created document changed, then the created
    documents' rows, linked to their source the way the seeded ones are."""
    store = state().netsuite
    rows = []
    for row in chain.rows:
        status = store.status(row["id"])
        rows.append({**row, "status": status} if status else row)
    for doc in store.docs():
        if doc["order"] == number:
            status = store.status(doc["id"])
            rows.append({**doc["row"], "status": status} if status else doc["row"])
    return rows


# ---------------------------------------------------------------- REST record API (writes)

RECORD_PREFIX = "/services/rest/record/v1"
# REST record type names (matched without regard to case, as NetSuite does: Oracle's own
# example writes `cashsale/<id>/!transform/returnauthorization`) and their SuiteQL types.
RECORD_TYPES = {"salesOrder": "SalesOrd", "cashSale": "CashSale", "invoice": "CustInvc",
                "returnAuthorization": "RtnAuth", "itemReceipt": "ItemRcpt",
                "creditMemo": "CustCred", "customerRefund": "CustRfnd", "cashRefund": "CashRfnd"}
_BY_LOWER = {name.lower(): name for name in RECORD_TYPES}
_REST_NAME = {code: name for name, code in RECORD_TYPES.items()}
# The transforms the sandbox performs: (source, target) → the link NetSuite records.
TRANSFORMS = {("salesOrder", "returnAuthorization"): "SaleRet",
              ("returnAuthorization", "itemReceipt"): "RtnRcpt"}
# Location internal ids for the names the scenarios use.
NETSUITE_LOCATIONS = {"1": WAREHOUSE, "2": STORE}
_EXTERNAL_ID = re.compile(r"^[A-Za-z0-9_-]+$")
# A sales order can't be returned once cancelled (C) or closed (H); an RA takes receipts
# while pending receipt (B) or partially received (D, E).
_SO_CLOSED = frozenset({"C", "H"})
_RA_RECEIVABLE = frozenset({"B", "D", "E"})
NOT_FOUND = "The record instance does not exist. Provide a valid record instance ID."
# UNCONFIRMED: NetSuite's REST code for a duplicate externalId isn't documented; SOAP
# answers DUP_RCRD "This record already exists", so the sandbox does too.
DUPLICATE_CODE, DUPLICATE_DETAIL = "DUP_RCRD", "This record already exists."
# UNCONFIRMED: no documented REST code for a source that can't be transformed (a closed RA);
# practitioners report "invalid reference {id}". The sandbox says USER_ERROR.
INELIGIBLE_CODE = "USER_ERROR"


def _refuse(status: int, code: str, detail: str, path: str | None = None) -> Refusal:
    body = netsuite_error(status, code, detail)
    if path:
        body["o:errorDetails"][0]["o:errorPath"] = path
    return Refusal(json_response(body, status, ERROR))


def _record_type(name: str) -> str:
    canonical = _BY_LOWER.get(name.lower())
    if canonical is None:
        raise _refuse(400, "INVALID_PARAMETER",
                      f"Invalid record type: {name}. The sandbox serves "
                      f"{', '.join(sorted(RECORD_TYPES))}.")
    return canonical


def _item_id(sku: str) -> str:
    """A stable item internal id per SKU (items are account-wide, not per order)."""
    return str(1000 + zlib.crc32(sku.encode()) % 90000)


def _sale_lines(data: OrderData, sale: dict[str, str]) -> list[JSON]:
    """The sale's item lines, from what the scenario says left the order.

    Scenarios don't seed sales order lines; every SKU a return, a store refund or a receipt
    names was sold on the order, at the most units any of them names.
    """
    found: dict[str, JSON] = {}

    def note(sku: str | None, quantity: int, rate: Decimal | None = None) -> None:
        if not sku:
            return
        line = found.setdefault(sku, {"quantity": 0, "rate": None})
        line["quantity"] = max(line["quantity"], quantity)
        line["rate"] = line["rate"] or rate

    for ret in data.loop_returns:
        for item in ret.get("line_items", []):
            note(item.get("sku"), int(item.get("quantity") or 1))
    for refund in (data.shopify_order or {}).get("refunds", []):
        for item in refund["refundLineItems"]["nodes"]:
            quantity = int(item["quantity"])
            subtotal = item.get("subtotalSet")
            rate = (Decimal(subtotal["shopMoney"]["amount"]) / quantity
                    if subtotal and quantity else None)
            note(item["lineItem"]["sku"], quantity, rate)
    for receipt_line in data.netsuite.receipt_lines if data.netsuite else []:
        note(receipt_line["sku"], abs(int(receipt_line["quantity"])))
    if len(found) == 1 and sale.get("total"):
        [only] = found.values()
        only["rate"] = only["rate"] or abs(Decimal(sale["total"])) / only["quantity"]
    return [{"line": n, "item_id": _item_id(sku), "sku": sku, "quantity": line["quantity"],
             "rate": str(line["rate"]) if line["rate"] is not None else None}
            for n, (sku, line) in enumerate(found.items(), start=1)]


class _Doc:
    """One document as the record API sees it: seeded (a chain row) or created."""

    def __init__(self, number: str, data: OrderData, row: dict[str, str],
                 created: JSON | None = None) -> None:
        self.number, self.data, self.row, self.created = number, data, row, created

    @property
    def id(self) -> str:
        return self.row["id"]

    @property
    def status(self) -> str:
        return state().netsuite.status(self.id) or self.row.get("status", "")

    def lines(self) -> list[JSON]:
        """The document's item lines (`line`, `item_id`, `sku`, `quantity`, ...)."""
        if self.created is not None:
            return list(self.created["lines"])
        chain = self.data.netsuite
        if chain is None:
            return []
        if self.row["type"] in ("SalesOrd", "CashSale", "CustInvc"):
            return _sale_lines(self.data, self.row)
        if self.row["type"] == "ItemRcpt":
            return [{"line": n, "item_id": _item_id(rl["sku"]), "sku": rl["sku"],
                     "quantity": abs(int(rl["quantity"])), "location": rl.get("location")}
                    for n, rl in enumerate((rl for rl in chain.receipt_lines
                                            if rl["receipt"] == self.id), start=1)]
        if self.row["type"] == "RtnAuth":
            # A seeded RA holds the lines of the Loop return it names, else the whole sale.
            sale = next((r for r in chain.rows if r["id"] == self.row.get("parent")), None)
            sold = {line["sku"]: line for line in _sale_lines(self.data, sale or {})}
            ret = next((r for r in self.data.loop_returns
                        if f"loop-{r['id']}" == self.row.get("externalid")), None)
            wanted = ([(i.get("sku"), int(i.get("quantity") or 1)) for i in ret["line_items"]]
                      if ret else [(sku, line["quantity"]) for sku, line in sold.items()])
            return [{"line": n, "order_line": sold[sku]["line"] if sku in sold else None,
                     "item_id": _item_id(sku or ""), "sku": sku, "quantity": qty,
                     "rate": sold[sku]["rate"] if sku in sold else None}
                    for n, (sku, qty) in enumerate(wanted, start=1)]
        return []


def _find(record_type: str, ident: str) -> _Doc:
    """The document of that type with this internal id or `eid:` external id, or a 404."""
    code = RECORD_TYPES[record_type]
    external = ident[4:] if ident.startswith("eid:") else None
    if external is None and not _DIGITS.fullmatch(ident):
        raise _refuse(404, "NONEXISTENT_ID", NOT_FOUND)
    orders = state().orders()
    for number, data in orders.items():
        if data.netsuite is None:
            continue
        for row in data.netsuite.rows:
            if row["type"] == code and (row["id"] == ident if external is None
                                        else row.get("externalid") == external):
                order_fault(number)
                return _Doc(number, data, row)
    for doc in state().netsuite.docs():
        if doc["type"] == code and (doc["id"] == ident if external is None
                                    else doc["external_id"] == external):
            order_fault(doc["order"])
            return _Doc(doc["order"], orders[doc["order"]], doc["row"], doc)
    raise _refuse(404, "NONEXISTENT_ID", NOT_FOUND)


def _base() -> str:
    return request.base_url.split(RECORD_PREFIX)[0]


def _float(value: str | None) -> float | None:
    return float(value) if value is not None else None


def _line_json(href: str, line: JSON) -> JSON:
    out: JSON = {
        "links": [{"rel": "self", "href": f"{href}/item/{line['line']}"}],
        "line": line["line"],
        "item": {"links": [], "id": line["item_id"], "refName": line["sku"]},
        # NetSuite sends quantities as JSON numbers with a fraction (1.0).
        "quantity": float(line["quantity"]),
    }
    if line.get("rate") is not None:
        out["rate"] = _float(line["rate"])
        out["amount"] = float(Decimal(line["rate"]) * line["quantity"])
    if line.get("order_line") is not None:
        out["orderLine"] = line["order_line"]
    if line.get("location"):
        loc = next((i for i, name in NETSUITE_LOCATIONS.items() if name == line["location"]),
                   None)
        out["location"] = {"links": [], "id": loc, "refName": line["location"]}
        out["itemReceive"] = True
    return out


@netsuite.get(f"{RECORD_PREFIX}/<rtype>/<ident>")
def get_record(rtype: str, ident: str) -> Response:
    """A record instance; its `item` sublist expanded with ?expandSubResources=true."""
    record_type = _record_type(rtype)
    doc = _find(record_type, ident)
    href = f"{_base()}{RECORD_PREFIX}/{record_type}/{doc.id}"
    row = doc.row
    body: JSON = {"links": [{"rel": "self", "href": href}], "id": doc.id,
                  "tranId": row["tranid"]}
    for key, value in (("externalId", row.get("externalid")),
                       ("otherRefNum", row.get("otherrefnum")), ("memo", row.get("memo"))):
        if value:
            body[key] = value
    if doc.status:
        body["status"] = {"id": doc.status, "refName": doc.status}
    if row.get("total"):
        body["total"] = abs(float(row["total"]))
    if row.get("currency"):
        body["currency"] = {"links": [], "id": row["currency"], "refName": row["currency"]}
    if row.get("parent"):
        parent = next((r for r in _order_rows(doc) if r["id"] == row["parent"]), None)
        if parent is not None:
            body["createdFrom"] = {"links": [], "id": parent["id"], "refName": parent["tranid"]}
    sublist: JSON = {"links": [{"rel": "self", "href": f"{href}/item"}]}
    if request.args.get("expandSubResources", "").lower() == "true":
        lines = [_line_json(href, line) for line in doc.lines()]
        sublist.update(items=lines, totalResults=len(lines), count=len(lines), hasMore=False,
                       offset=0)
    body["item"] = sublist
    return json_response(body, 200, "application/vnd.oracle.resource+json; type=singular")


@netsuite.get(f"{RECORD_PREFIX}/<rtype>/<ident>/item")
def get_record_lines(rtype: str, ident: str) -> Response:
    """The `item` sublist as a collection of links, one per line."""
    record_type = _record_type(rtype)
    doc = _find(record_type, ident)
    href = f"{_base()}{RECORD_PREFIX}/{record_type}/{doc.id}"
    lines = doc.lines()
    return json_response({
        "links": [{"rel": "self", "href": f"{href}/item"}],
        "count": len(lines), "hasMore": False, "offset": 0, "totalResults": len(lines),
        "items": [{"links": [{"rel": "self", "href": f"{href}/item/{line['line']}"}]}
                  for line in lines],
    }, 200, COLLECTION)


@netsuite.get(f"{RECORD_PREFIX}/<rtype>/<ident>/item/<int:line>")
def get_record_line(rtype: str, ident: str, line: int) -> Response:
    """One line of the `item` sublist."""
    record_type = _record_type(rtype)
    doc = _find(record_type, ident)
    href = f"{_base()}{RECORD_PREFIX}/{record_type}/{doc.id}"
    found = next((x for x in doc.lines() if x["line"] == line), None)
    if found is None:
        raise _refuse(404, "NONEXISTENT_ID", NOT_FOUND)
    return json_response(_line_json(href, found), 200,
                         "application/vnd.oracle.resource+json; type=singular")


def _order_rows(doc: _Doc) -> list[dict[str, str]]:
    return _chain_rows(doc.number, doc.data.netsuite) if doc.data.netsuite else []


@netsuite.post(f"{RECORD_PREFIX}/<rtype>/<ident>/!transform/<target>")
def transform(rtype: str, ident: str, target: str) -> Response:
    """Create a document from another: 204 No Content, the new record's URL in Location."""
    source_type, target_type = _record_type(rtype), _record_type(target)
    link = TRANSFORMS.get((source_type, target_type))
    if link is None:
        raise _refuse(400, "INVALID_PARAMETER",
                      f"The sandbox doesn't transform {source_type} into {target_type}; it "
                      "transforms salesOrder → returnAuthorization and returnAuthorization → "
                      "itemReceipt.")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise _refuse(400, "INVALID_CONTENT", "The request body must be a JSON object.")
    replace = {name.strip().lower() for name in request.args.get("replace", "").split(",")}
    external = body.get("externalId")
    if external is not None and (not isinstance(external, str)
                                 or not _EXTERNAL_ID.fullmatch(external)):
        raise _refuse(400, "INVALID_CONTENT", "Invalid value for the externalId field. An "
                      "external ID may contain letters, numbers, '_' and '-'.", "externalId")
    memo = body.get("memo")
    if memo is not None and not isinstance(memo, str):
        raise _refuse(400, "INVALID_CONTENT", "Invalid value for the memo field.", "memo")
    store = state().netsuite
    # Found before the lock: a scenario's fault may delay the answer, and must not hold up
    # every other transform meanwhile.
    source = _find(source_type, ident)
    with store.lock:
        status = source.status
        if (source_type == "salesOrder" and status in _SO_CLOSED) or (
                source_type == "returnAuthorization" and status not in _RA_RECEIVABLE):
            raise _refuse(400, INELIGIBLE_CODE, f"Invalid reference {source.id}: the "
                          f"{source_type} can't be transformed into {target_type} in its "
                          "current status.")
        if external is not None and _taken(RECORD_TYPES[target_type], external):
            raise _refuse(400, DUPLICATE_CODE, DUPLICATE_DETAIL, "externalId")
        lines = _chosen_lines(source, target_type, body, "item" in replace)
        doc = _create(source, target_type, link, lines, external, memo)
        store.add(doc)
        if target_type == "itemReceipt":
            _mark_received(source)
    response = Response(status=204)
    response.headers["Location"] = f"{_base()}{RECORD_PREFIX}/{target_type}/{doc['id']}"
    return response


def _taken(code: str, external: str) -> bool:
    """Whether a document of that type already carries this external id."""
    for data in state().orders().values():
        if data.netsuite and any(row["type"] == code and row.get("externalid") == external
                                 for row in data.netsuite.rows):
            return True
    return any(doc["type"] == code and doc["external_id"] == external
               for doc in state().netsuite.docs())


def _received(ra: _Doc) -> dict[int, int]:
    """Units received so far per RA line, by the receipts created against it."""
    out: dict[int, int] = {}
    for doc in state().netsuite.docs():
        if doc["source"] == ra.id and doc["type"] == "ItemRcpt":
            for line in doc["lines"]:
                out[line["order_line"]] = out.get(line["order_line"], 0) + line["quantity"]
    if ra.created is None and ra.data.netsuite:  # a seeded RA's seeded receipts, by SKU
        receipts = {r["id"] for r in ra.data.netsuite.rows
                    if r["type"] == "ItemRcpt" and r.get("parent") == ra.id}
        by_sku: dict[str, int] = {}
        for rl in ra.data.netsuite.receipt_lines:
            if rl["receipt"] in receipts:
                by_sku[rl["sku"]] = by_sku.get(rl["sku"], 0) + abs(int(rl["quantity"]))
        for line in ra.lines():
            taken = min(by_sku.get(line["sku"], 0), line["quantity"])
            if taken:
                out[line["line"]] = out.get(line["line"], 0) + taken
                by_sku[line["sku"]] -= taken
    return out


def _chosen_lines(source: _Doc, target_type: str, body: JSON, replace: bool) -> list[JSON]:
    """The new document's lines: those the request names (with ?replace=item), else every
    open source line with the request's lines applied over them by orderLine.

    UNCONFIRMED: Oracle has no return-authorization example of choosing lines; without
    ?replace=item the sandbox reads request lines as keyed by `orderLine`.
    """
    receipt = target_type == "itemReceipt"
    available = {line["line"]: line for line in source.lines()}
    done = _received(source) if receipt else {}
    open_qty = {n: line["quantity"] - done.get(n, 0) for n, line in available.items()}
    sublist = body.get("item", {"items": []})
    items = sublist.get("items") if isinstance(sublist, dict) else None
    if not isinstance(items, list):
        raise _refuse(400, "INVALID_CONTENT", "Invalid value for the item sublist: send "
                      '{"items": [...]}.', "item")
    chosen: dict[int, JSON] = {}
    if not replace:
        chosen = {n: {"quantity": q} for n, q in open_qty.items() if q > 0}
    header_location = body.get("location")
    for i, raw in enumerate(items):
        where = f"item.items[{i}]"
        if not isinstance(raw, dict):
            raise _refuse(400, "INVALID_CONTENT", "Each sublist line must be an object.", where)
        order_line = raw.get("orderLine")
        if isinstance(order_line, bool) or not isinstance(order_line, int) \
                or order_line not in available:
            raise _refuse(400, "INVALID_CONTENT", f"Invalid value for the orderLine field: "
                          f"{order_line!r} is not a line of {source.row['tranid']}.",
                          f"{where}.orderLine")
        # UNCONFIRMED casing: REST field names are camelCase (itemReceive); Oracle's item
        # fulfillment example writes `itemreceive`. Both are read.
        flag = raw.get("itemReceive", raw.get("itemreceive", True))
        if flag is False:
            chosen.pop(order_line, None)
            continue
        quantity = raw.get("quantity", open_qty[order_line])
        if isinstance(quantity, float) and quantity.is_integer():
            quantity = int(quantity)
        limit = available[order_line]["quantity"] if not receipt else open_qty[order_line]
        if isinstance(quantity, bool) or not isinstance(quantity, int) \
                or not 1 <= quantity <= limit:
            raise _refuse(400, "INVALID_CONTENT", f"Invalid value for the quantity field: "
                          f"{quantity!r}. Line {order_line} has {limit} unit(s) to "
                          f"{'receive' if receipt else 'return'}.", f"{where}.quantity")
        line: JSON = {"quantity": quantity}
        if receipt:
            line["location"] = _location(raw.get("location", header_location),
                                         f"{where}.location")
        chosen[order_line] = line
    if receipt:
        for line in chosen.values():
            if "location" not in line:
                line["location"] = _location(header_location, "location")
    if not chosen:
        raise _refuse(400, INELIGIBLE_CODE,
                      "You must enter at least one line item for this transaction.", "item")
    return [{"line": new, "order_line": n, "item_id": available[n]["item_id"],
             "sku": available[n]["sku"], "quantity": line["quantity"],
             "rate": available[n].get("rate"), "location": line.get("location")}
            for new, (n, line) in enumerate(sorted(chosen.items()), start=1)]


def _location(value: Any, path: str) -> str:
    """A location name from `{"id": "2"}` or a bare id (UNCONFIRMED which form NetSuite
    takes: Oracle's example sends a bare number; the sandbox reads both)."""
    if value is None:
        raise _refuse(400, INELIGIBLE_CODE, "Please enter value(s) for: Location", path)
    ident = value.get("id") if isinstance(value, dict) else value
    name = NETSUITE_LOCATIONS.get(str(ident)) if not isinstance(ident, bool) else None
    if name is None:
        raise _refuse(400, "INVALID_CONTENT", f"Invalid value for the location field: "
                      f"{ident!r}. Locations: {', '.join(NETSUITE_LOCATIONS)}.", path)
    return name


def _create(source: _Doc, target_type: str, link: str, lines: list[JSON],
            external: str | None, memo: str | None) -> JSON:
    """The new document: its chain row (linked to its source), lines and receipt lines."""
    code = RECORD_TYPES[target_type]
    store = state().netsuite
    number, row = source.number, source.row
    currency = row.get("currency", "USD")
    same = sum(r["type"] == code for r in {r["id"]: r for r in _order_rows(source)}.values())
    tranid = (f"{NetSuiteChain._PREFIXES[code]}-{number}" + (f"-{same + 1}" if same else ""))
    total = None
    if code == "RtnAuth" and all(line.get("rate") is not None for line in lines):
        try:
            total = -Money.from_decimal(
                sum(Decimal(line["rate"]) * line["quantity"] for line in lines), currency)
        except MoneyError:
            total = None
    new_id = store.next_id()
    new_row = netsuite_row(
        id=new_id, type=code, tranid=tranid,
        # A new RA is Pending Receipt (B); item receipts carry no status.
        status="B" if code == "RtnAuth" else None,
        total=decimal_string(total) if total is not None else None,
        currency=currency,
        created=state().now().strftime("%Y-%m-%d %H:%M:%S"),
        # A transform copies the order's reference onto the RA (as on the seeded RAs).
        otherrefnum=row.get("otherrefnum") if code == "RtnAuth" else None,
        externalid=external, memo=memo, voided="F", parent=row["id"], link=link,
    )
    receipt_lines = ([netsuite_row(receipt=new_id, sku=line["sku"], quantity=line["quantity"],
                                   location=line["location"]) for line in lines]
                     if code == "ItemRcpt" else [])
    return {"order": number, "type": code, "record_type": target_type, "id": new_id,
            "external_id": external, "source": row["id"], "row": new_row, "lines": lines,
            "receipt_lines": receipt_lines}


def _mark_received(ra: _Doc) -> None:
    """An RA received in full is Pending Refund (F); in part, Partially Received (D)."""
    done = _received(ra)
    full = all(done.get(line["line"], 0) >= line["quantity"] for line in ra.lines())
    state().netsuite.set_status(ra.id, "F" if full else "D")


VENDOR = SandboxVendor("netsuite", "netsuite", SourceName.ERP, netsuite, error, CREDENTIALS)
