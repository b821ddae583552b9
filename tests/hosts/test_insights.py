"""Insights for leads: lookups, flags by code and zone, actions, refunds prevented and time
saved, per day, as a page with a chart and a CSV; counts only, never customer data."""

from __future__ import annotations

import csv
import io
import threading

from sqlalchemy import select

from plugin.core.orderid import parse_order_id
from plugin.insights import Tally
from plugin.store.models import InsightCount
from tests.conftest import repo_of

from .test_refunds import REFUND, allow, body
from .test_zendesk_admin import KEY, oauth_sign_in

RECORD = "/zendesk/api/record"
PAGE = f"/zendesk/settings/insights?installation={KEY}"
CSV = f"/zendesk/settings/insights.csv?installation={KEY}"


def look(client, session, order):
    resp = client.get(RECORD, query_string={"ticket_id": str(int(order) - 900),
                                            "order_id": order}, headers=session)
    assert resp.status_code == 200


def figures(client):
    rows = list(csv.reader(io.StringIO(client.get(CSV).get_data(as_text=True))))
    assert rows[0] == ["day", "measure", "zone", "count"]
    out: dict[str, int] = {}
    for _day, measure, _zone, count in rows[1:]:
        out[measure] = out.get(measure, 0) + int(count)
    return out, rows


def test_lookups_flags_actions_and_prevented_refunds_are_counted(app, client, agent_session):
    for order in ("1002", "1002", "1003", "1015", "1010"):
        look(client, agent_session, order)
    allow(app)
    assert client.post(REFUND.format(105), headers=agent_session,
                       json=body(2000)).status_code == 200
    client.post(REFUND.format(105), headers=agent_session, json=body(2000))  # double click
    client.post(REFUND.format(105), headers=agent_session, json=body(5001))  # over the cap
    oauth_sign_in(client)
    counts, rows = figures(client)
    # 5 record views; 1010's processor is down (incomplete); 1002 twice with zone 1.
    assert counts["lookups"] == 5 + 0  # the refund refetches aren't agent lookups
    assert counts["lookups with every system answering"] == 4
    assert counts["flag RETURN_NOT_IN_ERP"] == 2
    assert counts["flag ERP_REFUND_NOT_AT_PROCESSOR"] == 1
    zone = {r[1]: r[2] for r in rows[1:]}
    assert zone["flag RETURN_NOT_IN_ERP"] == "zone 1: not in ERP"
    assert zone["flag ERP_REFUND_NOT_AT_PROCESSOR"] == "zone 2: refund not confirmed at processor"
    assert counts["action refund done"] == 1
    assert counts["refund prevented: duplicate"] == 1
    assert counts["refund prevented: cap"] == 1
    assert counts["minutes saved, low estimate (5 per complete lookup)"] == 20
    assert counts["minutes saved, high estimate (8 per complete lookup)"] == 32
    html = client.get(PAGE).get_data(as_text=True)
    assert "<svg" in html
    assert "0 h 20 min to 0 h 32 min" in html and "It assumes each lookup" in html
    assert "zone 1: not in ERP" in html
    assert "/zendesk/settings/insights.csv?installation=" in html  # the download link


def test_no_customer_data_in_the_insights(app, client, agent_session, zd):
    for order in ("1002", "1003", "1005"):
        look(client, agent_session, order)
    oauth_sign_in(client)
    text = client.get(CSV).get_data(as_text=True) + client.get(PAGE).get_data(as_text=True)
    names = {t["description"].rsplit("\n", 1)[-1] for t in zd.tickets()}  # the customers
    assert all(name not in text for name in names)
    assert "@" not in client.get(CSV).get_data(as_text=True)
    for order in ("1002", "1003", "1005"):
        assert f"#{order}" not in text and f",{order}," not in text


def test_only_this_installations_admins_see_it(app, client, agent_session):
    look(client, agent_session, "1002")
    for url in (PAGE, CSV):
        assert client.get(url).status_code == 403
    oauth_sign_in(client)
    assert client.get(f"{PAGE}&since=someday").status_code == 400
    assert client.get(f"{PAGE}&since=2020-01-01&until=2026-01-01").status_code == 400


def test_counts_from_many_threads_and_flushes_add_up(app):
    tally = Tally(flush_seconds=0)
    with repo_of(app) as repo:
        tenant = repo.find(KEY)
    truth = app.extensions["order_truth"].lookup(tenant, parse_order_id("1002", "#"))

    def work():
        for _ in range(50):
            tally.lookup(tenant.id, truth)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    flushed = 0
    with app.extensions["store"].session() as s:
        for t in threads:
            t.join()
            flushed += tally.flush(s)
        flushed += tally.flush(s)
        rows = {r.metric: r.count for r in s.scalars(select(InsightCount))}
    assert rows["lookup"] == 200 and rows["flag:RETURN_NOT_IN_ERP"] == 200
    assert flushed == sum(rows.values())


def test_a_failed_write_keeps_the_counts_for_the_next(app, monkeypatch):
    tally = Tally(flush_seconds=0)
    with repo_of(app) as repo:
        tenant = repo.find(KEY)
    tally.prevented(tenant.id, "cap")
    with app.extensions["store"].session() as s:
        import plugin.insights as insights

        real = insights._add
        monkeypatch.setattr(insights, "_add", lambda *a: (_ for _ in ()).throw(
            RuntimeError("database went away")))
        try:
            tally.flush(s)
        except RuntimeError:
            pass
        monkeypatch.setattr(insights, "_add", real)
        assert tally.flush(s) == 1
        assert [r.count for r in s.scalars(select(InsightCount))] == [1]


def test_every_flag_has_a_zone():
    from plugin.core.record import FLAG_ZONES, FlagCode

    assert set(FLAG_ZONES) == set(FlagCode)
