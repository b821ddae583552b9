"""What a running sandbox remembers: its clock, faults, refunds created through Stripe, and Zendesk."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .dialects import JSON
from .faults import FaultBoard
from .scenarios import SCENARIOS, OrderData, Scenario
from .zendesk import SandboxZendesk


def utc_now() -> datetime:
    """The real clock, timezone-aware UTC."""
    return datetime.now(UTC)


class IdempotencyConflict(Exception):
    """An Idempotency-Key reused with different request parameters."""


class RefundLedger:
    """Refunds created with POST /v1/refunds, and the Idempotency-Keys that created them."""

    def __init__(self) -> None:
        # Callers hold the lock across check-remaining-then-record so two concurrent
        # refunds cannot both fit under the refundable amount.
        self.lock = threading.RLock()
        self._refunds: list[JSON] = []
        self._by_key: dict[str, tuple[Hashable, JSON]] = {}
        # Refunds cancelled with POST /v1/refunds/{id}/cancel (seeded ones are rebuilt on
        # every request, so their cancellation is kept here and applied when they are read).
        self._canceled: set[str] = set()

    def refunds(self) -> list[JSON]:
        """Every refund created so far."""
        with self.lock:
            return list(self._refunds)

    def replay(self, key: str, fingerprint: Hashable) -> JSON | None:
        """The refund an earlier request with this key created; raise on different params."""
        with self.lock:
            prior = self._by_key.get(key)
            if prior is None:
                return None
            if prior[0] != fingerprint:
                raise IdempotencyConflict(key)
            return prior[1]

    def record(self, refund: JSON, key: str | None, fingerprint: Hashable) -> None:
        """Store a created refund (and remember its idempotency key)."""
        with self.lock:
            self._refunds.append(refund)
            if key is not None:
                self._by_key[key] = (fingerprint, refund)

    def remember(self, key: str, fingerprint: Hashable, answer: JSON) -> None:
        """Keep an idempotent request's answer (other than a created refund) for replay."""
        with self.lock:
            self._by_key[key] = (fingerprint, answer)

    def cancel(self, refund_id: str) -> None:
        """Remember a refund as cancelled."""
        with self.lock:
            self._canceled.add(refund_id)

    def as_now(self, refund: JSON) -> JSON:
        """A refund with its cancellation applied."""
        with self.lock:
            return {**refund, "status": "canceled"} if refund["id"] in self._canceled \
                else refund

    def clear(self) -> None:
        """Forget every created refund, key and cancellation."""
        with self.lock:
            self._refunds.clear()
            self._by_key.clear()
            self._canceled.clear()


class NetSuiteRecords:
    """Documents created through NetSuite's REST record API (transforms), per order.

    The simulated NetSuite keeps each created document as its SuiteQL chain row, its lines
    and its receipt lines; callers hold `lock` across check-then-add (a duplicate externalId
    must not slip in between two concurrent transforms).
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._docs: list[JSON] = []
        # Seeded documents' status changed by a created one (an RA received in full).
        self._status: dict[str, str] = {}
        self._next = 0

    def next_id(self) -> str:
        """A fresh internal id, apart from the seeded "<order><nn>" ones."""
        with self.lock:
            self._next += 1
            return str(9000000 + self._next)

    def add(self, doc: JSON) -> None:
        """Keep a created document."""
        with self.lock:
            self._docs.append(doc)

    def docs(self) -> list[JSON]:
        """Every created document, oldest first."""
        with self.lock:
            return list(self._docs)

    def set_status(self, doc_id: str, status: str) -> None:
        """Record a document's new status letter (seeded or created)."""
        with self.lock:
            self._status[doc_id] = status

    def status(self, doc_id: str) -> str | None:
        """A document's status letter as changed since it was seeded or created, if it was."""
        with self.lock:
            return self._status.get(doc_id)

    def clear(self) -> None:
        """Forget every created document and status change."""
        with self.lock:
            self._docs.clear()
            self._status.clear()
            self._next = 0


@dataclass
class SandboxState:
    """The sandbox's mutable state; scenario data is rebuilt from `now()` on every request."""

    now: Callable[[], datetime] = utc_now
    scenarios: tuple[Scenario, ...] = SCENARIOS
    faults: FaultBoard = field(default_factory=FaultBoard)
    ledger: RefundLedger = field(default_factory=RefundLedger)
    netsuite: NetSuiteRecords = field(default_factory=NetSuiteRecords)
    # Signs the simulated Zendesk's OAuth tokens: the same secret after a restart keeps them valid.
    zendesk_secret: bytes | None = field(default=None, repr=False, compare=False)
    zendesk: SandboxZendesk = field(init=False, repr=False, compare=False)
    # HTTP requests each source role received (for tests and the bench: single-flight proof).
    requests: Counter[str] = field(default_factory=Counter, repr=False, compare=False)
    _requests_lock: threading.Lock = field(default_factory=threading.Lock, repr=False,
                                           compare=False)

    def count_request(self, source: str) -> None:
        with self._requests_lock:
            self.requests[source] += 1

    def request_counts(self) -> dict[str, int]:
        with self._requests_lock:
            return dict(self.requests)

    def __post_init__(self) -> None:
        # Bound late so the Zendesk account follows the state's clock even if `now` is replaced.
        self.zendesk = SandboxZendesk(now=lambda: self.now(), scenarios=self.scenarios,
                                      secret=self.zendesk_secret)

    def scenario(self, number: str | None) -> Scenario | None:
        """The scenario for an order number ("1001"), if seeded."""
        return next((s for s in self.scenarios if s.order_number == number), None)

    def order(self, number: str | None) -> OrderData | None:
        """One order's data as of now, or None for an unknown order."""
        scenario = self.scenario(number)
        return scenario.build(self.now()) if scenario else None

    def orders(self) -> dict[str, OrderData]:
        """Every seeded order's data, all built at the same instant."""
        now = self.now()
        return {s.order_number: s.build(now) for s in self.scenarios}

    def reset(self) -> None:
        """Clear faults, created refunds and NetSuite documents; reseed the Zendesk tickets."""
        self.faults.clear()
        self.ledger.clear()
        self.netsuite.clear()
        self.zendesk.reset()
        with self._requests_lock:
            self.requests.clear()
