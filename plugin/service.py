"""Look up one order for one installation: build clients, fan out, reconcile.

A lookup runs under one deadline counted from when the request arrived. Its merged record is
cached (with each source's answer) under the installation's revision, so a hit costs no merge;
writes and actions drop the order's entries with `invalidate`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from .connectors.base import ConfigError, gevent_patched, settle_environment
from .connectors.registry import CONNECTORS, build_client, default_system
from .core.model import ErrorKind, OrderRef, SourceName, SourceReport, SourceResult, SourceStatus
from .core.reconcile import reconcile
from .core.record import OrderTruth
from .fanout import FactsCache, FanOut, Gathering, facts_key
from .installations import Tenant, connector_configs
from .singleflight import RedisFlights, SharedFlights

log = logging.getLogger(__name__)


class Overloaded(Exception):
    """Too little of the request's deadline is left to look anything up: shed it (503)."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def shared_session(pool_size: int) -> requests.Session:
    """One pooled HTTP session for all upstream calls in the process."""
    session = settle_environment(requests.Session())
    # Shared by every installation: never carry one tenant's upstream cookies to another's calls.
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    # Keep-alive per upstream host: many installations share one vendor host.
    adapter = HTTPAdapter(pool_connections=32, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def record_key(tenant: Tenant, order: OrderRef) -> str:
    return f"{tenant.cache_prefix}:record:{order.number}"


class Lookup:
    """One order being looked up: each source's report as it answers, then the record."""

    def __init__(self, service: OrderTruthService, tenant: Tenant, order: OrderRef, *,
                 gathering: Gathering | None = None, record: OrderTruth | None = None,
                 broken: dict[SourceName, SourceResult] | None = None,
                 processor_system: str = "", now: datetime | None = None) -> None:
        self.service = service
        self.tenant = tenant
        self.order = order
        self.gathering = gathering
        self.record = record
        self.broken = broken or {}
        self.processor_system = processor_system
        self.now = now

    def sections(self) -> Iterator[tuple[SourceName, SourceReport]]:
        """Each source's report as soon as it is known (all at once for a cached record)."""
        if self.record is not None:
            yield from ((s, self.record.sources[s]) for s in SourceName)
            return
        assert self.gathering is not None
        for source, result in self.gathering.as_completed():
            yield source, self.broken.get(source, result).report

    def finish(self) -> OrderTruth:
        """The merged record, once every source answered or the deadline passed."""
        if self.record is not None:
            return self.record
        assert self.gathering is not None
        results = self.gathering.collect()
        if self.broken:
            results = type(results)(**{
                s.value: self.broken.get(s, getattr(results, s.value)) for s in SourceName})
        processor = CONNECTORS.get(self.processor_system)
        settings = replace(self.tenant.reconcile_settings, processor_gateways=(
            processor.shop_gateways if processor else frozenset()))
        self.record = reconcile(self.order, results, self.now or datetime.now(UTC), settings)
        self.service.remember(self.tenant, self.order, self.record)
        return self.record


class OrderTruthService:
    """Everything needed to answer "what is the truth about this order?"."""

    def __init__(self, config: Mapping[str, Any], cache: FactsCache | None) -> None:
        self.config = config
        self.cache = cache
        workers = config.get("FANOUT_MAX_WORKERS") or (1024 if gevent_patched() else 32)
        self.redis = _redis(config.get("REDIS_URL"))
        # Flights share the cache's namespace, so deployments sharing one Redis stay apart.
        shared: SharedFlights | None = RedisFlights(
            self.redis, prefix=f"{config.get('CACHE_KEY_PREFIX') or ''}ot:sf") \
            if self.redis else None
        self.fanout = FanOut(workers, per_upstream=config["FANOUT_PER_UPSTREAM"],
                             grace=config["FANOUT_DEADLINE_GRACE"], shared=shared)
        self.session = shared_session(min(workers, 256))
        self.records_served = 0  # records answered from the record cache (bench, tests)

    def close(self) -> None:
        self.fanout.shutdown()
        self.session.close()

    # -- looking up

    def lookup(self, tenant: Tenant, order: OrderRef, *, refresh: bool = False,
               now: datetime | None = None, arrived: float | None = None) -> OrderTruth:
        """The merged record for `order` as `tenant` sees it."""
        return self.begin(tenant, order, refresh=refresh, now=now, arrived=arrived).finish()

    def begin(self, tenant: Tenant, order: OrderRef, *, refresh: bool = False,
              now: datetime | None = None, arrived: float | None = None) -> Lookup:
        """Start a lookup; `arrived` is the request's arrival on the monotonic clock.

        Raises Overloaded when the request already queued for most of its deadline.
        """
        if not refresh:
            hit = self._cached_record(tenant, order)
            if hit is not None:  # costs nothing: never shed
                return Lookup(self, tenant, order, record=hit)
        deadline_at = self.deadline_at(arrived, tenant)
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
        gathering = self.fanout.start(
            order, clients, deadline_at=deadline_at, cache=self.cache,
            cache_prefix=tenant.cache_prefix, cache_seconds=self.cache_seconds(tenant),
            refresh=refresh, budget=self.budget(tenant),
            bulkhead=f"inst:{tenant.id}:{tenant.created}")
        return Lookup(self, tenant, order, gathering=gathering, broken=broken,
                      processor_system=clients[SourceName.PROCESSOR][0], now=now)

    def budget(self, tenant: Tenant | None) -> float:
        """How long a lookup may take: the installation's own choice, never more than this
        deployment's (its workers and proxies are sized for that)."""
        server = float(self.config["FANOUT_DEADLINE_SECONDS"])
        own = (tenant.settings.get("lookup") or {}).get("deadline_seconds") if tenant else None
        return min(server, float(own)) if isinstance(own, (int, float)) and own > 0 else server

    def cache_seconds(self, tenant: Tenant) -> int:
        """How long answers are reused: the installation's own choice, else the deployment's."""
        own = (tenant.settings.get("lookup") or {}).get("cache_seconds")
        return int(own) if isinstance(own, int) and own >= 0 \
            else int(self.config["SOURCE_CACHE_SECONDS"])

    def due(self, arrived: float | None, tenant: Tenant | None = None) -> float:
        """The monotonic time an answer to a request that arrived then is due."""
        now = time.monotonic()
        return (now if arrived is None else min(arrived, now)) + self.budget(tenant)

    def deadline_at(self, arrived: float | None, tenant: Tenant | None = None) -> float:
        """When the answer is due (see `due`), or Overloaded if the request already waited
        too long for a worker, or the fan-out is full."""
        now = time.monotonic()
        deadline_at = self.due(arrived, tenant)
        start = deadline_at - self.budget(tenant)
        floor = float(self.config["SHED_BELOW_SECONDS"])
        if deadline_at - now < floor:
            waited = now - start
            raise Overloaded(f"The request waited {waited:.1f} s for a free worker; "
                             "try again in a moment.", retry_after=max(1, round(waited)))
        if self.fanout.backlog() >= self.fanout.max_workers:
            raise Overloaded("Order Truth is busy answering other agents; try again in a "
                             "moment.", retry_after=1)
        return deadline_at

    # -- the record cache

    def _cached_record(self, tenant: Tenant, order: OrderRef) -> OrderTruth | None:
        if self.cache is None or self.cache_seconds(tenant) <= 0:
            return None
        try:
            hit = self.cache.get(record_key(tenant, order))
        except Exception:  # a cache outage only costs speed
            log.warning("cache unavailable; looking the order up", exc_info=True)
            return None
        if not isinstance(hit, OrderTruth):
            return None
        self.records_served += 1
        return replace(hit, sources={s: replace(r, cached=r.status.answered)
                                     for s, r in hit.sources.items()})

    def remember(self, tenant: Tenant, order: OrderRef, truth: OrderTruth) -> None:
        """Cache a complete record for as long as its oldest source answer stays fresh."""
        seconds = self.cache_seconds(tenant)
        if self.cache is None or seconds <= 0 or truth.partial:
            return
        if any(r.status is SourceStatus.ERROR for r in truth.sources.values()):
            return
        ages = [(truth.generated_at - r.as_of).total_seconds()
                for r in truth.sources.values() if r.as_of is not None]
        ttl = int(seconds - max(ages, default=0))
        if ttl <= 0:
            return
        try:
            self.cache.set(record_key(tenant, order), truth, timeout=ttl)
        except Exception:  # a cache outage only costs speed
            log.warning("could not cache the record", exc_info=True)

    def invalidate(self, tenant: Tenant, order: OrderRef) -> None:
        """Forget everything cached about an order (after a write or action changed it)."""
        sources = [facts_key(tenant.cache_prefix, s, order) for s in SourceName]
        if self.cache is not None:
            try:
                self.cache.delete_many(record_key(tenant, order), *sources)
            except Exception:  # a cache outage only costs a stale answer for its lifetime
                log.warning("could not drop cached entries", exc_info=True)
        if self.fanout.shared is not None:
            self.fanout.shared.forget(sources)


def _redis(url: str | None) -> Any:
    if not url:
        return None
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # Fail fast: a Redis outage costs a lookup one short timeout, then a pause (RedisFlights).
    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5,
                                retry=Retry(NoBackoff(), 0))
