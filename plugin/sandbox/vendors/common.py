"""What every simulated vendor shares: the state, refusals, faults and the vendor blueprint."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify

from ...core.model import SourceName
from ..faults import HANG_SECONDS, FaultSpec
from ..state import SandboxState

EXTENSION = "order_truth_sandbox"


@dataclass(frozen=True)
class SandboxVendor:
    """One simulated vendor API: where it is served, how it authenticates, how it errs.

    `serves` names other connectors that read the same simulated account at this path (a
    shop that is both the POS and the processor), for the installation that uses this vendor.
    """

    name: str
    path: str
    source: SourceName
    blueprint: Blueprint
    error: Callable[[int, str | None], Response]
    credentials: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    serves: tuple[str, ...] = ()


class Refusal(Exception):
    """Ends a request early with a ready-made vendor response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def state() -> SandboxState:
    """The running sandbox's state."""
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]


def json_response(body: Any, status: int = 200, content_type: str | None = None) -> Response:
    """A JSON response with a status (and a vendor's own content type, if it has one)."""
    response = jsonify(body)
    response.status_code = status
    if content_type:
        response.content_type = content_type
    return response


def apply_fault(spec: FaultSpec | None, source: SourceName,
                error: Callable[[int, str | None], Response], *, global_fault: bool) -> None:
    """Enact a fault: sleep, then refuse with its status or mark the body for corruption."""
    if spec is None:
        return
    seconds = spec.delay_ms / 1000 + (HANG_SECONDS if spec.hang else 0)
    # A global fault cleared mid-sleep stops applying; any sleep ends when the server stops.
    if seconds and not state().faults.sleep(seconds, watch=source if global_fault else None):
        return
    if spec.status is not None:
        response = error(spec.status, None)
        if spec.retry_after is not None:
            response.headers["Retry-After"] = str(spec.retry_after)
        raise Refusal(response)
    if spec.malformed:
        g.malformed = True


def order_fault(number: str | None) -> None:
    """Enact the fault the order's scenario sets for the current vendor, if any."""
    scenario = state().scenario(number)
    if scenario is not None:
        apply_fault(scenario.faults.get(g.source), g.source, g.vendor_error, global_fault=False)


def vendor_blueprint(name: str, path: str, source: SourceName,
                     error: Callable[[int, str | None], Response],
                     authenticate: Callable[[], None]) -> Blueprint:
    """A blueprint under /<path> that enacts its source's global fault, then checks auth."""
    blueprint = Blueprint(name, __name__, url_prefix=f"/{path}")

    @blueprint.before_request
    def _fault_then_authenticate() -> None:
        g.source = source
        g.vendor_error = error
        state().count_request(source.value)
        apply_fault(state().faults.get(source), source, error, global_fault=True)
        authenticate()

    return blueprint
