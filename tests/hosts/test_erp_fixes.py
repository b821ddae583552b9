"""Make the ERP documents the record shows missing, from the sidebar, against the sandbox.

Sandbox orders: 1002 (ticket 102), a Loop return the ERP has no return authorization for
(zone 1); 1004 (ticket 104), a candle the Brooklyn store took back that NetSuite never
received (zone 3).
"""

from __future__ import annotations

import pytest
import requests

from plugin.actions.audit import AuditLog
from plugin.connectors.base import ConnectorConfig, UpstreamError, UpstreamTimeout
from plugin.connectors.netsuite import NetSuiteClient
from plugin.core.record import FlagCode
from plugin.sandbox.vendors.netsuite import CREDENTIALS
from tests.conftest import repo_of

from .conftest import audit_entries as entries
from .conftest import crash_in as crash
from .conftest import fresh_record as record

KEY = "zendesk:order-truth-sandbox:1"
PREVIEW = "/zendesk/api/tickets/{}/erp/preview"
FIX = "/zendesk/api/tickets/{}/erp"
RECORD = "/zendesk/api/record"
LOOP_RETURN = "37601002"
RA = {"order_id": "1002", "action": "erp_return_authorization", "subject": LOOP_RETURN}
STORE_REFUND = "9101004"
STORE_GID = f"gid://shopify/Refund/{STORE_REFUND}"


def allow(app, *, ra=True, receipts=True, roles="admin,agent"):
    with repo_of(app) as repo:
        tenant = repo.find(KEY)
        repo.update_settings(tenant.id, {
            "features": {"erp_return_authorizations": ra, "erp_item_receipts": receipts},
            "actions": {"erp_return_authorization": {"roles": roles},
                        "erp_item_receipt": {"roles": roles}}})


@pytest.fixture
def ns(app, sandbox):
    """A NetSuite client on the sandbox (the app fixture cleared its documents)."""
    session = requests.Session()
    session.trust_env = False
    return NetSuiteClient(ConnectorConfig(sandbox.url + "/netsuite", CREDENTIALS),
                          session=session)




def codes(truth):
    return {f.code for f in truth.flags}


def test_zone1_confirm_create_record_and_note(app, client, agent_session, ns, zd):
    allow(app)
    page = client.get(RECORD, query_string={"ticket_id": "102", "order_id": "1002"},
                      headers=agent_session).get_data(as_text=True)
    assert f'data-ot-erp-subject="{LOOP_RETURN}"' in page
    preview = client.post(PREVIEW.format(102), headers=agent_session, json=RA)
    assert preview.status_code == 200, preview.get_data(as_text=True)
    [step] = preview.get_json()["steps"]
    assert "1 × HOODIE-GRY-L" in step and f"loop-{LOOP_RETURN}" in step
    assert ns.find_by_external_id("returnAuthorization", f"loop-{LOOP_RETURN}") is None

    first = client.post(FIX.format(102), headers=agent_session, json=RA)
    assert first.status_code == 200, first.get_data(as_text=True)
    ra_id = ns.find_by_external_id("returnAuthorization", f"loop-{LOOP_RETURN}")
    assert ra_id and ra_id in first.get_json()["message"]
    # A second click: the record no longer shows it missing; nothing more is made.
    second = client.post(FIX.format(102), headers=agent_session, json=RA)
    assert second.status_code == 409 and second.get_json()["error"]["code"] == "nothing_to_fix"
    [entry] = entries(app)
    assert (entry.action, entry.status, entry.upstream_ids) == (
        "erp_return_authorization", "done", [ra_id])
    after = client.get(RECORD, query_string={"ticket_id": "102", "order_id": "1002"},
                       headers=agent_session).get_data(as_text=True)
    assert "Return not in ERP" not in after and "data-ot-erp-subject" not in after
    notes = [c for c in zd.ticket(102)["comments"] if not c["public"]]
    assert len(notes) == 1 and f"return authorization {ra_id}" in notes[0]["body"]
    assert notes[0]["author_id"] == 9002


def test_zone3_creates_the_store_ra_and_receives_it_at_the_store(app, client, agent_session,
                                                                 ns):
    allow(app)
    body = {"order_id": "1004", "action": "erp_item_receipt", "subject": STORE_GID}
    page = client.get(RECORD, query_string={"ticket_id": "104", "order_id": "1004"},
                      headers=agent_session).get_data(as_text=True)
    assert f'data-ot-erp-subject="{STORE_GID}"' in page
    assert f"Store return {STORE_REFUND} (1 × CANDLE-FIG at Brooklyn Store)" in page
    preview = client.post(PREVIEW.format(104), headers=agent_session, json=body)
    assert preview.status_code == 200, preview.get_data(as_text=True)
    steps = preview.get_json()["steps"]
    assert len(steps) == 2 and "Brooklyn Store" in steps[1] and "1 × CANDLE-FIG" in steps[1]
    done = client.post(FIX.format(104), headers=agent_session, json=body)
    assert done.status_code == 200, done.get_data(as_text=True)
    ra_id = ns.find_by_external_id("returnAuthorization", f"pos-{STORE_REFUND}")
    receipt_id = ns.find_by_external_id("itemReceipt", f"pos-{STORE_REFUND}-receipt")
    assert ra_id and receipt_id
    assert entries(app)[0].upstream_ids == [ra_id, receipt_id]
    truth = record(app, "1004")
    assert FlagCode.STORE_RETURN_NOT_IN_INVENTORY not in codes(truth)
    [line] = [i for i in truth.inventory if i.channel == "store"]
    assert (line.status, line.received_quantity) == ("credited", 1)


@pytest.mark.parametrize(("setup", "code"), [
    ({"ra": False}, "disabled"),
    ({"roles": "admin"}, "forbidden_role"),
])
def test_refused_before_any_erp_call(app, client, agent_session, sandbox, setup, code):
    allow(app, **setup)
    before = sandbox.state.request_counts().get("erp", 0)
    resp = client.post(FIX.format(102), headers=agent_session, json=RA)
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == code
    assert sandbox.state.request_counts().get("erp", 0) == before and entries(app) == []


def test_bad_input_is_400(app, client, agent_session):
    allow(app)
    for body in ({"order_id": "1002", "action": "erp_return_authorization"},
                 {**RA, "action": "delete_everything"},
                 {**RA, "subject": "a b; drop"},
                 {**RA, "order_id": "x" * 300}):
        resp = client.post(FIX.format(102), headers=agent_session, json=body)
        assert resp.status_code == 400, body
    assert entries(app) == []


def test_an_order_with_nothing_missing_is_refused(app, client, agent_session, ns):
    allow(app)
    resp = client.post(FIX.format(101), headers=agent_session,
                       json={**RA, "order_id": "1001", "subject": "37601001"})
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "nothing_to_fix"
    assert entries(app) == []


def test_made_meanwhile_by_the_erp_s_own_sync_is_found_not_made_again(app, client,
                                                                       agent_session, ns,
                                                                       monkeypatch):
    """The sync posts the RA between the agent's confirm and click: NetSuite refuses the
    duplicate external id, and the RA it has is the one recorded."""
    allow(app)
    client.post(PREVIEW.format(102), headers=agent_session, json=RA)
    real = NetSuiteClient.create_return_authorization

    def sync_first(self, sales_order_id, lines, external_id, memo):
        real(self, sales_order_id, lines, external_id, "the ERP's own sync")
        return real(self, sales_order_id, lines, external_id, memo)  # DUP_RCRD

    monkeypatch.setattr(NetSuiteClient, "create_return_authorization", sync_first)
    resp = client.post(FIX.format(102), headers=agent_session, json=RA)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    ra_id = ns.find_by_external_id("returnAuthorization", f"loop-{LOOP_RETURN}")
    assert entries(app)[0].upstream_ids == [ra_id]
    assert len(record(app, "1002").erp.return_authorizations) == 1


def test_a_lost_answer_is_found_made(app, client, agent_session, ns, monkeypatch):
    allow(app)
    real = NetSuiteClient.create_return_authorization

    def lost(self, *args):
        real(self, *args)
        raise UpstreamTimeout("read timed out", system="netsuite")

    monkeypatch.setattr(NetSuiteClient, "create_return_authorization", lost)
    resp = client.post(FIX.format(102), headers=agent_session, json=RA)
    assert resp.status_code == 200 and resp.get_json()["status"] == "done"
    assert [e.status for e in entries(app)] == ["done"]
    assert len(record(app, "1002").erp.return_authorizations) == 1


def test_a_refusal_is_kept_and_asking_again_works(app, client, agent_session, ns,
                                                  monkeypatch):
    allow(app)

    def refused(self, *args):
        raise UpstreamError("Invalid value for the resource field 'item'.", system="netsuite",
                            http_status=400, code="INVALID_CONTENT")

    monkeypatch.setattr(NetSuiteClient, "create_return_authorization", refused)
    resp = client.post(FIX.format(102), headers=agent_session, json=RA)
    assert resp.status_code == 422 and "Invalid value" in resp.get_json()["message"]
    assert [(e.status, e.error) for e in entries(app)][0][0] == "failed"
    monkeypatch.undo()
    again = client.post(FIX.format(102), headers=agent_session, json=RA)
    assert again.status_code == 200, again.get_data(as_text=True)
    assert [e.status for e in entries(app)] == ["done"]


def test_a_crash_between_the_two_documents_makes_only_the_receipt_next_time(
        app, client, agent_session, ns, monkeypatch):
    allow(app)
    body = {"order_id": "1004", "action": "erp_item_receipt", "subject": STORE_GID}

    crash(monkeypatch, app, NetSuiteClient, "receive_return",
          lambda: client.post(FIX.format(104), headers=agent_session, json=body))
    ra_id = ns.find_by_external_id("returnAuthorization", f"pos-{STORE_REFUND}")
    assert ra_id is not None  # the first document was made
    resp = client.post(FIX.format(104), headers=agent_session, json=body)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert entries(app)[0].upstream_ids[0] == ra_id  # the same RA, received
    assert len(record(app, "1004").erp.return_authorizations) == 1
    assert FlagCode.STORE_RETURN_NOT_IN_INVENTORY not in codes(record(app, "1004"))


@pytest.mark.parametrize(("crash_in", "said", "status", "made"), [
    ("complete", "1 ERP documents found made", "done", True),
    ("create_return_authorization", "1 never made", "failed", False),
])
def test_a_crash_is_reconciled_from_the_erp(app, client, agent_session, runner, ns,
                                            monkeypatch, crash_in, said, status, made):
    allow(app)

    crash(monkeypatch, app, AuditLog if crash_in == "complete" else NetSuiteClient, crash_in,
          lambda: client.post(FIX.format(102), headers=agent_session, json=RA))
    out = runner.invoke(args=["audit", "reconcile"])
    assert said in out.output, out.output
    assert [e.status for e in entries(app)] == [status]
    found = ns.find_by_external_id("returnAuthorization", f"loop-{LOOP_RETURN}")
    assert (found is not None) == made


def test_a_store_ra_the_sync_made_meanwhile_is_received(app, client, agent_session, ns,
                                                        monkeypatch):
    """NetSuite refuses the store RA as a duplicate (the sync made it a moment before): that
    RA is found by its external id and the goods are received on it, in the same click."""
    allow(app)
    real = NetSuiteClient.create_return_authorization

    def sync_first(self, sales_order_id, lines, external_id, memo):
        real(self, sales_order_id, lines, external_id, "the ERP's own sync")
        return real(self, sales_order_id, lines, external_id, memo)  # DUP_RCRD

    monkeypatch.setattr(NetSuiteClient, "create_return_authorization", sync_first)
    resp = client.post(FIX.format(104), headers=agent_session,
                       json={"order_id": "1004", "action": "erp_item_receipt",
                             "subject": STORE_GID})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    ra_id = ns.find_by_external_id("returnAuthorization", f"pos-{STORE_REFUND}")
    receipt_id = ns.find_by_external_id("itemReceipt", f"pos-{STORE_REFUND}-receipt")
    assert entries(app)[0].upstream_ids == [ra_id, receipt_id]
