"""Which hosts an admin may point a connector at: the vendor's own, never an internal address."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit


def _host_allowed(hosts: tuple[str, ...], host: str) -> bool:
    """Whether `host` is one of `hosts` (a leading "." allows any subdomain of it)."""
    for allowed in hosts:
        if allowed.startswith(".") and host.endswith(allowed) and len(host) > len(allowed):
            return True
        if host == allowed:
            return True
    return False


def _resolves_public(host: str) -> bool:
    """True when every address the name resolves to is a public one."""
    try:
        infos = socket.getaddrinfo(host, 443, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    for info in infos:
        addr = ipaddress.ip_address(info[4][0])
        if not addr.is_global:
            return False
    return True


def check_upstream_url(title: str, hosts: tuple[str, ...], url: str,
                       config: dict[str, Any]) -> str:
    """Return a safe base URL on one of `hosts` ("" means the vendor default) or ValueError.

    Hosts listed in UPSTREAM_ALLOWED_HOSTS (comma-separated; for a self-hosted sandbox or a
    vendor proxy) skip the vendor and public-address checks.
    """
    url = url.strip().rstrip("/")
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        raise ValueError("that isn't a URL") from None
    extra = {h.strip().lower() for h in str(config.get("UPSTREAM_ALLOWED_HOSTS") or "").split(",")
             if h.strip()}
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("the base URL may not carry credentials, a query or a fragment")
    if host in extra:
        if parts.scheme not in ("http", "https"):
            raise ValueError("the base URL must be http(s)")
        return url
    if parts.scheme != "https":
        raise ValueError("the base URL must use https")
    if not _host_allowed(hosts, host):
        allowed = ", ".join(h.lstrip(".") for h in hosts)
        raise ValueError(f"{title} lives at {allowed}; other hosts need UPSTREAM_ALLOWED_HOSTS")
    if not _resolves_public(host):
        raise ValueError("that host doesn't resolve to a public address")
    return url
