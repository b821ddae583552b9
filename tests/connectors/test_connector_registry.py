"""The connector registry: one line per vendor, one default per source role."""

from __future__ import annotations

import pytest
import requests

from plugin.connectors.base import ConfigError, ConnectorConfig
from plugin.connectors.loop import LoopClient
from plugin.connectors.netsuite import NetSuiteClient
from plugin.connectors.registry import CONNECTORS, DEFAULT_SYSTEM, build_client, systems_for
from plugin.connectors.shopify_pos import ShopifyPosClient
from plugin.connectors.stripe import StripeClient
from plugin.core.model import SourceName


def test_registry_maps_systems_to_their_clients():
    assert CONNECTORS == {"loop": LoopClient, "stripe": StripeClient,
                          "netsuite": NetSuiteClient, "shopify_pos": ShopifyPosClient}
    for name, cls in CONNECTORS.items():
        assert cls.system == name


def test_every_source_role_has_a_default_that_plays_it():
    assert set(DEFAULT_SYSTEM) == set(SourceName)
    for source, system in DEFAULT_SYSTEM.items():
        assert CONNECTORS[system].source is source
        assert system in systems_for(source)


def test_build_client_with_a_shared_session():
    session = requests.Session()
    client = build_client("stripe", ConnectorConfig("https://stripe.test", {"secret_key": "k"}),
                          session=session)
    assert isinstance(client, StripeClient)
    assert client.session is session
    assert client.base_url == "https://stripe.test"


def test_build_client_unknown_system_is_config_error():
    with pytest.raises(ConfigError, match="'square'"):
        build_client("square", ConnectorConfig("https://x.test", {}))


def test_build_client_checks_credentials():
    with pytest.raises(ConfigError, match="token_secret"):
        build_client("netsuite", ConnectorConfig("", {
            "account_id": "123", "consumer_key": "a", "consumer_secret": "b", "token_id": "c"}))
