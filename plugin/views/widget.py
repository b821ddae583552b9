"""The sidebar widget: the merged record as server-rendered HTML, whole or one source at a time."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from ..core.model import SourceName
from ..core.orderid import InvalidOrderId, parse_order_id
from .context import sandbox_tenant, service

bp = Blueprint("widget", __name__, url_prefix="/widget")


def _tenant():
    # Signed helpdesk launches arrive with the Zendesk host; until then only the sandbox
    # installation may render without credentials.
    return sandbox_tenant()


@bp.get("")
def show():
    """The whole widget for ?order_id=…; the order-ID form when there is none."""
    tenant = _tenant()
    raw = request.args.get("order_id")
    if raw is None or raw.strip() == "":
        return render_template("widget/page.html", truth=None, error=None, order_id="",
                               tenant=tenant)
    try:
        order = parse_order_id(raw, tenant.order_name_prefix)
    except InvalidOrderId as exc:
        return render_template("widget/page.html", truth=None, error=exc.reason,
                               order_id=raw, tenant=tenant), 400
    truth = service().lookup(tenant, order, refresh=request.args.get("refresh") == "1")
    return render_template("widget/page.html", truth=truth, error=None, order_id=order.number,
                           tenant=tenant)


@bp.get("/sources/<source>")
def source_section(source: str):
    """One source's section on its own (the unit a streaming widget swaps in)."""
    tenant = _tenant()
    try:
        name = SourceName(source)
    except ValueError:
        abort(404)
    try:
        order = parse_order_id(request.args.get("order_id"), tenant.order_name_prefix)
    except InvalidOrderId as exc:
        abort(400, description=exc.reason)
    truth = service().lookup(tenant, order)
    return render_template("widget/_source.html", truth=truth, source=name,
                           report=truth.sources[name])
