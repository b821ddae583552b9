"""The simulated vendors speak their dialects: auth, shapes, paging, refunds, control routes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from plugin.core.money import Money
from plugin.sandbox.dialects import loop_line, loop_return
from plugin.sandbox.scenarios import SCENARIOS, OrderData, Scenario
from plugin.sandbox.server import SandboxServer
from plugin.sandbox.state import SandboxState

from .conftest import NOW, SUITEQL, Upstreams, chain_query, oauth_header, receipt_lines_query

# ---------------------------------------------------------------- auth


def test_loop_requires_its_api_key(upstreams):
    for key in (None, "wrong"):
        resp = upstreams.loop("#1001", key=key)
        assert resp.status_code == 401
        assert resp.json() == {"message": "Unauthenticated."}


def test_stripe_requires_the_secret_key(upstreams):
    resp = upstreams.stripe("/v1/refunds", key="sk_test_wrong")
    assert resp.status_code == 401
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"] == "Invalid API Key provided: sk_test_****"

    missing = upstreams.http.get(f"{upstreams.url}/stripe/v1/refunds", timeout=5)
    assert missing.status_code == 401
    assert missing.json()["error"]["message"].startswith("You did not provide an API key")


@pytest.mark.parametrize("authorization", [
    None,
    "Bearer sk_test_sandbox",
    "bad-consumer-key",
    "HMAC-SHA1",
    "tampered",
])
def test_netsuite_requires_a_valid_tba_signature(upstreams, authorization):
    url, query = upstreams.url + SUITEQL, {"limit": 1000, "offset": 0}
    header = {
        None: "",
        "bad-consumer-key": oauth_header(url, query, consumer_key="other-ck"),
        "HMAC-SHA1": oauth_header(url, query, method_name="HMAC-SHA1"),
        "tampered": oauth_header(url, {"limit": 5, "offset": 0}),
    }.get(authorization, authorization)
    resp = upstreams.http.post(url, params=query, json={"q": chain_query("#1001")},
                               headers={"Authorization": header}, timeout=5)
    assert resp.status_code == 401
    body = resp.json()
    assert body["status"] == 401
    assert body["o:errorDetails"][0]["o:errorCode"] == "INVALID_LOGIN"


def test_netsuite_accepts_a_correct_signature(upstreams):
    assert upstreams.suiteql(chain_query("#1001")).status_code == 200


def test_shopify_requires_the_access_token(upstreams):
    resp = upstreams.shopify("name:#1001", token="shpat_wrong")
    assert resp.status_code == 401
    assert resp.json() == {
        "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
    }


# ---------------------------------------------------------------- Loop


def test_loop_answers_one_return_as_an_object(upstreams):
    resp = upstreams.loop("#1001")
    assert resp.status_code == 200
    body = resp.json()
    assert isinstance(body, dict)
    assert body["id"] == 37601001
    assert body["order_name"] == "#1001"
    assert body["state"] == "closed"
    assert body["total"] == "40.00"
    assert body["currency"] == "USD"
    assert body["labels"][0]["status"] == "delivered"
    assert body["refunds"][0]["provider_refund_id"] == "re_Sbx1001a"
    assert "quantity" not in body["line_items"][0]
    assert body["created_at"] == (NOW - timedelta(days=10)).isoformat()


@pytest.mark.parametrize("order_name", ["#1004", "#9999"])
def test_loop_says_return_not_found(upstreams, order_name):
    # As public Loop clients record it: HTTP 200 with an error body, no return id.
    resp = upstreams.loop(order_name)
    assert resp.status_code == 200
    assert resp.json() == {"error": {"message": "No return found with this ID."}}


def test_loop_refuses_an_unknown_currency_type(upstreams):
    resp = upstreams.http.get(f"{upstreams.url}/loop/api/v1/warehouse/return/details",
                              params={"order_name": "#1001", "currency_type": "bitcoin"},
                              headers={"X-Authorization": "sandbox-loop-key"})
    assert resp.status_code == 422
    assert "currency_type" in resp.json()["errors"]


def test_loop_answers_several_returns_as_an_array():
    def two_returns(now):
        return OrderData(loop_returns=[
            loop_return(return_id, "2001", "open", now, total=Money(1000, "USD"),
                        lines=[loop_line(1, "SKU-1", "Thing")])
            for return_id in (1, 2)
        ])

    state = SandboxState(scenarios=(Scenario("two", "2001", "Two", "", two_returns),))
    with SandboxServer(state) as server:
        client = Upstreams(server.url)
        body = client.loop("#2001").json()
        client.http.close()
    assert [r["id"] for r in body] == [1, 2]


# ---------------------------------------------------------------- Stripe


def test_stripe_search_finds_the_payment_intent_by_order_metadata(upstreams):
    body = upstreams.search("1005", limit=10).json()
    assert body["object"] == "search_result"
    assert body["url"] == "/v1/payment_intents/search"
    assert body["has_more"] is False and body["next_page"] is None
    [payment] = body["data"]
    assert payment["id"] == "pi_Sbx1005"
    assert payment["metadata"] == {"order_id": "1005"}
    assert (payment["amount"], payment["amount_received"], payment["currency"]) == (
        10000, 10000, "usd")
    assert payment["status"] == "succeeded"


def test_stripe_search_with_no_match_is_empty(upstreams):
    body = upstreams.search("9999").json()
    assert body["data"] == []


def test_stripe_search_rejects_other_queries(upstreams):
    resp = upstreams.stripe("/v1/payment_intents/search", query="status:'succeeded'")
    assert resp.status_code == 400
    assert resp.json()["error"]["type"] == "invalid_request_error"
    assert resp.json()["error"]["param"] == "query"


def test_stripe_refund_list_pages_with_starting_after(upstreams):
    first = upstreams.stripe("/v1/refunds", payment_intent="pi_Sbx1006", limit=1).json()
    assert first["object"] == "list" and first["url"] == "/v1/refunds"
    assert first["has_more"] is True
    second = upstreams.stripe("/v1/refunds", payment_intent="pi_Sbx1006", limit=1,
                              starting_after=first["data"][0]["id"]).json()
    assert second["has_more"] is False
    ids = [first["data"][0]["id"], second["data"][0]["id"]]
    assert ids == ["re_Sbx1006b", "re_Sbx1006a"]  # newest first
    back = upstreams.stripe("/v1/refunds", payment_intent="pi_Sbx1006", limit=1,
                            ending_before="re_Sbx1006a").json()
    assert [r["id"] for r in back["data"]] == ["re_Sbx1006b"]


def test_stripe_refund_list_rejects_bad_paging(upstreams):
    unknown = upstreams.stripe("/v1/refunds", starting_after="re_nope")
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "resource_missing"
    assert upstreams.stripe("/v1/refunds", limit=101).status_code == 400
    missing = upstreams.stripe("/v1/refunds", payment_intent="pi_nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["param"] == "payment_intent"


def test_stripe_disputes_list_by_payment_intent(upstreams):
    [dispute] = upstreams.stripe("/v1/disputes", payment_intent="pi_Sbx1009",
                                 limit=100).json()["data"]
    assert dispute["status"] == "needs_response"
    assert dispute["amount"] == 12000
    assert dispute["evidence_details"]["due_by"] == int((NOW + timedelta(days=6)).timestamp())
    assert upstreams.stripe("/v1/disputes", payment_intent="pi_Sbx1001").json()["data"] == []


def _refunds_of(upstreams, pi_id):
    return upstreams.stripe("/v1/refunds", payment_intent=pi_id, limit=100).json()["data"]


def test_stripe_refund_idempotency_replays_the_same_refund(upstreams):
    params = {"payment_intent": "pi_Sbx1005", "amount": "1500",
              "reason": "requested_by_customer", "metadata[order_id]": "1005",
              "metadata[return_key]": "37601005", "metadata[erp_refund_id]": "CM-1005-2"}
    first = upstreams.refund(params, idempotency_key="refund:37601005:CM-1005-2")
    again = upstreams.refund(params, idempotency_key="refund:37601005:CM-1005-2")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    refund = first.json()
    assert refund["id"].startswith("re_")
    assert (refund["amount"], refund["currency"], refund["status"]) == (1500, "usd", "succeeded")
    assert refund["metadata"] == {"order_id": "1005", "return_key": "37601005",
                                  "erp_refund_id": "CM-1005-2"}
    listed = [r["id"] for r in _refunds_of(upstreams, "pi_Sbx1005")]
    assert listed.count(refund["id"]) == 1
    assert len(listed) == 2


def test_stripe_refund_key_reused_with_other_params_conflicts(upstreams):
    upstreams.refund({"payment_intent": "pi_Sbx1005", "amount": "100"}, idempotency_key="k")
    resp = upstreams.refund({"payment_intent": "pi_Sbx1005", "amount": "200"},
                            idempotency_key="k")
    assert resp.status_code == 409
    assert resp.json()["error"]["type"] == "idempotency_error"
    assert len(_refunds_of(upstreams, "pi_Sbx1005")) == 2


def test_stripe_refunds_without_a_key_are_separate(upstreams):
    for _ in range(2):
        assert upstreams.refund({"payment_intent": "pi_Sbx1001", "amount": "100"}).ok
    assert len(_refunds_of(upstreams, "pi_Sbx1001")) == 3


def test_stripe_refund_cannot_exceed_the_refundable_amount(upstreams):
    too_much = upstreams.refund({"payment_intent": "pi_Sbx1005", "amount": "6501"})
    assert too_much.status_code == 400
    error = too_much.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error", "charge_exceeds_source_limit", "amount")
    # Without an amount the refund takes what is left: $65.00.
    rest = upstreams.refund({"payment_intent": "pi_Sbx1005"})
    assert rest.json()["amount"] == 6500
    done = upstreams.refund({"payment_intent": "pi_Sbx1005", "amount": "1"})
    assert done.json()["error"]["code"] == "charge_already_refunded"


@pytest.mark.parametrize(("params", "code_or_param"), [
    ({"payment_intent": "pi_Sbx1007", "amount": "100"}, "charge_already_refunded"),
    ({"payment_intent": "pi_Sbx1009", "amount": "100"}, "charge_disputed"),
    ({"amount": "100"}, "parameter_missing"),
    ({"payment_intent": "pi_Sbx1001", "amount": "ten"}, "amount"),
    ({"payment_intent": "pi_Sbx1001", "reason": "because"}, "reason"),
    ({"payment_intent": "pi_Sbx1001", "colour": "red"}, "colour"),
])
def test_stripe_refund_refusals(upstreams, params, code_or_param):
    resp = upstreams.refund(params)
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert code_or_param in (error.get("code"), error.get("param"))


def test_stripe_refund_on_an_unknown_payment_intent_is_404(upstreams):
    resp = upstreams.refund({"payment_intent": "pi_nope", "amount": "100"})
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "resource_missing"


# ---------------------------------------------------------------- NetSuite


def test_suiteql_chain_query_shape(upstreams):
    resp = upstreams.suiteql(chain_query("#1001"))
    assert resp.status_code == 200
    body = resp.json()
    assert (body["count"], body["totalResults"], body["offset"], body["hasMore"]) == (
        5, 5, 0, False)
    items = body["items"]
    assert [i["type"] for i in items] == ["SalesOrd", "RtnAuth", "ItemRcpt", "CustCred",
                                          "CustRfnd"]
    for item in items:
        assert item["links"] == []
        assert all(isinstance(v, str) for k, v in item.items() if k != "links")
    so, ra, receipt, memo, refund = items
    assert "parent" not in so and "externalid" not in so
    assert so["otherrefnum"] == "#1001"
    assert (ra["status"], ra["externalid"], ra["parent"]) == ("G", "loop-37601001", so["id"])
    assert (memo["tranid"], memo["total"], memo["currency"]) == ("CM-1001", "-40.00", "USD")
    assert refund["parent"] == memo["id"] and "re_Sbx1001a" in refund["memo"]
    assert receipt["parent"] == ra["id"] and "total" not in receipt
    assert so["created"] == (NOW - timedelta(days=14)).strftime("%Y-%m-%d %H:%M:%S")


def test_suiteql_pages_with_limit_and_offset(upstreams):
    first = upstreams.suiteql(chain_query("#1001"), limit=2, offset=0).json()
    assert (first["count"], first["hasMore"], first["totalResults"]) == (2, True, 5)
    assert {link["rel"] for link in first["links"]} >= {"self", "next"}
    last = upstreams.suiteql(chain_query("#1001"), limit=2, offset=4).json()
    assert (last["count"], last["hasMore"], last["offset"]) == (1, False, 4)
    assert last["items"][0]["type"] == "CustRfnd"


def test_suiteql_receipt_lines_query(upstreams):
    chain = upstreams.suiteql(chain_query("#1001")).json()["items"]
    receipt = next(i["id"] for i in chain if i["type"] == "ItemRcpt")
    body = upstreams.suiteql(receipt_lines_query([receipt])).json()
    assert [{k: v for k, v in i.items() if k != "links"} for i in body["items"]] == [
        {"receipt": receipt, "sku": "TEE-BLK-M", "quantity": "1", "location": "Main Warehouse"}]


def test_suiteql_reads_quote_doubled_literals(upstreams):
    resp = upstreams.suiteql(chain_query("#1001' OR 'a'='a"))
    assert resp.status_code == 200
    assert resp.json()["items"] == []
    assert upstreams.suiteql(chain_query("#9999")).json()["totalResults"] == 0


@pytest.mark.parametrize("q", ["SELECT id FROM customer", ""])
def test_suiteql_rejects_other_queries(upstreams, q):
    resp = upstreams.suiteql(q)
    assert resp.status_code == 400
    assert resp.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_PARAMETER"


def test_suiteql_rejects_bad_paging(upstreams):
    resp = upstreams.suiteql(chain_query("#1001"), limit=5000)
    assert resp.status_code == 400


# ---------------------------------------------------------------- Shopify


def test_shopify_orders_query_shape(upstreams):
    body = upstreams.shopify("name:#1001").json()
    [order] = body["data"]["orders"]["nodes"]
    assert {k: order[k] for k in ("id", "name", "currencyCode", "presentmentCurrencyCode",
                                  "sourceName", "refunds")} == {
        "id": "gid://shopify/Order/5550001001", "name": "#1001", "currencyCode": "USD",
        "presentmentCurrencyCode": "USD", "sourceName": "web", "refunds": []}
    # The shop's record of the card payment Stripe took: gateway "stripe", the charge id.
    [sale] = order["transactions"]
    assert (sale["kind"], sale["gateway"], sale["authorizationCode"]) == (
        "SALE", "stripe", "ch_Sbx1001")
    assert body["extensions"]["cost"]["throttleStatus"]["maximumAvailable"] == 2000.0


def test_shopify_unknown_order_has_no_nodes(upstreams):
    assert upstreams.shopify("name:#9999").json()["data"]["orders"]["nodes"] == []


# ---------------------------------------------------------------- control and routing


def test_control_routes_set_read_and_clear_faults(upstreams, state):
    resp = upstreams.control("POST", "/faults", json={"erp": {"status": 503, "retry_after": 7}})
    assert resp.json()["erp"]["status"] == 503
    assert state.faults.get("erp").retry_after == 7
    assert upstreams.control("GET", "/faults").json()["erp"]["retry_after"] == 7
    upstreams.control("POST", "/faults", json={"pos": {"delay_ms": 5}, "erp": None})
    assert set(upstreams.control("GET", "/faults").json()) == {"pos"}
    assert upstreams.control("DELETE", "/faults").json() == {}


@pytest.mark.parametrize("body", [
    {"billing": {"status": 503}},
    {"erp": {"status": 200}},
    {"erp": {"hang": "yes"}},
    {"erp": {"sleep": 1}},
    ["erp"],
])
def test_control_rejects_bad_faults(upstreams, state, body):
    resp = upstreams.control("POST", "/faults", json=body)
    assert resp.status_code == 400
    assert "error" in resp.json()
    assert state.faults.snapshot() == {}


def test_control_lists_scenarios(upstreams):
    body = upstreams.control("GET", "/scenarios").json()
    assert [(s["scenario"], s["order_id"]) for s in body] == [
        (s.name, s.order_number) for s in SCENARIOS]


def test_control_reset_forgets_created_refunds(upstreams):
    upstreams.refund({"payment_intent": "pi_Sbx1001", "amount": "100"})
    upstreams.control("POST", "/reset")
    assert len(_refunds_of(upstreams, "pi_Sbx1001")) == 1


def test_unknown_routes_answer_in_the_vendor_envelope(upstreams):
    resp = upstreams.stripe("/v1/charges")
    assert resp.status_code == 404
    assert resp.json()["error"]["message"] == "Unrecognized request URL (GET: /v1/charges)."
