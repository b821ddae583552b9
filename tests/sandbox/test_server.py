"""Sandbox servers: independent instances, the process-wide singleton, connector URLs."""

from __future__ import annotations

import threading

import pytest

from plugin.sandbox.faults import FaultSpec
from plugin.sandbox.server import SandboxServer, connector_base_urls, get_sandbox

from .conftest import Upstreams


def test_servers_are_independent():
    with SandboxServer() as first, SandboxServer() as second:
        assert first.url != second.url
        first.state.faults.set("portal", FaultSpec(status=503))
        a, b = Upstreams(first.url), Upstreams(second.url)
        assert a.loop("#1001").status_code == 503
        assert b.loop("#1001").status_code == 200
        a.http.close()
        b.http.close()


def test_start_and_stop_are_idempotent():
    server = SandboxServer()
    with pytest.raises(RuntimeError):
        _ = server.url
    assert server.start() is server.start()
    url = server.url
    assert url.startswith("http://127.0.0.1:")
    server.stop()
    server.stop()
    assert not server.running


def test_get_sandbox_is_one_running_server_per_process():
    seen: list[SandboxServer] = []
    threads = [threading.Thread(target=lambda: seen.append(get_sandbox())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(server) for server in seen}) == 1
    assert seen[0].running and seen[0] is get_sandbox()


def test_connector_base_urls():
    assert connector_base_urls("http://127.0.0.1:5001/") == {
        "loop": "http://127.0.0.1:5001/loop",
        "stripe": "http://127.0.0.1:5001/stripe",
        "netsuite": "http://127.0.0.1:5001/netsuite",
        "shopify_pos": "http://127.0.0.1:5001/shopify",
        "shopify_payments": "http://127.0.0.1:5001/shopify-payments",
    }
