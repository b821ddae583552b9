"""Zendesk host: signed launches, Zendesk API client, install and OAuth pages, app package."""

from __future__ import annotations

from typing import Any

from .host import ZendeskHost


def make_host(config: Any, cache: Any, http: Any) -> ZendeskHost:
    """The Zendesk host bound to this deployment."""
    return ZendeskHost(config, cache, http)
