"""App, client and runner fixtures over a temporary SQLite store and a private sandbox server."""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from plugin.app import create_app
from plugin.installations import Installations
from plugin.sandbox.server import SandboxServer


@contextmanager
def repo_of(app):
    """The app's installations repository, in a session of its own."""
    with app.extensions["store"].session() as session:
        yield Installations(session, app.extensions["secret_box"])


def use_shopify_payments(repo, installation_id, sandbox_url):
    """Point an installation's processor at the sandbox's Shopify Payments (the same shop and
    card money as its Stripe)."""
    from plugin.sandbox.vendors.shopify import CREDENTIALS, OPTIONS

    repo.save_connection(installation_id, source="processor", system="shopify_payments",
                         base_url=f"{sandbox_url}/shopify-payments",
                         credentials=dict(CREDENTIALS), options=dict(OPTIONS))


@pytest.fixture(scope="session")
def sandbox():
    """One simulated-upstreams server for the test session; faults are reset per test."""
    server = SandboxServer().start()
    yield server
    server.stop()


@pytest.fixture
def app(tmp_path, sandbox):
    sandbox.state.reset()
    app = create_app({
        "TESTING": True,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'test.db'}",
        "SECRET_KEY": "test-secret",
        "SOURCE_CACHE_SECONDS": 0,
        "SANDBOX_URL": sandbox.url,
        "UPSTREAM_ALLOWED_HOSTS": "127.0.0.1",
        # The source_slow scenario answers after 6 s; a short deadline keeps tests quick.
        "FANOUT_DEADLINE_SECONDS": 1.0,
    })
    yield app
    sandbox.state.reset()
    app.extensions["order_truth"].close()
    app.extensions["store"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()
