"""Sliding-window rate limiting: the strictest reading of "100 requests per minute, 10,000 per hour".

Per API key, never more than `per_minute` admitted requests in any 60 s of the fake's clock, nor
`per_hour` in any 3600 s. A request admitted at `t` stops counting at exactly `t + window`. Requests
refused with 429 are not admitted, so they do not extend the wait.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

MINUTE = 60.0
HOUR = 3600.0


@dataclass
class _KeyWindow:
    minute: deque[float] = field(default_factory=deque)
    hour: deque[float] = field(default_factory=deque)


class SlidingWindowLimiter:
    """Not thread-safe on its own; the server calls it under its lock."""

    def __init__(self, *, per_minute: int, per_hour: int) -> None:
        if per_minute < 1 or per_hour < 1:
            raise ValueError("rate limits must be positive")
        self.per_minute = per_minute
        self.per_hour = per_hour
        self._windows: dict[str, _KeyWindow] = {}

    def retry_after(self, bucket: str, now: float) -> float | None:
        """Seconds until `bucket` may send again, or None when a request at `now` is admissible."""
        window = self._windows.get(bucket)
        if window is None:
            return None
        self._expire(window, now)
        waits: list[float] = []
        if len(window.minute) >= self.per_minute:
            waits.append(window.minute[len(window.minute) - self.per_minute] + MINUTE - now)
        if len(window.hour) >= self.per_hour:
            waits.append(window.hour[len(window.hour) - self.per_hour] + HOUR - now)
        return max(waits) if waits else None

    def admit(self, bucket: str, now: float) -> None:
        window = self._windows.setdefault(bucket, _KeyWindow())
        window.minute.append(now)
        window.hour.append(now)

    def reset(self) -> None:
        self._windows.clear()

    @staticmethod
    def _expire(window: _KeyWindow, now: float) -> None:
        while window.minute and now - window.minute[0] >= MINUTE:
            window.minute.popleft()
        while window.hour and now - window.hour[0] >= HOUR:
            window.hour.popleft()
