"""A pretend helpdesk: a ticket list and ticket view embedding the widget, one ticket a scenario."""

from __future__ import annotations

from flask import Blueprint, abort, render_template

from ..sandbox.scenarios import SCENARIOS

bp = Blueprint("sandbox_pages", __name__, url_prefix="/sandbox")

UNKNOWN_ORDER = "9999"


def _tickets() -> list[dict]:
    tickets = [
        {"id": 100 + i, "order_id": s.order_number, "scenario": s.name, "subject": s.title,
         "description": s.description}
        for i, s in enumerate(SCENARIOS, start=1)
    ]
    tickets.append({"id": 100 + len(tickets) + 1, "order_id": UNKNOWN_ORDER,
                    "scenario": "unknown_order", "subject": "Where is my refund for order 9999?",
                    "description": "An order no system has heard of."})
    return tickets


@bp.get("")
def tickets():
    """The ticket list."""
    return render_template("sandbox/tickets.html", tickets=_tickets())


@bp.get("/tickets/<int:ticket_id>")
def ticket(ticket_id: int):
    """One ticket with the Order Truth sidebar."""
    found = next((t for t in _tickets() if t["id"] == ticket_id), None)
    if found is None:
        abort(404)
    return render_template("sandbox/ticket.html", ticket=found, tickets=_tickets())
