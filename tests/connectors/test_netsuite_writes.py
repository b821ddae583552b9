"""NetSuiteClient's REST record writes: line reads, transforms, external-id lookups.

Against the sandbox's simulated NetSuite (order 1002: a Loop return the ERP lacks; order
1004: a store return NetSuite never received), and on recorded payloads for the error
envelope, the 204-without-Location answer and timeouts.
"""

from __future__ import annotations

import json

import pytest
import requests

from plugin.connectors.base import (
    BadResponseError,
    ConnectorConfig,
    NotFoundError,
    UpstreamError,
    UpstreamTimeout,
)
from plugin.connectors.netsuite import NetSuiteClient
from plugin.core.model import OrderRef, ReturnState, StockLine
from plugin.core.orderid import parse_order_id
from plugin.core.record import FlagCode
from plugin.sandbox.vendors.netsuite import CREDENTIALS
from tests.conftest import repo_of

KEY = "zendesk:order-truth-sandbox:1"
LOOP_RETURN_1002 = "37601002"  # the sandbox's Loop return id for order 1002
BROOKLYN = "2"  # the simulated NetSuite's location id for "Brooklyn Store"

# Recorded-style payloads (the shapes Oracle documents) for a client on the default host.
BASE = "https://1234567-sb1.suitetalk.api.netsuite.com"
RECORD = BASE + "/services/rest/record/v1"
CREDS = {"account_id": "1234567_SB1", "consumer_key": "ck", "consumer_secret": "cs",
         "token_id": "tk", "token_secret": "ts"}
INVALID_CONTENT = {
    "type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1",
    "title": "Bad Request",
    "status": 400,
    "o:errorDetails": [{
        "detail": "Invalid value for the resource or sub-resource field 'item'. Provide a "
                  "valid value.",
        "o:errorPath": "item.items[0].item",
        "o:errorCode": "INVALID_CONTENT",
    }],
}
SALES_ORDER_EXPANDED = {
    "links": [{"rel": "self", "href": f"{RECORD}/salesOrder/3"}],
    "id": "3",
    "tranId": "SO-3",
    "item": {
        "links": [{"rel": "self", "href": f"{RECORD}/salesOrder/3/item"}],
        "items": [
            {"links": [{"rel": "self", "href": f"{RECORD}/salesOrder/3/item/1"}], "line": 1,
             "item": {"links": [], "id": "77", "refName": "HOODIE : HOODIE-GRY-L"},
             "quantity": 2.0, "rate": 44.5},
            # A subtotal line has no item and no quantity.
            {"links": [{"rel": "self", "href": f"{RECORD}/salesOrder/3/item/2"}], "line": 2},
            {"links": [{"rel": "self", "href": f"{RECORD}/salesOrder/3/item/4"}], "line": 4,
             "item": {"links": [], "id": "78", "refName": "TEE-BLK-M"}, "quantity": 1.0},
        ],
        "totalResults": 3,
    },
}


# ---------------------------------------------------------------- against the sandbox


@pytest.fixture
def ns(sandbox):
    """A NetSuite client on the session's sandbox, its created documents cleared around it."""
    sandbox.state.reset()
    session = requests.Session()
    session.trust_env = False  # never route 127.0.0.1 through a proxy from the environment
    client = NetSuiteClient(ConnectorConfig(sandbox.url + "/netsuite", CREDENTIALS),
                            session=session)
    yield client
    session.close()
    sandbox.state.reset()


def order(number: str) -> OrderRef:
    return OrderRef(number=number, name=f"#{number}")


def sales_order_id(ns: NetSuiteClient, number: str) -> str:
    [sale] = ns.fetch(order(number)).sales
    return sale.internal_id


def record(app, number: str):
    with repo_of(app) as repo:
        tenant = repo.find(KEY)
    return app.extensions["order_truth"].lookup(tenant, parse_order_id(number, "#"),
                                                refresh=True)


def codes(truth) -> set[FlagCode]:
    return {flag.code for flag in truth.flags}


def test_sales_order_lines_are_read_with_their_order_line_numbers(ns):
    lines = ns.sales_order_lines(sales_order_id(ns, "1002"))
    assert lines == [{"line": 1, "item_id": lines[0]["item_id"], "sku": "HOODIE-GRY-L",
                      "quantity": 1}]
    assert lines[0]["item_id"].isdigit()


def test_an_unknown_sales_order_is_not_found(ns):
    with pytest.raises(NotFoundError) as info:
        ns.sales_order_lines("999999")
    assert info.value.code == "NONEXISTENT_ID"


def test_return_authorization_for_a_portal_return_the_erp_lacks(app, ns):
    assert FlagCode.RETURN_NOT_IN_ERP in codes(record(app, "1002"))
    so_id = sales_order_id(ns, "1002")
    [line] = ns.sales_order_lines(so_id)
    external = ns.ra_external_id(LOOP_RETURN_1002)
    assert external == f"loop-{LOOP_RETURN_1002}"

    ra_id = ns.create_return_authorization(so_id, [(line["line"], 1)], external,
                                           f"Loop return {LOOP_RETURN_1002}")
    assert ra_id.isdigit()
    assert ns.find_by_external_id("returnAuthorization", external) == ra_id

    # The same externalId again: refused in NetSuite's envelope, the code on the error.
    with pytest.raises(UpstreamError) as info:
        ns.create_return_authorization(so_id, [(line["line"], 1)], external, "again")
    assert info.value.http_status == 400
    assert info.value.code == "DUP_RCRD"
    assert "This record already exists" in info.value.message

    [ra] = ns.fetch(order("1002")).return_authorizations
    assert (ra.internal_id, ra.created_from, ra.portal_return_id) == (
        ra_id, so_id, LOOP_RETURN_1002)
    assert ra.state is ReturnState.AUTHORIZED  # status B, Pending Receipt
    assert ra.status_raw == "RtnAuth:B"
    assert ra.total is not None and ra.total.format() == "$89.00"
    assert ns.transaction_lines("returnAuthorization", ra_id)[0]["sku"] == "HOODIE-GRY-L"

    truth = record(app, "1002")
    assert FlagCode.RETURN_NOT_IN_ERP not in codes(truth)
    [merged] = truth.returns
    assert merged.erp_ra is not None and merged.erp_ra.internal_id == ra_id


def test_transform_validates_lines_like_netsuite(ns):
    so_id = sales_order_id(ns, "1002")
    for lines, path in (([(7, 1)], "item.items[0].orderLine"),
                        ([(1, 2)], "item.items[0].quantity")):
        with pytest.raises(BadResponseError) as info:
            ns.create_return_authorization(so_id, lines, "loop-x", "memo")
        assert info.value.code == "INVALID_CONTENT", path
    assert ns.find_by_external_id("returnAuthorization", "loop-x") is None
    with pytest.raises(NotFoundError):
        ns.create_return_authorization("999999", [(1, 1)], "loop-y", "memo")
    # An item sublist that isn't {"items": [...]}.
    with pytest.raises(BadResponseError) as info:
        ns.transform("salesOrder", so_id, "returnAuthorization", {"item": "nope"})
    assert info.value.code == "INVALID_CONTENT"


def test_find_by_external_id_reads_seeded_documents_and_misses(ns):
    assert ns.find_by_external_id("returnAuthorization", "loop-37601001") == "100102"
    assert ns.find_by_external_id("returnAuthorization", "loop-0") is None
    with pytest.raises(ValueError):
        ns.find_by_external_id("returnAuthorization", "has|pipe")


def test_item_receipt_for_a_store_return_the_erp_never_received(app, ns):
    before = record(app, "1004")
    assert FlagCode.STORE_RETURN_NOT_IN_INVENTORY in codes(before)
    so_id = sales_order_id(ns, "1004")
    [line] = ns.sales_order_lines(so_id)
    assert (line["sku"], line["quantity"]) == ("CANDLE-FIG", 1)
    # A store RA names the shop's refund, not a portal return (no "loop-" prefix).
    ra_id = ns.create_return_authorization(so_id, [(line["line"], 1)], "pos-9101004",
                                           "Store return at Brooklyn Store")
    [ra_line] = ns.transaction_lines("returnAuthorization", ra_id)

    receipt_id = ns.receive_return(ra_id, [(ra_line["line"], 1)], BROOKLYN, "pos-9101004-r")
    assert ns.find_by_external_id("itemReceipt", "pos-9101004-r") == receipt_id

    facts = ns.fetch(order("1004"))
    [receipt] = facts.item_receipts
    assert (receipt.internal_id, receipt.created_from) == (receipt_id, ra_id)
    assert receipt.lines == (StockLine(sku="CANDLE-FIG", quantity=1, location="Brooklyn Store"),)
    [ra] = facts.return_authorizations
    assert ra.state is ReturnState.RECEIVED  # received in full: F, Pending Refund

    # Nothing is left to receive on the RA (now Pending Refund).
    with pytest.raises(BadResponseError) as info:
        ns.receive_return(ra_id, [(ra_line["line"], 1)], BROOKLYN, "pos-9101004-r2")
    assert info.value.code == "USER_ERROR"

    after = record(app, "1004")
    assert FlagCode.STORE_RETURN_NOT_IN_INVENTORY not in codes(after)
    store = [r for r in after.returns if r.channel == "store"]
    assert [r.erp_ra.internal_id for r in store if r.erp_ra] == [ra_id]


def test_item_receipt_refuses_an_unknown_location_and_too_many_units(ns):
    so_id = sales_order_id(ns, "1004")
    ra_id = ns.create_return_authorization(so_id, [(1, 1)], "pos-1004-a", "store return")
    with pytest.raises(BadResponseError) as info:
        ns.receive_return(ra_id, [(1, 1)], "99", "pos-1004-a-r")
    assert info.value.code == "INVALID_CONTENT"
    with pytest.raises(BadResponseError) as info:
        ns.receive_return(ra_id, [(1, 2)], BROOKLYN, "pos-1004-a-r")
    assert info.value.code == "INVALID_CONTENT"
    assert ns.fetch(order("1004")).item_receipts == ()


# ---------------------------------------------------------------- recorded payloads


@pytest.fixture
def client(sleeps):
    return NetSuiteClient(ConnectorConfig("", CREDS), sleep=sleeps,
                          nonce=lambda: "n0nce", clock=lambda: 1772366400)


TRANSFORM_URL = f"{RECORD}/salesOrder/3/!transform/returnAuthorization"


def test_transform_request_shape_and_the_id_from_location(client, mocked):
    mocked.post(TRANSFORM_URL, status=204,
                headers={"Location": f"{RECORD}/returnAuthorization/647"})
    new_id = client.create_return_authorization("3", [(1, 1), (4, 2)], "loop-42", "Loop 42")
    assert new_id == "647"
    [call] = mocked.calls
    assert call.request.url == TRANSFORM_URL + "?replace=item"
    assert call.request.headers["Authorization"].startswith("OAuth ")
    assert call.request.headers["Content-Type"] == "application/json"
    assert json.loads(call.request.body) == {
        "externalId": "loop-42", "memo": "Loop 42",
        "item": {"items": [{"orderLine": 1, "quantity": 1}, {"orderLine": 4, "quantity": 2}]},
    }


def test_item_receipt_body(client, mocked):
    mocked.post(f"{RECORD}/returnAuthorization/647/!transform/itemReceipt", status=204,
                headers={"Location": f"{RECORD}/itemReceipt/900"})
    assert client.receive_return("647", [(1, 1)], "6", "rcpt-1") == "900"
    assert json.loads(mocked.calls[0].request.body) == {
        "externalId": "rcpt-1",
        "item": {"items": [{"orderLine": 1, "quantity": 1, "itemReceive": True,
                            "location": {"id": "6"}}]},
    }


def test_sales_order_lines_from_an_expanded_record(client, mocked):
    mocked.get(f"{RECORD}/salesOrder/3", json=SALES_ORDER_EXPANDED)
    assert client.sales_order_lines("3") == [
        {"line": 1, "item_id": "77", "sku": "HOODIE-GRY-L", "quantity": 2},
        {"line": 4, "item_id": "78", "sku": "TEE-BLK-M", "quantity": 1},
    ]
    assert mocked.calls[0].request.url == f"{RECORD}/salesOrder/3?expandSubResources=true"


def test_a_record_without_its_item_sublist_is_bad_response(client, mocked):
    mocked.get(f"{RECORD}/salesOrder/3", json={"id": "3", "tranId": "SO-3"})
    with pytest.raises(BadResponseError):
        client.sales_order_lines("3")


def test_find_by_external_id(client, mocked):
    mocked.get(f"{RECORD}/returnAuthorization/eid:loop-42",
               json={"links": [], "id": "647", "externalId": "loop-42"})
    mocked.get(f"{RECORD}/returnAuthorization/eid:loop-43", status=404,
               json={"type": "x", "title": "Not Found", "status": 404,
                     "o:errorDetails": [{"detail": "The record instance does not exist.",
                                         "o:errorCode": "NONEXISTENT_ID"}]})
    assert client.find_by_external_id("returnAuthorization", "loop-42") == "647"
    assert client.find_by_external_id("returnAuthorization", "loop-43") is None


@pytest.mark.parametrize("headers", [{}, {"Location": f"{RECORD}/returnAuthorization/"},
                                     {"Location": f"{BASE}/services/rest/async/v1/job/5"}])
def test_204_without_a_usable_location_is_bad_response(client, mocked, headers):
    mocked.post(TRANSFORM_URL, status=204, headers=headers)
    with pytest.raises(BadResponseError) as info:
        client.create_return_authorization("3", [(1, 1)], "loop-42", "memo")
    assert info.value.http_status == 204
    assert len(mocked.calls) == 1


def test_error_envelope_detail_and_code_reach_the_error(client, mocked):
    mocked.post(TRANSFORM_URL, status=400, json=INVALID_CONTENT)
    with pytest.raises(BadResponseError) as info:
        client.create_return_authorization("3", [(1, 1)], "loop-42", "memo")
    assert info.value.code == "INVALID_CONTENT"
    assert "Invalid value for the resource or sub-resource field 'item'" in info.value.message
    assert info.value.message.startswith("HTTP 400 INVALID_CONTENT: ")
    assert len(mocked.calls) == 1


def test_a_read_timeout_is_typed_and_the_post_is_not_retried(client, mocked):
    mocked.post(TRANSFORM_URL, body=requests.ReadTimeout("read timed out"))
    with pytest.raises(UpstreamTimeout):
        client.create_return_authorization("3", [(1, 1)], "loop-42", "memo")
    assert len(mocked.calls) == 1


@pytest.mark.parametrize("status", [429, 503])
def test_a_throttled_transform_is_not_repeated(client, mocked, status):
    mocked.post(TRANSFORM_URL, status=status, json={
        "type": "x", "title": "x", "status": status,
        "o:errorDetails": [{"detail": "Concurrent request limit exceeded.",
                            "o:errorCode": "CONCURRENCY_LIMIT_EXCEEDED"}]})
    with pytest.raises(UpstreamError):
        client.create_return_authorization("3", [(1, 1)], "loop-42", "memo")
    assert len(mocked.calls) == 1


def test_a_connect_timeout_is_retried_because_nothing_was_sent(client, mocked):
    mocked.post(TRANSFORM_URL, body=requests.ConnectTimeout("connect timed out"))
    mocked.post(TRANSFORM_URL, status=204,
                headers={"Location": f"{RECORD}/returnAuthorization/647"})
    assert client.create_return_authorization("3", [(1, 1)], "loop-42", "memo") == "647"
    assert len(mocked.calls) == 2


@pytest.mark.parametrize("call", [
    lambda c: c.create_return_authorization("3", [], "loop-1", "m"),
    lambda c: c.create_return_authorization("3", [(1, 0)], "loop-1", "m"),
    lambda c: c.create_return_authorization("3", [(1, 1)], "loop 1", "m"),
    lambda c: c.create_return_authorization("3/../x", [(1, 1)], "loop-1", "m"),
    lambda c: c.receive_return("647", [(1, 1)], "Brooklyn", "r-1"),
    lambda c: c.transform("salesOrder", "3", "return/x", {}),
])
def test_bad_arguments_are_refused_before_sending(client, mocked, call):
    with pytest.raises(ValueError):
        call(client)
    assert len(mocked.calls) == 0


def test_location_ids_by_name(client, mocked):
    page = {"links": [], "count": 4, "hasMore": False, "offset": 0, "totalResults": 4,
            "items": [
                {"links": [], "id": "1", "name": "Main Warehouse"},
                {"links": [], "id": "6", "name": "Brooklyn"},
                {"links": [], "id": "9", "name": "Brooklyn Store"},
                {"links": [], "name": "Brooklyn Store"},  # no id: left out, not fatal
            ]}
    mocked.post(f"{BASE}/services/rest/query/v1/suiteql", json=page)
    assert client.location_ids(" brooklyn store") == ["9"]
    [call] = mocked.calls
    query = json.loads(call.request.body)["q"]
    assert "FROM location" in query and "isinactive = 'F'" in query


def test_location_ids_against_the_sandbox(ns):
    assert ns.location_ids("Brooklyn Store") == [BROOKLYN]
    assert ns.location_ids("BROOKLYN STORE") == [BROOKLYN]
    assert ns.location_ids("Nowhere") == []
