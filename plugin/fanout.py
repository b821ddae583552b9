"""Ask every source at once under one deadline; a late source is reported, not waited for."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import Any, Protocol

from .connectors.base import BaseClient, UpstreamError
from .core.model import (
    ErrorKind,
    OrderRef,
    SourceName,
    SourceReport,
    SourceResult,
    SourceResults,
    SourceStatus,
)

log = logging.getLogger(__name__)

DEADLINE_GRACE = 0.25


class FactsCache(Protocol):
    """The slice of flask-caching's API the fan-out uses."""

    def get(self, key: str) -> Any: ...

    def set(self, key: str, value: Any, timeout: int | None = None) -> Any: ...


def _now() -> datetime:
    return datetime.now(UTC)


class FanOut:
    """A bounded worker pool shared by all requests in the process."""

    def __init__(self, max_workers: int, clock: Callable[[], datetime] = _now) -> None:
        self.pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="fanout")
        self.clock = clock

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def gather(
        self,
        order: OrderRef,
        clients: dict[SourceName, tuple[str, BaseClient | None]],
        *,
        deadline: float,
        cache: FactsCache | None = None,
        cache_prefix: str = "",
        cache_seconds: int = 0,
        refresh: bool = False,
    ) -> SourceResults:
        """Fetch every source in parallel; whatever hasn't answered by `deadline` s times out."""
        started = time.monotonic()
        futures: dict[SourceName, Future[SourceResult]] = {}
        done_now: dict[SourceName, SourceResult] = {}
        for source, (system, client) in clients.items():
            if client is None:
                done_now[source] = SourceResult(
                    SourceReport(source, system, SourceStatus.NOT_CONFIGURED))
                continue
            key = f"{cache_prefix}:facts:{source.value}:{order.number}"
            if cache is not None and not refresh:
                try:
                    hit = cache.get(key)
                except Exception:  # a cache outage only costs speed
                    log.warning("cache unavailable; asking %s directly", system, exc_info=True)
                    hit = None
                if hit is not None:
                    report, facts = hit
                    done_now[source] = SourceResult(
                        SourceReport(**{**report.__dict__, "cached": True}), facts)
                    continue
            # The whole lookup shares one deadline, queueing for a worker included; the small
            # grace lets the deadline (not a racing socket timeout) report a late source.
            client.deadline_at = started + deadline + DEADLINE_GRACE
            futures[source] = self.pool.submit(
                self._fetch, source, system, client, order, cache, key, cache_seconds)
        if futures:
            wait(futures.values(), timeout=deadline)
        elapsed_ms = int((time.monotonic() - started) * 1000)
        for source, fut in futures.items():
            if fut.done():
                done_now[source] = fut.result()
            else:
                fut.cancel()
                system = clients[source][0]
                done_now[source] = SourceResult(SourceReport(
                    source, system, SourceStatus.TIMEOUT, None, elapsed_ms, ErrorKind.TIMEOUT,
                    f"no answer within {deadline:g} s"))
        return SourceResults(
            portal=done_now[SourceName.PORTAL],
            processor=done_now[SourceName.PROCESSOR],
            erp=done_now[SourceName.ERP],
            pos=done_now[SourceName.POS],
        )

    def _fetch(self, source, system, client, order, cache, key, cache_seconds) -> SourceResult:
        """Run one connector, turning every failure into a report (never raising)."""
        t0 = time.monotonic()
        try:
            facts = client.fetch(order)
        except UpstreamError as exc:
            status = SourceStatus.TIMEOUT if exc.kind is ErrorKind.TIMEOUT else SourceStatus.ERROR
            return SourceResult(SourceReport(
                source, system, status, None, int((time.monotonic() - t0) * 1000), exc.kind,
                str(exc), exc.http_status))
        except Exception:  # a connector bug must not take the whole record down
            log.exception("connector %s crashed for order %s", system, order.number)
            return SourceResult(SourceReport(
                source, system, SourceStatus.ERROR, None, int((time.monotonic() - t0) * 1000),
                ErrorKind.BAD_RESPONSE, "unexpected error reading this source"))
        finally:
            client.close()
        status = SourceStatus.OK if facts.found else SourceStatus.NOT_FOUND
        report = SourceReport(source, system, status, self.clock(),
                              int((time.monotonic() - t0) * 1000))
        if cache is not None and cache_seconds > 0:
            try:
                cache.set(key, (report, facts), timeout=cache_seconds)
            except Exception:  # a cache outage only costs speed
                log.warning("could not cache %s facts", system, exc_info=True)
        return SourceResult(report, facts)
