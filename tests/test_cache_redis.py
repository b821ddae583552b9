"""Source answers cached in Redis: reused across requests, scoped by installation."""

from __future__ import annotations

import os
import uuid

import pytest

from plugin.app import create_app
from plugin.core.orderid import parse_order_id
from tests.conftest import repo_of

REDIS_URL = os.environ.get("ORDER_TRUTH_TEST_REDIS_URL")
REQUIRE = os.environ.get("ORDER_TRUTH_REQUIRE_SERVICES") == "1"

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_app(tmp_path, sandbox):
    if not REDIS_URL:
        if REQUIRE:
            pytest.fail("ORDER_TRUTH_REQUIRE_SERVICES=1 but ORDER_TRUTH_TEST_REDIS_URL is unset")
        pytest.skip("Redis not configured (set ORDER_TRUTH_TEST_REDIS_URL)")
    sandbox.state.reset()
    app = create_app({
        "TESTING": True,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}",
        "REDIS_URL": REDIS_URL,
        "CACHE_KEY_PREFIX": f"ot-test-{uuid.uuid4().hex[:8]}:",
        "SANDBOX_URL": sandbox.url,
        "SOURCE_CACHE_SECONDS": 30,
        "SECRET_KEY": "t",
    })
    yield app
    from plugin.extensions import cache

    with app.app_context():
        cache.clear()
    app.extensions["order_truth"].close()
    app.extensions["store"].dispose()


def test_second_lookup_is_served_from_redis(redis_app, sandbox):
    service = redis_app.extensions["order_truth"]
    order = parse_order_id("1002")
    with redis_app.app_context():
        with repo_of(redis_app) as repo:
            tenant = repo.find("sandbox")
        assert redis_app.config["CACHE_TYPE"] == "RedisCache"
        first = service.lookup(tenant, order)
        assert not any(r.cached for r in first.sources.values())
        # With the ERP now failing, a cached answer still renders the full record.
        from plugin.sandbox.faults import FaultSpec

        sandbox.state.faults.set("erp", FaultSpec(status=503))
        second = service.lookup(tenant, order)
        assert all(r.cached for r in second.sources.values())
        assert [f.code for f in second.flags] == [f.code for f in first.flags]
        # Refresh goes back to the sources and sees the outage.
        fresh = service.lookup(tenant, order, refresh=True)
        assert fresh.sources["erp"].status == "error"
