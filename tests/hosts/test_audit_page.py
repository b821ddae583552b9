"""The audit trail page and its CSV download, for the installation's admins only."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from plugin.actions.audit import CSV_COLUMNS, Actor, AuditLog
from tests.conftest import repo_of

from .test_refunds import KEY, REFUND, allow, body
from .test_zendesk_admin import oauth_sign_in

PAGE = f"/zendesk/settings/audit?installation={KEY}"
CSV = f"/zendesk/settings/audit.csv?installation={KEY}"


def _other_installation_entry(app) -> None:
    """An entry of another helpdesk account, which this page must never show."""
    with repo_of(app) as repo:
        other = repo.ensure("zendesk:someone-else:1", host="zendesk", name="someone-else")
        AuditLog(repo.session).begin(
            installation_id=other.id, actor=Actor("77", "Other Person", "admin"),
            ticket_id="999", order_number="4242", action="refund", key="ot-refund-other",
            parameters={}, amount_minor=999, currency="USD")


def test_the_admin_sees_what_agents_did_and_downloads_it(app, client, agent_session, runner):
    allow(app)
    assert client.post(REFUND.format(105), headers=agent_session, json=body(2000)).status_code == 200
    _other_installation_entry(app)
    oauth_sign_in(client)

    page = client.get(PAGE)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert "Sam Agent" in html and "$20.00" in html and ">done<" in html and "re_" in html
    assert "Other Person" not in html and "4242" not in html
    assert "/zendesk/settings/audit.csv?installation=" in html  # the download link

    download = client.get(CSV)
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert "attachment" in download.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(download.get_data(as_text=True))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 2 and rows[1][CSV_COLUMNS.index("actor_name")] == "Sam Agent"
    # The same columns and values as `flask --app app audit export` for this installation.
    today = datetime.now(UTC).date()
    cli = runner.invoke(args=["audit", "export", "--since",
                              (today - timedelta(days=30)).isoformat(), "--installation", KEY])
    assert cli.output == download.get_data(as_text=True)


def test_the_days_filter_what_is_shown(app, client, agent_session):
    allow(app)
    client.post(REFUND.format(105), headers=agent_session, json=body(2000))
    oauth_sign_in(client)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    later = client.get(f"{PAGE}&since={tomorrow}").get_data(as_text=True)
    assert "No actions in these days." in later and "Sam Agent" not in later
    rows = list(csv.reader(io.StringIO(
        client.get(f"{CSV}&since={tomorrow}").get_data(as_text=True))))
    assert rows == [list(CSV_COLUMNS)]


def test_bad_days_get_a_plain_400(client):
    oauth_sign_in(client)
    for query in ("&since=last-week", "&until=2026-02-30", "&since=2026-03-02&until=2026-03-01"):
        resp = client.get(PAGE + query)
        assert resp.status_code == 400, query
        assert "YYYY-MM-DD" in resp.get_data(as_text=True) or "must come after" in \
            resp.get_data(as_text=True)


def test_only_admins_of_this_installation_see_it(app, client, agent_session):
    allow(app)
    client.post(REFUND.format(105), headers=agent_session, json=body(2000))
    for url in (PAGE, CSV):
        resp = client.get(url)
        assert resp.status_code == 403 and "Sam Agent" not in resp.get_data(as_text=True)
    oauth_sign_in(client)
    assert client.get("/zendesk/settings/audit?installation=zendesk:nobody:1").status_code == 404
