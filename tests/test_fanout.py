"""Fan-out: sources run in parallel under one deadline; failures become reports, never crashes."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from plugin.connectors.base import AuthError, UpstreamTimeout
from plugin.core.model import (
    ErpFacts,
    ErrorKind,
    OrderRef,
    PortalFacts,
    PosFacts,
    ProcessorFacts,
    SourceName,
    SourceStatus,
)
from plugin.fanout import FanOut

ORDER = OrderRef("1001", "#1001")
EMPTY = {
    SourceName.PORTAL: PortalFacts("#1001"),
    SourceName.PROCESSOR: ProcessorFacts("#1001"),
    SourceName.ERP: ErpFacts("#1001"),
    SourceName.POS: PosFacts("#1001", order_found=True),
}


class FakeClient:
    """Stands in for a connector: returns facts, raises, or blocks until released."""

    def __init__(self, source, *, raises=None, gate=None, started=None, delay=0.0):
        self.source, self.raises, self.gate, self.started = source, raises, gate, started
        self.delay = delay
        self.calls = 0

    def fetch(self, order):
        self.calls += 1
        time.sleep(self.delay)
        if self.started is not None:
            self.started.set()
        if self.gate is not None:
            self.gate.wait(10)
        if self.raises is not None:
            raise self.raises
        return EMPTY[self.source]

    def close(self):
        pass


class DictCache:
    def __init__(self):
        self.data = {}

    def get(self, key):
        return self.data.get(key)

    def set(self, key, value, timeout=None):
        self.data[key] = value

    def delete_many(self, *keys):
        for key in keys:
            self.data.pop(key, None)


@pytest.fixture
def fanout():
    f = FanOut(8, clock=lambda: datetime(2026, 3, 10, tzinfo=UTC))
    yield f
    f.shutdown()


def clients(**overrides):
    out = {}
    for source in SourceName:
        out[source] = (source.value, overrides.get(source.value, FakeClient(source)))
    return out


def test_hung_source_times_out_while_others_render(fanout):
    gate = threading.Event()
    hung = FakeClient(SourceName.ERP, gate=gate)
    results = fanout.gather(ORDER, clients(erp=hung), deadline=0.3)
    try:
        # The record came back while the ERP call was still blocked.
        assert not gate.is_set()
        assert results.erp.report.status is SourceStatus.TIMEOUT
        assert results.erp.report.error == "no answer within 0.3 s"
        assert results.portal.report.status is SourceStatus.NOT_FOUND
        assert results.pos.report.status is SourceStatus.OK
    finally:
        gate.set()


def test_sources_are_asked_concurrently(fanout):
    # Each client waits until all four have started: only possible if they run at once.
    started = {s: threading.Event() for s in SourceName}

    class Barrier(FakeClient):
        def fetch(self, order):
            started[self.source].set()
            for ev in started.values():
                if not ev.wait(2):
                    raise UpstreamTimeout("peer never started", system="fake")
            return EMPTY[self.source]

    results = fanout.gather(ORDER, {s: (s.value, Barrier(s)) for s in SourceName}, deadline=3)
    assert all(r.status.answered for r in results.reports().values())


def test_upstream_errors_become_typed_reports(fanout):
    results = fanout.gather(ORDER, clients(
        processor=FakeClient(SourceName.PROCESSOR,
                             raises=AuthError("invalid API key", system="stripe", http_status=401)),
        portal=FakeClient(SourceName.PORTAL, raises=UpstreamTimeout("read timed out", system="loop")),
    ), deadline=1)
    proc = results.processor.report
    assert (proc.status, proc.error_kind, proc.http_status) == (SourceStatus.ERROR, ErrorKind.AUTH, 401)
    assert results.portal.report.status is SourceStatus.TIMEOUT


def test_connector_bug_is_contained(fanout):
    results = fanout.gather(ORDER, clients(
        erp=FakeClient(SourceName.ERP, raises=KeyError("boom"))), deadline=1)
    assert results.erp.report.status is SourceStatus.ERROR
    assert results.erp.report.error_kind is ErrorKind.BAD_RESPONSE
    assert "boom" not in (results.erp.report.error or "")


def test_not_configured_source_is_never_called(fanout):
    results = fanout.gather(ORDER, {**clients(), SourceName.POS: ("shopify_pos", None)}, deadline=1)
    assert results.pos.report.status is SourceStatus.NOT_CONFIGURED


def test_answers_are_cached_per_tenant_and_refresh_bypasses(fanout):
    cache = DictCache()
    c = clients()
    fanout.gather(ORDER, c, deadline=1, cache=cache, cache_prefix="inst:1", cache_seconds=30)
    again = fanout.gather(ORDER, c, deadline=1, cache=cache, cache_prefix="inst:1",
                          cache_seconds=30)
    assert again.portal.report.cached
    assert c[SourceName.PORTAL][1].calls == 1
    other = fanout.gather(ORDER, c, deadline=1, cache=cache, cache_prefix="inst:2",
                          cache_seconds=30)
    assert not other.portal.report.cached
    fanout.gather(ORDER, c, deadline=1, cache=cache, cache_prefix="inst:1", cache_seconds=30,
                  refresh=True)
    assert c[SourceName.PORTAL][1].calls == 3


def test_failures_are_not_cached(fanout):
    cache = DictCache()
    failing = FakeClient(SourceName.ERP, raises=UpstreamTimeout("slow", system="netsuite"))
    fanout.gather(ORDER, clients(erp=failing), deadline=1, cache=cache, cache_prefix="i",
                  cache_seconds=30)
    fanout.gather(ORDER, clients(erp=failing), deadline=1, cache=cache, cache_prefix="i",
                  cache_seconds=30)
    assert failing.calls == 2


def test_cache_outage_costs_only_speed(fanout):
    class Down:
        def get(self, key):
            raise ConnectionError("redis is down")

        def set(self, key, value, timeout=None):
            raise ConnectionError("redis is down")

    results = fanout.gather(ORDER, clients(), deadline=1, cache=Down(), cache_prefix="i",
                            cache_seconds=30)
    assert all(r.status.answered for r in results.reports().values())


def test_each_client_gets_the_lookups_deadline(fanout):
    seen = {}

    class Budget(FakeClient):
        deadline_at = None

        def fetch(self, order):
            seen[self.source] = self.deadline_at
            return EMPTY[self.source]

    before = time.monotonic()
    fanout.gather(ORDER, {s: (s.value, Budget(s)) for s in SourceName}, deadline=2)
    assert all(before + 2 <= v <= time.monotonic() + 2.5 for v in seen.values())


def test_hung_upstream_holds_only_its_own_slots():
    """Lookups keep answering from healthy sources while one upstream hangs."""
    fan = FanOut(8, per_upstream=2)
    gate = threading.Event()
    try:
        for n in range(2):  # two lookups leave two workers stuck on the ERP
            r = fan.gather(OrderRef(f"10{n}", f"#10{n}"),
                           clients(erp=FakeClient(SourceName.ERP, gate=gate)), deadline=0.2)
            assert r.erp.report.status is SourceStatus.TIMEOUT
        # A third waits for a slot (it isn't refused), and is late only at its deadline.
        t0 = time.monotonic()
        third = fan.gather(ORDER, clients(erp=FakeClient(SourceName.ERP, gate=gate)), deadline=0.2)
        assert third.erp.report.status is SourceStatus.TIMEOUT
        assert time.monotonic() - t0 >= 0.19
        assert all(third.reports()[s].status.answered
                   for s in (SourceName.PORTAL, SourceName.PROCESSOR, SourceName.POS))
        # Another installation's ERP has slots of its own.
        other = fan.gather(ORDER, clients(), deadline=0.5, cache_prefix="inst:2")
        assert other.erp.report.status.answered
    finally:
        gate.set()
        fan.shutdown()


def test_a_busy_floor_waits_for_a_slot_instead_of_being_told_busy():
    """Ten agents on ten orders of one installation, two ERP slots: every record answers."""
    fan = FanOut(64, per_upstream=2)
    slow = {s: (s.value, FakeClient(s, delay=0.05)) for s in SourceName}
    try:
        with ThreadPoolExecutor(10) as agents:
            records = list(agents.map(
                lambda n: fan.gather(OrderRef(str(n), f"#{n}"), slow, deadline=2),
                range(10)))
        assert all(r.reports()[s].status.answered for r in records for s in SourceName)
    finally:
        fan.shutdown()
