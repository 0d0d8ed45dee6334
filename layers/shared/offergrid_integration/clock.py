"""Time as an injectable dependency, so tests can compress minutes into seconds.

Every component that waits or measures time (the API client's backoff, the rate budget) takes a
`Clock`. Production uses `SystemClock` (wall-clock seconds: the DynamoDB token bucket is shared by
Lambda instances on different hosts, so it needs epoch time, not a per-process monotonic one).
`ScaledClock(scale)` runs `scale` times faster than real time: one real second is `scale` clock
seconds and `sleep(s)` sleeps `s / scale` real seconds. The Offergrid fake takes the same
`time_scale`, so a limiter on a `ScaledClock(60)` against a fake with `time_scale=60` sees the
fake's one-minute window pass in one real second. `SkewedClock(base, skew)` is `base` read on a
host whose clock is `skew` seconds off: an operator's laptop a minute fast, in tests and benchmarks.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch on this clock's time line."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ScaledClock:
    """A clock running `scale` times faster than real time (for tests and the local demo)."""

    def __init__(self, scale: float, origin: float | None = None) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = scale
        self._origin = time.time() if origin is None else origin

    def now(self) -> float:
        return self._origin + (time.time() - self._origin) * self.scale

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.scale)


class SkewedClock:
    """`base` as a host whose clock is `skew` seconds off sees it (positive: ahead). Sleeps last as
    long as on `base`: a wrong clock still counts seconds right. `base` is the true time line the
    rate budget schedules on in tests (`ratelimit.reference_clock`)."""

    def __init__(self, base: Clock, skew: float) -> None:
        self.base = base
        self.skew = skew

    @property
    def scale(self) -> float:
        """The base's speed-up (1 for real time), for what waits in real seconds (httpx timeouts)."""
        scale = getattr(self.base, "scale", 1.0)
        return float(scale) if isinstance(scale, int | float) else 1.0

    def now(self) -> float:
        return self.base.now() + self.skew

    def sleep(self, seconds: float) -> None:
        self.base.sleep(seconds)


SYSTEM_CLOCK = SystemClock()
