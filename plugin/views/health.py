"""Liveness and the front door."""

from flask import Blueprint, current_app, redirect, url_for

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """Liveness probe."""
    return {"status": "ok"}


@bp.get("/")
def index():
    """Send people to the sandbox helpdesk when it's on."""
    if current_app.config["SANDBOX_ENABLED"]:
        return redirect(url_for("sandbox_pages.tickets"))
    return {"service": "order-truth", "status": "ok"}
