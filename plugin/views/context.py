"""Per-request access to the store, the installations repository, hosts and the service."""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, abort, current_app, g, request
from sqlalchemy.orm import Session

from ..arrival import ARRIVED
from ..hosts.base import Host
from ..installations import Installations, Tenant
from ..service import OrderTruthService


def bind_host(bp: Blueprint) -> None:
    """Resolve the `<host_name>` URL segment of `bp`'s routes to `g.host` (404 if unknown)."""

    @bp.url_value_preprocessor
    def _host(endpoint: str | None, values: dict[str, Any] | None) -> None:
        g.host = host_named((values or {}).pop("host_name", ""))

    @bp.url_defaults
    def _host_default(endpoint: str, values: dict[str, Any]) -> None:
        if "host_name" not in values and "host" in g:
            values["host_name"] = g.host.name


def db() -> Session:
    """The request's database session (closed at teardown)."""
    if "db" not in g:
        g.db = current_app.extensions["store"].session()
    return g.db  # type: ignore[no-any-return]


def release_db() -> None:
    """Hand the request's database connection back to the pool before waiting on upstreams.

    A lookup holds its request for up to the whole deadline; keeping a pooled connection all
    that time would cap concurrent lookups at the pool size. The session reconnects if used.
    """
    session = g.get("db")
    if session is not None:
        session.close()


def repo() -> Installations:
    """The installations repository for this request (connections always decrypted)."""
    if "repo" not in g:
        g.repo = Installations(db(), current_app.extensions["secret_box"],
                               tenants=current_app.extensions["tenants"])
    return g.repo  # type: ignore[no-any-return]


def arrived() -> float | None:
    """When this request arrived (monotonic clock), queueing included when a proxy says."""
    value = request.environ.get(ARRIVED)
    return float(value) if value is not None else None


def service() -> OrderTruthService:
    return current_app.extensions["order_truth"]  # type: ignore[no-any-return]


def hosts() -> dict[str, Host]:
    return current_app.extensions["hosts"]  # type: ignore[no-any-return]


def host_named(name: str) -> Host:
    """The host for a URL's /<host>/ segment, or 404."""
    host = hosts().get(name)
    if host is None:
        abort(404)
    return host


def api_tenant() -> Tenant:
    """The tenant a JSON API call acts for: a public demo openly, others with the API token."""
    key = request.args.get("installation") or repo().default_key(current_app.config)
    tenant = repo().find(key) if key else None
    if tenant is not None and tenant.public_api and tenant.active:
        return tenant
    token = current_app.config.get("API_TOKEN")
    given = request.headers.get("Authorization", "")
    if not token or not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        abort(401, description="A valid API token is required for this installation.")
    if tenant is None or not tenant.active:
        abort(404, description="No such installation.")
    return tenant
