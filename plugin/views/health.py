"""Liveness and the front door."""

from flask import Blueprint, current_app, redirect, url_for

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """Liveness probe."""
    return {"status": "ok"}


@bp.get("/")
def index():
    """The front page an add-on asked for (the sandbox's pretend helpdesk), else a status."""
    home = current_app.config.get("HOME_ENDPOINT")
    if home:
        return redirect(url_for(home))
    return {"service": "order-truth", "status": "ok"}
