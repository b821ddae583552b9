"""Injectable upstream faults (latency, error statuses, hangs, garbage bodies) per source role."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..core.model import SourceName

# Far beyond any client deadline the product uses; clearing the fault or stopping the
# server ends the wait early so tests and demos never sit through it.
HANG_SECONDS = 30.0


@dataclass(frozen=True)
class FaultSpec:
    """How a simulated upstream misbehaves: extra latency, an error status, a hang or garbage."""

    delay_ms: int = 0
    status: int | None = None
    retry_after: int | None = None
    hang: bool = False
    malformed: bool = False

    def __post_init__(self) -> None:
        for name in ("delay_ms", "status", "retry_after"):
            value = getattr(self, name)
            if value is None and name != "delay_ms":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP error status (400-599), got {self.status}")
        for name in ("hang", "malformed"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a boolean, got {getattr(self, name)!r}")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultSpec:
        """Build a spec from a JSON object, rejecting unknown fields and wrong types."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a fault must be a JSON object, got {data!r}")
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        """The spec as a JSON object."""
        return asdict(self)


def source_role(source: str) -> SourceName:
    """Validate a fault key ("portal", "processor", "erp", "pos")."""
    try:
        return SourceName(source)
    except ValueError:
        roles = ", ".join(s.value for s in SourceName)
        raise ValueError(f"unknown source {source!r}; expected one of {roles}") from None


class FaultBoard:
    """Thread-safe global faults per source, plus the interruptible sleeps that enact them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._faults: dict[SourceName, FaultSpec] = {}
        self._versions: Counter[SourceName] = Counter()
        self._epoch = 0

    def set(self, source: str, spec: FaultSpec) -> None:
        """Make every request to `source` misbehave as `spec` says."""
        role = source_role(source)
        with self._cond:
            self._faults[role] = spec
            self._changed(role)

    def get(self, source: str) -> FaultSpec | None:
        """The fault currently set for `source`, if any."""
        with self._cond:
            return self._faults.get(source_role(source))

    def clear(self, source: str | None = None) -> None:
        """Remove the fault of one source, or of all sources."""
        with self._cond:
            roles = [source_role(source)] if source is not None else list(self._faults)
            for role in roles:
                self._faults.pop(role, None)
                self._changed(role)

    def snapshot(self) -> dict[str, FaultSpec]:
        """A copy of the faults now in force, keyed by source role."""
        with self._cond:
            return {role.value: spec for role, spec in self._faults.items()}

    def wake_all(self) -> None:
        """End every sleep in progress (used when the server stops)."""
        with self._cond:
            self._epoch += 1
            self._cond.notify_all()

    def sleep(self, seconds: float, *, watch: str | None = None) -> bool:
        """Sleep up to `seconds`; False if woken early by wake_all() or a change to `watch`."""
        role = source_role(watch) if watch is not None else None
        deadline = time.monotonic() + seconds
        with self._cond:
            epoch = self._epoch
            version = self._versions[role] if role else 0
            while True:
                if self._epoch != epoch or (role and self._versions[role] != version):
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return True
                self._cond.wait(remaining)

    def _changed(self, role: SourceName) -> None:
        self._versions[role] += 1
        self._cond.notify_all()
