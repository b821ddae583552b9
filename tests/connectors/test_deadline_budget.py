"""Connectors stay inside the lookup's deadline: no call after it, no retry that can't finish."""

from __future__ import annotations

import time

import pytest
import responses

from plugin.connectors.base import ConnectorConfig, UnavailableError, UpstreamTimeout
from plugin.connectors.loop import LoopClient
from plugin.core.model import OrderRef

BASE = "https://api.loopreturns.com"
URL = f"{BASE}/api/v1/warehouse/return/details"
ORDER = OrderRef("1001", "#1001")


def client(sleeps):
    return LoopClient(ConnectorConfig(BASE, {"api_key": "k"}, max_retry_after=5.0),
                      sleep=sleeps.append)


@responses.activate
def test_no_request_once_the_deadline_has_passed():
    c = client([])
    c.deadline_at = time.monotonic() - 0.1
    with pytest.raises(UpstreamTimeout, match="out of time"):
        c.fetch(ORDER)
    assert len(responses.calls) == 0


@responses.activate
def test_no_retry_that_cannot_finish_in_time():
    responses.get(URL, status=503, headers={"Retry-After": "2"}, json={"message": "busy"})
    sleeps: list[float] = []
    c = client(sleeps)
    c.deadline_at = time.monotonic() + 1.0
    with pytest.raises(UnavailableError):
        c.fetch(ORDER)
    assert sleeps == [] and len(responses.calls) == 1


@responses.activate
def test_retry_within_budget_still_happens():
    responses.get(URL, status=503, headers={"Retry-After": "1"}, json={"message": "busy"})
    responses.get(URL, status=404, json={"message": "Return not found."})
    sleeps: list[float] = []
    c = client(sleeps)
    c.deadline_at = time.monotonic() + 5.0
    assert c.fetch(ORDER).returns == ()
    assert sleeps == [1.0]
