"""Faults: the spec and board, and how each vendor misbehaves over HTTP when one is set."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from plugin.sandbox.faults import FaultBoard, FaultSpec
from plugin.sandbox.server import SandboxServer

from .conftest import Upstreams, chain_query

# ---------------------------------------------------------------- spec and board


@pytest.mark.parametrize("kwargs", [
    {"delay_ms": -1}, {"status": 302}, {"status": True}, {"retry_after": 1.5},
    {"hang": 1}, {"malformed": "no"},
])
def test_fault_spec_rejects_nonsense(kwargs):
    with pytest.raises(ValueError):
        FaultSpec(**kwargs)


def test_fault_spec_json_round_trip():
    spec = FaultSpec(delay_ms=20, status=429, retry_after=3)
    assert FaultSpec.from_json(spec.to_json()) == spec
    with pytest.raises(ValueError, match="unknown fault field"):
        FaultSpec.from_json({"latency": 5})


def test_board_sets_gets_and_clears_per_source():
    board = FaultBoard()
    board.set("erp", FaultSpec(status=503))
    board.set("pos", FaultSpec(delay_ms=10))
    assert board.get("erp") == FaultSpec(status=503)
    assert board.get("portal") is None
    board.clear("erp")
    assert board.snapshot() == {"pos": FaultSpec(delay_ms=10)}
    board.clear()
    assert board.snapshot() == {}
    with pytest.raises(ValueError, match="unknown source"):
        board.set("billing", FaultSpec())


def test_board_sleep_ends_when_the_watched_fault_changes():
    board = FaultBoard()
    board.set("erp", FaultSpec(hang=True))
    threading.Timer(0.05, board.clear, args=("erp",)).start()
    started = time.monotonic()
    assert board.sleep(5, watch="erp") is False
    assert time.monotonic() - started < 2


def test_board_sleep_ends_on_wake_all_and_otherwise_runs_its_course():
    board = FaultBoard()
    threading.Timer(0.05, board.wake_all).start()
    assert board.sleep(5) is False
    assert board.sleep(0.01) is True


# ---------------------------------------------------------------- over HTTP


def _call(upstreams: Upstreams, source: str, timeout: float | None = None) -> requests.Response:
    if source == "portal":
        return upstreams.loop("#1001", timeout=timeout)
    if source == "processor":
        return upstreams.search("1001", timeout=timeout)
    if source == "erp":
        return upstreams.suiteql(chain_query("#1001"), timeout=timeout)
    return upstreams.shopify("name:#1001", timeout=timeout)


SOURCES = ["portal", "processor", "erp", "pos"]


def test_delay_adds_latency_to_each_request(upstreams, state):
    state.faults.set("portal", FaultSpec(delay_ms=250))
    for _ in range(2):
        started = time.monotonic()
        assert _call(upstreams, "portal").status_code == 200
        assert time.monotonic() - started >= 0.25


@pytest.mark.parametrize("source", SOURCES)
def test_503_comes_in_the_vendor_envelope_with_retry_after(upstreams, state, source):
    state.faults.set(source, FaultSpec(status=503, retry_after=30))
    resp = _call(upstreams, source)
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "30"
    body = resp.json()
    expected_keys = {"portal": "message", "processor": "error", "erp": "o:errorDetails",
                     "pos": "errors"}[source]
    assert expected_keys in body
    # Other sources are untouched.
    other = next(s for s in SOURCES if s != source)
    assert _call(upstreams, other).status_code == 200


@pytest.mark.parametrize(("source", "marker"), [
    ("portal", "Too Many Attempts."),
    ("processor", "rate_limit"),
    ("erp", "CONCURRENCY_LIMIT_EXCEEDED"),
    ("pos", "THROTTLED"),
])
def test_429_speaks_each_vendors_rate_limit_dialect(upstreams, state, source, marker):
    state.faults.set(source, FaultSpec(status=429, retry_after=2))
    resp = _call(upstreams, source)
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "2"
    assert marker in resp.text


@pytest.mark.parametrize("source", SOURCES)
def test_malformed_is_a_200_that_is_not_json(upstreams, state, source):
    state.faults.set(source, FaultSpec(malformed=True))
    resp = _call(upstreams, source)
    assert resp.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        resp.json()


def test_hang_outlasts_the_client_until_cleared(upstreams, state):
    state.faults.set("processor", FaultSpec(hang=True))
    with pytest.raises(requests.Timeout):
        _call(upstreams, "processor", timeout=0.3)
    state.faults.clear("processor")
    started = time.monotonic()
    assert _call(upstreams, "processor").status_code == 200
    assert time.monotonic() - started < 1


def test_stop_releases_a_hanging_request(state):
    state.faults.set("erp", FaultSpec(hang=True))
    server = SandboxServer(state).start()
    client = Upstreams(server.url, timeout=0.3)
    with pytest.raises(requests.Timeout):
        client.suiteql(chain_query("#1001"))
    client.http.close()
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2


def test_faults_can_be_set_over_http(upstreams):
    upstreams.control("POST", "/faults", json={"pos": {"status": 500}})
    assert _call(upstreams, "pos").status_code == 500
    upstreams.control("DELETE", "/faults", params={"source": "pos"})
    assert _call(upstreams, "pos").status_code == 200
