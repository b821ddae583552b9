"""When a request arrived, so its deadline counts queueing too.

A front proxy or router that stamps `X-Request-Start` (Heroku, nginx `t=${msec}`) lets the
deadline include time spent queued before a worker took the request; without the header the
clock starts when the worker does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)
_SKEW_HINT = 5.0  # a reported wait this long is more likely a skewed router clock
ARRIVED = "order_truth.arrived"  # WSGI environ key: arrival on the monotonic clock
_MAX_QUEUE = 60.0  # a stamp further back than this is a clock problem, not queueing


def request_start(header: str | None) -> float | None:
    """Seconds since the epoch from `X-Request-Start` (`t=` s, ms or µs), or None."""
    if not header:
        return None
    raw = header.strip()
    if raw.startswith("t="):
        raw = raw[2:]
    try:
        value = float(raw)
    except ValueError:
        return None
    if not value > 0:
        return None
    if value > 1e14:  # microseconds
        return value / 1e6
    if value > 1e11:  # milliseconds
        return value / 1e3
    return value


def arrival(header: str | None, *, now_wall: float, now_mono: float) -> float:
    """Arrival on the monotonic clock: now, or earlier by the queueing the header shows."""
    started = request_start(header)
    if started is None:
        return now_mono
    waited = now_wall - started
    if not 0 <= waited <= _MAX_QUEUE:  # a stamp from the future, or from a skewed clock
        return now_mono
    return now_mono - waited


class ArrivalClock:
    """WSGI middleware that records each request's arrival in `environ[ARRIVED]`.

    With `trust_header` off (ORDER_TRUTH_TRUST_REQUEST_START=false, for a router whose clock
    isn't synchronised with the app's), the clock starts when the worker takes the request.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], *, trust_header: bool = True) -> None:
        self.app = app
        self.trust_header = trust_header
        self._warned_at = -1e9

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        now = time.monotonic()
        header = environ.get("HTTP_X_REQUEST_START") if self.trust_header else None
        arrived = environ[ARRIVED] = arrival(header, now_wall=time.time(), now_mono=now)
        if now - arrived > _SKEW_HINT and now - self._warned_at > 60:
            self._warned_at = now
            log.warning("X-Request-Start says a request queued %.1f s: if the router's clock "
                        "is off, set ORDER_TRUTH_TRUST_REQUEST_START=false", now - arrived)

        def timed(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            # How long the app took from arrival (queueing included when a router stamped
            # it) to the start of the response: browsers' devtools and the bench read it.
            took = (time.monotonic() - arrived) * 1000
            headers.append(("Server-Timing", f"app;dur={took:.1f}"))
            return start_response(status, headers, *exc_info)

        return self.app(environ, timed)
