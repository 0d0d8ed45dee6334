"""Faults injected on demand: the next matching requests fail the way a real network or API can."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Final, Literal, cast

FaultKind = Literal["status", "rate_limit", "slow", "drop", "empty", "message", "drop_after"]
FAULT_KINDS: Final = ("status", "rate_limit", "slow", "drop", "empty", "message", "drop_after")
# Faults that let the request take effect and only change (or withhold) its answer.
AFTER_EFFECT_KINDS: Final = ("empty", "message", "drop_after")
_DEFAULT_STATUS: Final = {"rate_limit": 429, "empty": 204, "message": 200}


@dataclass
class Fault:
    """One queued fault. `remaining` counts down as matching requests consume it."""

    kind: FaultKind
    remaining: int = 1
    status: int = 503
    retry_after: float | str | None = None
    delay: float = 0.0
    method: str | None = None
    path: str | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path is None or path.startswith(self.path)


def make_fault(
    kind: str,
    *,
    times: int = 1,
    status: int | None = None,
    retry_after: float | str | None = None,
    delay: float = 0.0,
    method: str | None = None,
    path: str | None = None,
) -> Fault:
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
    if times < 1:
        raise ValueError("times must be at least 1")
    if status is None:
        status = _DEFAULT_STATUS.get(kind, 503)
    if not 100 <= status <= 599:
        raise ValueError("status must be an HTTP status code")
    if kind in ("empty", "message") and not 200 <= status <= 299:
        raise ValueError(f"a {kind!r} fault answers a 2xx status")
    if delay < 0:
        raise ValueError("delay must not be negative")
    if kind == "rate_limit":
        status = 429
    return Fault(cast(FaultKind, kind), times, status, retry_after, delay, method, path)


class FaultQueue:
    """FIFO of faults; the first queued fault matching a request is consumed by it. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: deque[Fault] = deque()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
            return None

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
