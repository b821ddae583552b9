"""Single-flight: agents opening one order at once cost the upstream one lookup per source."""

from __future__ import annotations

import os
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from plugin.connectors.base import UpstreamTimeout
from plugin.core.model import OrderRef, SourceName, SourceStatus
from plugin.fanout import FanOut
from plugin.singleflight import LocalFlights, RedisFlights
from tests.test_fanout import EMPTY, ORDER, DictCache, FakeClient

REDIS_URL = os.environ.get("ORDER_TRUTH_TEST_REDIS_URL")
REQUIRE = os.environ.get("ORDER_TRUTH_REQUIRE_SERVICES") == "1"


class Counted(FakeClient):
    """A slow upstream shared by every lookup, counting the calls it receives."""

    def __init__(self, source, counter, delay=0.2):
        super().__init__(source, delay=delay)
        self.counter = counter

    def fetch(self, order):
        with self.counter["lock"]:
            self.counter[self.source] = self.counter.get(self.source, 0) + 1
        return super().fetch(order)


def counted_clients(counter, delay=0.2):
    return {s: (s.value, Counted(s, counter, delay)) for s in SourceName}


class Punctual(Counted):
    """Like a real connector: every call ends at the lookup's deadline (set by the fan-out)."""

    deadline_at = None

    def fetch(self, order):
        with self.counter["lock"]:
            self.counter[self.source] = self.counter.get(self.source, 0) + 1
        left = self.deadline_at - time.monotonic()
        if left < self.delay:
            time.sleep(max(0.0, left))
            raise UpstreamTimeout("out of time for this lookup", system="fake")
        time.sleep(self.delay)
        return EMPTY[self.source]


def punctual_clients(counter, delay):
    return {s: (s.value, Punctual(s, counter, delay)) for s in SourceName}


def test_local_flights_share_one_future_and_start_again_once_landed():
    flights = LocalFlights()
    started = []

    def start():
        fut: Future[int] = Future()
        started.append(fut)
        return fut

    first, led = flights.join_or_start("k", start)
    second, joined_led = flights.join_or_start("k", start)
    assert (led, joined_led, first is second, len(started)) == (True, False, True, 1)
    first.set_result(1)
    third, led_again = flights.join_or_start("k", start)
    assert led_again and third is not first and len(flights) == 1


def test_fifty_agents_on_one_order_cost_one_call_per_source():
    fan = FanOut(256)
    cache = DictCache()  # an agent that starts after the flight landed reads its answer
    counter = {"lock": threading.Lock()}
    try:
        with ThreadPoolExecutor(50) as agents:
            records = list(agents.map(
                lambda _: fan.gather(ORDER, counted_clients(counter), deadline=2, cache=cache,
                                     cache_prefix="inst:1", cache_seconds=30),
                range(50)))
        assert {s: counter[s] for s in SourceName} == {s: 1 for s in SourceName}
        assert all(r.reports()[s].status.answered for r in records for s in SourceName)
        assert fan.upstream_calls == 4
    finally:
        fan.shutdown()


def test_different_orders_and_installations_never_share_a_flight():
    fan = FanOut(64)
    counter = {"lock": threading.Lock()}
    try:
        with ThreadPoolExecutor(4) as agents:
            list(agents.map(lambda args: fan.gather(
                OrderRef(args[0], f"#{args[0]}"), counted_clients(counter, 0.1), deadline=2,
                cache_prefix=args[1]), [("1", "inst:1"), ("2", "inst:1"), ("1", "inst:2"),
                                        ("2", "inst:2")]))
        assert {s: counter[s] for s in SourceName} == {s: 4 for s in SourceName}
    finally:
        fan.shutdown()


def test_a_refresh_joins_a_flight_in_progress_but_never_reuses_the_cache():
    fan = FanOut(16)
    cache = DictCache()
    counter = {"lock": threading.Lock()}
    try:
        fan.gather(ORDER, counted_clients(counter, 0), deadline=1, cache=cache,
                   cache_prefix="i", cache_seconds=30)
        fan.gather(ORDER, counted_clients(counter, 0), deadline=1, cache=cache,
                   cache_prefix="i", cache_seconds=30)
        assert counter[SourceName.ERP] == 1  # the second came from the cache
        fan.gather(ORDER, counted_clients(counter, 0), deadline=1, cache=cache,
                   cache_prefix="i", cache_seconds=30, refresh=True)
        assert counter[SourceName.ERP] == 2
        # A refresh while a lookup is still asking joins it: no third upstream call.
        slow = fan.start(ORDER, counted_clients(counter, 0.3), deadline=2, cache=cache,
                         cache_prefix="j", cache_seconds=30)
        time.sleep(0.05)
        fan.gather(ORDER, counted_clients(counter, 0.3), deadline=2, cache=cache,
                   cache_prefix="j", cache_seconds=30, refresh=True)
        slow.collect()
        assert counter[SourceName.ERP] == 3
    finally:
        fan.shutdown()


# ---------------------------------------------------------------- across processes (Redis)


@pytest.fixture
def redis_client():
    if not REDIS_URL:
        if REQUIRE:
            pytest.fail("ORDER_TRUTH_REQUIRE_SERVICES=1 but ORDER_TRUTH_TEST_REDIS_URL is unset")
        pytest.skip("Redis not configured (set ORDER_TRUTH_TEST_REDIS_URL)")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.mark.redis
def test_two_processes_share_one_call_through_redis(redis_client):
    """Two fan-outs with nothing in common but Redis (as two workers or hosts would be)."""
    prefix = f"ot-test-{uuid.uuid4().hex[:8]}"
    fans = [FanOut(64, shared=RedisFlights(redis_client, prefix=prefix)) for _ in range(2)]
    caches = [DictCache(), DictCache()]  # each process's own cache: only Redis is shared
    counter = {"lock": threading.Lock()}
    try:
        with ThreadPoolExecutor(20) as agents:
            records = list(agents.map(
                lambda n: fans[n % 2].gather(ORDER, counted_clients(counter), deadline=2,
                                             cache=caches[n % 2], cache_prefix="inst:1",
                                             cache_seconds=30),
                range(20)))
        assert {s: counter[s] for s in SourceName} == {s: 1 for s in SourceName}
        assert all(r.reports()[s].status.answered for r in records for s in SourceName)
        assert sum(f.shared.stats["joined"] for f in fans) >= 4  # type: ignore[union-attr]
    finally:
        for f in fans:
            f.shutdown()


@pytest.mark.redis
def test_a_waiter_never_waits_past_its_own_deadline(redis_client):
    prefix = f"ot-test-{uuid.uuid4().hex[:8]}"
    leader, waiter = (RedisFlights(redis_client, prefix=prefix) for _ in range(2))
    release = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(leader.run, "k", time.monotonic() + 5,
                           lambda: release.wait(5) and "leader's answer", lambda: "late")
        time.sleep(0.1)
        t0 = time.monotonic()
        got = waiter.run("k", time.monotonic() + 0.3, lambda: "should not fetch",
                         lambda: "timed out")
        waited = time.monotonic() - t0
        release.set()
        assert slow.result() == "leader's answer"
    assert got == "timed out" and 0.25 <= waited < 0.7


@pytest.mark.redis
def test_a_leader_that_dies_leaves_the_lock_to_expire_and_a_waiter_leads(redis_client):
    prefix = f"ot-test-{uuid.uuid4().hex[:8]}"
    flights = RedisFlights(redis_client, prefix=prefix)
    redis_client.set(f"{prefix}:lock:k", "dead-worker", px=200)  # crashed without releasing
    got = flights.run("k", time.monotonic() + 2, lambda: "fetched", lambda: "timed out")
    assert got == "fetched"
    assert flights.stats["led"] == 1


def test_redis_down_means_asking_the_upstream_directly():
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    down = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2,
                       retry=Retry(NoBackoff(), 0))
    flights = RedisFlights(down)
    assert flights.run("k", time.monotonic() + 1, lambda: "fetched", lambda: "late") == "fetched"
    assert flights.stats["errors"] == 1
    # Then it stops trying for a while instead of paying the timeout on every lookup.
    t0 = time.monotonic()
    assert flights.run("k", time.monotonic() + 1, lambda: "again", lambda: "late") == "again"
    assert time.monotonic() - t0 < 0.1 and flights.stats["errors"] == 1


def test_a_source_stuck_behind_its_bulkhead_reports_the_deadline_not_busy():
    fan = FanOut(8, per_upstream=1)
    gate = threading.Event()
    try:
        hung = {s: (s.value, FakeClient(s, gate=gate if s is SourceName.ERP else None))
                for s in SourceName}
        first = fan.gather(ORDER, hung, deadline=0.2)
        second = fan.gather(OrderRef("2", "#2"), hung, deadline=0.2)
        for r in (first, second):
            assert r.erp.report.status is SourceStatus.TIMEOUT
            assert r.erp.report.error == "no answer within 0.2 s"
            assert r.portal.facts == EMPTY[SourceName.PORTAL]
    finally:
        gate.set()
        fan.shutdown()


@pytest.mark.redis
def test_kept_answers_are_the_source_cache_when_redis_is_shared(redis_client):
    """One Redis entry per answer: read back later as cached, with no upstream call."""
    prefix = f"ot-test-{uuid.uuid4().hex[:8]}"
    fan = FanOut(16, shared=RedisFlights(redis_client, prefix=prefix))
    cache = DictCache()
    counter = {"lock": threading.Lock()}
    try:
        first = fan.gather(ORDER, counted_clients(counter, 0), deadline=1, cache=cache,
                           cache_prefix="inst:1", cache_seconds=30)
        later = fan.gather(ORDER, counted_clients(counter, 0), deadline=1, cache=cache,
                           cache_prefix="inst:1", cache_seconds=30)
        assert counter[SourceName.ERP] == 1 and cache.data == {}
        assert not any(r.cached for r in first.reports().values())
        assert all(r.cached for r in later.reports().values())
        ttl = redis_client.pttl(f"{prefix}:answer:inst:1:facts:erp:1001")
        assert 25_000 < ttl <= 30_000  # kept for the cache's lifetime, not the 5 s of a flight
    finally:
        fan.shutdown()


def test_one_installations_hung_upstream_leaves_the_pool_to_the_others():
    """Waiting for a slot holds no worker: another installation is served at once."""
    fan = FanOut(8, per_upstream=2)
    gate = threading.Event()
    try:
        hung = {s: (s.value, FakeClient(s, gate=gate if s is SourceName.ERP else None))
                for s in SourceName}
        for n in range(12):  # agents of installation A open twelve orders; its ERP hangs
            fan.start(OrderRef(str(n), f"#{n}"), hung, deadline=3, cache_prefix="inst:A")
        time.sleep(0.2)
        assert fan.backlog() < fan.max_workers  # nothing to shed for
        healthy = {s: (s.value, FakeClient(s)) for s in SourceName}
        t0 = time.monotonic()
        other = fan.gather(OrderRef("9", "#9"), healthy, deadline=0.5, cache_prefix="inst:B")
        assert time.monotonic() - t0 < 0.45
        assert all(other.reports()[s].status.answered for s in SourceName)
    finally:
        gate.set()
        fan.shutdown()


def test_a_lookup_that_joined_a_flight_out_of_time_asks_again_within_its_own():
    """An earlier request's short deadline is not inherited by one with time left."""
    fan = FanOut(16)
    counter = {"lock": threading.Lock()}
    try:
        first = fan.start(ORDER, punctual_clients(counter, 0.5), deadline=0.1)
        time.sleep(0.02)  # the second agent joins the first's flights
        second = fan.gather(ORDER, punctual_clients(counter, 0.5), deadline=2)
        assert all(first.collect().reports()[s].status is SourceStatus.TIMEOUT
                   for s in SourceName)
        assert all(second.reports()[s].status.answered for s in SourceName)
        assert counter[SourceName.ERP] == 2  # joined once, then asked again in its own time
    finally:
        fan.shutdown()


@pytest.mark.redis
def test_a_timeout_is_never_shared_through_redis(redis_client):
    prefix = f"ot-test-{uuid.uuid4().hex[:8]}"
    fans = [FanOut(16, shared=RedisFlights(redis_client, prefix=prefix)) for _ in range(2)]
    counter = {"lock": threading.Lock()}
    try:
        with ThreadPoolExecutor(2) as agents:
            short = agents.submit(fans[0].gather, ORDER, punctual_clients(counter, 0.5),
                                  deadline=0.1)
            time.sleep(0.05)  # the second process finds the first's flight under way
            full = agents.submit(fans[1].gather, ORDER, punctual_clients(counter, 0.5),
                                 deadline=2)
            assert short.result().erp.report.status is SourceStatus.TIMEOUT
            assert all(full.result().reports()[s].status.answered for s in SourceName)
    finally:
        for f in fans:
            f.shutdown()
