"""Writes go out as the agent: signed in with their own Zendesk account, with their own rights.

The sidebar session says which installation opened it, never who is looking; so before a
note or tags are written, the agent signs in with Zendesk's OAuth (the sandbox's consent
page here) and the write goes out with their token. Zendesk then applies their permissions
(the sandbox's Riley may see only tickets assigned to her) and the note's author is them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from sqlalchemy import select, update

from plugin.hosts.agents import Agents, SignInRequired
from plugin.hosts.base import HostUser
from plugin.store.models import AgentGrant, TicketAction

from .conftest import headers_for, headers_from_page, sandbox_zendesk_id, sign_in_agent

ACTIONS = "/zendesk/api/tickets/{}/actions"


def note(client, headers, ticket=103, order_id="1003", key="agent-note-1"):
    return client.post(ACTIONS.format(ticket), headers=headers,
                       json={"kind": "note", "key": key, "order_id": order_id})


def private_notes(zd, ticket):
    return [c for c in zd.ticket(ticket)["comments"] if not c["public"]]


def rows(app):
    with app.extensions["store"].session() as s:
        return list(s.scalars(select(TicketAction)))


def test_no_write_before_the_agent_signs_in(app, client, session, zd):
    resp = note(client, session)
    assert resp.status_code == 401
    error = resp.get_json()["error"]
    assert error["code"] == "agent_sign_in_required" and "as you" in error["message"]
    assert private_notes(zd, 103) == [] and rows(app) == []


def test_a_signed_in_agent_writes_as_themselves(app, client, session, zd):
    page, claimed = sign_in_agent(client, session)
    assert page.status_code == 200
    assert "Signed in to Zendesk as Sam Agent" in page.get_data(as_text=True)
    answer = claimed.get_json()
    assert answer["status"] == "done" and answer["agent"] == {"id": "9002", "name": "Sam Agent"}
    assert answer["remember"]

    resp = note(client, headers_for(answer))
    assert resp.status_code == 200, resp.get_json()
    [posted] = private_notes(zd, 103)
    assert posted["author_id"] == 9002  # Zendesk shows the agent, not the admin, as author
    [row] = rows(app)
    assert (row.actor_id, row.actor_name) == ("9002", "Sam Agent")


def test_zendesk_decides_which_tickets_the_agent_may_write(app, client, session, zd):
    """Riley may see only tickets assigned to her: 103 is refused before anything is written."""
    _page, claimed = sign_in_agent(client, session, user_id=9003)
    riley = headers_for(claimed.get_json())
    refused = note(client, riley, ticket=103, key="riley-103")
    assert refused.status_code == 403
    error = refused.get_json()["error"]
    assert error["code"] == "forbidden_by_host"
    assert error["message"] == ("Zendesk doesn't let Riley Restricted update ticket 103, so "
                                "nothing was written.")
    assert private_notes(zd, 103) == [] and rows(app) == []

    tags = client.post(ACTIONS.format(103), headers=riley,
                       json={"kind": "tags", "key": "riley-tags", "order_id": "1003"})
    assert tags.status_code == 403 and zd.ticket(103)["tags"] == []

    mine = note(client, riley, ticket=101, order_id="1001", key="riley-101")
    assert mine.status_code == 200, mine.get_json()
    assert private_notes(zd, 101)[0]["author_id"] == 9003


def test_a_claim_is_pending_until_the_callback_then_good_once(client, session):
    started = client.post("/zendesk/api/agent/sign-in", headers=session).get_json()
    claim = {"claim": started["claim"]}
    assert client.post("/zendesk/api/agent/claim", headers=session, json=claim).status_code == 202
    assert client.post("/zendesk/api/agent/claim", headers=session,
                       json={"claim": "not-a-claim-we-made"}).status_code == 403
    bad = client.post("/zendesk/api/agent/claim", headers=session, json={"claim": 7})
    assert bad.status_code == 400
    # Another sign-in finishing doesn't finish this one: still pending, never someone else's.
    _page, claimed = sign_in_agent(client, session, user_id=9003)
    assert claimed.status_code == 200
    assert client.post("/zendesk/api/agent/claim", headers=session, json=claim).status_code == 202


def test_a_claim_works_once_and_only_for_the_sidebar_that_started_it(client, session, launch):
    started = client.post("/zendesk/api/agent/sign-in", headers=session).get_json()
    _finish(client, started)
    other_launch = launch().get_data(as_text=True)
    other = headers_from_page(other_launch)
    # Another sidebar of the same installation can't claim it without the claim value...
    assert client.post("/zendesk/api/agent/claim", headers=other,
                       json={"claim": "x" * 32}).status_code == 403
    first = client.post("/zendesk/api/agent/claim", headers=session,
                        json={"claim": started["claim"]})
    assert first.status_code == 200
    second = client.post("/zendesk/api/agent/claim", headers=session,
                         json={"claim": started["claim"]})
    assert second.status_code == 403 and "already used" in second.get_json()["error"]["message"]


def test_the_callback_is_single_use_and_tied_to_the_browser_that_started(app, client, session):
    started = client.post("/zendesk/api/agent/sign-in", headers=session).get_json()
    back = _consent(client, started)
    # Another browser (no cookie from the start page) can't finish this sign-in.
    stranger = app.test_client()
    refused = stranger.get(back)
    assert refused.status_code == 400 and "another browser" in refused.get_data(as_text=True)
    assert client.get(back).status_code == 200
    assert client.get(back).status_code == 400  # replayed


def test_a_cancelled_sign_in_is_said_to_the_sidebar(client, session, zd):
    started = client.post("/zendesk/api/agent/sign-in", headers=session).get_json()
    start = urlsplit(started["start_url"])
    authorize = urlsplit(client.get(f"{start.path}?{start.query}").headers["Location"])
    denied = requests.post(authorize._replace(query="").geturl(),
                           data={**dict(parse_qsl(authorize.query)), "decision": "deny"},
                           allow_redirects=False, timeout=5)
    back = urlsplit(denied.headers["Location"])
    page = client.get(f"{back.path}?{back.query}")
    assert page.status_code == 403 and "cancelled" in page.get_data(as_text=True)
    claimed = client.post("/zendesk/api/agent/claim", headers=session,
                          json={"claim": started["claim"]})
    assert claimed.status_code == 403 and "cancelled" in claimed.get_json()["error"]["message"]


def test_an_expiring_token_is_refreshed_before_the_write(app, client, session, zd):
    zd.access_ttl = 30  # inside the refresh margin: the first write refreshes first
    _page, claimed = sign_in_agent(client, session)
    old = _grant_credentials(app)
    resp = note(client, headers_for(claimed.get_json()))
    assert resp.status_code == 200, resp.get_json()
    assert zd.refreshes == 1
    new = _grant_credentials(app)
    assert new["access_token"] != old["access_token"]
    assert new["refresh_token"] != old["refresh_token"]
    assert private_notes(zd, 103)[0]["author_id"] == 9002


def test_a_revoked_sign_in_asks_the_agent_to_sign_in_again(app, client, session, zd):
    _page, claimed = sign_in_agent(client, session)
    zd.revoke_tokens()
    resp = note(client, headers_for(claimed.get_json()))
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "agent_sign_in_required"
    assert private_notes(zd, 103) == [] and _grant_credentials(app) is None
    # Signing in again is all it takes.
    _page, again = sign_in_agent(client, session)
    assert note(client, headers_for(again.get_json())).status_code == 200


def test_a_later_sidebar_resumes_the_sign_in_until_the_agent_signs_out(client, session, launch):
    _page, claimed = sign_in_agent(client, session)
    remember = claimed.get_json()["remember"]
    later = headers_from_page(launch().get_data(as_text=True))
    resumed = client.post("/zendesk/api/agent/resume", headers=later, json={"remember": remember})
    assert resumed.status_code == 200 and resumed.get_json()["agent"]["name"] == "Sam Agent"
    assert note(client, headers_for(resumed.get_json()), key="resumed-1").status_code == 200

    forged = client.post("/zendesk/api/agent/resume", headers=later,
                         json={"remember": remember[:-2] + "xx"})
    assert forged.status_code == 401

    out = client.post("/zendesk/api/agent/sign-out", headers=headers_for(resumed.get_json()))
    assert out.status_code == 200 and out.get_json()["agent"] is None
    assert client.post("/zendesk/api/agent/resume", headers=later,
                       json={"remember": remember}).status_code == 401
    # The session from before signing out no longer writes either.
    refused = note(client, headers_for(claimed.get_json()), key="after-sign-out")
    assert refused.status_code == 401


def test_pending_writes_are_retried_as_the_agent_who_asked(app, client, session, zd, runner):
    _page, claimed = sign_in_agent(client, session)
    zd.faults.fail_next(3, status=503)
    assert note(client, headers_for(claimed.get_json())).status_code == 502
    with app.extensions["store"].session() as s:
        s.execute(update(TicketAction).values(
            next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
        s.commit()
    out = runner.invoke(args=["zendesk", "retry-pending"])
    assert out.exit_code == 0 and "1 pending write(s) completed" in out.output
    assert [c["author_id"] for c in private_notes(zd, 103)] == [9002]


def test_a_customer_account_cannot_sign_in(app, session):
    """Only the helpdesk's staff sign in; a Zendesk end user approving the consent is refused."""
    with app.extensions["store"].session() as s:
        agents = Agents(s, app.extensions["secret_box"])
        tenant_id = sandbox_zendesk_id(app)
        state, claim, _ = agents.start(tenant_id, "http://localhost/zendesk/agent/callback")
        pending = agents.pending(state)
        with pytest.raises(SignInRequired, match="Only agents and admins"):
            agents.finish(pending, HostUser("9101", "Jordan Reyes", None, "end-user"),
                          {"access_token": "t" * 20})
        found = agents.claim(tenant_id, claim)
        assert found.status == "refused" and "Only agents" in found.reason
        assert s.scalars(select(AgentGrant)).all() == []


def test_two_workers_refreshing_at_once_both_end_up_signed_in(app):
    """Zendesk rotates the pair, so only one worker refreshes: the other, holding the same old
    tokens, waits for the grant's row and finds the new pair instead of refreshing again."""
    with app.extensions["store"].session() as s:
        agents = Agents(s, app.extensions["secret_box"])
        tenant_id = sandbox_zendesk_id(app)
        expiring = {"access_token": "old-access", "refresh_token": "old-refresh",
                    "expires_at": datetime.now(UTC).timestamp() + 5}
        state, _claim, _ = agents.start(tenant_id, "http://localhost/cb")
        stale = agents.finish(agents.pending(state), HostUser("9002", "Sam Agent", None, "agent"),
                              expiring)
        # The other worker refreshed first and stored the new pair.
        agents.fresh(stale, lambda _c: {"access_token": "new-access",
                                        "refresh_token": "new-refresh",
                                        "expires_at": datetime.now(UTC).timestamp() + 7200})

        def second_refresh(_creds):
            raise AssertionError("refreshed twice: Zendesk would refuse the old refresh token")

        assert agents.fresh(stale, second_refresh).credentials["access_token"] == "new-access"

        # A refusal nobody recovered from means signing in again.
        s.execute(update(AgentGrant).values(credentials_encrypted=app.extensions[
            "secret_box"].seal(expiring)))
        s.commit()

        def refused(_creds):
            raise SignInRequired("revoked")

        with pytest.raises(SignInRequired):
            agents.fresh(agents.get(tenant_id, "9002"), refused)
        assert agents.get(tenant_id, "9002") is None


def test_a_refresh_zendesk_doesnt_answer_is_a_503_not_a_500(app, client, session, zd,
                                                            monkeypatch):
    from plugin.connectors.base import UpstreamTimeout
    from plugin.hosts.zendesk.client import ZendeskClient

    zd.access_ttl = 30  # inside the refresh margin
    _page, claimed = sign_in_agent(client, session)

    def no_answer(self, **kwargs):
        raise UpstreamTimeout("no answer", system="zendesk")

    monkeypatch.setattr(ZendeskClient, "refresh_grant", no_answer)
    resp = note(client, headers_for(claimed.get_json()))
    assert resp.status_code == 503
    assert resp.get_json()["error"]["code"] == "helpdesk_unavailable"
    assert _grant_credentials(app) is not None  # still signed in: try again later


def test_a_sign_in_link_opened_in_another_browser_is_refused(app, client, session):
    """Someone starts a sign-in and sends its link to a colleague: whoever opens it must not
    become the starter's agent."""
    started = client.post("/zendesk/api/agent/sign-in",
                          headers={**session, "User-Agent": "starter-browser"})
    victim = app.test_client()
    start = urlsplit(started.get_json()["start_url"])
    to_zendesk = victim.get(f"{start.path}?{start.query}", headers={"User-Agent": "victim"})
    authorize = urlsplit(to_zendesk.headers["Location"])
    consent = requests.post(authorize._replace(query="").geturl(),
                            data={**dict(parse_qsl(authorize.query)), "user_id": "9001"},
                            allow_redirects=False, timeout=5)
    back = urlsplit(consent.headers["Location"])
    page = victim.get(f"{back.path}?{back.query}", headers={"User-Agent": "victim"})
    assert page.status_code == 403 and "another browser" in page.get_data(as_text=True)
    claimed = client.post("/zendesk/api/agent/claim", headers=session,
                          json={"claim": started.get_json()["claim"]})
    assert claimed.status_code == 403 and _grant_credentials(app) is None


def test_signing_out_ends_the_sessions_that_named_that_sign_in(client, session, zd):
    _page, first = sign_in_agent(client, session)
    old = headers_for(first.get_json())
    client.post("/zendesk/api/agent/sign-out", headers=old)
    _page, second = sign_in_agent(client, session)  # signed in again (a new grant)
    assert second.status_code == 200
    resp = note(client, old, key="old-session-1")
    assert resp.status_code == 401 and private_notes(zd, 103) == []


# -- helpers


def _consent(client, started, user_id=9002):
    start = urlsplit(started["start_url"])
    authorize = urlsplit(client.get(f"{start.path}?{start.query}").headers["Location"])
    consent = requests.post(authorize._replace(query="").geturl(),
                            data={**dict(parse_qsl(authorize.query)), "user_id": str(user_id)},
                            allow_redirects=False, timeout=5)
    back = urlsplit(consent.headers["Location"])
    return f"{back.path}?{back.query}"


def _finish(client, started):
    assert client.get(_consent(client, started)).status_code == 200


def _grant_credentials(app):
    with app.extensions["store"].session() as s:
        row = s.scalar(select(AgentGrant))
        return app.extensions["secret_box"].open(row.credentials_encrypted) if row else None




def test_disconnecting_the_installation_forgets_every_agent_sign_in(app, client, session, runner):
    _page, claimed = sign_in_agent(client, session)
    assert _grant_credentials(app) is not None
    out = runner.invoke(args=["installations", "disconnect", "zendesk:order-truth-sandbox:1"])
    assert out.exit_code == 0, out.output
    assert _grant_credentials(app) is None
