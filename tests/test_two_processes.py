"""Two app processes sharing PostgreSQL and Redis behave as one: one upstream lookup, one cache.

Each process is gunicorn as the Procfile runs it (gevent worker), talking to this test
session's simulated upstreams, which count the requests each source receives.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import text

from plugin.sandbox.faults import FaultSpec
from tests.test_store import _pg_store

PG_URL = os.environ.get("ORDER_TRUTH_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("ORDER_TRUTH_TEST_REDIS_URL")
REQUIRE = os.environ.get("ORDER_TRUTH_REQUIRE_SERVICES") == "1"
ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    for _ in range(100):
        if proc.poll() is not None:
            raise RuntimeError(f"app exited: {log.read_text()}")
        try:
            if requests.get(f"{url}/healthz", timeout=5).ok:
                return
        except requests.RequestException:  # not listening yet, or the worker still booting
            pass
        time.sleep(0.2)
    raise RuntimeError("app did not become healthy")


@pytest.fixture
def two_apps(sandbox, tmp_path):
    if not (PG_URL and REDIS_URL):
        if REQUIRE:
            pytest.fail("ORDER_TRUTH_REQUIRE_SERVICES=1 but PostgreSQL/Redis URLs are unset")
        pytest.skip("needs ORDER_TRUTH_TEST_POSTGRES_URL and ORDER_TRUTH_TEST_REDIS_URL")
    store, admin, schema = _pg_store()  # a schema of its own, as the store tests use
    database_url = store.engine.url.render_as_string(hide_password=False)
    store.dispose()
    env = {
        **os.environ,
        "ORDER_TRUTH_DATABASE_URL": database_url,
        "ORDER_TRUTH_REDIS_URL": REDIS_URL,
        "ORDER_TRUTH_CACHE_KEY_PREFIX": f"ot-2p-{schema}:",
        "ORDER_TRUTH_AUTO_MIGRATE": "1",
        "ORDER_TRUTH_SANDBOX_ENABLED": "1",
        "ORDER_TRUTH_SANDBOX_URL": sandbox.url,
        "ORDER_TRUTH_UPSTREAM_ALLOWED_HOSTS": "127.0.0.1",
        "ORDER_TRUTH_SECRET_KEY": "two-processes",
        "ORDER_TRUTH_ENCRYPTION_KEY": "U7sXGfOasSPcWSVtzUL4Mz4MTKzOMdP6MsNQgh_5LUU=",
        "ORDER_TRUTH_SOURCE_CACHE_SECONDS": "30",
        "WEB_CONCURRENCY": "1",
    }
    procs, urls = [], []
    try:
        for n in range(2):  # one after the other: the first migrates and seeds
            port = _free_port()
            log = tmp_path / f"app{n}.log"
            with log.open("w") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:app"],
                    cwd=ROOT, env={**env, "PORT": str(port)}, stdout=out,
                    stderr=subprocess.STDOUT)
            procs.append(proc)
            urls.append(f"http://127.0.0.1:{port}")
            _wait_healthy(urls[-1], proc, log)
        sandbox.state.reset()
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        with admin.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _get(url: str, order: str, **params: str) -> dict:
    resp = requests.get(f"{url}/api/v1/orders/{order}",
                        params={"installation": "sandbox", **params}, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_agents_on_two_processes_cost_one_lookup_and_share_the_cache(two_apps, sandbox):
    a, b = two_apps
    # Slow enough that every agent's request overlaps the first one's upstream calls.
    for source in ("portal", "processor", "erp", "pos"):
        sandbox.state.faults.set(source, FaultSpec(delay_ms=300))
    with ThreadPoolExecutor(20) as agents:
        records = list(agents.map(lambda n: _get((a, b)[n % 2], "1002"), range(20)))
    assert all(r["found"] for r in records)
    assert len({tuple(f["code"] for f in r["flags"]) for r in records}) == 1
    burst = sandbox.state.request_counts()
    # What one lookup costs, measured by one refresh (which always asks the sources).
    _get(a, "1002", refresh="1")
    one = {s: n - burst.get(s, 0) for s, n in sandbox.state.request_counts().items()}
    assert burst == one, "20 agents over two processes must cost exactly one lookup"
    # The other process answers a repeat from the shared cache: no upstream call at all.
    before = sandbox.state.request_counts()
    again = _get(b, "1002")
    assert sandbox.state.request_counts() == before
    assert all(s["cached"] for s in again["sources"].values() if s["status"] == "ok")
