"""Simulated Shopify Admin GraphQL: an order with its transactions and refunds."""

from __future__ import annotations

import re
from typing import Any

from flask import Response, request

from ...core.model import SourceName
from ..dialects import shopify_error, shopify_graphql_error, shopify_orders_response, status_phrase
from .common import Refusal, SandboxVendor, json_response, order_fault, state, vendor_blueprint

CREDENTIALS = {"access_token": "shpat_sandbox"}
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
# The sandbox shop's one shop floor: a refund restocked at the warehouse is an online return.
OPTIONS = {"retail_locations": "Brooklyn Store"}


def error(status: int, message: str | None = None) -> Response:
    """Shopify's error bodies: GraphQL THROTTLED for 429, {"errors": "…"} otherwise."""
    if status == 429:
        return json_response(shopify_graphql_error("Throttled", "THROTTLED"), status)
    default = INVALID_TOKEN if status == 401 else status_phrase(status)
    return json_response(shopify_error(message or default), status)


_API_VERSION = re.compile(r"\d{4}-\d{2}|unstable")
_NAME_FILTER = re.compile(r"""\bname:\s*["']?#?(\w+)""")


def graphql_request(version: str) -> tuple[str, dict[str, Any]]:
    """The query and variables of an Admin GraphQL POST, or Shopify's refusal of it."""
    if not _API_VERSION.fullmatch(version):
        raise Refusal(json_response(shopify_error("Not Found"), 404))
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        raise Refusal(json_response(
            {"errors": {"query": "Required parameter missing or invalid"}}, 400))
    variables = body.get("variables")
    return body["query"], variables if isinstance(variables, dict) else {}


def searched_order(variables: dict[str, Any]) -> str | None:
    """The order number an orders(query: "name:#1001") search asks for."""
    search = variables.get("query")
    match = _NAME_FILTER.search(search) if isinstance(search, str) else None
    return match[1] if match else None


def _auth() -> None:
    if request.headers.get("X-Shopify-Access-Token") != CREDENTIALS["access_token"]:
        raise Refusal(error(401))


shopify = vendor_blueprint("shopify", "shopify", SourceName.POS, error, _auth)


@shopify.post("/admin/api/<version>/graphql.json")
def graphql(version: str) -> Response:
    """Answer orders(first: 5, query: "name:#<number>") with the order node (or none)."""
    _query, variables = graphql_request(version)
    number = searched_order(variables)
    order_fault(number)
    data = state().order(number)
    nodes = [data.shopify_order] if data and data.shopify_order else []
    response = json_response(shopify_orders_response(nodes))
    response.headers["X-Shopify-API-Version"] = version
    return response


VENDOR = SandboxVendor("shopify", "shopify", SourceName.POS, shopify, error, CREDENTIALS, OPTIONS)
