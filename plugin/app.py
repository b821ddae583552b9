"""Application factory: config, extensions, store, service, blueprints, errors, CLI."""

from __future__ import annotations

import atexit
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask, g

from . import config as config_module
from .arrival import ArrivalClock
from .extensions import cache
from .hosts.agents import RememberTokens
from .hosts.registry import build_hosts
from .hosts.session import SessionTokens
from .insights import Tally
from .installations import Installations, TenantCache, ensure_standalone
from .logs import RedactSecrets, remember_secrets
from .service import OrderTruthService
from .store.crypto import SecretBox
from .store.db import Store

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the Flask app; `test_config` overrides settings for tests."""
    app = Flask(
        "plugin",
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(ROOT / "instance"),
        instance_relative_config=True,
    )
    config_module.load(app, test_config)
    app.wsgi_app = ArrivalClock(  # type: ignore[method-assign]
        app.wsgi_app, trust_header=app.config["TRUST_REQUEST_START"])
    configure_logging(app)
    register_extensions(app)
    register_addons(app)
    register_store(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    register_template_helpers(app)
    return app


def configure_logging(app: Flask) -> None:
    if not app.debug and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Start-up migrations are routine; only their problems are worth a line.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # Every handler that can print a line, debug mode included (Flask's own handler and
    # werkzeug's request log aren't on the root logger there).
    from flask.logging import default_handler

    handlers = [*logging.getLogger().handlers, default_handler, *app.logger.handlers,
                *logging.getLogger("werkzeug").handlers]
    for handler in handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())
    remember_secrets(str(app.config.get(k) or "") for k in app.config
                     if k.endswith(("_KEY", "_SECRET", "_TOKEN", "PASSWORD")) and k != "CACHE_KEY_PREFIX")


def register_extensions(app: Flask) -> None:
    cache.init_app(app)
    service = OrderTruthService(app.config, cache)
    app.extensions["order_truth"] = service
    app.extensions["secret_box"] = SecretBox(str(app.config["ENCRYPTION_KEY"]))
    app.extensions["tenants"] = TenantCache()
    app.extensions["sessions"] = SessionTokens(app.config["SECRET_KEY"])
    app.extensions["agent_remember"] = RememberTokens(app.config["SECRET_KEY"],
                                                      app.config["AGENT_REMEMBER_SECONDS"])
    app.extensions["hosts"] = build_hosts(app.config, cache, service.session)
    app.extensions["insights"] = Tally()


def register_store(app: Flask) -> None:
    store = Store(app.config["DATABASE_URL"])
    app.extensions["store"] = store

    def last_counts() -> None:  # the counts gathered since the last write, at a clean exit
        try:
            with store.session() as session:
                app.extensions["insights"].flush(session)
        except Exception:
            logging.getLogger(__name__).warning("insight counts not written at exit",
                                                exc_info=True)

    atexit.register(last_counts)
    if app.config["AUTO_MIGRATE"]:
        # Every gunicorn worker starts here at once: one at a time migrates and seeds.
        with startup_lock(Path(app.instance_path)):
            store.migrate()
            seed_installations(app)

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        session = g.pop("db", None)
        if session is not None:
            session.close()


@contextmanager
def startup_lock(instance: Path) -> Iterator[None]:
    """An exclusive lock across this host's processes (auto-migration is a one-host default)."""
    instance.mkdir(parents=True, exist_ok=True)
    with (instance / ".startup.lock").open("w") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: run unlocked
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def register_addons(app: Flask) -> None:
    """Optional packages that plug in through `app.extensions["seeders"]`, blueprints and CLI.

    The sandbox is the only one today. A production install without it never imports it.
    """
    app.extensions["seeders"] = []
    if app.config["SANDBOX_ENABLED"]:
        from . import sandbox

        sandbox.install(app)


def seed_installations(app: Flask) -> None:
    """The env-configured installation, then whatever the add-ons seed."""
    store = app.extensions["store"]
    with store.session() as session:
        repo = Installations(session, app.extensions["secret_box"])
        ensure_standalone(repo, app.config)
        for seeder in app.extensions["seeders"]:
            seeder(repo)


def register_blueprints(app: Flask) -> None:
    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address

    from .views import api, health, openapi, settings, sidebar

    # One limiter per app (its counts are per app, or in Redis shared by every process).
    limiter = Limiter(get_remote_address, app=app, headers_enabled=True,
                      storage_uri=app.config["REDIS_URL"] or "memory://",
                      storage_options={"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
                      swallow_errors=True)  # a limiter store outage must not take the app down
    app.extensions["limiter"] = limiter
    admin = limiter.shared_limit(lambda: app.config["ADMIN_RATE_LIMIT"], scope="admin")
    app.register_blueprint(health.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(api.bp)
    for host in app.extensions["hosts"].values():
        for blueprint in host.blueprints():
            admin(blueprint)
            app.register_blueprint(blueprint)
    app.register_blueprint(sidebar.bp)
    admin(settings.bp)
    app.register_blueprint(settings.bp)
    # The signed launch only (the widget's own API is session-bound and busy on a floor).
    app.view_functions["sidebar.sidebar"] = limiter.limit(
        lambda: app.config["LAUNCH_RATE_LIMIT"], methods=["POST"])(
        app.view_functions["sidebar.sidebar"])


def register_errorhandlers(app: Flask) -> None:
    from .views.errors import register

    register(app)


def register_commands(app: Flask) -> None:
    from .cli import register

    register(app)


def register_template_helpers(app: Flask) -> None:
    from .views.filters import register

    register(app)
