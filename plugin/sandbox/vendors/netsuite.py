"""Simulated NetSuite: SuiteQL over token-based auth (OAuth 1.0a, HMAC-SHA256)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from urllib.parse import quote, unquote

from flask import Response, current_app, request

from ...core.model import SourceName
from ..dialects import netsuite_error, status_phrase, suiteql_page
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
    """Answer the two SuiteQL queries the connector runs, recognised by their filters."""
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
    else:
        raise _netsuite_refusal(
            400, "INVALID_PARAMETER", "Invalid search query. The sandbox answers the "
            "document-chain query (otherrefnum = '<order name>') and the receipt-lines query "
            "(tl.transaction IN (<ids>)).")
    return json_response(suiteql_page(rows, limit=limit, offset=offset, href=request.base_url),
                 200, COLLECTION)


def _document_chain(order_name: str) -> list[dict[str, str]]:
    number = order_name[1:] if order_name.startswith("#") else None
    order_fault(number)
    data = state().order(number)
    return data.netsuite.rows if data and data.netsuite else []


def _receipt_lines(receipt_ids: set[str]) -> list[dict[str, str]]:
    chains = [(number, data.netsuite) for number, data in state().orders().items()
              if data.netsuite]
    for number, chain in chains:
        if any(row["id"] in receipt_ids for row in chain.rows):
            order_fault(number)
    return [line for _, chain in chains for line in chain.receipt_lines
            if line["receipt"] in receipt_ids]


VENDOR = SandboxVendor("netsuite", "netsuite", SourceName.ERP, netsuite, error, CREDENTIALS)
