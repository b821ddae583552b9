"""The helpdesks this build serves: one line per host package, looked up by installation."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .base import Host

# One entry per host package under plugin.hosts; each exposes `make_host(config, cache, http)`.
HOST_PACKAGES = ("zendesk",)


def build_hosts(config: Any, cache: Any, http: Any) -> dict[str, Host]:
    """Every host, bound to this deployment's config, keyed by name."""
    hosts: dict[str, Host] = {}
    for package in HOST_PACKAGES:
        host: Host = import_module(f"{__package__}.{package}").make_host(config, cache, http)
        hosts[host.name] = host
    return hosts
