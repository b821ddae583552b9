"""Shared helpers for connector tests: recorded payloads, configs, a recording sleep."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import responses

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def read_fixture(vendor: str, name: str) -> Any:
    """A recorded payload from tests/fixtures/<vendor>/<name>.json."""
    return json.loads((FIXTURES / vendor / f"{name}.json").read_text())


class SleepRecorder:
    """Stands in for time.sleep and remembers every requested delay."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def fixture_json():
    """Loader for recorded vendor payloads: fixture_json("stripe", "disputes")."""
    return read_fixture


@pytest.fixture
def sleeps() -> SleepRecorder:
    """A sleep function to inject into clients; records delays instead of waiting."""
    return SleepRecorder()


@pytest.fixture(autouse=True)
def _no_real_sleep(monkeypatch):
    """Fail loudly if a connector sleeps without going through an injected sleep."""

    def refuse(seconds: float) -> None:
        raise AssertionError(f"time.sleep({seconds}) called in a connector test")

    monkeypatch.setattr(time, "sleep", refuse)


@pytest.fixture
def mocked():
    """A responses mock that fails on unexpected calls (and on unused registrations)."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps
