"""NetSuiteClient: TBA signing, SuiteQL requests and the normalised document chain."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import itertools
import json
import re
import sqlite3
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin.connectors.base import (
    AuthError,
    BadResponseError,
    ConfigError,
    ConnectorConfig,
    NotFoundError,
    RateLimitedError,
)
from plugin.connectors.netsuite import (
    NetSuiteClient,
    chain_query,
    netsuite_base_url,
    netsuite_realm,
    oauth_header,
    receipt_lines_query,
    suiteql_literal,
)
from plugin.core.model import CreditState, OrderRef, ReturnState, StockLine, Tender
from plugin.core.money import Money

BASE = "https://1234567-sb1.suitetalk.api.netsuite.com"
URL = BASE + "/services/rest/query/v1/suiteql"
CREDS = {"account_id": "1234567_SB1", "consumer_key": "ck-SECRET", "consumer_secret": "cs",
         "token_id": "tk-SECRET", "token_secret": "ts"}
ORDER = OrderRef(number="1001", name="#1001")
NONCE = "n0nceF0rTests"
NOW = 1772366400


@pytest.fixture
def client(sleeps):
    return make_client(sleeps)


def make_client(sleeps, nonce=lambda: NONCE, **options):
    return NetSuiteClient(ConnectorConfig("", CREDS, options=options), sleep=sleeps,
                          nonce=nonce, clock=lambda: NOW + 0.9)


def for_order(body, name="#1001"):
    """A recorded chain answered for another order name, re-labelled for `name` (the query
    only ever returns documents carrying the asked order's reference)."""
    for item in body["items"]:
        if item.get("otherrefnum"):
            item["otherrefnum"] = name
    return body


def sent_query(call) -> str:
    return json.loads(call.request.body)["q"]


# ---------------------------------------------------------------- OAuth 1.0a, RFC 5849

# RFC 5849 §3.4.1.1's example request, signed with HMAC-SHA256 instead of SHA-1, checked
# against a signature computed by hand from the RFC's documented base string.
RFC_URL = "http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b"
RFC_BASE_STRING = (
    "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3Da%26b5%3D%253D%25253D"
    "%26c%2540%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a"
    "%26oauth_signature_method%3DHMAC-SHA256%26oauth_timestamp%3D137131201"
    "%26oauth_token%3Dkkk9d7dh3k39sjv7%26oauth_version%3D1.0"
)


def test_signature_of_the_rfc_5849_example_request():
    header = oauth_header("POST", RFC_URL, None, realm="Example",
                          consumer_key="9djdj82h48djs9d2", consumer_secret="j49sk3j29djd",
                          token_id="kkk9d7dh3k39sjv7", token_secret="dh893hdasih9",
                          nonce="7d8f3e4a", timestamp=137131201)
    fields = {k: unquote(v) for k, v in re.findall(r'(\w+)="([^"]*)"', header)}
    expected = base64.b64encode(hmac.new(b"j49sk3j29djd&dh893hdasih9", RFC_BASE_STRING.encode(),
                                         hashlib.sha256).digest()).decode()
    assert fields["oauth_signature"] == expected
    assert fields["realm"] == "Example" and fields["oauth_signature_method"] == "HMAC-SHA256"


def test_signing_key_parts_are_percent_encoded():
    header = oauth_header("GET", "https://a.example/x", None, realm="R", consumer_key="k",
                          consumer_secret="c&s", token_id="t", token_secret="t s",
                          nonce="n", timestamp=1)
    sig = unquote(re.search(r'oauth_signature="([^"]*)"', header).group(1))
    base = ("GET&https%3A%2F%2Fa.example%2Fx&oauth_consumer_key%3Dk%26oauth_nonce%3Dn"
            "%26oauth_signature_method%3DHMAC-SHA256%26oauth_timestamp%3D1%26oauth_token%3Dt"
            "%26oauth_version%3D1.0")
    assert sig == base64.b64encode(hmac.new(b"c%26s&t%20s", base.encode(),
                                            hashlib.sha256).digest()).decode()


def test_oauth_header_fields_and_signature_verify(client, mocked, fixture_json):
    mocked.post(URL, json=fixture_json("netsuite", "empty"))
    client.fetch(ORDER)

    request = mocked.calls[0].request
    header = request.headers["Authorization"]
    assert header.startswith("OAuth ")
    fields = {k: unquote(v) for k, v in re.findall(r'(\w+)="([^"]*)"', header)}
    assert fields == {
        "realm": "1234567_SB1",
        "oauth_consumer_key": "ck-SECRET",
        "oauth_token": "tk-SECRET",
        "oauth_nonce": NONCE,
        "oauth_timestamp": str(NOW),
        "oauth_signature_method": "HMAC-SHA256",
        "oauth_version": "1.0",
        "oauth_signature": fields["oauth_signature"],
    }
    # Recompute the signature independently from what was actually sent.
    parts = urlsplit(request.url)
    params = [(k, v) for k, v in fields.items() if k not in ("realm", "oauth_signature")]
    params += parse_qsl(parts.query)
    norm = "&".join(sorted(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params))
    base = "&".join(["POST", quote(f"https://{parts.hostname}{parts.path}", safe=""),
                     quote(norm, safe="")])
    expected = base64.b64encode(
        hmac.new(b"cs&ts", base.encode(), hashlib.sha256).digest()).decode()
    assert fields["oauth_signature"] == expected


def test_every_attempt_gets_a_fresh_nonce(mocked, fixture_json, sleeps):
    counter = itertools.count(1)
    client = make_client(sleeps, nonce=lambda: f"nonce{next(counter)}")
    mocked.post(URL, status=429, headers={"Retry-After": "0"},
                json=fixture_json("netsuite", "error_concurrency"))
    mocked.post(URL, json=fixture_json("netsuite", "empty"))
    client.fetch(ORDER)
    nonces = [re.search(r'oauth_nonce="([^"]+)"', c.request.headers["Authorization"]).group(1)
              for c in mocked.calls]
    assert nonces == ["nonce1", "nonce2"]


@pytest.mark.parametrize("account", ["1234567_SB1", "1234567-sb1", " 1234567_sb1 "])
def test_account_id_forms(account):
    assert netsuite_base_url(account) == "https://1234567-sb1.suitetalk.api.netsuite.com"
    assert netsuite_realm(account) == "1234567_SB1"


@pytest.mark.parametrize("account", ["evil.test/x", "acct@evil.test", ""])
def test_bad_account_id_is_config_error(account):
    with pytest.raises(ConfigError):
        netsuite_base_url(account)


def test_base_url_defaults_from_account_id(client):
    assert client.base_url == BASE


# ---------------------------------------------------------------- SuiteQL


def test_suiteql_literal_doubles_quotes():
    assert suiteql_literal("#1001") == "'#1001'"
    assert suiteql_literal("#10'01") == "'#10''01'"


# ---------------------------------------------------------------- the chain query, executed

_SUITEQL_TABLES = """
CREATE TABLE currency (id INTEGER PRIMARY KEY, symbol TEXT);
CREATE TABLE "transaction" (id TEXT PRIMARY KEY, type TEXT, tranid TEXT, status TEXT,
    foreigntotal TEXT, currency INTEGER, createddate TEXT, otherrefnum TEXT, externalid TEXT,
    memo TEXT, location TEXT, paymentmethod TEXT, voided TEXT);
CREATE TABLE NextTransactionLineLink (previousdoc TEXT, nextdoc TEXT, linktype TEXT,
    foreignamount TEXT);
INSERT INTO currency VALUES (1, 'USD');
"""


def run_chain_query(docs, links, order_name="#1001"):
    """The chain SuiteQL run on SQLite over a small document graph, as SuiteQL would answer it.

    Only what SQLite spells differently is translated: BUILTIN.DF (display value), TO_CHAR
    (the creation time's text), the table name `transaction` (reserved in SQLite) and the
    final ORDER BY (by position).
    """
    db = sqlite3.connect(":memory:")
    db.executescript(_SUITEQL_TABLES)
    db.create_function("BUILTIN_DF", 1, lambda v: v)
    db.create_function("TO_CHAR", 2, lambda v, fmt: v)
    for d in docs:
        db.execute('INSERT INTO "transaction" VALUES (?,?,?,?,?,1,?,?,?,?,?,?,?)',
                   (d["id"], d["type"], d["tranid"], d.get("status", "B"), d["total"],
                    d["created"], d.get("otherrefnum"), d.get("externalid"), d.get("memo"),
                    d.get("location"), d.get("paymentmethod"), d.get("voided", "F")))
    db.executemany("INSERT INTO NextTransactionLineLink VALUES (?,?,?,?)", links)
    sql = chain_query(order_name).replace("BUILTIN.DF(", "BUILTIN_DF(")
    sql = re.sub(r"\btransaction\b", '"transaction"', sql)  # a reserved word in SQLite
    # SQLite resolves a compound query's ORDER BY only by position or alias.
    sql = sql.replace("ORDER BY created, id", "ORDER BY 7, 1")
    cursor = db.execute(sql)
    names = [c[0].lower() for c in cursor.description]
    rows = [{k: v for k, v in zip(names, row, strict=True) if v is not None}
            for row in cursor.fetchall()]
    return {"links": [], "count": len(rows), "hasMore": False, "offset": 0,
            "totalResults": len(rows), "items": [{"links": [], **r} for r in rows]}


def test_an_ra_from_a_store_cash_sale_without_the_order_reference_is_followed(
        client, mocked, fixture_json):
    """The RA (from the web return) carries the order; the store's cash sale it was created
    from doesn't. The walk goes back to the sale, and on to the memo and refund."""
    docs = [
        {"id": "1", "type": "CashSale", "tranid": "CS-9", "total": "74.00",
         "created": "2026-02-10 10:00:00", "otherrefnum": None},
        {"id": "2", "type": "RtnAuth", "tranid": "RMA-1", "status": "G", "total": "-74.00",
         "created": "2026-02-14 10:00:00", "otherrefnum": "#1001", "externalid": "loop-1"},
        {"id": "3", "type": "CustCred", "tranid": "CM-1", "status": "A", "total": "-74.00",
         "created": "2026-02-15 10:00:00"},
        {"id": "4", "type": "CustRfnd", "tranid": "CR-1", "status": "Y", "total": "-74.00",
         "created": "2026-02-16 10:00:00", "paymentmethod": "Visa"},
        {"id": "9", "type": "CashSale", "tranid": "CS-OTHER", "total": "10.00",
         "created": "2026-02-11 10:00:00", "otherrefnum": "#2002"},
    ]
    links = [("1", "2", "RtnAuth", "74.00"), ("2", "3", "CustCred", "74.00"),
             ("3", "4", "Payment", "74.00")]
    mocked.post(URL, json=run_chain_query(docs, links))
    facts = client.fetch(ORDER)
    assert [s.tran_id for s in facts.sales] == ["CS-9"]
    (ra,) = facts.return_authorizations
    assert ra.created_from == "1"
    (memo,) = facts.credit_memos
    assert memo.created_from == "2"
    assert [c.tran_id for c in facts.customer_refunds] == ["CR-1"]
    assert facts.customer_refunds[0].applied_to == ("3",)


def test_a_memo_applied_to_another_orders_invoice_is_found_from_either_side(
        client, mocked, fixture_json):
    """Invoice → memo (ours), and the memo applied to the next order's invoice."""
    docs = [
        {"id": "1", "type": "CustInvc", "tranid": "INV-1", "total": "120.00",
         "created": "2026-02-10 10:00:00", "otherrefnum": "#1001"},
        {"id": "2", "type": "CustCred", "tranid": "CM-1", "status": "B", "total": "-40.00",
         "created": "2026-02-15 10:00:00"},
        {"id": "5", "type": "CustInvc", "tranid": "INV-77", "total": "60.00",
         "created": "2026-02-20 10:00:00", "otherrefnum": "#2002"},
    ]
    links = [("1", "2", "CustCred", "40.00"), ("2", "5", "Payment", "10.00")]
    mocked.post(URL, json=run_chain_query(docs, links))
    facts = client.fetch(ORDER)
    assert [s.tran_id for s in facts.sales] == ["INV-1"]
    (memo,) = facts.credit_memos
    (applied,) = memo.applications
    assert (applied.tran_id, applied.amount, applied.same_order) == (
        "INV-77", Money(1000, "USD"), False)


def test_chain_query_shape():
    sql = chain_query("#1001")
    # The order's own documents, then up to three links on, then links into ours, then
    # the sale one of ours was created from.
    assert sql.count("otherrefnum = '#1001'") == 8
    assert sql.count("UNION ALL") == 5
    assert "NextTransactionLineLink l3" in sql
    assert "la.linktype = 'Payment'" in sql
    for kind in ("SalesOrd", "CashSale", "CustInvc", "RtnAuth", "ItemRcpt", "CustCred",
                 "CustRfnd", "CashRfnd"):
        assert f"'{kind}'" in sql
    for column in ("id", "type", "tranid", "status", "total", "currency", "created",
                   "otherrefnum", "externalid", "memo", "location", "paymentmethod", "voided",
                   "parent", "link", "link_amount"):
        assert re.search(rf"\b{column}\b", sql), column
    assert "'YYYY-MM-DD HH24:MI:SS'" in sql


def test_receipt_lines_query_only_takes_numeric_ids():
    assert "tl.transaction IN (8820, 8821) AND tl.mainline = 'F'" in receipt_lines_query(
        ["8820", "8821"])
    with pytest.raises(ValueError):
        receipt_lines_query(["8820) OR (1=1"])
    with pytest.raises(ValueError):
        receipt_lines_query([])


def test_request_shape(client, mocked, fixture_json):
    mocked.post(URL, json=fixture_json("netsuite", "chain_full"))
    mocked.post(URL, json=fixture_json("netsuite", "receipt_lines"))
    client.fetch(ORDER)

    first, second = mocked.calls
    assert urlsplit(first.request.url).path == "/services/rest/query/v1/suiteql"
    assert parse_qsl(urlsplit(first.request.url).query) == [("limit", "1000"), ("offset", "0")]
    assert first.request.headers["Prefer"] == "transient"
    assert first.request.headers["Content-Type"] == "application/json"
    assert list(json.loads(first.request.body)) == ["q"]
    assert "r.otherrefnum = '#1001'" in sent_query(first)
    assert "NextTransactionLineLink" in sent_query(first)
    assert "tl.transaction IN (8820) AND tl.mainline = 'F'" in sent_query(second)


def test_document_chain_is_normalised(client, mocked, fixture_json):
    mocked.post(URL, json=fixture_json("netsuite", "chain_full"))
    mocked.post(URL, json=fixture_json("netsuite", "receipt_lines"))
    facts = client.fetch(ORDER)

    assert facts.found
    so = facts.sales_order
    assert (so.internal_id, so.tran_id, so.status_raw) == ("8801", "SO4411", "SalesOrd:B")
    assert so.total == Money(10000, "USD")
    assert so.created_at == datetime(2026, 2, 10, 16, 42, 5, tzinfo=UTC)

    received, cancelled = facts.return_authorizations
    assert received.internal_id == "8812"
    assert received.tran_id == "RMA1021"
    assert received.status_raw == "RtnAuth:F"
    assert received.state is ReturnState.RECEIVED
    assert received.total == Money(7400, "USD")
    assert received.portal_return_id == "37603922"
    assert received.created_at == datetime(2026, 2, 14, 11, 45, 10, tzinfo=UTC)
    assert cancelled.state is ReturnState.CANCELED
    assert cancelled.portal_return_id is None
    assert cancelled.total is None

    (receipt,) = facts.item_receipts
    assert (receipt.internal_id, receipt.tran_id, receipt.created_from) == (
        "8820", "IR2051", "8812")
    assert receipt.lines == (
        StockLine(sku="TSHIRT-M", quantity=2, location="Main Warehouse"),
        StockLine(sku="CAP-OS", quantity=2, location="Main Warehouse"),
    )

    (memo,) = facts.credit_memos
    assert (memo.internal_id, memo.tran_id, memo.created_from) == ("8825", "CM7788", "8812")
    assert memo.amount == Money(7400, "USD")
    assert memo.status_raw == "CustCred:B"

    # the duplicated CustRfnd row collapses to one document
    (refund,) = facts.customer_refunds
    assert (refund.internal_id, refund.tran_id, refund.applied_to) == ("8830", "CR12", ("8825",))
    assert refund.amount == Money(7400, "USD")
    # Every id the memo and external id quote, whatever system they belong to.
    assert "re_3PqR1fK9xYzAbCdE0a1b2c3d" in refund.quoted_ids
    assert "CR-12" in refund.quoted_ids
    assert refund.tender is Tender.UNKNOWN
    assert refund.created_at == datetime(2026, 2, 19, 10, 20, 31, tzinfo=UTC)


def test_order_name_with_quote_and_no_receipts(client, mocked, fixture_json):
    mocked.post(URL, json=fixture_json("netsuite", "chain_no_receipts"))
    facts = client.fetch(OrderRef(number="10'01", name="#10'01"))

    assert len(mocked.calls) == 1  # no receipts → no receipt-lines query
    sql = sent_query(mocked.calls[0])
    assert "r.otherrefnum = '#10''01'" in sql
    assert "'#10'01'" not in sql
    assert facts.sales_order.total == Money(4500, "JPY")
    (ra,) = facts.return_authorizations
    assert ra.state is ReturnState.AUTHORIZED
    assert ra.status_raw == "RtnAuth:B"
    assert ra.total == Money(1500, "JPY")
    assert ra.portal_return_id == "40001"
    assert facts.item_receipts == facts.credit_memos == facts.customer_refunds == ()


@pytest.mark.parametrize(
    ("status", "state"),
    [("A", ReturnState.REQUESTED), ("B", ReturnState.AUTHORIZED),
     ("D", ReturnState.PARTIALLY_RECEIVED), ("E", ReturnState.PARTIALLY_RECEIVED),
     ("F", ReturnState.RECEIVED), ("G", ReturnState.CLOSED), ("H", ReturnState.CLOSED),
     ("RtnAuth:C", ReturnState.CANCELED)],
)
def test_ra_status_mapping(client, mocked, fixture_json, status, state):
    body = for_order(fixture_json("netsuite", "chain_no_receipts"))
    body["items"][1]["status"] = status
    mocked.post(URL, json=body)
    (ra,) = client.fetch(ORDER).return_authorizations
    assert ra.state is state
    assert ra.status_raw == "RtnAuth:" + status.removeprefix("RtnAuth:")


def test_unknown_ra_status_makes_that_ra_unknown(client, mocked, fixture_json):
    body = for_order(fixture_json("netsuite", "chain_no_receipts"))
    body["items"][1]["status"] = "Z"
    mocked.post(URL, json=body)
    (ra,) = client.fetch(ORDER).return_authorizations
    assert ra.state is ReturnState.UNKNOWN and ra.status_raw == "RtnAuth:Z"


def test_unknown_credit_memo_status_makes_that_memo_unknown(client, mocked, fixture_json):
    """A status letter we don't know: the memo says "unknown" (the ledger never takes it as
    paid); the rest of the ERP's answer stands."""
    body = fixture_json("netsuite", "chain_full")
    body["items"][4]["status"] = "Z"
    mocked.post(URL, json=body)
    mocked.post(URL, json=fixture_json("netsuite", "receipt_lines"))
    facts = client.fetch(ORDER)
    (memo,) = facts.credit_memos
    assert memo.state is CreditState.UNKNOWN and memo.status_raw == "CustCred:Z"
    assert len(facts.return_authorizations) == 2 and facts.customer_refunds


def test_ra_external_id_prefix_is_configurable(mocked, fixture_json, sleeps):
    body = for_order(fixture_json("netsuite", "chain_no_receipts"))
    body["items"][1]["externalid"] = "ls_40001"
    mocked.post(URL, json=body)
    facts = make_client(sleeps, ra_external_id_prefix="ls_").fetch(ORDER)
    assert facts.return_authorizations[0].portal_return_id == "40001"


def test_quoted_ids_come_from_the_external_id_too(client, mocked, fixture_json):
    body = fixture_json("netsuite", "chain_full")
    for row in body["items"]:
        if row["type"] == "CustRfnd":
            row["memo"] = "manual refund"
            row["externalid"] = "stripe:re_1AbC2dEf3"
    mocked.post(URL, json=body)
    mocked.post(URL, json=fixture_json("netsuite", "receipt_lines"))
    assert "stripe:re_1AbC2dEf3" in client.fetch(ORDER).customer_refunds[0].quoted_ids


def test_no_rows_means_not_found(client, mocked, fixture_json):
    mocked.post(URL, json=fixture_json("netsuite", "empty"))
    facts = client.fetch(ORDER)
    assert not facts.found
    assert facts.sales_order is None and facts.return_authorizations == ()
    assert len(mocked.calls) == 1


def test_has_more_pages_are_followed_with_offset(client, mocked, fixture_json):
    full = for_order(fixture_json("netsuite", "chain_no_receipts"))
    page1 = {**copy.deepcopy(full), "count": 1, "hasMore": True, "offset": 0,
             "items": full["items"][:1]}
    page2 = {**copy.deepcopy(full), "count": 1, "hasMore": False, "offset": 1,
             "items": full["items"][1:]}
    mocked.post(URL, json=page1)
    mocked.post(URL, json=page2)
    facts = client.fetch(ORDER)
    assert facts.sales_order.internal_id == "9901"
    assert facts.return_authorizations[0].internal_id == "9910"
    offsets = [dict(parse_qsl(urlsplit(c.request.url).query))["offset"] for c in mocked.calls]
    assert offsets == ["0", "1"]


def test_401_invalid_login_is_auth_error(client, mocked, fixture_json):
    mocked.post(URL, status=401, json=fixture_json("netsuite", "error_invalid_login"))
    with pytest.raises(AuthError) as info:
        client.fetch(ORDER)
    assert info.value.code == "INVALID_LOGIN"
    assert str(info.value).startswith("HTTP 401 INVALID_LOGIN: Invalid login attempt.")
    for secret in ("ck-SECRET", "tk-SECRET"):
        assert secret not in repr(info.value)


def test_invalid_login_code_is_auth_error_whatever_the_status(client, mocked, fixture_json):
    body = fixture_json("netsuite", "error_invalid_login")
    mocked.post(URL, status=400, json=body)
    with pytest.raises(AuthError):
        client.fetch(ORDER)


def test_concurrency_limit_429_is_rate_limited(client, mocked, fixture_json):
    mocked.post(URL, status=429, headers={"Retry-After": "60"},
                json=fixture_json("netsuite", "error_concurrency"))
    with pytest.raises(RateLimitedError) as info:
        client.fetch(ORDER)
    assert info.value.code == "CONCURRENCY_LIMIT_EXCEEDED"
    assert info.value.retry_after == 60.0


def test_request_limit_400_is_rate_limited(client, mocked, fixture_json):
    mocked.post(URL, status=400, json=fixture_json("netsuite", "error_request_limit"))
    with pytest.raises(RateLimitedError) as info:
        client.fetch(ORDER)
    assert info.value.http_status == 400
    assert len(mocked.calls) == 1


def test_invalid_query_is_bad_response(client, mocked, fixture_json):
    mocked.post(URL, status=400, json=fixture_json("netsuite", "error_invalid_query"))
    with pytest.raises(BadResponseError) as info:
        client.fetch(ORDER)
    assert info.value.code == "INVALID_PARAMETER"
    assert len(str(info.value)) <= 200


def test_404_is_not_found_error(client, mocked):
    mocked.post(URL, status=404, json={"type": "x", "title": "Not Found", "status": 404,
                                       "o:errorDetails": [{"detail": "Record not found.",
                                                           "o:errorCode": "NONEXISTENT_ID"}]})
    with pytest.raises(NotFoundError):
        client.fetch(ORDER)


def _row(index, **changes):
    def mutate(body):
        body["items"][index].update(changes)
    return mutate


def _envelope(**changes):
    def mutate(body):
        body.update(changes)
        for key, value in changes.items():
            if value is None:
                del body[key]
    return mutate


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (_row(0, created="19/02/2026 10:20"), "created"),
        (_row(0, total="1OO.00"), "total"),
        (_row(0, currency="Dollar"), "currency"),
        (_row(1, id="99x"), "id"),
        (_row(1, parent="9901 OR 1=1"), "parent"),
        (_envelope(items={"id": "1"}), "items"),
        (_envelope(hasMore=None), "hasMore"),
        (_envelope(count="2"), "count"),
    ],
)
def test_malformed_rows_are_bad_response(client, mocked, fixture_json, mutate, field):
    body = for_order(fixture_json("netsuite", "chain_no_receipts"))
    mutate(body)
    mocked.post(URL, json=body)
    with pytest.raises(BadResponseError) as info:
        client.fetch(ORDER)
    assert field in str(info.value)


def test_money_document_without_an_amount_is_bad_response(client, mocked, fixture_json):
    body = fixture_json("netsuite", "chain_full")
    del body["items"][4]["total"]  # a credit memo must say how much it credits
    mocked.post(URL, json=body)
    with pytest.raises(BadResponseError, match="CM7788 has no amount"):
        client.fetch(ORDER)


def test_bad_receipt_line_quantity_is_bad_response(client, mocked, fixture_json):
    lines = fixture_json("netsuite", "receipt_lines")
    lines["items"][0]["quantity"] = "1.5"
    mocked.post(URL, json=fixture_json("netsuite", "chain_full"))
    mocked.post(URL, json=lines)
    with pytest.raises(BadResponseError, match="quantity"):
        client.fetch(ORDER)


def test_created_is_read_in_the_accounts_time_zone(mocked, fixture_json):
    """TO_CHAR renders in the integration user's zone; the option says which one."""
    from plugin.connectors.netsuite import NetSuiteClient

    ny = NetSuiteClient(ConnectorConfig(BASE, CREDS, options={"timezone": "America/New_York"}),
                        sleep=lambda _s: None)
    utc = NetSuiteClient(ConnectorConfig(BASE, CREDS), sleep=lambda _s: None)
    row = {"created": datetime(2026, 3, 1, 9, 0, tzinfo=UTC)}
    assert ny._when(row) == datetime(2026, 3, 1, 14, 0, tzinfo=UTC)
    assert utc._when(row) == row["created"]


def test_unknown_time_zone_is_a_config_error():
    from plugin.connectors.base import ConfigError
    from plugin.connectors.netsuite import NetSuiteClient

    with pytest.raises(ConfigError):
        NetSuiteClient(ConnectorConfig(BASE, CREDS, options={"timezone": "Mars/Olympus"}))


def test_every_document_whatever_it_hangs_off(client, mocked, fixture_json):
    """Cash sale and invoice, an RA off the cash sale, a cash refund, applications both ways."""
    mocked.post(URL, json=fixture_json("netsuite", "chain_every_document"))
    facts = client.fetch(ORDER)

    assert [(s.tran_id, s.kind.value) for s in facts.sales] == [
        ("CS-2201", "cash_sale"), ("INV-5501", "invoice")]  # not the other order's invoice
    (ra,) = facts.return_authorizations
    assert (ra.tran_id, ra.created_from, ra.portal_return_id) == ("RMA-3301", "9101", "37603922")

    cash, card = facts.customer_refunds
    assert (cash.tran_id, cash.tender, cash.location, cash.created_from) == (
        "CR-4401", Tender.CASH, "Brooklyn Store", "9102")
    assert (card.tran_id, card.tender, card.applied_to) == ("CRF-7701", Tender.CARD, ("9106",))
    assert "re_3PqR9zZ" in card.quoted_ids

    # The voided memo is gone; the goodwill memo went to another order's invoice.
    spent, refunded = facts.credit_memos
    assert (spent.tran_id, spent.state.value, spent.created_from) == ("CM-6601", "applied", "9104")
    (application,) = spent.applications
    assert (application.tran_id, application.amount, application.to_refund,
            application.same_order) == ("INV-5602", Money(2000, "USD"), False, False)
    assert [(a.tran_id, a.to_refund) for a in refunded.applications] == [("CRF-7701", True)]


def test_payment_method_names_map_to_tenders():
    from plugin.connectors.netsuite import tender_of

    assert [tender_of(x) for x in ("Cash", "VISA", "Master Card", "Check", "Gift Certificate",
                                   "PayPal", "Klarna", "ACH", "Barter", None)] == [
        Tender.CASH, Tender.CARD, Tender.CARD, Tender.CHECK, Tender.GIFT_CARD, Tender.WALLET,
        Tender.BNPL, Tender.BANK, Tender.OTHER, Tender.UNKNOWN]


@settings(max_examples=200, deadline=None)
@given(method=st.sampled_from(["GET", "POST"]),
       path=st.text(alphabet="abcXYZ019-_./~ é%", min_size=1, max_size=20),
       query=st.lists(st.tuples(st.text(min_size=1, max_size=8), st.text(max_size=8)),
                      max_size=4),
       secrets_=st.tuples(st.text(max_size=10), st.text(max_size=10)),
       nonce=st.text(alphabet="abcdef0123456789", min_size=1, max_size=32),
       timestamp=st.integers(min_value=0, max_value=2**31))
def test_direct_signing_matches_oauthlib(method, path, query, secrets_, nonce, timestamp):
    """The hand-rolled signer agrees with oauthlib's for any method, URL, query and secret."""
    from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256
    from requests import Request
    from requests_oauthlib import OAuth1

    url = "https://1234567-sb1.suitetalk.api.netsuite.com/" + path.lstrip("/")
    params = dict(query)
    ours = oauth_header(method, url, params, realm="R", consumer_key="ck",
                        consumer_secret=secrets_[0], token_id="tk", token_secret=secrets_[1],
                        nonce=nonce, timestamp=timestamp)
    auth = OAuth1("ck", client_secret=secrets_[0], resource_owner_key="tk",
                  resource_owner_secret=secrets_[1], signature_method=SIGNATURE_HMAC_SHA256,
                  realm="R", nonce=nonce, timestamp=str(timestamp))
    theirs = auth(Request(method, url, params=params).prepare()).headers["Authorization"]
    theirs = theirs.decode() if isinstance(theirs, bytes) else theirs

    def fields(header):
        return dict(re.findall(r'(\w+)="([^"]*)"', header))

    assert fields(ours) == fields(theirs)
