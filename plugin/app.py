"""Application factory: config, extensions, store, service, blueprints, errors, CLI."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask, g

from . import config as config_module
from .extensions import cache
from .hosts.session import SessionTokens
from .hosts.zendesk.adapter import ZendeskHost
from .installations import ensure_builtin
from .logs import RedactSecrets
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
    configure_logging(app)
    register_extensions(app)
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
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())


def register_extensions(app: Flask) -> None:
    cache.init_app(app)
    service = OrderTruthService(app.config, cache)
    app.extensions["order_truth"] = service
    app.extensions["secret_box"] = SecretBox(str(app.config["ENCRYPTION_KEY"]))
    app.extensions["sessions"] = SessionTokens(app.config["SECRET_KEY"])
    app.extensions["zendesk"] = ZendeskHost(app.config, cache, service.session)


def register_store(app: Flask) -> None:
    store = Store(app.config["DATABASE_URL"])
    app.extensions["store"] = store
    if app.config["AUTO_MIGRATE"]:
        store.migrate()
        with store.session() as session:
            ensure_builtin(session, app.config)

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        session = g.pop("db", None)
        if session is not None:
            session.close()


def register_blueprints(app: Flask) -> None:
    from .views import api, health, sandbox_pages, widget, zendesk, zendesk_admin

    app.register_blueprint(health.bp)
    app.register_blueprint(widget.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(zendesk.bp)
    app.register_blueprint(zendesk_admin.bp)
    if app.config["SANDBOX_ENABLED"]:
        app.register_blueprint(sandbox_pages.bp)


def register_errorhandlers(app: Flask) -> None:
    from .views.errors import register

    register(app)


def register_commands(app: Flask) -> None:
    from .cli import register

    register(app)


def register_template_helpers(app: Flask) -> None:
    from .views.filters import register

    register(app)
