"""Launches and admin pages are rate limited per client address (shared through Redis)."""

from __future__ import annotations

import os
import uuid

import pytest

from plugin.app import create_app

INSTALL = "/zendesk/install?subdomain=order-truth-sandbox&installation_id=1"


@pytest.fixture
def app(app):
    app.config.update(LAUNCH_RATE_LIMIT="2 per minute", ADMIN_RATE_LIMIT="3 per minute")
    return app


def test_launches_past_the_limit_are_refused_with_retry_after(client, launch):
    assert launch().status_code == 200 and launch().status_code == 200
    third = launch()
    assert third.status_code == 429 and "Retry-After" in third.headers
    assert "data-session" not in third.get_data(as_text=True)


def test_admin_pages_past_the_limit_are_refused(client):
    assert [client.get(INSTALL).status_code for _ in range(3)] == [200, 200, 200]
    assert client.get(INSTALL).status_code == 429
    # One budget for all admin pages: the settings page is out of it too.
    assert client.get("/zendesk/settings?installation=x").status_code == 429


def test_the_widget_api_is_not_limited_per_address(client, session):
    for _ in range(5):
        resp = client.get("/zendesk/api/record", headers=session,
                          query_string={"ticket_id": "102", "order_id": "1002"})
        assert resp.status_code == 200


@pytest.mark.redis
def test_two_processes_share_one_budget_through_redis(tmp_path, sandbox):
    url = os.environ.get("ORDER_TRUTH_TEST_REDIS_URL")
    if not url:
        if os.environ.get("ORDER_TRUTH_REQUIRE_SERVICES") == "1":
            pytest.fail("ORDER_TRUTH_REQUIRE_SERVICES=1 but ORDER_TRUTH_TEST_REDIS_URL is unset")
        pytest.skip("Redis not configured (set ORDER_TRUTH_TEST_REDIS_URL)")
    prefix = f"ot-rl-{uuid.uuid4().hex[:8]}:"
    apps = [create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / f'{n}.db'}",
                        "SECRET_KEY": "t", "REDIS_URL": url, "CACHE_KEY_PREFIX": prefix,
                        "RATELIMIT_KEY_PREFIX": prefix, "SANDBOX_URL": sandbox.url,
                        "ADMIN_RATE_LIMIT": "3 per minute"}) for n in range(2)]
    try:
        codes = [apps[n % 2].test_client().get(INSTALL).status_code for n in range(4)]
        assert codes == [200, 200, 200, 429]
    finally:
        for a in apps:
            a.extensions["order_truth"].close()
            a.extensions["store"].dispose()
