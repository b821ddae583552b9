"""A private sandbox server per test, and a small client speaking each vendor's dialect."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
import requests

from plugin.connectors.shopify_pos import DEFAULT_API_VERSION
from plugin.sandbox.server import SandboxServer
from plugin.sandbox.state import SandboxState
from plugin.sandbox.upstreams import vendors

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
SANDBOX_CREDENTIALS = {system: v.credentials for system, v in vendors().items()}
NS = SANDBOX_CREDENTIALS["netsuite"]
SUITEQL = "/netsuite/services/rest/query/v1/suiteql"
ORDERS_QUERY = "query($query: String) { orders(first: 1, query: $query) { nodes { id } } }"


def chain_query(order_name: str) -> str:
    """A document-chain query like the NetSuite connector's (the literal quote-doubled)."""
    literal = "'" + order_name.replace("'", "''") + "'"
    return ("SELECT so.id, so.type FROM transaction so WHERE so.type = 'SalesOrd' "
            f"AND so.otherrefnum = {literal}")


def receipt_lines_query(ids: list[str]) -> str:
    """A receipt-lines query like the NetSuite connector's."""
    return ("SELECT tl.transaction AS receipt, item.itemid AS sku FROM transactionline tl "
            f"WHERE tl.transaction IN ({', '.join(ids)}) AND tl.mainline = 'F'")


def _enc(value: str) -> str:
    return quote(value, safe="~")


def oauth_header(url: str, query: dict[str, Any], *, consumer_key: str = NS["consumer_key"],
                 consumer_secret: str = NS["consumer_secret"],
                 method_name: str = "HMAC-SHA256") -> str:
    """A NetSuite TBA header signed per RFC 5849 for a POST to `url` with `query`."""
    oauth = {
        "oauth_consumer_key": consumer_key,
        "oauth_token": NS["token_id"],
        "oauth_nonce": uuid.uuid4().hex,
        "oauth_timestamp": "1772445600",
        "oauth_signature_method": method_name,
        "oauth_version": "1.0",
    }
    pairs = sorted((_enc(k), _enc(str(v))) for k, v in [*oauth.items(), *query.items()])
    base = "&".join(["POST", _enc(url), _enc("&".join(f"{k}={v}" for k, v in pairs))])
    key = f"{_enc(consumer_secret)}&{_enc(NS['token_secret'])}"
    signature = base64.b64encode(hmac.new(key.encode(), base.encode(), hashlib.sha256).digest())
    fields = {"realm": NS["account_id"], **oauth, "oauth_signature": signature.decode()}
    return "OAuth " + ", ".join(f'{k}="{_enc(v)}"' for k, v in fields.items())


class Upstreams:
    """Calls a sandbox the way the connectors do; every method returns the raw response."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url
        self.timeout = timeout
        self.http = requests.Session()
        self.http.trust_env = False  # never route 127.0.0.1 through a proxy from the env

    def loop(self, order_name: str, *, key: str | None = SANDBOX_CREDENTIALS["loop"]["api_key"],
             timeout: float | None = None) -> requests.Response:
        headers = {"X-Authorization": key} if key is not None else {}
        return self.http.get(f"{self.url}/loop/api/v1/warehouse/return/details",
                             params={"order_name": order_name}, headers=headers,
                             timeout=timeout or self.timeout)

    def stripe(self, path: str, *, key: str = SANDBOX_CREDENTIALS["stripe"]["secret_key"],
               timeout: float | None = None, **params: Any) -> requests.Response:
        return self.http.get(f"{self.url}/stripe{path}", params=params,
                             headers={"Authorization": f"Bearer {key}"},
                             timeout=timeout or self.timeout)

    def search(self, number: str, **kwargs: Any) -> requests.Response:
        return self.stripe("/v1/payment_intents/search",
                           query=f"metadata['order_id']:'{number}'", **kwargs)

    def refund(self, data: dict[str, Any], idempotency_key: str | None = None
               ) -> requests.Response:
        headers = {"Authorization": f"Bearer {SANDBOX_CREDENTIALS['stripe']['secret_key']}"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return self.http.post(f"{self.url}/stripe/v1/refunds", data=data, headers=headers,
                              timeout=self.timeout)

    def suiteql(self, q: str, *, limit: int = 1000, offset: int = 0,
                authorization: str | None = None,
                timeout: float | None = None) -> requests.Response:
        query = {"limit": limit, "offset": offset}
        url = self.url + SUITEQL
        headers = {"Prefer": "transient",
                   "Authorization": authorization or oauth_header(url, query)}
        return self.http.post(url, params=query, json={"q": q}, headers=headers,
                              timeout=timeout or self.timeout)

    def shopify(self, search: str, *,
                token: str = SANDBOX_CREDENTIALS["shopify_pos"]["access_token"],
                timeout: float | None = None) -> requests.Response:
        body = {"query": ORDERS_QUERY, "variables": {"query": search}}
        return self.http.post(f"{self.url}/shopify/admin/api/{DEFAULT_API_VERSION}/graphql.json", json=body,
                              headers={"X-Shopify-Access-Token": token},
                              timeout=timeout or self.timeout)

    def control(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(method, f"{self.url}/_sandbox{path}", timeout=self.timeout,
                                 **kwargs)


@pytest.fixture
def state() -> SandboxState:
    """Sandbox state on a fixed clock."""
    return SandboxState(now=lambda: NOW)


@pytest.fixture
def sandbox(state: SandboxState) -> Iterator[SandboxServer]:
    """A sandbox server on a free 127.0.0.1 port, stopped after the test."""
    with SandboxServer(state) as server:
        yield server


@pytest.fixture
def upstreams(sandbox: SandboxServer) -> Iterator[Upstreams]:
    """A client for the test's sandbox."""
    client = Upstreams(sandbox.url)
    yield client
    client.http.close()
