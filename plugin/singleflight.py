"""Single-flight: concurrent lookups of one source share one upstream call.

In a process, callers join the in-flight future for the same key. Across processes and
hosts, `RedisFlights` elects one leader per key with a short lock; the others poll for the
leader's answer (success or failure, kept a few seconds) and never wait past their deadline.
"""

from __future__ import annotations

import logging
import pickle
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

# One round trip to join or lead: a stored answer (when reuse is allowed), else the lock.
# Lua `false` in the reply is Redis nil.
_ACQUIRE = """
if ARGV[3] == '1' then
  local stored = redis.call('get', KEYS[2])
  if stored then return {stored, 0} end
else
  redis.call('del', KEYS[2])  -- a refresh: the answer kept from before is not fresh enough
end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {false, 1} end
return {redis.call('get', KEYS[2]) or false, 0}
"""

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""

# One round trip to share the answer and drop the lock, only if we still hold it (it may
# have expired and been taken by another leader).
_PUBLISH = """
redis.call('set', KEYS[2], ARGV[2], 'PX', ARGV[3])
if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) end
return 1
"""


class LocalFlights:
    """In-process: one future per key while it is in flight."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flying: dict[str, Future[Any]] = {}

    def join_or_start(self, key: str, start: Callable[[], Future[T]]) -> tuple[Future[T], bool]:
        """The in-flight future for `key`, or a new one from `start()`; True if we started it."""
        with self._lock:
            flying = self._flying.get(key)
            # A finished flight may not have landed yet (callbacks run after waiters wake).
            if flying is not None and not flying.done():
                return flying, False
            fut = start()
            self._flying[key] = fut
        fut.add_done_callback(lambda f: self._land(key, f))
        return fut, True

    def _land(self, key: str, fut: Future[Any]) -> None:
        with self._lock:
            if self._flying.get(key) is fut:
                del self._flying[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._flying)


class SharedFlights(Protocol):
    """Leader election and answer sharing between processes."""

    def run(self, key: str, deadline_at: float, fetch: Callable[[], T],
            on_timeout: Callable[[], T], *, reuse: bool = True,
            keep_for: Callable[[T], float | None] | None = None,
            stored: Callable[[T], T] | None = None) -> T: ...

    def forget(self, keys: list[str]) -> None:
        """Drop the answers kept for these keys (the order changed)."""
        ...


class RedisFlights:
    """Across processes: a short Redis lock elects the caller that asks the upstream.

    The leader stores its answer under `sf:answer:<key>` for `keep` seconds (failures too, so
    a failing upstream isn't asked once per waiter) and drops the lock; waiters poll for the
    answer until their own deadline. If the leader dies the lock expires and a waiter leads.
    """

    def __init__(self, client: Any, *, keep: float = 5.0, poll: float = 0.02,
                 prefix: str = "ot:sf") -> None:
        self.redis = client
        self.keep = keep
        self.poll = poll
        self.prefix = prefix
        self._acquire = client.register_script(_ACQUIRE)
        self._publish = client.register_script(_PUBLISH)
        self._release = client.register_script(_RELEASE)
        self.stats = {"led": 0, "joined": 0, "errors": 0}
        self.pause = 5.0  # after a Redis error, ask upstreams directly this long
        self._down_until = 0.0

    def _failed(self) -> None:
        self.stats["errors"] += 1
        self._down_until = time.monotonic() + self.pause

    def run(self, key: str, deadline_at: float, fetch: Callable[[], T],
            on_timeout: Callable[[], T], *, reuse: bool = True,
            keep_for: Callable[[T], float | None] | None = None,
            stored: Callable[[T], T] | None = None) -> T:
        """`fetch()` once across every process asking for `key` now.

        The answer is kept `keep_for(answer)` seconds (None: `keep`; 0: not shared at all,
        the lock is dropped and a waiter leads), so the shared answer can double as a cache.
        With `reuse`, a kept answer is used as is, passed through `stored` (a refresh passes
        False: it asks again, or joins a flight under way).
        """
        lock, answer = f"{self.prefix}:lock:{key}", f"{self.prefix}:answer:{key}"
        token = secrets.token_hex(8)
        delay = self.poll
        if time.monotonic() < self._down_until:
            return fetch()  # Redis failed moments ago: don't pay its timeout on every lookup
        while True:
            left = deadline_at - time.monotonic()
            if left <= 0:
                return on_timeout()
            try:
                raw, led = self._acquire(keys=[lock, answer], args=[
                    token, max(1, int(left * 1000) + 500), "1" if reuse else "0"])
            except Exception:  # Redis down: ask the upstream ourselves
                log.warning("single-flight lock unavailable; fetching directly", exc_info=True)
                self._failed()
                return fetch()
            if raw is not None:
                self.stats["joined"] += 1
                kept: T = pickle.loads(raw)  # noqa: S301 - our own answers, in our own Redis
                return stored(kept) if stored else kept
            if led:
                self.stats["led"] += 1
                result = fetch()
                seconds = keep_for(result) if keep_for else None
                seconds = self.keep if seconds is None else seconds
                try:
                    if seconds > 0:
                        self._publish(keys=[lock, answer], args=[
                            token, pickle.dumps(result), max(1, int(seconds * 1000))])
                    else:  # not to be shared: waiters take the lead in turn
                        self._release(keys=[lock], args=[token])
                except Exception:
                    log.warning("could not share an upstream answer", exc_info=True)
                return result
            reuse = True  # a leader is asking now: its answer is the fresh one we want
            # Someone else is asking: wait for their answer, or for the lock to go away.
            while time.monotonic() < deadline_at:
                try:
                    raw, holder = self.redis.mget(answer, lock)
                except Exception:
                    self._failed()
                    return fetch()
                if raw is not None:
                    self.stats["joined"] += 1
                    return pickle.loads(raw)  # noqa: S301 - our own answers, in our own Redis
                if holder is None:
                    break  # the leader gave up without an answer: try to lead
                time.sleep(min(delay, max(0.0, deadline_at - time.monotonic())))
                delay = min(delay * 1.5, 0.1)

    def forget(self, keys: list[str]) -> None:
        """Drop shared answers (an action changed what the upstream would say)."""
        try:
            self.redis.delete(*(f"{self.prefix}:answer:{k}" for k in keys))
        except Exception:
            log.warning("could not drop shared answers", exc_info=True)
