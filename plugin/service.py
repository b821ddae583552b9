"""Look up one order for one installation: build clients, fan out, reconcile."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from .connectors.base import ConfigError
from .connectors.registry import CONNECTORS, build_client, default_system
from .core.model import ErrorKind, OrderRef, SourceName, SourceReport, SourceResult, SourceStatus
from .core.reconcile import reconcile
from .core.record import OrderTruth
from .fanout import FactsCache, FanOut
from .installations import Tenant, connector_configs


def shared_session(pool_size: int) -> requests.Session:
    """One pooled HTTP session for all upstream calls in the process."""
    session = requests.Session()
    # Shared by every installation: never carry one tenant's upstream cookies to another's calls.
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    adapter = HTTPAdapter(pool_connections=8, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class OrderTruthService:
    """Everything needed to answer "what is the truth about this order?"."""

    def __init__(self, config: dict[str, Any], cache: FactsCache | None) -> None:
        self.config = config
        self.cache = cache
        workers = config["FANOUT_MAX_WORKERS"]
        self.fanout = FanOut(workers, per_upstream=config["FANOUT_PER_UPSTREAM"],
                             grace=config["FANOUT_DEADLINE_GRACE"])
        self.session = shared_session(workers)

    def close(self) -> None:
        self.fanout.shutdown()
        self.session.close()

    def lookup(self, tenant: Tenant, order: OrderRef, *, refresh: bool = False,
               now: datetime | None = None) -> OrderTruth:
        """The merged record for `order` as `tenant` sees it."""
        clients: dict[SourceName, tuple[str, Any]] = {}
        broken: dict[SourceName, SourceResult] = {}
        for source, entry in connector_configs(tenant, self.config).items():
            if entry is None:
                clients[source] = (default_system(source), None)
                continue
            system, cfg = entry
            try:
                clients[source] = (system, build_client(system, cfg, self.session))
            except ConfigError as exc:
                broken[source] = SourceResult(SourceReport(
                    source, system, SourceStatus.ERROR, error_kind=ErrorKind.CONFIG,
                    error=str(exc)))
                clients[source] = (system, None)
        results = self.fanout.gather(
            order,
            clients,
            deadline=self.config["FANOUT_DEADLINE_SECONDS"],
            cache=self.cache,
            cache_prefix=tenant.cache_prefix,
            cache_seconds=self.config["SOURCE_CACHE_SECONDS"],
            refresh=refresh,
        )
        if broken:
            results = type(results)(**{
                s.value: broken.get(s, getattr(results, s.value)) for s in SourceName})
        processor = CONNECTORS.get(clients[SourceName.PROCESSOR][0])
        settings = replace(tenant.reconcile_settings, processor_gateways=(
            processor.shop_gateways if processor else frozenset()))
        return reconcile(order, results, now or datetime.now(UTC), settings)
