"""JSON API: the merged record for scripts and the widget's later refreshes."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..core.orderid import InvalidOrderId, parse_order_id
from ..core.serialize import truth_to_dict
from .context import api_tenant, arrived, release_db, service

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.get("/orders/<path:order_id>")
def order_truth(order_id: str):
    """The merged record for one order."""
    tenant = api_tenant()
    try:
        order = parse_order_id(order_id, tenant.order_name_prefix)
    except InvalidOrderId as exc:
        return jsonify(error={"code": "invalid_order_id", "message": exc.reason}), 400
    release_db()
    truth = service().lookup(tenant, order, refresh=request.args.get("refresh") == "1",
                             arrived=arrived())
    return jsonify(truth_to_dict(truth))
