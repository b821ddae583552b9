"""The connector registry: one line per vendor module; everything else read from descriptors."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from plugin.connectors.base import ConfigError, ConnectorConfig
from plugin.connectors.docs import render
from plugin.connectors.registry import CONNECTORS, build_client, default_system, for_source
from plugin.connectors.shopify_payments import ShopifyPaymentsClient
from plugin.connectors.stripe import StripeClient
from plugin.core.model import SourceName

DOCS = Path(__file__).resolve().parents[2] / "docs" / "connectors.md"


def test_every_descriptor_names_its_own_client_and_role():
    assert list(CONNECTORS) == ["loop", "stripe", "shopify_payments", "netsuite", "shopify_pos"]
    for system, d in CONNECTORS.items():
        assert d.client.system == system and d.client.source is d.source
        assert d.hosts and d.credentials
        assert tuple(f.name for f in d.credentials) == d.client.required_credentials
        # Every credential and option has a standalone environment variable.
        assert all(f.env for f in (*d.credentials, *d.options)), system


def test_every_source_role_has_a_default_that_plays_it():
    for source in SourceName:
        assert CONNECTORS[default_system(source)].source is source
    assert [d.system for d in for_source(SourceName.PROCESSOR)] == ["stripe", "shopify_payments"]


def test_env_variable_names_are_unique_across_connectors():
    names = [n for d in CONNECTORS.values() for n in d.env_names()]
    assert len(names) == len(set(names))


def test_build_client_with_a_shared_session():
    session = requests.Session()
    client = build_client("stripe", ConnectorConfig("https://stripe.test", {"secret_key": "k"}),
                          session=session)
    assert isinstance(client, StripeClient)
    assert client.session is session
    assert client.base_url == "https://stripe.test"
    assert isinstance(build_client("shopify_payments", ConnectorConfig(
        "https://acme.myshopify.com", {"access_token": "t"})), ShopifyPaymentsClient)


def test_build_client_unknown_system_is_config_error():
    with pytest.raises(ConfigError, match="'square'"):
        build_client("square", ConnectorConfig("https://x.test", {}))


def test_build_client_checks_credentials():
    with pytest.raises(ConfigError, match="token_secret"):
        build_client("netsuite", ConnectorConfig("", {
            "account_id": "123", "consumer_key": "a", "consumer_secret": "b", "token_id": "c"}))


def test_connector_docs_are_generated_from_the_descriptors():
    # `flask --app app connectors docs > docs/connectors.md` after changing a descriptor.
    assert DOCS.read_text() == render()
