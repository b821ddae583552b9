"""The sandbox's pages: a pretend helpdesk that launches the real Zendesk sidebar flow, and the
widget on its own for the sandbox installation (/widget?order_id=1002)."""

from __future__ import annotations

import requests
from flask import Blueprint, abort, current_app, render_template, request

from ..connectors.base import NotFoundError, UpstreamError
from ..core.orderid import InvalidOrderId, parse_order_id
from ..installations import Tenant
from ..views.context import hosts, repo, service
from . import sandbox_url as configured_url
from .scenarios import SCENARIOS
from .seed import SANDBOX_KEY
from .zendesk import (
    SANDBOX_API_EMAIL,
    SANDBOX_API_TOKEN,
    SANDBOX_ORDER_FIELD_ID,
    SANDBOX_REFUND_STATUS_FIELD_ID,
    STAFF,
    UNKNOWN_ORDER_NUMBER,
)

bp = Blueprint("sandbox_pages", __name__, url_prefix="/sandbox")
widget_bp = Blueprint("widget", __name__, url_prefix="/widget")


def sandbox_url() -> str:
    return configured_url(current_app.config)


def _tickets() -> list[dict]:
    rows = [{"id": 100 + i, "order_id": s.order_number, "scenario": s.name, "subject": s.title}
            for i, s in enumerate(SCENARIOS, start=1)]
    rows.append({"id": 100 + len(rows) + 1, "order_id": UNKNOWN_ORDER_NUMBER,
                 "scenario": "unknown_order", "subject": "An order no system has heard of"})
    return rows


def _api():
    return hosts()["zendesk"].client_for(  # type: ignore[attr-defined]
        sandbox_url() + "/zendesk", {"email": SANDBOX_API_EMAIL, "api_token": SANDBOX_API_TOKEN})


@bp.get("")
def tickets():
    """The ticket list."""
    return render_template("sandbox/tickets.html", tickets=_tickets())


@bp.get("/tickets/<int:ticket_id>")
def ticket(ticket_id: int):
    """One ticket, its notes and tags, and the Order Truth sidebar launched as Zendesk would."""
    row = next((t for t in _tickets() if t["id"] == ticket_id), None)
    if row is None:
        abort(404)
    api = _api()
    try:
        t = api.get_ticket(str(ticket_id))
        comments = list(api.comments(str(ticket_id)))
    except NotFoundError:
        abort(404)
    except UpstreamError as exc:
        abort(502, description=f"The sandbox Zendesk didn't answer: {exc}")
    zaf = {
        "ticket.id": int(t.id), "ticket.subject": t.subject, "ticket.description": t.description,
        f"ticket.customField:custom_field_{SANDBOX_ORDER_FIELD_ID}":
            t.custom_fields.get(str(SANDBOX_ORDER_FIELD_ID)),
    }
    return render_template("sandbox/ticket.html", ticket=row, zd=t, zaf=zaf,
                           comments=comments[1:], tickets=_tickets(),
                           field_id=SANDBOX_ORDER_FIELD_ID,
                           refund_status=t.custom_fields.get(str(SANDBOX_REFUND_STATUS_FIELD_ID)),
                           authors={user.id: user.name for user in STAFF.values()})


@bp.get("/launch/<int:ticket_id>")
def launch(ticket_id: int):
    """What Zendesk does when it opens the sidebar: POST a freshly signed token to the app."""
    try:
        resp = requests.post(f"{sandbox_url()}/_sandbox/zendesk/launch", timeout=5)
        resp.raise_for_status()
        token = resp.json()["token"]
    except (requests.RequestException, ValueError, KeyError) as exc:
        abort(502, description=f"The sandbox Zendesk couldn't sign a launch ({type(exc).__name__}).")
    origin = request.host_url.rstrip("/")
    return render_template("sandbox/launch.html", token=token, origin=origin, ticket_id=ticket_id)


def _tenant() -> Tenant:
    tenant = repo().find(SANDBOX_KEY)
    if tenant is None:
        abort(404)
    return tenant


@widget_bp.get("")
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
