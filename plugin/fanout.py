"""Ask every source at once under one deadline; a late source is reported, not waited for.

Each source's answer comes from, in order: the shared cache; a lookup of the same source
already in flight (in this process, or in another one through Redis); or one upstream call.
Results are yielded as they arrive, so the widget can show each source as it answers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from .connectors.base import ApiClient, BaseClient, UpstreamError, safe_message
from .core.model import (
    ErrorKind,
    OrderRef,
    SourceName,
    SourceReport,
    SourceResult,
    SourceResults,
    SourceStatus,
)
from .singleflight import LocalFlights, SharedFlights

log = logging.getLogger(__name__)


class FactsCache(Protocol):
    """The slice of flask-caching's API the fan-out and the service use."""

    def get(self, key: str) -> Any: ...

    def set(self, key: str, value: Any, timeout: int | None = None) -> Any: ...

    def delete_many(self, *keys: str) -> Any: ...


def facts_key(cache_prefix: str, source: SourceName, order: OrderRef) -> str:
    """Where one source's answer about one order is cached (and its flight is keyed)."""
    return f"{cache_prefix}:facts:{source.value}:{order.number}"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Ask:
    """One source to ask for one order."""

    source: SourceName
    system: str
    client: BaseClient
    order: OrderRef
    key: str  # cache and flight key: installation revision, source, order
    slot_key: str  # bulkhead: installation and upstream system


@dataclass(frozen=True)
class _Job:
    """A lookup to lead once its upstream has a free slot."""

    future: Future[SourceResult]
    ask: _Ask
    deadline_at: float
    cache: FactsCache | None
    cache_seconds: int
    refresh: bool


_Retry = Callable[[], "Future[SourceResult]"]


class _Slot:
    """One installation's one upstream: lookups running, and lookups waiting for a turn."""

    def __init__(self, size: int) -> None:
        self.free = size
        self.waiting: deque[_Job] = deque()


class Gathering:
    """The answers of one fan-out, as they arrive."""

    def __init__(self, done: dict[SourceName, SourceResult],
                 pending: dict[SourceName, tuple[str, Future[SourceResult], _Retry | None]],
                 deadline_at: float, started: float, budget: float) -> None:
        self.results = dict(done)
        self.budget = budget
        self._ready = list(done.items())
        self._pending = dict(pending)
        self.deadline_at = deadline_at
        self.started = started

    def as_completed(self) -> Iterator[tuple[SourceName, SourceResult]]:
        """Each source's result as soon as it is known; late ones as timeouts at the deadline."""
        yield from sorted(self._ready, key=lambda kv: list(SourceName).index(kv[0]))
        self._ready = []
        while self._pending:
            left = self.deadline_at - time.monotonic()
            if left <= 0:
                break
            futures = {fut: source for source, (_, fut, _) in self._pending.items()}
            done, _ = wait(futures, timeout=left, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: list(SourceName).index(futures[f])):
                source = futures[fut]
                system, _, retry = self._pending.pop(source)
                result = fut.result()
                if (retry is not None and result.report.status is SourceStatus.TIMEOUT
                        and self.deadline_at - time.monotonic() > 0.05):
                    # We joined a lookup that ran out of *its* time (an earlier request's
                    # deadline); ours isn't over, so ask again (shared with other joiners).
                    self._pending[source] = (system, retry(), None)
                    continue
                self.results[source] = result
                yield source, result
        elapsed_ms = int((time.monotonic() - self.started) * 1000)
        for source, (system, _, _) in sorted(self._pending.items(),
                                           key=lambda kv: list(SourceName).index(kv[0])):
            late = SourceResult(SourceReport(
                source, system, SourceStatus.TIMEOUT, None, elapsed_ms, ErrorKind.TIMEOUT,
                f"no answer within {self.budget:g} s"))
            self.results[source] = late
            yield source, late
        self._pending = {}

    def collect(self) -> SourceResults:
        """Wait (until the deadline at most) for every source."""
        for _ in self.as_completed():
            pass
        return SourceResults(**{s.value: self.results[s] for s in SourceName})


class FanOut:
    """A bounded worker pool shared by all requests in the process.

    Bulkhead: at most `per_upstream` lookups of one installation's upstream run at a time.
    Past that a lookup waits in that upstream's queue (holding no worker) until a slot frees
    or its deadline passes, so an ordinary busy floor is served, and a hung upstream holds
    only its own slots, never the pool other installations need.
    """

    def __init__(self, max_workers: int, clock: Callable[[], datetime] = _now,
                 per_upstream: int | None = None, grace: float = 0.25,
                 shared: SharedFlights | None = None) -> None:
        self.pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="fanout")
        self.max_workers = max_workers
        self.clock = clock
        self.per_upstream = per_upstream or max(1, max_workers // 4)
        # Slack after the deadline, so the deadline (not a racing socket timeout) reports.
        self.grace = grace
        self.flights = LocalFlights()
        self.shared = shared
        self.upstream_calls = 0  # real calls made (for the bench and tests)
        self._queued = 0  # tasks submitted that no worker has picked up yet
        self.running = 0  # source lookups a worker is busy with right now
        self._slots: dict[str, _Slot] = {}
        self._slots_lock = threading.Lock()

    def backlog(self) -> int:
        """Source lookups waiting for a free worker (a sign of overload)."""
        return self._queued

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def gather(self, order: OrderRef, clients: dict[SourceName, tuple[str, BaseClient | None]],
               **kwargs: Any) -> SourceResults:
        """Every source's result (see `start`)."""
        return self.start(order, clients, **kwargs).collect()

    def start(
        self,
        order: OrderRef,
        clients: dict[SourceName, tuple[str, BaseClient | None]],
        *,
        deadline: float | None = None,
        deadline_at: float | None = None,
        cache: FactsCache | None = None,
        cache_prefix: str = "",
        cache_seconds: int = 0,
        refresh: bool = False,
        budget: float | None = None,
        bulkhead: str | None = None,
    ) -> Gathering:
        """Ask every source at once; `deadline_at` (monotonic) or `deadline` s from now.

        `budget` is the whole deadline in seconds, as reported on a late source (it may have
        started before this call, when the request queued). `bulkhead` names the
        installation for the per-upstream limit (default: the cache prefix).
        """
        started = time.monotonic()
        if deadline_at is None:
            deadline_at = started + (deadline if deadline is not None else 2.5)
        if budget is None:
            budget = deadline if deadline is not None else round(deadline_at - started, 1)
        done: dict[SourceName, SourceResult] = {}
        pending: dict[SourceName, tuple[str, Future[SourceResult], _Retry | None]] = {}
        asks: list[_Ask] = []
        for source, (system, client) in clients.items():
            if client is None:
                done[source] = SourceResult(SourceReport(source, system, SourceStatus.NOT_CONFIGURED))
                continue
            asks.append(_Ask(source, system, client, order,
                             facts_key(cache_prefix, source, order),
                             f"{bulkhead or cache_prefix}:{system}"))
        # With shared flights the kept answers are the source cache (one Redis entry per
        # answer, read in the same round trip that joins or leads the flight).
        hits = self._cached(cache, [a.key for a in asks]) \
            if cache is not None and not refresh and self.shared is None else {}
        for ask in asks:
            hit = hits.get(ask.key)
            if hit is not None:
                report, facts = hit
                done[ask.source] = SourceResult(replace(report, cached=True), facts)
                continue
            # The whole lookup shares one deadline; the grace lets the deadline (not a
            # racing socket timeout) report a late source.
            ask.client.deadline_at = deadline_at + self.grace

            def lead(a: _Ask = ask) -> Future[SourceResult]:
                return self._submit(_Job(Future(), a, deadline_at, cache, cache_seconds,
                                         refresh))

            def again(a: _Ask = ask, lead: Callable[[], Future[SourceResult]] = lead
                      ) -> Future[SourceResult]:
                return self.flights.join_or_start(a.key, lead)[0]

            fut, started_it = self.flights.join_or_start(ask.key, lead)
            pending[ask.source] = (ask.system, fut, None if started_it else again)
        return Gathering(done, pending, deadline_at, started, budget)

    def _submit(self, job: _Job) -> Future[SourceResult]:
        """Run `job` now if its upstream has a free slot, else queue it for the next one."""
        with self._slots_lock:
            slot = self._slots.get(job.ask.slot_key)
            if slot is None:
                slot = self._slots[job.ask.slot_key] = _Slot(self.per_upstream)
            if slot.free > 0:
                slot.free -= 1
                self._queued += 1
            else:
                slot.waiting.append(job)
                return job.future
        self.pool.submit(self._task, slot, job)
        return job.future

    def _release(self, slot: _Slot) -> None:
        """Hand a finished lookup's slot to the next waiter still in time (or free it)."""
        expired: list[_Job] = []
        with self._slots_lock:
            nxt = None
            while slot.waiting:
                job = slot.waiting.popleft()
                if job.deadline_at + self.grace <= time.monotonic():
                    expired.append(job)
                    continue
                nxt = job
                break
            if nxt is None:
                slot.free += 1
            else:
                self._queued += 1
        for job in expired:
            job.future.set_result(_late(job.ask, "still waiting on earlier lookups of this "
                                                 "source"))
        if nxt is not None:
            self.pool.submit(self._task, slot, nxt)

    @staticmethod
    def _cached(cache: FactsCache, keys: list[str]) -> dict[str, Any]:
        if not keys:
            return {}
        try:
            get_many = getattr(cache, "get_many", None)
            values = get_many(*keys) if get_many else [cache.get(k) for k in keys]
        except Exception:  # a cache outage only costs speed
            log.warning("cache unavailable; asking the sources directly", exc_info=True)
            return {}
        return {k: v for k, v in zip(keys, values, strict=True) if v is not None}

    def _task(self, slot: _Slot, job: _Job) -> None:
        """Lead one source's lookup in a worker, then pass the slot on."""
        with self._slots_lock:
            self._queued -= 1
            self.running += 1
        try:
            result = self._lead(job.ask, job.deadline_at, job.cache, job.cache_seconds,
                                job.refresh)
        finally:
            with self._slots_lock:
                self.running -= 1
            self._release(slot)
        job.future.set_result(result)

    def _lead(self, ask: _Ask, deadline_at: float, cache: FactsCache | None,
              cache_seconds: int, refresh: bool) -> SourceResult:
        """Lead the lookup of one source (across processes too, when they share Redis)."""

        def fetch() -> SourceResult:
            return self._run(ask, None if self.shared else cache, cache_seconds)

        def keep_for(result: SourceResult) -> float | None:
            if result.report.status is SourceStatus.TIMEOUT:
                return 0  # out of *this* request's time: others must not inherit it
            answered = result.report.status.answered and not result.report.cached
            return cache_seconds if answered and cache is not None and cache_seconds > 0 \
                else None

        try:
            if self.shared is not None:
                return self.shared.run(ask.key, deadline_at, fetch,
                                       lambda: _late(ask, "no answer in time"),
                                       reuse=not refresh, keep_for=keep_for, stored=_as_cached)
            return fetch()
        except Exception:  # never let a task die without a report
            log.exception("lookup of %s failed", ask.system)
            return SourceResult(SourceReport(ask.source, ask.system, SourceStatus.ERROR,
                                             error_kind=ErrorKind.BAD_RESPONSE,
                                             error="unexpected error reading this source"))

    def _run(self, ask: _Ask, cache: FactsCache | None, cache_seconds: int) -> SourceResult:
        """Run one connector, turning every failure into a report (never raising)."""
        source, system, client = ask.source, ask.system, ask.client
        self.upstream_calls += 1
        t0 = time.monotonic()
        try:
            facts = client.fetch(ask.order)
        except UpstreamError as exc:
            status = SourceStatus.TIMEOUT if exc.kind is ErrorKind.TIMEOUT else SourceStatus.ERROR
            # Whatever the upstream echoed, its own credentials never reach the agent.
            said = safe_message(str(exc), client._secrets()
                                if isinstance(client, ApiClient) else ())
            return SourceResult(SourceReport(
                source, system, status, None, int((time.monotonic() - t0) * 1000), exc.kind,
                said, exc.http_status))
        except Exception:  # a connector bug must not take the whole record down
            log.exception("connector %s crashed for order %s", system, ask.order.number)
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
                cache.set(ask.key, (report, facts), timeout=cache_seconds)
            except Exception:  # a cache outage only costs speed
                log.warning("could not cache %s facts", system, exc_info=True)
        return SourceResult(report, facts)


def _as_cached(result: SourceResult) -> SourceResult:
    """A kept answer read back later: an answer says so; a failure is shown as it was."""
    if not result.report.status.answered:
        return result
    return SourceResult(replace(result.report, cached=True), result.facts)


def _late(ask: _Ask, why: str) -> SourceResult:
    return SourceResult(SourceReport(ask.source, ask.system, SourceStatus.TIMEOUT, None, None,
                                     ErrorKind.TIMEOUT, why))
