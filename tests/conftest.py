"""App, client and runner fixtures over a temporary SQLite store and a private sandbox."""

from __future__ import annotations

import pytest

from plugin.app import create_app


@pytest.fixture
def app(tmp_path):
    app = create_app({
        "TESTING": True,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'test.db'}",
        "SECRET_KEY": "test-secret",
        "CACHE_TYPE": "NullCache",
        "FANOUT_DEADLINE_SECONDS": 2.5,
    })
    yield app
    app.extensions["order_truth"].close()
    app.extensions["store"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()
