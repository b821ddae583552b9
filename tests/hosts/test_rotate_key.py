"""`flask --app app installations rotate-key`: every stored secret re-sealed under the new key."""

from __future__ import annotations

from cryptography.fernet import Fernet
from sqlalchemy import select

from plugin.app import create_app
from plugin.store.crypto import SecretBox
from plugin.store.rotate import SEALED

from .conftest import sign_in_agent


def _app_with_key(app, key: str):
    return create_app({"TESTING": True, "DATABASE_URL": app.config["DATABASE_URL"],
                       "SECRET_KEY": app.config["SECRET_KEY"], "ENCRYPTION_KEY": key,
                       "SANDBOX_URL": app.config["SANDBOX_URL"],
                       "UPSTREAM_ALLOWED_HOSTS": "127.0.0.1", "SANDBOX_ENABLED": False})


def _sealed(app) -> list[str]:
    with app.extensions["store"].session() as s:
        return [getattr(row, column) for model, column in SEALED
                for row in s.scalars(select(model)) if getattr(row, column)]


def test_rotation_reseals_every_secret_under_the_new_key(app, client, session):
    sign_in_agent(client, session)  # an agent's tokens, beside the seeded connections
    old, new = app.config["ENCRYPTION_KEY"], Fernet.generate_key().decode()
    before = _sealed(app)
    assert len(before) >= 5
    rotating = _app_with_key(app, f"{new},{old}")
    out = rotating.test_cli_runner().invoke(args=["installations", "rotate-key"])
    assert out.exit_code == 0, out.output
    assert "re-encrypted under the newest key" in out.output and "1 agent_grants" in out.output
    after = _sealed(app)
    assert len(after) == len(before) and not set(after) & set(before)
    only_new = SecretBox(new)
    assert all(only_new.open(token) is not None for token in after)
    # With the old key dropped, the installations and the agent's sign-in still open.
    dropped = _app_with_key(app, new)
    with dropped.test_request_context():
        from plugin.views.context import repo

        tenant = repo().find("zendesk:order-truth-sandbox:1")
        assert tenant.connections["helpdesk"].credentials["api_token"]


def test_rotation_without_the_old_key_changes_nothing(app):
    before = _sealed(app)
    stranger = _app_with_key(app, Fernet.generate_key().decode())
    out = stranger.test_cli_runner().invoke(args=["installations", "rotate-key"])
    assert out.exit_code == 1 and "nothing was changed" in out.output
    assert _sealed(app) == before
