"""The fake's time line: real time, compressed time, or a clock a test moves by hand."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class NowClock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch on this clock's time line."""
        ...


class ScaledTime:
    """`origin + (time.time() - origin) * scale`: the semantics of `offergrid_integration.clock.ScaledClock`.

    Re-implemented here so the fake does not depend on the code it tests.
    """

    def __init__(self, scale: float, origin: float | None = None) -> None:
        if scale <= 0:
            raise ValueError("time_scale must be positive")
        self.scale = scale
        self.origin = time.time() if origin is None else origin

    def now(self) -> float:
        return self.origin + (time.time() - self.origin) * self.scale


def iso_timestamp(seconds: float) -> str:
    """JavaScript's `Date.prototype.toISOString()`: UTC, milliseconds, `Z`."""
    stamp = datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")
