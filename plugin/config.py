"""Configuration: defaults, then ORDER_TRUTH_<KEY> env vars, then overrides; typed once at load.

Every known setting is validated and cast by one schema when the app starts, so a bad value
fails start-up with its name, and no code casts a setting at use. Connector credentials
(ORDER_TRUTH_STRIPE_SECRET_KEY …) come from the connector descriptors and stay strings.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

_opt_str = dict(load_default=None, allow_none=True)


class _Text(fields.String):
    """A string setting; from_prefixed_env may have decoded a number or boolean: take its text."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int | float):
            value = str(value)
        return super()._deserialize(value, attr, data, **kwargs)


class _Flag(fields.Boolean):
    """A boolean setting that may be unset (None: decided from the database URL)."""

    truthy = {*fields.Boolean.truthy, "on"}
    falsy = {*fields.Boolean.falsy, "off"}


class ConfigSchema(Schema):
    """Every setting this app reads, with its type, default and limits."""

    class Meta:
        unknown = EXCLUDE

    # Database: an SQLite file in instance/ unless DATABASE_URL is set.
    DATABASE_URL = _Text(**_opt_str)
    # Migrations at start-up: on for the embedded SQLite default only.
    AUTO_MIGRATE = _Flag(**_opt_str)
    # flask-caching: in-process by default, Redis when REDIS_URL is set.
    REDIS_URL = _Text(**_opt_str)
    CACHE_DEFAULT_TIMEOUT = fields.Integer(load_default=30, validate=validate.Range(min=0))
    # One deadline for a whole merged record.
    FANOUT_DEADLINE_SECONDS = fields.Float(load_default=2.5,
                                           validate=validate.Range(min=0.1, max=30))
    # Slack after the deadline so the deadline, not a racing socket timeout, reports a source.
    FANOUT_DEADLINE_GRACE = fields.Float(load_default=0.25, validate=validate.Range(min=0, max=5))
    # Source lookups in flight per process (default: 1024 under gevent, where they are
    # greenlets; 32 with OS threads).
    FANOUT_MAX_WORKERS = fields.Integer(load_default=None, allow_none=True,
                                        validate=validate.Range(min=1, max=4096))
    # Lookups one installation's one upstream may have in flight per process (default: a
    # quarter of the workers); more wait for a slot within their deadline.
    FANOUT_PER_UPSTREAM = fields.Integer(load_default=None, allow_none=True,
                                         validate=validate.Range(min=1, max=4096))
    # A request that arrives (or waited in a queue) with less than this left of its deadline
    # is shed with 503 + Retry-After instead of being answered late.
    SHED_BELOW_SECONDS = fields.Float(load_default=0.25, validate=validate.Range(min=0, max=10))
    # Per client address: sidebar launches, and the admin pages (install, OAuth, settings).
    # Counted in Redis when REDIS_URL is set, so every worker and host shares the count.
    LAUNCH_RATE_LIMIT = _Text(load_default="300 per minute")
    ADMIN_RATE_LIMIT = _Text(load_default="30 per minute")
    # Count the deadline from a router's X-Request-Start stamp (its queueing included).
    TRUST_REQUEST_START = _Flag(load_default=True)
    SOURCE_CACHE_SECONDS = fields.Integer(load_default=30, validate=validate.Range(min=0))
    # The longest answer read from an upstream (bytes); longer is "answer too large".
    UPSTREAM_MAX_BODY_BYTES = fields.Integer(load_default=4 * 1024 * 1024,
                                             validate=validate.Range(min=64 * 1024,
                                                                     max=256 * 1024 * 1024))
    UPSTREAM_CONNECT_TIMEOUT = fields.Float(load_default=1.0,
                                            validate=validate.Range(min=0.05, max=30))
    # Extra hosts admins may point connectors at (a vendor proxy, a self-hosted sandbox).
    UPSTREAM_ALLOWED_HOSTS = _Text(load_default="")
    # The built-in sandbox: on for the embedded SQLite default, off with a real database.
    SANDBOX_ENABLED = _Flag(**_opt_str)
    SANDBOX_URL = _Text(**_opt_str)
    # The in-process simulated upstreams (and the sandbox's Zendesk) listen here on
    # 127.0.0.1; a free port if it is taken.
    SANDBOX_PORT = fields.Integer(load_default=5001, validate=validate.Range(min=0, max=65535))
    # Bearer token for the JSON API.
    API_TOKEN = _Text(**_opt_str)
    SECRET_KEY = _Text(**_opt_str)
    # Fernet key(s) for credentials at rest, comma-separated, newest first (rotation).
    ENCRYPTION_KEY = _Text(**_opt_str)
    # Zendesk: the app's id (its launch-signing key is fetched by it), OAuth client, whether
    # the first signed launch of an unknown installation registers it, the ZAF SDK URL.
    ZENDESK_APP_ID = _Text(**_opt_str)
    ZENDESK_OAUTH_CLIENT_ID = _Text(**_opt_str)
    ZENDESK_OAUTH_CLIENT_SECRET = _Text(**_opt_str)
    ZENDESK_AUTO_REGISTER = _Flag(load_default=True)
    # How long a browser may resume an agent's helpdesk sign-in without the pop-up (a shift).
    AGENT_REMEMBER_SECONDS = fields.Integer(load_default=12 * 3600,
                                            validate=validate.Range(min=60, max=30 * 86400))
    ZENDESK_READ_TIMEOUT = fields.Float(load_default=5.0, validate=validate.Range(min=0.1, max=60))
    ZENDESK_ZAF_SDK_URL = _Text(
        load_default="https://static.zdassets.com/zendesk_app_framework_sdk/2.0/zaf_sdk.min.js")


def defaults() -> dict[str, Any]:
    """Every setting at its default."""
    return ConfigSchema().load({})


def load(app: Flask, overrides: dict[str, Any] | None) -> None:
    """Fill defaults, then ORDER_TRUTH_* env vars, then test overrides; type and derive the rest."""
    app.config.from_prefixed_env("ORDER_TRUTH")
    if os.environ.get("DATABASE_URL") and not os.environ.get("ORDER_TRUTH_DATABASE_URL"):
        app.config["DATABASE_URL"] = os.environ["DATABASE_URL"]
    if overrides:
        app.config.update(overrides)
    known = {k: app.config[k] for k in ConfigSchema().fields if app.config.get(k) is not None}
    try:
        app.config.update(ConfigSchema().load(known))
    except ValidationError as exc:
        problems = "; ".join(f"ORDER_TRUTH_{k}: {' '.join(map(str, v))}"
                             for k, v in sorted(exc.messages.items()))
        raise ValueError(f"bad configuration: {problems}") from None
    instance = Path(app.instance_path)
    if not app.config["DATABASE_URL"]:
        instance.mkdir(parents=True, exist_ok=True)
        app.config["DATABASE_URL"] = f"sqlite:///{instance / 'order_truth.db'}"
    embedded = str(app.config["DATABASE_URL"]).startswith("sqlite")
    if app.config["AUTO_MIGRATE"] is None:
        app.config["AUTO_MIGRATE"] = embedded
    if app.config["SANDBOX_ENABLED"] is None:
        app.config["SANDBOX_ENABLED"] = embedded
    missing = [k for k in ("SECRET_KEY", "ENCRYPTION_KEY") if not app.config[k]]
    if missing and not embedded:
        # Keys generated into instance/ would differ per dyno and vanish on redeploy, locking
        # out every session and every stored credential.
        raise ValueError(f"set ORDER_TRUTH_{' and ORDER_TRUTH_'.join(missing)} when using a "
                         "production database")
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _instance_secret(instance)
    if not app.config["ENCRYPTION_KEY"]:
        from .store.crypto import instance_key

        app.config["ENCRYPTION_KEY"] = instance_key(instance)
    # The admin pages are top-level (not framed): a first-party, HttpOnly, Lax cookie session
    # that lasts a working day, Secure except on the embedded http://127.0.0.1 default.
    # Flask fills these keys with its own defaults (no SameSite, not Secure, 31 days), so
    # `setdefault` would never apply ours: set them unless this deployment chose otherwise.
    chosen = {k for k in os.environ if k.startswith("ORDER_TRUTH_SESSION_COOKIE_")
              or k == "ORDER_TRUTH_PERMANENT_SESSION_LIFETIME"}
    chosen = {k.removeprefix("ORDER_TRUTH_") for k in chosen} | set(overrides or {})
    for key, value in (("SESSION_COOKIE_HTTPONLY", True), ("SESSION_COOKIE_SAMESITE", "Lax"),
                       ("PERMANENT_SESSION_LIFETIME", timedelta(hours=8)),
                       ("SESSION_COOKIE_SECURE", not embedded)):
        if key not in chosen:
            app.config[key] = value
    if app.config["REDIS_URL"]:
        app.config.setdefault("CACHE_TYPE", "RedisCache")
        app.config["CACHE_REDIS_URL"] = app.config["REDIS_URL"]
    else:
        app.config.setdefault("CACHE_TYPE", "SimpleCache")


def _instance_secret(instance: Path) -> str:
    """A per-deployment secret kept in instance/ so the embedded default needs no set-up."""
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()
