"""Simulated Loop, Stripe, NetSuite, Shopify (and Zendesk) HTTP APIs speaking the dialects in docs/."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, unquote

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from ..core.model import SourceName
from ..core.money import Money
from .dialects import (
    JSON,
    loop_error,
    loop_no_return,
    netsuite_error,
    shopify_error,
    shopify_graphql_error,
    shopify_orders_response,
    status_phrase,
    stripe_error,
    stripe_list,
    stripe_refund,
    stripe_search_result,
    suiteql_page,
)
from .faults import HANG_SECONDS, FaultSpec, source_role
from .scenarios import SANDBOX_CREDENTIALS, OrderData, scenarios_json
from .state import IdempotencyConflict, SandboxState
from .zendesk import register_zendesk, unknown_zendesk_route

_EXTENSION = "order_truth_sandbox"
_VENDORS: dict[str, SourceName] = {
    "loop": SourceName.PORTAL,
    "stripe": SourceName.PROCESSOR,
    "netsuite": SourceName.ERP,
    "shopify": SourceName.POS,
}
NETSUITE_COLLECTION = "application/vnd.oracle.resource+json; type=collection"
NETSUITE_ERROR = "application/vnd.oracle.resource+json; type=error"
NETSUITE_INVALID_LOGIN = (
    "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI "
    "at Setup > Users/Roles > User Management > View Login Audit Trail."
)
SHOPIFY_INVALID_TOKEN = (
    "[API] Invalid API key or access token (unrecognized login or wrong password)"
)
STRIPE_RATE_LIMITED = (
    "Too many requests hit the API too quickly. We recommend an exponential backoff of your "
    "requests."
)


def create_upstreams_app(state: SandboxState) -> Flask:
    """Build the WSGI app serving the simulated vendors and Zendesk plus the /_sandbox routes."""
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[_EXTENSION] = state
    for blueprint in (loop, stripe, netsuite, shopify, control):
        app.register_blueprint(blueprint)
    register_zendesk(app, state.zendesk)
    app.register_error_handler(Refusal, _refusal_response)
    app.register_error_handler(404, _unknown_route)
    app.register_error_handler(405, _unknown_route)
    app.after_request(_corrupt_if_malformed)
    return app


class Refusal(Exception):
    """Ends a request early with a ready-made vendor response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def _refusal_response(refusal: Refusal) -> Response:
    return refusal.response


def _state() -> SandboxState:
    return current_app.extensions[_EXTENSION]


def _json(body: Any, status: int = 200, content_type: str | None = None) -> Response:
    response = jsonify(body)
    response.status_code = status
    if content_type:
        response.content_type = content_type
    return response


# ---------------------------------------------------------------- faults


def _vendor_error(source: SourceName, status: int, message: str | None = None) -> Response:
    """An error status in the vendor's own envelope (auth failures, faults, unknown routes)."""
    server_side = status >= 500
    if source is SourceName.PORTAL:
        default = {401: "Unauthenticated.", 429: "Too Many Attempts."}.get(
            status, "Server Error" if server_side else status_phrase(status))
        return _json(loop_error(message or default), status)
    if source is SourceName.PROCESSOR:
        if status == 429:
            body = stripe_error("invalid_request_error", message or STRIPE_RATE_LIMITED,
                                code="rate_limit")
        elif server_side:
            body = stripe_error("api_error", message or "An unknown error occurred.")
        else:
            body = stripe_error("invalid_request_error", message or status_phrase(status))
        return _json(body, status)
    if source is SourceName.ERP:
        if status == 401:
            code, detail = "INVALID_LOGIN", NETSUITE_INVALID_LOGIN
        elif status == 429:
            code, detail = ("CONCURRENCY_LIMIT_EXCEEDED",
                            "Concurrent request limit exceeded. Request blocked.")
        elif server_side:
            code, detail = "UNEXPECTED_ERROR", "An unexpected error occurred. Error ID: sandbox"
        else:
            code, detail = "INVALID_PARAMETER", status_phrase(status)
        return _json(netsuite_error(status, code, message or detail), status, NETSUITE_ERROR)
    if status == 429:
        return _json(shopify_graphql_error("Throttled", "THROTTLED"), status)
    default = SHOPIFY_INVALID_TOKEN if status == 401 else status_phrase(status)
    return _json(shopify_error(message or default), status)


def _apply_fault(spec: FaultSpec | None, source: SourceName, *, global_fault: bool) -> None:
    """Enact a fault: sleep, then refuse with its status or mark the body for corruption."""
    if spec is None:
        return
    seconds = spec.delay_ms / 1000 + (HANG_SECONDS if spec.hang else 0)
    # A global fault cleared mid-sleep stops applying; any sleep ends when the server stops.
    if seconds and not _state().faults.sleep(seconds, watch=source if global_fault else None):
        return
    if spec.status is not None:
        response = _vendor_error(source, spec.status)
        if spec.retry_after is not None:
            response.headers["Retry-After"] = str(spec.retry_after)
        raise Refusal(response)
    if spec.malformed:
        g.malformed = True


def _order_fault(number: str | None) -> None:
    """Enact the fault the order's scenario sets for the current vendor, if any."""
    scenario = _state().scenario(number)
    if scenario is not None:
        _apply_fault(scenario.faults.get(g.source), g.source, global_fault=False)


def _corrupt_if_malformed(response: Response) -> Response:
    if g.get("malformed"):
        # A strict prefix of a JSON document is never valid JSON.
        body = response.get_data()
        response.set_data(body[: len(body) // 2])
        response.status_code = 200
    return response


def _unknown_route(error: HTTPException) -> Response:
    prefix, _, rest = request.path.strip("/").partition("/")
    if prefix == "zendesk":
        return unknown_zendesk_route(error)
    source = _VENDORS.get(prefix)
    path = f"/{rest}" if source else request.path
    message = f"Unrecognized request URL ({request.method}: {path})."
    status = error.code or 404
    if source is None:
        return _json({"error": message}, status)
    return _vendor_error(source, status, message)


def _vendor_blueprint(name: str, authenticate: Callable[[], None]) -> Blueprint:
    """A blueprint under /<name> that enacts the source's global fault, then checks auth."""
    source = _VENDORS[name]
    blueprint = Blueprint(name, __name__, url_prefix=f"/{name}")

    @blueprint.before_request
    def _fault_then_authenticate() -> None:
        g.source = source
        _apply_fault(_state().faults.get(source), source, global_fault=True)
        authenticate()

    return blueprint


# ---------------------------------------------------------------- Loop Returns


def _loop_auth() -> None:
    if request.headers.get("X-Authorization") != SANDBOX_CREDENTIALS["loop"]["api_key"]:
        raise Refusal(_vendor_error(SourceName.PORTAL, 401))


loop = _vendor_blueprint("loop", _loop_auth)


@loop.get("/api/v1/warehouse/return/details")
def return_details() -> Response:
    """An order's returns: one object, an array when several, a 200 error body when none."""
    name = request.args.get("order_name", "").strip()
    if not name:
        message = ("The order name field is required when none of return id / order id "
                   "are present.")
        return _json({"message": message, "errors": {"order_name": [message]}}, 422)
    currency_type = request.args.get("currency_type")
    if currency_type not in (None, "shop", "presentment"):
        message = "The selected currency type is invalid."
        return _json({"message": message, "errors": {"currency_type": [message]}}, 422)
    number = name.removeprefix("#")
    _order_fault(number)
    data = _state().order(number)
    returns = data.loop_returns if data else []
    if not returns:
        return _json(loop_no_return())
    return _json(returns[0] if len(returns) == 1 else returns)


# ---------------------------------------------------------------- Stripe


def _stripe_refusal(status: int, message: str, *, error_type: str = "invalid_request_error",
                    code: str | None = None, param: str | None = None) -> Refusal:
    return Refusal(_json(stripe_error(error_type, message, code=code, param=param), status))


def _stripe_auth() -> None:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise _stripe_refusal(
            401, "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
            "YOUR_SECRET_KEY').")
    if key != SANDBOX_CREDENTIALS["stripe"]["secret_key"]:
        masked = f"{key[:8]}****{key[-4:]}" if len(key) > 16 else f"{key[:8]}****"
        raise _stripe_refusal(401, f"Invalid API Key provided: {masked}")


stripe = _vendor_blueprint("stripe", _stripe_auth)

_ORDER_QUERY = re.compile(
    r"""metadata\[(['"])order_id\1\]\s*:\s*(['"])(?P<value>(?:\\.|(?!\2)[^\\])*)\2""")
_ESCAPED = re.compile(r"\\(.)")
_PAGE_TOKEN = re.compile(r"sbx_page_(\d+)")
_DIGITS = re.compile(r"\d+")
_METADATA_PARAM = re.compile(r"metadata\[([^\[\]]+)\]")
_REFUND_PARAMS = frozenset({"payment_intent", "amount", "reason", "currency"})
_REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def _stripe_int(name: str, default: int, low: int, high: int | None = None) -> int:
    raw = request.args.get(name, request.form.get(name))
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw):
        raise _stripe_refusal(400, f"Invalid integer: {raw}", param=name)
    value = int(raw)
    if value < low:
        raise _stripe_refusal(400, f"This value must be greater than or equal to {low}.",
                              param=name)
    if high is not None and value > high:
        raise _stripe_refusal(400, f"This value must be less than or equal to {high}.",
                              param=name)
    return value


def _payment_intent_owner(orders: dict[str, OrderData], pi_id: str) -> tuple[str, JSON]:
    """The order number and PaymentIntent for an id, or a Stripe 404."""
    for number, data in orders.items():
        for payment in data.payment_intents:
            if payment["id"] == pi_id:
                return number, payment
    raise _stripe_refusal(404, f"No such payment_intent: '{pi_id}'", code="resource_missing",
                          param="payment_intent")


def _all_refunds(orders: dict[str, OrderData]) -> list[JSON]:
    seeded = [refund for data in orders.values() for refund in data.refunds]
    return seeded + _state().ledger.refunds()


def _for_payment_intent(objects: list[JSON], orders: dict[str, OrderData]) -> list[JSON]:
    """Apply the payment_intent / charge list filters (and the order's fault)."""
    pi_id = request.args.get("payment_intent")
    if pi_id is not None:
        number, _ = _payment_intent_owner(orders, pi_id)
        _order_fault(number)
        objects = [obj for obj in objects if obj["payment_intent"] == pi_id]
    charge = request.args.get("charge")
    if charge is not None:
        objects = [obj for obj in objects if obj["charge"] == charge]
    return objects


def _stripe_page(url: str, kind: str, objects: list[JSON]) -> Response:
    """A list page, newest first, honouring limit / starting_after / ending_before."""
    limit = _stripe_int("limit", 10, 1, 100)
    ordered = [obj for _, obj in sorted(enumerate(objects), reverse=True,
                                        key=lambda pair: (pair[1]["created"], pair[0]))]
    after, before = request.args.get("starting_after"), request.args.get("ending_before")
    if after and before:
        raise _stripe_refusal(400, "You may only specify one of these parameters: "
                                   "ending_before, starting_after.")
    if after:
        ordered = ordered[_position(ordered, after, kind, "starting_after") + 1:]
        page = ordered[:limit]
    elif before:
        ordered = ordered[:_position(ordered, before, kind, "ending_before")]
        page = ordered[-limit:]
    else:
        page = ordered[:limit]
    return _json(stripe_list(url, page, len(ordered) > limit))


def _position(objects: list[JSON], object_id: str, kind: str, param: str) -> int:
    for index, obj in enumerate(objects):
        if obj["id"] == object_id:
            return index
    raise _stripe_refusal(400, f"No such {kind}: '{object_id}'", code="resource_missing",
                          param=param)


@stripe.get("/v1/payment_intents/search")
def search_payment_intents() -> Response:
    """Search PaymentIntents; only metadata['order_id']:'<number>' is supported."""
    query = request.args.get("query", "")
    match = _ORDER_QUERY.fullmatch(query.strip())
    if match is None:
        raise _stripe_refusal(
            400, f"Unsupported search query: {query!r}. The sandbox answers "
            "metadata['order_id']:'<order number>'.", param="query")
    limit = _stripe_int("limit", 10, 1, 100)
    page_token = request.args.get("page")
    token = _PAGE_TOKEN.fullmatch(page_token) if page_token else None
    if page_token and token is None:
        raise _stripe_refusal(400, f"Invalid page: {page_token}", param="page")
    start = int(token[1]) if token else 0
    number = _ESCAPED.sub(r"\1", match["value"])
    _order_fault(number)
    data = _state().order(number)
    found = data.payment_intents if data else []
    if "data.latest_charge" in request.args.getlist("expand[]"):
        charges = {c["id"]: c for c in data.charges} if data else {}
        found = [{**pi, "latest_charge": charges.get(pi["latest_charge"], pi["latest_charge"])}
                 for pi in found]
    next_page = f"sbx_page_{start + limit}" if start + limit < len(found) else None
    return _json(stripe_search_result("/v1/payment_intents/search",
                                      found[start:start + limit], next_page))


@stripe.get("/v1/refunds")
def list_refunds() -> Response:
    """List refunds (seeded and created), optionally for one PaymentIntent or charge."""
    orders = _state().orders()
    return _stripe_page("/v1/refunds", "refund",
                        _for_payment_intent(_all_refunds(orders), orders))


@stripe.get("/v1/disputes")
def list_disputes() -> Response:
    """List disputes, optionally for one PaymentIntent or charge."""
    orders = _state().orders()
    disputes = [dispute for data in orders.values() for dispute in data.disputes]
    return _stripe_page("/v1/disputes", "dispute", _for_payment_intent(disputes, orders))


@stripe.post("/v1/refunds")
def create_refund() -> Response:
    """Create a refund; an Idempotency-Key replays the first result or conflicts (409)."""
    form = request.form
    for name in form:
        if name not in _REFUND_PARAMS and not _METADATA_PARAM.fullmatch(name):
            raise _stripe_refusal(400, f"Received unknown parameter: {name}", param=name)
    pi_id = form.get("payment_intent")
    if not pi_id:
        raise _stripe_refusal(400, "One of the following params should be provided for this "
                                   "request: payment_intent or charge.",
                              code="parameter_missing")
    state = _state()
    orders = state.orders()
    number, payment = _payment_intent_owner(orders, pi_id)
    _order_fault(number)
    amount = _stripe_int("amount", 0, 1) or None
    reason = form.get("reason") or None
    if reason is not None and reason not in _REFUND_REASONS:
        raise _stripe_refusal(400, "Invalid reason: must be one of duplicate, fraudulent, or "
                                   "requested_by_customer", param="reason")
    currency = form.get("currency")
    if currency and currency.lower() != payment["currency"]:
        raise _stripe_refusal(400, f"Currency {currency} does not match the charge's currency "
                                   f"{payment['currency']}.", param="currency")
    metadata = {match[1]: value for name, value in form.items()
                if (match := _METADATA_PARAM.fullmatch(name))}
    key = request.headers.get("Idempotency-Key")
    fingerprint = (request.path, tuple(sorted(form.items(multi=True))))
    with state.ledger.lock:
        if key is not None:
            try:
                prior = state.ledger.replay(key, fingerprint)
            except IdempotencyConflict:
                raise _stripe_refusal(
                    409, "Keys for idempotent requests can only be used with the same "
                    "parameters they were first used with. Try using a key other than "
                    f"'{key}' if you meant to execute a different request.",
                    error_type="idempotency_error") from None
            if prior is not None:
                response = _json(prior)
                response.headers["Idempotent-Replayed"] = "true"
                return response
        refund = _refund_within_limits(orders[number], payment, amount, reason, metadata)
        state.ledger.record(refund, key, fingerprint)
    return _json(refund)


# Stripe's own words: disputes that still hold the charge, refunds that count against it.
_OPEN_DISPUTES = frozenset({"warning_needs_response", "warning_under_review", "needs_response",
                            "under_review"})
_LIVE_REFUNDS = frozenset({"pending", "requires_action", "succeeded"})


def _refund_within_limits(data: OrderData, payment: JSON, amount: int | None,
                          reason: str | None, metadata: dict[str, str]) -> JSON:
    """Build the refund, refusing as Stripe does when the charge cannot take it."""
    charge = payment["latest_charge"]
    if any(d["payment_intent"] == payment["id"] and d["status"] in _OPEN_DISPUTES
           and not d["is_charge_refundable"] for d in data.disputes):
        raise _stripe_refusal(400, f"Charge {charge} has been charged back; cannot issue a "
                                   "refund.", code="charge_disputed")
    refunded = sum(
        refund["amount"] for refund in data.refunds + _state().ledger.refunds()
        if refund["payment_intent"] == payment["id"]
        and refund["status"] in _LIVE_REFUNDS
    )
    remaining = payment["amount_received"] - refunded
    if remaining <= 0:
        raise _stripe_refusal(400, f"Charge {charge} has already been refunded.",
                              code="charge_already_refunded")
    currency = payment["currency"].upper()
    if amount is not None and amount > remaining:
        raise _stripe_refusal(
            400, f"Refund amount ({Money(amount, currency)}) is greater than unrefunded amount "
            f"on charge ({Money(remaining, currency)})", code="charge_exceeds_source_limit",
            param="amount")
    return stripe_refund(f"re_Sbx{uuid.uuid4().hex[:24]}", payment,
                         Money(amount or remaining, currency), _state().now(),
                         reason=reason, metadata=metadata)


# ---------------------------------------------------------------- NetSuite

_OAUTH_FIELD = re.compile(r'([\w-]+)\s*=\s*"([^"]*)"')
_CHAIN_QUERY = re.compile(r"otherrefnum\s*=\s*'((?:[^']|'')*)'", re.IGNORECASE)
_RECEIPT_LINES_QUERY = re.compile(r"tl\.transaction\s+IN\s*\(([^)]*)\)", re.IGNORECASE)


def _netsuite_refusal(status: int, code: str, detail: str) -> Refusal:
    return Refusal(_json(netsuite_error(status, code, detail), status, NETSUITE_ERROR))


def _netsuite_auth() -> None:
    problem = _oauth_problem()
    if problem is not None:
        # NetSuite itself only says INVALID_LOGIN; the log tells a connector author why.
        current_app.logger.warning("sandbox NetSuite refused the login: %s", problem)
        raise Refusal(_vendor_error(SourceName.ERP, 401))


def _oauth_problem() -> str | None:
    """Why the request's OAuth 1.0a (TBA, HMAC-SHA256) header is not acceptable, if it isn't."""
    scheme, _, rest = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "oauth":
        return "no 'Authorization: OAuth …' header"
    fields = {name: unquote(value) for name, value in _OAUTH_FIELD.findall(rest)}
    creds = SANDBOX_CREDENTIALS["netsuite"]
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


netsuite = _vendor_blueprint("netsuite", _netsuite_auth)


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
    return _json(suiteql_page(rows, limit=limit, offset=offset, href=request.base_url),
                 200, NETSUITE_COLLECTION)


def _document_chain(order_name: str) -> list[dict[str, str]]:
    number = order_name[1:] if order_name.startswith("#") else None
    _order_fault(number)
    data = _state().order(number)
    return data.netsuite.rows if data and data.netsuite else []


def _receipt_lines(receipt_ids: set[str]) -> list[dict[str, str]]:
    chains = [(number, data.netsuite) for number, data in _state().orders().items()
              if data.netsuite]
    for number, chain in chains:
        if any(row["id"] in receipt_ids for row in chain.rows):
            _order_fault(number)
    return [line for _, chain in chains for line in chain.receipt_lines
            if line["receipt"] in receipt_ids]


# ---------------------------------------------------------------- Shopify

_API_VERSION = re.compile(r"\d{4}-\d{2}|unstable")
_NAME_FILTER = re.compile(r"""\bname:\s*["']?#?(\w+)""")


def _shopify_auth() -> None:
    token = request.headers.get("X-Shopify-Access-Token")
    if token != SANDBOX_CREDENTIALS["shopify_pos"]["access_token"]:
        raise Refusal(_vendor_error(SourceName.POS, 401))


shopify = _vendor_blueprint("shopify", _shopify_auth)


@shopify.post("/admin/api/<version>/graphql.json")
def graphql(version: str) -> Response:
    """Answer orders(first: 5, query: "name:#<number>") with the order node (or none)."""
    if not _API_VERSION.fullmatch(version):
        raise Refusal(_json(shopify_error("Not Found"), 404))
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return _json({"errors": {"query": "Required parameter missing or invalid"}}, 400)
    variables = body.get("variables")
    search = variables.get("query") if isinstance(variables, dict) else None
    match = _NAME_FILTER.search(search) if isinstance(search, str) else None
    number = match[1] if match else None
    _order_fault(number)
    data = _state().order(number)
    nodes = [data.shopify_order] if data and data.shopify_order else []
    response = _json(shopify_orders_response(nodes))
    response.headers["X-Shopify-API-Version"] = version
    return response


# ---------------------------------------------------------------- sandbox control

control = Blueprint("sandbox_control", __name__, url_prefix="/_sandbox")


def _control_error(message: str) -> Response:
    return _json({"error": message}, 400)


@control.get("/faults")
def read_faults() -> Response:
    """The global faults now in force, keyed by source role."""
    return _json({source: spec.to_json() for source, spec in _state().faults.snapshot().items()})


@control.post("/faults")
def set_faults() -> Response:
    """Set faults from {"<source>": {FaultSpec fields} | null}; null clears that source."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _control_error('expected a JSON object such as {"erp": {"status": 503}}')
    try:
        changes = {source_role(source): None if spec is None else FaultSpec.from_json(spec)
                   for source, spec in body.items()}
    except (TypeError, ValueError) as exc:
        return _control_error(str(exc))
    board = _state().faults
    for source, spec in changes.items():
        if spec is None:
            board.clear(source)
        else:
            board.set(source, spec)
    return read_faults()


@control.delete("/faults")
def clear_faults() -> Response:
    """Clear every global fault, or only ?source=<role>."""
    try:
        _state().faults.clear(request.args.get("source"))
    except ValueError as exc:
        return _control_error(str(exc))
    return read_faults()


@control.get("/scenarios")
def list_scenarios() -> Response:
    """The seeded scenarios."""
    return _json(scenarios_json())


@control.post("/reset")
def reset() -> Response:
    """Clear faults and refunds created through the Stripe API."""
    _state().reset()
    return _json({"faults": {}, "created_refunds": 0})
