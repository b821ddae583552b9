"""The summary note and the flag tags in the same framework as the other actions: roles
checked before any upstream call, an audit entry per write, settled now or by reconcile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from plugin.connectors.base import UnavailableError
from plugin.hosts.zendesk.client import ZendeskClient
from plugin.store.models import TicketAction
from tests.conftest import repo_of

from .conftest import age_audit
from .conftest import audit_entries as entries

KEY = "zendesk:order-truth-sandbox:1"
ACTIONS = "/zendesk/api/tickets/{}/actions"


def roles(app, **settings):
    with repo_of(app) as repo:
        tenant = repo.find(KEY)
        repo.update_settings(tenant.id, {"actions": {
            kind: {"roles": value} for kind, value in settings.items()}})



def write(client, headers, kind, key="k-12345678"):
    return client.post(ACTIONS.format(103), headers=headers,
                       json={"kind": kind, "key": key, "order_id": "1003"})


def test_a_note_and_tags_are_in_the_audit_trail_once(app, client, agent_session, zd):
    assert write(client, agent_session, "note").status_code == 200
    assert write(client, agent_session, "note").status_code == 200  # the double click
    tags = write(client, agent_session, "tags", key="t-12345678")
    assert tags.status_code == 200
    got = [(e.action, e.status, e.actor_name, e.ticket_id, e.order_number, e.upstream_ids)
           for e in entries(app)]
    assert got == [("note", "done", "Sam Agent", "103", "1003", []),
                   ("tags", "done", "Sam Agent", "103", "1003", tags.get_json()["tags"])]
    assert len([c for c in zd.ticket(103)["comments"] if not c["public"]]) == 1


@pytest.mark.parametrize("kind", ["note", "tags"])
def test_a_role_the_admin_left_out_is_refused_before_any_zendesk_call(app, client,
                                                                     agent_session, sandbox,
                                                                     kind):
    roles(app, **{kind: "admin"})
    before = sandbox.state.request_counts().get("zendesk", 0)
    resp = write(client, agent_session, kind)
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "forbidden_role"
    assert sandbox.state.request_counts().get("zendesk", 0) == before
    assert entries(app) == []


def test_a_note_turned_off_is_refused_with_no_entry(app, client, agent_session):
    with repo_of(app) as repo:
        tenant = repo.find(KEY)
        repo.update_settings(tenant.id, {"features": {"post_notes": False}})
    resp = write(client, agent_session, "note")
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "disabled"
    assert entries(app) == []


def test_a_write_the_outbox_finishes_later_is_settled_by_reconcile(app, client, agent_session,
                                                                   runner, monkeypatch, zd):
    def down(self, *a, **k):
        raise UnavailableError("HTTP 503", system="zendesk", http_status=503)

    monkeypatch.setattr(ZendeskClient, "post_internal_note", down)
    resp = write(client, agent_session, "note")
    assert resp.status_code == 502
    [entry] = entries(app)
    assert entry.status == "unknown"
    monkeypatch.undo()
    # The outbox's retry posts it (as the agent who asked), then reconcile reads the outbox.
    with app.extensions["store"].session() as s:
        s.execute(update(TicketAction).values(
            next_attempt_at=datetime.now(UTC) - timedelta(minutes=1)))
        s.commit()
    retried = runner.invoke(args=["zendesk", "retry-pending"])
    assert retried.exit_code == 0, retried.output
    age_audit(app)
    out = runner.invoke(args=["audit", "reconcile"])
    assert "1 notes and tag sets found written" in out.output, out.output
    assert [e.status for e in entries(app)] == ["done"]
    assert len([c for c in zd.ticket(103)["comments"] if not c["public"]]) == 1
