"""Ask every source at once under one deadline; a late source is reported, not waited for."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import replace
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



class FactsCache(Protocol):
    """The slice of flask-caching's API the fan-out uses."""

    def get(self, key: str) -> Any: ...

    def set(self, key: str, value: Any, timeout: int | None = None) -> Any: ...


def _now() -> datetime:
    return datetime.now(UTC)


class FanOut:
    """A bounded worker pool shared by all requests in the process."""

    def __init__(self, max_workers: int, clock: Callable[[], datetime] = _now,
                 per_upstream: int | None = None, grace: float = 0.25) -> None:
        self.pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="fanout")
        self.clock = clock
        # Bulkhead: one installation's hung upstream may hold only a few workers, so the
        # other sources (and other installations) keep their threads.
        self.per_upstream = per_upstream or max(1, max_workers // 4)
        # Slack after the deadline, so the deadline (not a racing socket timeout) reports.
        self.grace = grace
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._slots_lock = threading.Lock()

    def _slot(self, key: str) -> threading.BoundedSemaphore:
        with self._slots_lock:
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = threading.BoundedSemaphore(self.per_upstream)
            return slot

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
        held: dict[SourceName, threading.BoundedSemaphore] = {}
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
                        replace(report, cached=True), facts)
                    continue
            slot = self._slot(f"{cache_prefix}:{system}")
            if not slot.acquire(blocking=False):
                done_now[source] = SourceResult(SourceReport(
                    source, system, SourceStatus.TIMEOUT, None, 0, ErrorKind.TIMEOUT,
                    "still waiting on earlier lookups; try again shortly"))
                continue
            # The whole lookup shares one deadline, queueing for a worker included; the small
            # grace lets the deadline (not a racing socket timeout) report a late source.
            client.deadline_at = started + deadline + self.grace
            held[source] = slot
            futures[source] = self.pool.submit(
                self._fetch, source, system, client, order, cache, key, cache_seconds, slot)
        if futures:
            wait(futures.values(), timeout=deadline)
        elapsed_ms = int((time.monotonic() - started) * 1000)
        for source, fut in futures.items():
            if fut.done():
                done_now[source] = fut.result()
            else:
                if fut.cancel():  # never started: its slot is ours to give back
                    held[source].release()
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

    def _fetch(self, source, system, client, order, cache, key, cache_seconds,
               slot=None) -> SourceResult:
        """Run one connector, turning every failure into a report (never raising)."""
        try:
            return self._run(source, system, client, order, cache, key, cache_seconds)
        finally:
            if slot is not None:
                slot.release()

    def _run(self, source, system, client, order, cache, key, cache_seconds) -> SourceResult:
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
