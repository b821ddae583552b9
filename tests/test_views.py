"""The widget, the JSON API and the sandbox helpdesk pages as an agent's browser sees them."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from markupsafe import escape

from plugin.sandbox.faults import FaultSpec
from plugin.sandbox.scenarios import SCENARIOS


def flag_codes(body: str) -> set[str]:
    return set(re.findall(r'data-code="([A-Z_]+)"', body))


def source_statuses(body: str) -> dict[str, str]:
    return dict(re.findall(r'data-source="(\w+)" data-status="(\w+)"', body))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_widget_renders_every_scenario(client, scenario):
    resp = client.get(f"/widget?order_id={scenario.order_number}")
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    assert f"#{scenario.order_number}" in body
    assert 'class="ot-headline"' in body
    assert set(source_statuses(body)) == {"portal", "processor", "erp", "pos"}


def test_widget_zone1_shows_flag_with_action_first(client):
    body = client.get("/widget?order_id=1002").get_data(as_text=True)
    assert flag_codes(body) == {"RETURN_NOT_IN_ERP"}
    assert body.index('class="ot-headline"') < body.index('data-code="RETURN_NOT_IN_ERP"')
    assert "Create the return authorization" in body
    assert "no return authorization" in body  # the return row names the ERP gap


def test_widget_source_down_renders_the_rest(client):
    body = client.get("/widget?order_id=1010").get_data(as_text=True)
    statuses = source_statuses(body)
    assert statuses["erp"] == "error" and statuses["portal"] == "ok"
    assert "unavailable: HTTP 503" in body
    assert "RETURN_NOT_IN_ERP" not in flag_codes(body)
    assert "<b>ERP:</b> unknown (no answer)" in body
    assert "no return authorization" not in body


def test_widget_timed_out_source_is_labelled(client):
    body = client.get("/widget?order_id=1011").get_data(as_text=True)
    assert source_statuses(body)["processor"] == "timeout"
    assert "timed out: no answer within 1 s" in body
    assert "No return on this order." in body


def test_widget_unknown_order(client):
    body = client.get("/widget?order_id=9999").get_data(as_text=True)
    assert "We couldn&#39;t find order #9999." in body
    assert set(source_statuses(body).values()) == {"not_found"}


def test_widget_without_order_id_asks_for_one(client):
    body = client.get("/widget").get_data(as_text=True)
    assert "Enter the order ID" in body
    assert 'name="order_id"' in body


@pytest.mark.parametrize(("raw", "reason"), [
    ("10 01", "may contain only letters"),
    ("<script>", "may contain only letters"),
    ("1" * 41, "at most 40 characters"),
    ("#", "An order ID is required"),
])
def test_malformed_order_id_is_a_400_with_reason_and_no_upstream_call(client, app, monkeypatch,
                                                                      raw, reason):
    monkeypatch.setattr(app.extensions["order_truth"], "lookup",
                        lambda *a, **k: pytest.fail("no upstream call for a malformed ID"))
    resp = client.get("/widget", query_string={"order_id": raw})
    assert resp.status_code == 400
    assert reason in resp.get_data(as_text=True)
    api = client.get("/api/v1/orders/" + quote(raw, safe=""))
    assert api.status_code == 400
    assert api.get_json()["error"]["code"] == "invalid_order_id"


def test_upstream_strings_are_escaped(client, sandbox, monkeypatch):
    """An XSS payload in an upstream field (Loop label carrier) renders as text."""
    payload = '<img src=x onerror="alert(1)">'
    original = sandbox.state.order

    def poisoned(number):
        data = original(number)
        if data is not None and data.loop_returns:
            for ret in data.loop_returns:
                for label in ret.get("labels", []):
                    label["carrier"] = payload
                    label["tracking_number"] = "<b>1Z</b>"
        return data

    monkeypatch.setattr(sandbox.state, "order", poisoned)
    body = client.get("/widget?order_id=1002").get_data(as_text=True)
    assert payload not in body and "<b>1Z</b>" not in body
    assert str(escape(payload)) in body  # Jinja's escaping, shown as text


def test_api_returns_the_merged_record(client):
    data = client.get("/api/v1/orders/1003").get_json()
    assert data["order_number"] == "1003"
    assert [f["code"] for f in data["flags"]] == ["ERP_REFUND_NOT_AT_PROCESSOR"]
    assert data["sources"]["processor"]["status"] == "ok"
    assert data["eligibility"]["captured"]["amount_minor"] == 15000


def test_api_reflects_sandbox_faults(client, sandbox):
    sandbox.state.faults.set("pos", FaultSpec(status=401))
    data = client.get("/api/v1/orders/1001").get_json()
    pos = data["sources"]["pos"]
    assert (pos["status"], pos["error_kind"]) == ("error", "auth")
    assert any(f["code"] == "SOURCE_UNAVAILABLE" and "reconnect" in f["suggested_action"]
               for f in data["flags"])


def test_api_for_other_installation_requires_token(client):
    resp = client.get("/api/v1/orders/1001?installation=standalone")
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "unauthorized"


def test_sandbox_helpdesk_lists_a_ticket_per_scenario(client):
    body = client.get("/sandbox").get_data(as_text=True)
    for s in SCENARIOS:
        assert s.name in body
    ticket = client.get("/sandbox/tickets/102").get_data(as_text=True)
    assert '<iframe id="sb-app" title="Order Truth" src="/sandbox/launch/102"' in ticket


def test_root_leads_to_the_sandbox(client):
    resp = client.get("/")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/sandbox")


def test_health(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_the_clip_filter_drops_bidi_controls_and_bounds_length():
    from plugin.views.filters import clip

    assert clip("re_1\u202eABC", 80) == "re_1ABC"
    assert len(clip("y" * 10_000, 40)) == 40


def test_the_openapi_description_covers_the_json_endpoints(app, client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    rules = {str(r) for r in app.url_map.iter_rules()}
    described = set()
    for path in spec["paths"]:
        flask_path = path.replace("{order_id}", "<path:order_id>").replace(
            "/zendesk/", "/<host_name>/").replace("{ticket_id}", "<ticket_id>")
        assert flask_path in rules, path
        described.add(flask_path)
    # And the other way: every JSON endpoint is described, but the record's HTML fragment
    # and its NDJSON stream, and the description itself.
    not_json = {"/<host_name>/api/record", "/<host_name>/api/record/stream",
                "/api/v1/openapi.json"}
    json_rules = {r for r in rules if "/api/" in r and not r.startswith("/_sandbox")}
    assert json_rules - not_json - described == set()
