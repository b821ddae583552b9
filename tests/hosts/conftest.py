"""Helpers for the Zendesk host tests: launch the sidebar the way Zendesk does."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

SIDEBAR = "/zendesk/sidebar?origin=http://localhost&app_guid=test"


@pytest.fixture
def zd(sandbox):
    """The sandbox's Zendesk (keys, tickets, faults)."""
    return sandbox.state.zendesk


@pytest.fixture
def launch(client, zd):
    """POST a launch token to the sidebar; returns the response."""

    def go(token=None, *, origin="http://localhost", **sign):
        if token is None:
            token = zd.sign_launch(**sign)
        url = "/zendesk/sidebar" + (f"?origin={origin}&app_guid=test" if origin else "")
        return client.post(url, data={"token": token})

    return go


def headers_from_page(html):
    """The bearer session and CSRF value a sidebar page carries."""
    token = re.search(r'data-session="([^"]+)"', html).group(1)
    csrf = re.search(r'data-csrf="([^"]+)"', html).group(1)
    return {"Authorization": f"Bearer {token}", "X-CSRF-Token": csrf}


def sandbox_zendesk_id(app):
    """The sandbox Zendesk installation's id."""
    from tests.conftest import repo_of

    with repo_of(app) as repo:
        return repo.find("zendesk:order-truth-sandbox:1").id


@pytest.fixture
def session(launch):
    """A sidebar session (bearer token and CSRF value) for the sandbox Zendesk installation."""
    resp = launch()
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return headers_from_page(resp.get_data(as_text=True))


def sign_in_agent(client, session, user_id=9002):
    """Sign an agent in from the sidebar the way a browser does, through the sandbox's
    Zendesk consent page; returns the claim's answer (new session, remember token)."""
    started = client.post("/zendesk/api/agent/sign-in", headers=session)
    assert started.status_code == 200, started.get_data(as_text=True)
    start = urlsplit(started.get_json()["start_url"])
    to_zendesk = client.get(f"{start.path}?{start.query}")
    assert to_zendesk.status_code == 302, to_zendesk.get_data(as_text=True)
    authorize = urlsplit(to_zendesk.headers["Location"])
    params = dict(parse_qsl(authorize.query))
    consent = requests.post(authorize._replace(query="").geturl(),
                            data={**params, "user_id": str(user_id)}, allow_redirects=False,
                            timeout=5)
    assert consent.status_code == 302, consent.text
    back = urlsplit(consent.headers["Location"])
    page = client.get(f"{back.path}?{back.query}")
    claimed = client.post("/zendesk/api/agent/claim", headers=session,
                          json={"claim": started.get_json()["claim"]})
    return page, claimed


def headers_for(answer):
    return {"Authorization": f"Bearer {answer['session']}", "X-CSRF-Token": answer["csrf"]}


@pytest.fixture
def agent_session(client, session):
    """A sidebar session whose agent (Sam Agent, 9002) signed in to the sandbox's Zendesk."""
    page, claimed = sign_in_agent(client, session)
    assert page.status_code == 200 and claimed.status_code == 200, claimed.get_data(as_text=True)
    return headers_for(claimed.get_json())


def age_audit(app):
    """Let every audit entry's lease run out and date it 5 minutes back, as time would after
    a crashed request (so `audit reconcile` and a take-over may settle it)."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from plugin.store.models import AuditEntry

    with app.extensions["store"].session() as s:
        past = datetime.now(UTC) - timedelta(minutes=5)
        s.execute(update(AuditEntry).values(lease_until=past, created_at=past))
        s.commit()


def crash_in(monkeypatch, app, owner, name, post):
    """Make `owner.name` kill the worker, send the request `post()` (it dies there), then let
    its audit lease run out as time would: what a crashed request leaves behind."""
    import pytest

    def die(*args, **kwargs):
        raise SystemExit("the worker died")

    monkeypatch.setattr(owner, name, die)
    with pytest.raises(SystemExit):
        post()
    monkeypatch.undo()
    age_audit(app)


def audit_entries(app):
    """Every audit entry, oldest first."""
    from sqlalchemy import select

    from plugin.store.models import AuditEntry

    with app.extensions["store"].session() as s:
        return list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def fresh_record(app, number, key="zendesk:order-truth-sandbox:1"):
    """The sandbox installation's record for an order, asked of every source afresh."""
    from plugin.core.orderid import parse_order_id
    from tests.conftest import repo_of

    with repo_of(app) as repo:
        tenant = repo.find(key)
    return app.extensions["order_truth"].lookup(tenant, parse_order_id(number, "#"),
                                                refresh=True)
