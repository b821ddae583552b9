"""Two app processes sharing PostgreSQL and Redis behave as one: one upstream lookup, one cache.

Each process is gunicorn as the Procfile runs it (gevent worker), talking to this test
session's simulated upstreams, which count the requests each source receives.
"""

from __future__ import annotations

import html
import os
import re
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from sqlalchemy import select, text

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
        # Served over plain http on 127.0.0.1: the sign-in pop-up's cookie can't be Secure.
        "ORDER_TRUTH_SESSION_COOKIE_SECURE": "false",
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
        yield urls, database_url, env["ORDER_TRUTH_ENCRYPTION_KEY"]
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
    (a, b), _db, _key = two_apps
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


def _sidebar(url: str, ticket: int) -> dict[str, str]:
    """A sidebar session on `url`, launched as the sandbox helpdesk does."""
    page = requests.get(f"{url}/sandbox/launch/{ticket}", timeout=10).text
    action = html.unescape(re.search(r'action="([^"]+)"', page).group(1))
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    sidebar = requests.post(f"{url}{action}", data={"token": token}, headers={"Origin": url},
                            timeout=10).text
    return {"Authorization": "Bearer " + re.search(r'data-session="([^"]+)"', sidebar).group(1),
            "X-CSRF-Token": re.search(r'data-csrf="([^"]+)"', sidebar).group(1)}


def _signed_in(url: str, headers: dict[str, str], user_id: int = 9002) -> dict[str, str]:
    """The agent signs in through the sandbox's Zendesk consent page (a browser's steps)."""
    started = requests.post(f"{url}/zendesk/api/agent/sign-in", headers=headers, timeout=10).json()
    browser = requests.Session()
    to_zendesk = browser.get(started["start_url"], allow_redirects=False, timeout=10)
    authorize = urlsplit(to_zendesk.headers["Location"])
    consent = requests.post(authorize._replace(query="").geturl(),
                            data={**dict(parse_qsl(authorize.query)), "user_id": str(user_id)},
                            allow_redirects=False, timeout=10)
    assert browser.get(consent.headers["Location"], timeout=10).status_code == 200
    claimed = requests.post(f"{url}/zendesk/api/agent/claim", headers=headers,
                            json={"claim": started["claim"]}, timeout=10).json()
    return {"Authorization": f"Bearer {claimed['session']}", "X-CSRF-Token": claimed["csrf"]}


def _ours_for_1005(refund: dict) -> bool:
    """A refund made for order 1005 from the sidebar (Stripe's metadata, Shopify's note)."""
    meta = refund["metadata"] or {}
    return meta.get("order_id") == "1005" or "order id 1005" in meta.get("shopify_note", "")


@pytest.mark.parametrize(("system", "payment"), [
    ("stripe", "pi_Sbx1005"), ("shopify_payments", "gid://shopify/OrderTransaction/100501")])
def test_twenty_refund_clicks_on_two_processes_make_one_refund(two_apps, sandbox, system,
                                                               payment):
    """Double clicks and two agents' tabs on two processes, all at once: one refund, one entry,
    through either processor."""
    from plugin.installations import Installations
    from plugin.store.crypto import SecretBox
    from plugin.store.db import Store
    from plugin.store.models import AuditEntry

    (a, b), database_url, key = two_apps
    store = Store(database_url)
    try:
        with store.session() as session:
            repo = Installations(session, SecretBox(key))
            tenant = repo.find("zendesk:order-truth-sandbox:1")
            repo.update_settings(tenant.id, {"features": {"refunds": True}, "actions": {
                "refund": {"roles": "admin,agent"}}})
            if system != "stripe":
                from tests.conftest import use_shopify_payments

                use_shopify_payments(repo, tenant.id, sandbox.url)
        sam = _signed_in(a, _sidebar(a, 105))
        # The processor is slow, so every click arrives while the first is still refunding.
        sandbox.state.faults.set("processor", FaultSpec(delay_ms=300))
        body = {"order_id": "1005", "payment_id": payment, "amount_minor": 2500,
                "currency": "USD", "reason": "requested_by_customer"}

        def click(n: int) -> requests.Response:
            return requests.post(f"{(a, b)[n % 2]}/zendesk/api/tickets/105/refund", json=body,
                                 headers=sam, timeout=30)

        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(click, range(20)))
        assert {r.status_code for r in answers} <= {200, 202}, [r.text for r in answers]
        assert sum(r.status_code == 200 for r in answers) >= 1
        made = [r for r in sandbox.state.ledger.refunds() if _ours_for_1005(r)]
        assert len(made) == 1 and made[0]["amount"] == 2500
        with store.session() as session:
            entries = list(session.scalars(select(AuditEntry)))
        assert len(entries) == 1 and entries[0].status == "done"
        if system == "stripe":
            assert entries[0].upstream_ids == [made[0]["id"]]
        else:  # the REFUND transaction Shopify lists for it
            assert entries[0].upstream_ids[0].startswith("gid://shopify/OrderTransaction/")
    finally:
        store.dispose()
