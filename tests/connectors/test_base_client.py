"""BaseClient behaviour shared by every connector: config, transport errors, retries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import requests
from marshmallow import fields

from plugin.connectors.base import (
    AuthError,
    BadResponseError,
    BaseClient,
    ConfigError,
    ConnectorConfig,
    NotFoundError,
    RateLimitedError,
    UnavailableError,
    UpstreamError,
    UpstreamTimeout,
    VendorSchema,
    parse_retry_after,
    safe_message,
)
from plugin.connectors.loop import LoopClient
from plugin.connectors.netsuite import NetSuiteClient
from plugin.connectors.shopify_pos import DEFAULT_API_VERSION, ShopifyPosClient
from plugin.connectors.stripe import StripeClient
from plugin.core.model import ErrorKind, OrderRef

ORDER = OrderRef(number="1001", name="#1001")


@dataclass(frozen=True)
class Case:
    """How to drive one connector through its first upstream call."""

    cls: type[BaseClient]
    base_url: str
    credentials: dict[str, str]
    method: str
    path: str
    ok_fixture: tuple[str, str]

    @property
    def url(self) -> str:
        return self.base_url + self.path

    def client(self, sleep, **config) -> BaseClient:
        return self.cls(ConnectorConfig(self.base_url, self.credentials, **config), sleep=sleep)


CASES = [
    Case(LoopClient, "https://loop.test", {"api_key": "SECRET-loop-key"}, "GET",
         "/api/v1/warehouse/return/details", ("loop", "return_open_in_transit")),
    Case(StripeClient, "https://stripe.test", {"secret_key": "sk_test_SECRETstripe"}, "GET",
         "/v1/payment_intents/search", ("stripe", "search_empty")),
    Case(NetSuiteClient, "https://ns.test",
         {"account_id": "1234567_SB1", "consumer_key": "SECRET-ck", "consumer_secret": "SECRET-cs",
          "token_id": "SECRET-tk", "token_secret": "SECRET-ts"},
         "POST", "/services/rest/query/v1/suiteql", ("netsuite", "empty")),
    Case(ShopifyPosClient, "https://shop.test", {"access_token": "shpat_SECRETshopify"}, "POST",
         f"/admin/api/{DEFAULT_API_VERSION}/graphql.json", ("shopify", "order_not_found")),
]
IDS = [c.cls.system for c in CASES]


def assert_no_secrets(case: Case, error: UpstreamError) -> None:
    text = f"{error} {error!r}"
    for secret in case.credentials.values():
        if secret.startswith(("SECRET", "sk_", "shpat_")):
            assert secret not in text


# ---------------------------------------------------------------- config


def test_config_defaults_and_repr_hide_credentials():
    config = ConnectorConfig("https://x.test", {"api_key": "SECRET-value"})
    assert (config.connect_timeout, config.read_timeout) == (1.0, 2.5)
    assert (config.max_retries, config.max_retry_after) == (1, 1.0)
    assert dict(config.options) == {}
    assert "SECRET-value" not in repr(config)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_missing_credentials_are_config_errors(case):
    creds = dict(case.credentials)
    name = case.cls.required_credentials[-1]
    creds[name] = "  "
    with pytest.raises(ConfigError) as info:
        case.cls(ConnectorConfig(case.base_url, creds))
    assert name in str(info.value)
    assert info.value.kind is ErrorKind.CONFIG
    del creds[name]
    with pytest.raises(ConfigError):
        case.cls(ConnectorConfig(case.base_url, creds))


@pytest.mark.parametrize("base_url", ["ftp://x.test", "not a url", "https://"])
def test_bad_base_url_is_config_error(base_url):
    with pytest.raises(ConfigError, match="base URL"):
        LoopClient(ConnectorConfig(base_url, {"api_key": "k"}))


def test_empty_base_url_uses_vendor_default():
    assert LoopClient(ConnectorConfig("", {"api_key": "k"})).base_url == (
        "https://api.loopreturns.com")
    assert StripeClient(ConnectorConfig("", {"secret_key": "k"})).base_url == (
        "https://api.stripe.com")


def test_client_owns_a_pooled_session_unless_one_is_shared():
    own = LoopClient(ConnectorConfig("https://loop.test", {"api_key": "k"}))
    adapter = own.session.get_adapter("https://loop.test")
    assert isinstance(adapter, requests.adapters.HTTPAdapter)
    assert adapter._pool_maxsize == 10
    assert adapter.max_retries.total == 0
    shared = requests.Session()
    client = LoopClient(ConnectorConfig("https://loop.test", {"api_key": "k"}), session=shared)
    assert client.session is shared


# ---------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("header", "expected"),
    [("2", 2.0), ("0.5", 0.5), (" 3 ", 3.0), ("-1", 0.0), ("soon", None), (None, None),
     ("Wed, 04 Mar 2026 10:00:30 GMT", 30.0)],
)
def test_parse_retry_after(header, expected):
    now = datetime(2026, 3, 4, 10, 0, 0, tzinfo=UTC)
    assert parse_retry_after(header, now=now) == expected


def test_safe_message_redacts_and_shortens():
    text = safe_message("key sk_live_abc123XYZ and SECRET-x1y2 and\n" + "x" * 500,
                        ("SECRET-x1y2",))
    assert "sk_live_abc123XYZ" not in text
    assert "SECRET-x1y2" not in text
    assert "\n" not in text
    assert len(text) <= 200


class _Thing(VendorSchema):
    name = fields.String(required=True)
    count = fields.Integer(strict=True, required=True)


def test_load_maps_validation_errors_to_bad_response_naming_the_field():
    client = LoopClient(ConnectorConfig("https://loop.test", {"api_key": "k"}))
    assert client.load(_Thing(), {"name": "a", "count": 2, "extra": 1}) == {"name": "a",
                                                                            "count": 2}
    with pytest.raises(BadResponseError) as info:
        client.load(_Thing(), {"name": "a", "count": "two"})
    assert str(info.value) == "couldn't read the loop answer: count should be a whole number"
    assert "two" not in str(info.value)
    with pytest.raises(BadResponseError) as info:
        client.load(_Thing(), ["not", "an", "object"])
    # Not marshmallow's "_schema: Invalid input type.": words an agent can pass on.
    assert str(info.value) == ("couldn't read the loop answer: the answer isn't the kind of "
                               "data expected")


@pytest.mark.parametrize(
    ("status", "error_cls"),
    [(401, AuthError), (403, AuthError), (404, NotFoundError), (429, RateLimitedError),
     (500, UnavailableError), (502, UnavailableError), (400, BadResponseError),
     (418, BadResponseError)],
)
def test_default_status_mapping(status, error_cls):
    client = LoopClient(ConnectorConfig("https://loop.test", {"api_key": "k"}))
    error = client.error_for_status(status, "x", retry_after=3.0)
    assert type(error) is error_cls
    assert error.http_status == status
    assert error.system == "loop"
    assert error.retry_after == 3.0


def test_error_kinds():
    assert AuthError("m", system="s").kind is ErrorKind.AUTH
    assert UpstreamTimeout("m", system="s").kind is ErrorKind.TIMEOUT
    assert UnavailableError("m", system="s").kind is ErrorKind.UNAVAILABLE
    assert RateLimitedError("m", system="s").kind is ErrorKind.RATE_LIMITED
    assert NotFoundError("m", system="s").kind is ErrorKind.NOT_FOUND
    assert BadResponseError("m", system="s").kind is ErrorKind.BAD_RESPONSE


# ---------------------------------------------------------------- transport, every connector


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_every_call_carries_connect_and_read_timeouts(case, mocked, sleeps, fixture_json):
    mocked.add(case.method, case.url, json=fixture_json(*case.ok_fixture))
    case.client(sleeps, connect_timeout=0.7, read_timeout=1.9).fetch(ORDER)
    assert mocked.calls[0].request.req_kwargs["timeout"] == (0.7, 1.9)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("exc", [requests.exceptions.ReadTimeout,
                                 requests.exceptions.ConnectTimeout])
def test_timeouts_become_upstream_timeout(case, exc, mocked, sleeps):
    mocked.add(case.method, case.url, body=exc("boom"))
    with pytest.raises(UpstreamTimeout) as info:
        case.client(sleeps).fetch(ORDER)
    assert info.value.kind is ErrorKind.TIMEOUT
    assert info.value.system == case.cls.system
    assert isinstance(info.value.__cause__, exc)
    assert len(mocked.calls) == 1


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_connection_error_is_unavailable(case, mocked, sleeps):
    mocked.add(case.method, case.url, body=requests.exceptions.ConnectionError("refused"))
    with pytest.raises(UnavailableError) as info:
        case.client(sleeps).fetch(ORDER)
    assert info.value.http_status is None
    assert len(mocked.calls) == 1


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_500_is_unavailable_and_not_retried(case, mocked, sleeps):
    mocked.add(case.method, case.url, status=500, body="<html>Internal Server Error</html>")
    with pytest.raises(UnavailableError) as info:
        case.client(sleeps).fetch(ORDER)
    assert info.value.http_status == 500
    assert len(mocked.calls) == 1
    assert sleeps.calls == []


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_429_with_retry_after_is_retried_once_then_succeeds(case, mocked, sleeps, fixture_json):
    mocked.add(case.method, case.url, status=429, headers={"Retry-After": "1"},
               json={"message": "slow down"})
    mocked.add(case.method, case.url, json=fixture_json(*case.ok_fixture))
    facts = case.client(sleeps).fetch(ORDER)
    assert facts.order_name == "#1001"
    assert len(mocked.calls) == 2
    assert sleeps.calls == [1.0]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_503_is_retried_with_default_backoff(case, mocked, sleeps, fixture_json):
    mocked.add(case.method, case.url, status=503)
    mocked.add(case.method, case.url, json=fixture_json(*case.ok_fixture))
    case.client(sleeps).fetch(ORDER)
    assert len(mocked.calls) == 2
    assert sleeps.calls == [0.5]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_429_twice_gives_rate_limited_after_max_retries(case, mocked, sleeps):
    for _ in range(2):
        mocked.add(case.method, case.url, status=429, headers={"Retry-After": "0.25"})
    with pytest.raises(RateLimitedError) as info:
        case.client(sleeps).fetch(ORDER)
    assert info.value.retry_after == 0.25
    assert len(mocked.calls) == 2
    assert sleeps.calls == [0.25]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_long_retry_after_raises_at_once_without_sleeping(case, mocked, sleeps):
    mocked.add(case.method, case.url, status=429, headers={"Retry-After": "30"})
    with pytest.raises(RateLimitedError) as info:
        case.client(sleeps).fetch(ORDER)
    assert info.value.retry_after == 30.0
    assert info.value.kind is ErrorKind.RATE_LIMITED
    assert len(mocked.calls) == 1
    assert sleeps.calls == []


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_no_retries_when_max_retries_is_zero(case, mocked, sleeps):
    mocked.add(case.method, case.url, status=429, headers={"Retry-After": "0"})
    with pytest.raises(RateLimitedError):
        case.client(sleeps, max_retries=0).fetch(ORDER)
    assert len(mocked.calls) == 1


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_html_body_is_bad_response(case, mocked, sleeps):
    mocked.add(case.method, case.url, body="<!DOCTYPE html><html>Maintenance</html>",
               content_type="text/html")
    with pytest.raises(BadResponseError) as info:
        case.client(sleeps).fetch(ORDER)
    assert "web page instead of data" in str(info.value)
    assert "Maintenance" not in str(info.value)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_nan_in_json_is_bad_response(case, mocked, sleeps):
    mocked.add(case.method, case.url, body='{"total": NaN}', content_type="application/json")
    with pytest.raises(BadResponseError):
        case.client(sleeps).fetch(ORDER)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_redirect_is_not_followed(case, mocked, sleeps):
    mocked.add(case.method, case.url, status=302,
               headers={"Location": "https://elsewhere.test/steal"})
    with pytest.raises(BadResponseError) as info:
        case.client(sleeps).fetch(ORDER)
    assert info.value.http_status == 302
    assert len(mocked.calls) == 1


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_auth_failure_message_never_leaks_credentials(case, mocked, sleeps):
    secret = next(iter(case.credentials.values()))
    mocked.add(case.method, case.url, status=401,
               json={"message": f"bad key {secret}", "errors": f"bad key {secret}"})
    with pytest.raises(AuthError) as info:
        case.client(sleeps).fetch(ORDER)
    assert info.value.http_status == 401
    assert_no_secrets(case, info.value)
