"""Configuration defaults; every key can be overridden by an ORDER_TRUTH_<KEY> env var."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask

DEFAULTS: dict[str, Any] = {
    # Database: an SQLite file in instance/ unless DATABASE_URL is set.
    "DATABASE_URL": None,
    # Migrations are applied at start-up for the embedded SQLite default only;
    # production databases use `flask --app app db upgrade` as a release step.
    "AUTO_MIGRATE": None,
    # flask-caching: in-process by default, Redis when REDIS_URL is set.
    "REDIS_URL": None,
    "CACHE_DEFAULT_TIMEOUT": 30,
    # Fan-out: overall deadline for one merged record, worker threads shared by requests.
    "FANOUT_DEADLINE_SECONDS": 2.5,
    # Four sources per lookup times gunicorn's 8 threads: no lookup queues behind another.
    "FANOUT_MAX_WORKERS": 32,
    # Workers one installation's one upstream may hold (default: a quarter of the pool).
    "FANOUT_PER_UPSTREAM": None,
    # How long a source's successful answer is reused before asking it again.
    "SOURCE_CACHE_SECONDS": 30,
    "UPSTREAM_CONNECT_TIMEOUT": 1.0,
    # Extra hosts admins may point connectors at (a vendor proxy, a self-hosted sandbox).
    "UPSTREAM_ALLOWED_HOSTS": "",
    # The built-in sandbox of simulated upstreams and its demo installations: on for the
    # embedded SQLite default, off once a real database is configured (set it to override).
    "SANDBOX_ENABLED": None,
    "SANDBOX_URL": None,
    # Bearer token for the JSON API of non-sandbox installations.
    "API_TOKEN": None,
    "SECRET_KEY": None,
    # Fernet key(s) for credentials at rest, comma-separated, newest first (rotation).
    "ENCRYPTION_KEY": None,
    # Zendesk: the app's id (its launch-signing key is fetched by it), OAuth client, and
    # whether the first signed launch of an unknown installation registers it.
    "ZENDESK_APP_ID": None,
    "ZENDESK_OAUTH_CLIENT_ID": None,
    "ZENDESK_OAUTH_CLIENT_SECRET": None,
    "ZENDESK_AUTO_REGISTER": True,
    "ZENDESK_READ_TIMEOUT": 5.0,
}

# Environment variables that configure the single-tenant ("standalone") installation.
STANDALONE_SOURCES: dict[str, dict[str, Any]] = {
    "loop": {"credentials": {"api_key": "LOOP_API_KEY"},
             "base_url": ("LOOP_BASE_URL", "https://api.loopreturns.com")},
    "stripe": {"credentials": {"secret_key": "STRIPE_SECRET_KEY"},
               "base_url": ("STRIPE_BASE_URL", "https://api.stripe.com"),
               "options": {"stripe_version": "STRIPE_VERSION"}},
    "netsuite": {"credentials": {"account_id": "NETSUITE_ACCOUNT_ID",
                                 "consumer_key": "NETSUITE_CONSUMER_KEY",
                                 "consumer_secret": "NETSUITE_CONSUMER_SECRET",
                                 "token_id": "NETSUITE_TOKEN_ID",
                                 "token_secret": "NETSUITE_TOKEN_SECRET"},
                 "base_url": ("NETSUITE_BASE_URL", None),
                 "options": {"ra_external_id_prefix": "NETSUITE_RA_EXTERNAL_ID_PREFIX",
                             "timezone": "NETSUITE_TIMEZONE"}},
    "shopify_pos": {"credentials": {"access_token": "SHOPIFY_ACCESS_TOKEN"},
                    "base_url": ("SHOPIFY_BASE_URL", None),
                    "options": {"api_version": "SHOPIFY_API_VERSION", "shop": "SHOPIFY_SHOP",
                                "retail_locations": "SHOPIFY_RETAIL_LOCATIONS"}},
}


def load(app: Flask, overrides: dict[str, Any] | None) -> None:
    """Fill defaults, then ORDER_TRUTH_* env vars, then test overrides; derive the rest."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("ORDER_TRUTH")
    if os.environ.get("DATABASE_URL") and not os.environ.get("ORDER_TRUTH_DATABASE_URL"):
        app.config["DATABASE_URL"] = os.environ["DATABASE_URL"]
    if overrides:
        app.config.update(overrides)
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
    # The admin pages are top-level (not framed): a first-party, HttpOnly, Lax cookie session.
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("PERMANENT_SESSION_LIFETIME", 8 * 3600)
    # Production serves https; the embedded default runs on http://127.0.0.1.
    app.config.setdefault("SESSION_COOKIE_SECURE", not embedded)
    if app.config["REDIS_URL"]:
        app.config.setdefault("CACHE_TYPE", "RedisCache")
        app.config["CACHE_REDIS_URL"] = app.config["REDIS_URL"]
    else:
        app.config.setdefault("CACHE_TYPE", "SimpleCache")
    _validate(app)


def _instance_secret(instance: Path) -> str:
    """A per-deployment secret kept in instance/ so the embedded default needs no set-up."""
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _validate(app: Flask) -> None:
    """Fail at start-up, not on first request, for settings that can't work."""
    deadline = float(app.config["FANOUT_DEADLINE_SECONDS"])
    if not 0.1 <= deadline <= 30:
        raise ValueError(f"FANOUT_DEADLINE_SECONDS must be between 0.1 and 30, got {deadline}")
    workers = int(app.config["FANOUT_MAX_WORKERS"])
    if not 1 <= workers <= 256:
        raise ValueError(f"FANOUT_MAX_WORKERS must be between 1 and 256, got {workers}")


def standalone_configured(config: dict[str, Any]) -> bool:
    """True when env vars configure at least one upstream for a self-hosted brand."""
    return any(
        all(config.get(var) for var in spec["credentials"].values())
        for spec in STANDALONE_SOURCES.values()
    )
