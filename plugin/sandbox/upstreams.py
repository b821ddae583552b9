"""The simulated vendors' HTTP app: one blueprint per vendor module, plus Zendesk and control."""

from __future__ import annotations

from importlib import import_module

from flask import Blueprint, Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from ..connectors.registry import CONNECTORS
from .faults import FaultSpec, source_role
from .scenarios import scenarios_json
from .state import SandboxState
from .vendors.common import EXTENSION, Refusal, SandboxVendor, json_response, state
from .zendesk import register_zendesk, unknown_zendesk_route


def vendors() -> dict[str, SandboxVendor]:
    """Every simulated vendor the registered connectors name, keyed by connector system."""
    out: dict[str, SandboxVendor] = {}
    for d in CONNECTORS.values():
        if d.sandbox:
            out[d.system] = import_module(f"{__package__}.vendors.{d.sandbox}").VENDOR
    return out


def create_upstreams_app(sandbox: SandboxState) -> Flask:
    """Build the WSGI app serving the simulated vendors and Zendesk plus the /_sandbox routes."""
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION] = sandbox
    registered: set[str] = set()
    for vendor in vendors().values():
        if vendor.path not in registered:
            app.register_blueprint(vendor.blueprint)
            registered.add(vendor.path)
    app.register_blueprint(control)
    register_zendesk(app, sandbox.zendesk)
    app.register_error_handler(Refusal, _refusal_response)
    app.register_error_handler(404, _unknown_route)
    app.register_error_handler(405, _unknown_route)
    app.after_request(_corrupt_if_malformed)
    return app


def _refusal_response(refusal: Refusal) -> Response:
    return refusal.response


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
    vendor = next((v for v in vendors().values() if v.path == prefix), None)
    path = f"/{rest}" if vendor else request.path
    message = f"Unrecognized request URL ({request.method}: {path})."
    status = error.code or 404
    if vendor is None:
        return json_response({"error": message}, status)
    return vendor.error(status, message)


# ---------------------------------------------------------------- sandbox control

control = Blueprint("sandbox_control", __name__, url_prefix="/_sandbox")


def _control_error(message: str) -> Response:
    return json_response({"error": message}, 400)


@control.get("/faults")
def read_faults() -> Response:
    """The global faults now in force, keyed by source role."""
    faults = state().faults.snapshot()
    return json_response({source: spec.to_json() for source, spec in faults.items()})


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
    board = state().faults
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
        state().faults.clear(request.args.get("source"))
    except ValueError as exc:
        return _control_error(str(exc))
    return read_faults()


@control.get("/scenarios")
def list_scenarios() -> Response:
    """The seeded scenarios."""
    return json_response(scenarios_json())


@control.get("/stats")
def stats() -> Response:
    """HTTP requests each source role has received since the last reset."""
    return json_response({"requests": state().request_counts()})


@control.post("/reset")
def reset() -> Response:
    """Clear faults and refunds created through the Stripe API."""
    state().reset()
    return json_response({"faults": {}, "created_refunds": 0})
