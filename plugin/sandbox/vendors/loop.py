"""Simulated Loop Returns: return details by order name."""

from __future__ import annotations

from flask import Response, request

from ...core.model import SourceName
from ..dialects import loop_error, loop_no_return, status_phrase
from .common import Refusal, SandboxVendor, json_response, order_fault, state, vendor_blueprint

CREDENTIALS = {"api_key": "sandbox-loop-key"}


def error(status: int, message: str | None = None) -> Response:
    """Loop's (Laravel's) error envelope."""
    default = {401: "Unauthenticated.", 429: "Too Many Attempts."}.get(
        status, "Server Error" if status >= 500 else status_phrase(status))
    return json_response(loop_error(message or default), status)


def _auth() -> None:
    if request.headers.get("X-Authorization") != CREDENTIALS["api_key"]:
        raise Refusal(error(401))


loop = vendor_blueprint("loop", "loop", SourceName.PORTAL, error, _auth)


@loop.get("/api/v1/warehouse/return/details")
def return_details() -> Response:
    """An order's returns: one object, an array when several, a 200 error body when none."""
    name = request.args.get("order_name", "").strip()
    if not name:
        message = ("The order name field is required when none of return id / order id "
                   "are present.")
        return json_response({"message": message, "errors": {"order_name": [message]}}, 422)
    currency_type = request.args.get("currency_type")
    if currency_type not in (None, "shop", "presentment"):
        message = "The selected currency type is invalid."
        return json_response({"message": message, "errors": {"currency_type": [message]}}, 422)
    number = name.removeprefix("#")
    order_fault(number)
    data = state().order(number)
    returns = data.loop_returns if data else []
    if not returns:
        return json_response(loop_no_return())
    return json_response(returns[0] if len(returns) == 1 else returns)


VENDOR = SandboxVendor("loop", "loop", SourceName.PORTAL, loop, error, CREDENTIALS)
