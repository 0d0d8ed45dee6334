"""The budget's one time line: AWS's clock from the `Date` of DynamoDB's answers (docs/decisions.md#6; the
interval arithmetic: docs/architecture.md#rate-budget-ratelimit).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Protocol

from offergrid_integration.clock import Clock, SkewedClock, SystemClock

DATE_RESOLUTION = 1.0
"""An HTTP `Date` header counts whole seconds: AWS's time was in [D, D + 1) when it was written."""
MAX_REFERENCE_WIDTH = 1.2
"""Widest interval (seconds) for AWS's time minus ours that the budget schedules on: one second of
`Date` resolution plus a round trip of up to 0.2 s. A send strays from its slot by at most half of
it, so two callers by at most all of it; with up to ~0.75 s of network jitter this stays within
the ~2 s the headroom covers."""
MAX_REFERENCE_READS = 4
"""Extra readings one `acquire()` takes to narrow a too-wide interval before it refuses."""
CLOCK_DRIFT = 5e-4
"""How fast (s/s) a learnt interval widens with its age: NTP's largest slew rate, far above the
drift of a disciplined clock, so a clock being slewed never makes the interval wrong."""


@dataclass(frozen=True, slots=True)
class ClockOffset:
    """The reference's time minus this host's clock lies in `[low, high]` (seconds)."""

    low: float
    high: float

    @property
    def estimate(self) -> float:
        """The middle: off by at most half the width either way."""
        return (self.low + self.high) / 2

    @property
    def width(self) -> float:
        return self.high - self.low


class ReferenceTime(Protocol):
    """The shared time line of one budget, as seen from this host (see the module docstring)."""

    def offset(self, local_now: float) -> ClockOffset | None:
        """Reference minus local clock at `local_now`, or None while nothing is known."""
        ...

    def observe(self, sent: float, received: float, response: Mapping[str, object]) -> None:
        """Learn from a DynamoDB answer (or error response) received between local `sent` and `received`."""
        ...


class DateHeaderTime:
    """AWS's clock from the `Date` header of DynamoDB's answers: interval intersection, 1 s resolution."""

    def __init__(self, drift: float = CLOCK_DRIFT) -> None:
        self._drift = drift
        self._known: ClockOffset | None = None
        self._learnt_at = 0.0
        self._lock = threading.Lock()

    def offset(self, local_now: float) -> ClockOffset | None:
        with self._lock:
            return None if self._known is None else self._aged(self._known, local_now)

    def observe(self, sent: float, received: float, response: Mapping[str, object]) -> None:
        server_second = date_header_seconds(response)
        if server_second is None or received < sent:
            return
        self.learn(sent, received, server_second)

    def learn(self, sent: float, received: float, server_second: float) -> None:
        """AWS wrote `server_second` (floored) at some moment between local `sent` and `received`."""
        new = ClockOffset(server_second - received, server_second + DATE_RESOLUTION - sent)
        with self._lock:
            if self._known is not None:
                kept = self._aged(self._known, received)
                both = ClockOffset(max(kept.low, new.low), min(kept.high, new.high))
                # disjoint: this host's clock was stepped since; trust the new answer alone
                new = both if both.low <= both.high else new
            self._known, self._learnt_at = new, received

    def _aged(self, known: ClockOffset, local_now: float) -> ClockOffset:
        spread = self._drift * abs(local_now - self._learnt_at)
        return ClockOffset(known.low - spread, known.high + spread)

    def __repr__(self) -> str:
        return f"DateHeaderTime(known={self._known!r})"


def date_header_seconds(response: Mapping[str, object]) -> float | None:
    """The epoch second of a botocore response's `Date` header (answers and errors carry it), if any."""
    metadata = response.get("ResponseMetadata")
    headers = metadata.get("HTTPHeaders") if isinstance(metadata, Mapping) else None
    value = headers.get("date") if isinstance(headers, Mapping) else None
    if not isinstance(value, str):
        return None
    try:
        stamp = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return None if stamp.tzinfo is None else stamp.timestamp()


class ClockTime:
    """Another clock as the reference, read exactly: the true clock tests skew their hosts from (the
    base of a `SkewedClock`), or a clock that is its own reference (every user shares it)."""

    def __init__(self, reference: Clock, local: Clock) -> None:
        self.reference = reference
        self.local = local

    def offset(self, local_now: float) -> ClockOffset:
        if self.reference is self.local:
            return ClockOffset(0.0, 0.0)
        difference = self.reference.now() - self.local.now()
        return ClockOffset(difference, difference)

    def observe(self, sent: float, received: float, response: Mapping[str, object]) -> None:
        return None

    def __repr__(self) -> str:
        return f"ClockTime(reference={self.reference!r})"


def reference_time_for(clock: Clock) -> ReferenceTime:
    """The system clock's reference is AWS's (`DateHeaderTime`); a `SkewedClock`'s is its base's; any
    other clock (a `ScaledClock`, a test's) is its own: AWS's `Date` does not count its seconds."""
    true = clock
    while isinstance(true, SkewedClock):
        true = true.base
    if isinstance(true, SystemClock):
        return DateHeaderTime()
    return ClockTime(true, clock)


def until_second_mid_trip(local_now: float, offset: ClockOffset, round_trip: float) -> float:
    """Local seconds to wait so that, if the offset is its middle, AWS's clock turns a whole second
    halfway through a call sent then: its `Date` then halves the offset's interval."""
    send_at = math.ceil(local_now + offset.estimate + round_trip / 2) - offset.estimate - round_trip / 2
    return max(0.0, send_at - local_now)
