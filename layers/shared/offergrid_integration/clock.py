"""Time as an injectable dependency, so tests can compress minutes into seconds. Epoch time, not
monotonic: the DynamoDB rate budget is shared across hosts."""

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
    """A clock running `scale` times faster than real time (the Offergrid fake's `time_scale`)."""

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
    """`base` as seen by a host whose clock is `skew` seconds off (positive: ahead)."""

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
