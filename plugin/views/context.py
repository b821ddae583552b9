"""Per-request access to the store, the service and the current installation."""

from __future__ import annotations

import hmac

from flask import abort, current_app, g, request
from sqlalchemy.orm import Session

from .. import installations
from ..installations import Tenant
from ..service import OrderTruthService


def db() -> Session:
    """The request's database session (closed at teardown)."""
    if "db" not in g:
        g.db = current_app.extensions["store"].session()
    return g.db


def service() -> OrderTruthService:
    return current_app.extensions["order_truth"]


def sandbox_tenant() -> Tenant:
    """The built-in sandbox installation, or 404 when the sandbox is switched off."""
    if not current_app.config["SANDBOX_ENABLED"]:
        abort(404)
    tenant = installations.find(db(), installations.SANDBOX_KEY)
    if tenant is None:
        installations.ensure_builtin(db(), current_app.config)
        tenant = installations.find(db(), installations.SANDBOX_KEY)
    assert tenant is not None
    return tenant


def api_tenant() -> Tenant:
    """The tenant a JSON API call acts for: the sandbox openly, others with the API token."""
    key = request.args.get("installation") or installations.default_key(current_app.config)
    if key == installations.SANDBOX_KEY:
        return sandbox_tenant()
    token = current_app.config.get("API_TOKEN")
    given = request.headers.get("Authorization", "")
    if not token or not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        abort(401, description="A valid API token is required for this installation.")
    tenant = installations.find(db(), key)
    if tenant is None or tenant.status != "active":
        abort(404, description="No such installation.")
    return tenant
