"""The store: migrations, built-in installations, tenant isolation; on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import inspect, select, text

from plugin.installations import STANDALONE_KEY, Installations, TenantCache, ensure_standalone
from plugin.sandbox.seed import seed
from plugin.store.crypto import SecretBox
from plugin.store.db import Store
from plugin.store.models import Connection, Installation

PG_URL = os.environ.get("ORDER_TRUTH_TEST_POSTGRES_URL")
REQUIRE = os.environ.get("ORDER_TRUTH_REQUIRE_SERVICES") == "1"


def _pg_store():
    if not PG_URL:
        if REQUIRE:
            pytest.fail("ORDER_TRUTH_REQUIRE_SERVICES=1 but ORDER_TRUTH_TEST_POSTGRES_URL is unset")
        pytest.skip("PostgreSQL not configured (set ORDER_TRUTH_TEST_POSTGRES_URL)")
    schema = f"ot_{uuid.uuid4().hex[:10]}"
    admin = Store(PG_URL)
    with admin.engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    store = Store(f"{PG_URL}{sep}options=-csearch_path%3D{schema}")
    return store, admin, schema


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'store.db'}")
        yield s
        s.dispose()
        return
    s, admin, schema = _pg_store()
    yield s
    s.dispose()
    with admin.engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


BOX = SecretBox("U7sXGfOasSPcWSVtzUL4Mz4MTKzOMdP6MsNQgh_5LUU=")


def test_migrations_create_tables_and_are_repeatable(store):
    store.migrate()
    store.migrate()
    tables = set(inspect(store.engine).get_table_names())
    assert {"installations", "connections", "alembic_version"} <= tables


def test_sandbox_installations_are_ordinary_rows_created_once(store):
    store.migrate()
    with store.session() as s:
        repo = Installations(s, BOX)
        seed(repo, "http://127.0.0.1:5001")
        seed(repo, "http://127.0.0.1:5002")  # a restart on another port moves every URL
        keys = s.scalars(select(Installation.key)).all()
        sandbox = repo.find("sandbox")
        variant = repo.find("sandbox-shopify-payments")
        assert repo.default_key({}) == "sandbox"
    assert keys == ["sandbox", "sandbox-shopify-payments", "zendesk:order-truth-sandbox:1"]
    assert {c.system for c in sandbox.connections.values()} == {
        "loop", "stripe", "netsuite", "shopify_pos"}
    assert sandbox.connections["processor"].base_url == "http://127.0.0.1:5002/stripe"
    # The Shopify Payments variant reads the same simulated shop for its POS source.
    assert variant.connections["processor"].system == "shopify_payments"
    assert variant.connections["pos"].base_url == variant.connections["processor"].base_url


def test_standalone_installation_from_env_config(store):
    store.migrate()
    config = {"SANDBOX_ENABLED": False, "STRIPE_SECRET_KEY": "sk_test_x"}
    with store.session() as s:
        repo = Installations(s, BOX)
        ensure_standalone(repo, config)
        tenant = repo.find(STANDALONE_KEY)
        assert repo.default_key(config) == "standalone"
    assert tenant is not None and tenant.host == "standalone"


def test_deleting_installation_removes_its_connections(store):
    store.migrate()
    with store.session() as s:
        inst = Installation(key="zendesk:acme:1", host="zendesk", name="Acme", status="active",
                            settings={})
        inst.connections.append(Connection(source="processor", system="stripe",
                                           base_url="https://api.stripe.com",
                                           credentials_encrypted="x", options={}))
        s.add(inst)
        s.commit()
        s.delete(inst)
        s.commit()
        assert s.scalars(select(Connection)).all() == []


def test_tenant_settings_drive_features_and_windows(store):
    store.migrate()
    with store.session() as s:
        s.add(Installation(key="t1", host="zendesk", name="T1", status="active",
                           settings={"features": {"pos_source": False},
                                     "reconcile": {"return_sync_lag_hours": 6}}))
        s.commit()
        tenant = Installations(s, BOX).find("t1")
    assert tenant.features["pos_source"] is False
    assert tenant.reconcile_settings.return_sync_lag.total_seconds() == 6 * 3600


def test_an_id_reused_after_a_delete_is_a_new_installation_to_every_cache(store):
    """SQLite hands a deleted row's id to the next row; nothing cached may cross over."""
    store.migrate()
    tenants = TenantCache()
    with store.session() as s:
        repo = Installations(s, BOX, tenants=tenants)
        acme = repo.register("zendesk:acme:1", host="zendesk", name="Acme", settings={})
        repo.save_connection(acme.id, source="processor", system="stripe",
                             base_url="https://api.stripe.com",
                             credentials={"api_key": "sk_live_ACME"})
        seen = repo.find("zendesk:acme:1")  # a request warms this process's copy
        repo.remove(acme.id)
    with store.session() as s:
        repo = Installations(s, BOX, tenants=tenants)
        globex = repo.register("zendesk:globex:7", host="zendesk", name="Globex", settings={})
        repo.save_connection(globex.id, source="processor", system="stripe",
                             base_url="https://api.stripe.com",
                             credentials={"api_key": "sk_live_GLOBEX"})
        got = repo.find("zendesk:globex:7")
        by_id = repo.get(globex.id)
    if store.engine.dialect.name == "sqlite":
        assert globex.id == acme.id  # the id really was reused (PostgreSQL never reuses)
    for tenant in (got, by_id):
        assert tenant.name == "Globex"
        assert tenant.connections["processor"].credentials == {"api_key": "sk_live_GLOBEX"}
        assert tenant.cache_prefix != seen.cache_prefix


def test_concurrent_writers_each_bump_the_revision(store):
    """Two processes changing one installation at once: neither bump is lost."""
    store.migrate()
    with store.session() as s1, store.session() as s2:
        first, second = Installations(s1, BOX), Installations(s2, BOX)
        tenant = first.ensure("x", host="sandbox", name="X")
        stale = s2.get(Installation, tenant.id)  # the second has read the row too
        assert stale.revision == tenant.revision
        first.update_settings(tenant.id, {"order_name_prefix": "#"})
        second.update_settings(tenant.id, {"order_id_shape": r"\d{4,8}"})
    with store.session() as s:
        assert Installations(s, BOX).find("x").revision == tenant.revision + 2


def test_insight_counts_from_two_processes_add_up(store):
    """Two processes' tallies flushing the same day's counts at once lose nothing."""
    import threading

    from plugin.insights import Tally

    store.migrate()
    with store.session() as s:
        tenant = Installations(s, BOX).ensure("counted", host="sandbox", name="Counted")
    tallies = [Tally(flush_seconds=0) for _ in range(4)]
    barrier = threading.Barrier(len(tallies))
    errors = []

    def flush(tally):
        for _ in range(25):
            tally.prevented(tenant.id, "cap")
        barrier.wait()
        try:
            with store.session() as s:
                tally.flush(s)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=flush, args=(t,)) for t in tallies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    from sqlalchemy import select

    from plugin.store.models import InsightCount

    with store.session() as s:
        [row] = s.scalars(select(InsightCount)).all()
    assert (row.metric, row.count) == ("prevented:cap", 100)
