"""The rate budget's arithmetic: token buckets per window, the two lanes. Pure: times are passed in."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from offergrid_integration.errors import TransientError

BURST_FRACTION = 0.05
"""Bucket capacity as a fraction of the window's limit."""
HEADROOM_FRACTION = 0.03
"""Part of the limit never used, so the network's jitter and the doubt about the shared time (how
far a request may arrive from its slot) cannot push us over it."""
WAIT_SAFETY_MARGIN = 1.0
"""Clock seconds of the caller's remaining time that waiting must leave for the request itself."""
MAX_WAIT = 60.0
"""Longest one `acquire()` waits in total, deadline or not; beyond it, fail and let the caller retry."""
TOKEN_EPSILON = 1e-6
"""Float slack: a bucket this close to one token has one (the error is far below one request)."""
DEFAULT_ORDER_RESERVE = 0.4
"""Share of each window's allowance the background lane leaves to orders while they are active
(`ORDER_RESERVE_PERCENT`)."""
MAX_ORDER_RESERVE = 0.9
"""The background lane keeps at least a tenth of the budget (the sync and the sweep must progress)."""
BACKGROUND_RESERVE_AHEAD = 1.0
"""Clock seconds ahead a background caller may reserve a slot (about one token of the minute window)."""
BACKGROUND_POLL = 5.0
"""Longest clock sleep of a background caller between two looks at the budget."""
BACKGROUND_MAX_WAIT = 300.0
"""Longest one background `acquire()` waits (an order burst at the full rate takes a few minutes)."""
ORDERS_IDLE_AFTER = 5.0
"""Seconds after the orders' last slot from which the background lane may use their reserve too:
longer than the gap between two order requests of a burst (the processor's batching window is 2 s),
short enough that a lone order does not hold the background lane back for long."""


class RateBudgetExhausted(TransientError):
    """No token within the time the caller may wait: nothing was sent; `retry_after` in seconds."""

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        self.message = message or f"Offergrid rate budget exhausted; retry in {retry_after:.1f}s"
        super().__init__(self.message)
        self.retry_after = retry_after


class RateBudget(Protocol):
    """What the Offergrid client draws from: one token per request (the one definition of it)."""

    def acquire(self, *, remaining_time: float | None = None) -> None:
        """Take one request token from every window, waiting if allowed; else RateBudgetExhausted."""
        ...


class Lane(StrEnum):
    """Who a budget object draws for; see the module docstring."""

    ORDERS = "orders"
    """The order processor: may use the whole window, always."""
    BACKGROUND = "background"
    """The offer sync, the sweep, the reconciliation: the whole window while orders are idle, only
    above the orders' reserve while they are active."""


@dataclass(frozen=True, slots=True)
class RateWindow:
    """At most `limit` requests in any `period_seconds`."""

    limit: int
    period_seconds: float

    def __post_init__(self) -> None:
        if self.period_seconds <= 0:
            raise ValueError("period_seconds must be positive")
        if self.effective_limit <= self.capacity:
            raise ValueError(f"limit {self.limit} is too small for a token bucket (need at least 3)")

    @property
    def capacity(self) -> int:
        return max(1, round(BURST_FRACTION * self.limit))

    @property
    def effective_limit(self) -> int:
        return self.limit - max(1, round(HEADROOM_FRACTION * self.limit))

    @property
    def refill_per_second(self) -> float:
        return (self.effective_limit - self.capacity) / self.period_seconds

    @property
    def key(self) -> str:
        """Names this window's state; by period only, so a changed limit keeps the same bucket."""
        return f"{self.period_seconds:g}s"


@dataclass(frozen=True, slots=True)
class Allowance:
    """The background lane's bucket for one window: at most `limit` background requests in any
    `period_seconds`, where `limit` is `(1 - reserve)` of the window's effective limit."""

    limit: int
    period_seconds: float
    reserved: int = 0
    """The orders' reserve in requests: how far below zero orders may drive the allowance, so that
    after an order burst the background lane waits until the window's use is back under its share."""

    @classmethod
    def for_window(cls, window: RateWindow, reserve: float) -> Allowance:
        share = max(2, math.floor(window.effective_limit * (1.0 - reserve) + TOKEN_EPSILON))
        limit = min(window.effective_limit, share)
        return cls(limit=limit, period_seconds=window.period_seconds, reserved=window.effective_limit - limit)

    @property
    def capacity(self) -> int:
        return max(1, min(self.limit - 1, round(BURST_FRACTION * self.limit)))

    @property
    def refill_per_second(self) -> float:
        return (self.limit - self.capacity) / self.period_seconds


def validated_reserve(reserve: float) -> float:
    if not 0.0 <= reserve <= MAX_ORDER_RESERVE:
        raise ValueError(f"the order reserve must be between 0 and {MAX_ORDER_RESERVE:g} (got {reserve!r})")
    return reserve


DEFAULT_WINDOWS: tuple[RateWindow, ...] = (
    RateWindow(limit=100, period_seconds=60.0),
    RateWindow(limit=10_000, period_seconds=3600.0),
)


@dataclass(frozen=True, slots=True)
class BucketState:
    tokens: float
    updated_at: float


class BucketShape(Protocol):
    """What the bucket math needs of a window or an allowance."""

    @property
    def capacity(self) -> int: ...

    @property
    def refill_per_second(self) -> float: ...


def full_bucket(window: BucketShape, now: float) -> BucketState:
    return BucketState(tokens=float(window.capacity), updated_at=now)


def refill(window: BucketShape, state: BucketState, now: float) -> BucketState:
    """The bucket at `now`; a clock behind `updated_at` (another host's) adds nothing, never removes."""
    at = max(now, state.updated_at)
    tokens = min(float(window.capacity), state.tokens + (at - state.updated_at) * window.refill_per_second)
    return BucketState(tokens=tokens, updated_at=at)


def _ready(window: BucketShape, state: BucketState, now: float) -> float:
    """The earliest moment, not before `now` nor before `updated_at`, at which the bucket holds a token."""
    current = refill(window, state, now)
    missing = 1.0 - current.tokens
    if missing <= TOKEN_EPSILON:
        return current.updated_at
    return current.updated_at + missing / window.refill_per_second


def schedule(
    windows: Sequence[RateWindow], states: Sequence[BucketState], now: float
) -> tuple[float, list[BucketState]]:
    """When one more request may go: the earliest moment, not before `now` nor any slot already handed
    out, at which every window holds a token; each bucket is debited there, so queued slots line up.
    """
    release = max([now, *(_ready(w, s, now) for w, s in zip(windows, states, strict=True))])
    return release, _taken_at(windows, states, release)


def _taken_at(
    windows: Sequence[RateWindow], states: Sequence[BucketState], release: float
) -> list[BucketState]:
    return [
        BucketState(tokens=refill(window, state, release).tokens - 1.0, updated_at=release)
        for window, state in zip(windows, states, strict=True)
    ]


@dataclass(frozen=True, slots=True)
class Buckets:
    """A budget's whole state: each window's bucket and each window's background allowance, and
    the latest slot the orders' lane took (-inf: none known)."""

    windows: list[BucketState]
    allowances: list[BucketState]
    orders_at: float = -math.inf


def orders_active(buckets: Buckets, now: float) -> bool:
    """Whether an order took a slot within the last `ORDERS_IDLE_AFTER` seconds (or holds one ahead)."""
    return now - buckets.orders_at < ORDERS_IDLE_AFTER


def schedule_lane(
    windows: Sequence[RateWindow],
    allowances: Sequence[Allowance],
    lane: Lane,
    buckets: Buckets,
    now: float,
) -> tuple[float, Buckets]:
    """`schedule` for a lane: while orders are active the background lane also needs an allowance token;
    every request is debited from the allowances (down to minus the reserve).
    """
    release, taken = schedule(windows, buckets.windows, now)
    if lane is Lane.BACKGROUND and orders_active(buckets, now):
        ready = [_ready(a, s, now) for a, s in zip(allowances, buckets.allowances, strict=True)]
        if max(ready) > release:
            release = max(ready)
            taken = _taken_at(windows, buckets.windows, release)
    debited = []
    for allowance, state in zip(allowances, buckets.allowances, strict=True):
        at_release = refill(allowance, state, release)
        debited.append(
            BucketState(
                tokens=max(-float(allowance.reserved), at_release.tokens - 1.0),
                updated_at=at_release.updated_at,
            )
        )
    orders_at = max(buckets.orders_at, release) if lane is Lane.ORDERS else buckets.orders_at
    return release, Buckets(taken, debited, orders_at)


def validated(windows: Sequence[RateWindow]) -> tuple[RateWindow, ...]:
    if not windows:
        raise ValueError("at least one rate window is required")
    keys = [w.key for w in windows]
    if len(set(keys)) != len(keys):
        raise ValueError("rate windows must have distinct periods")
    return tuple(windows)


def allowed_wait(remaining_time: float | None, max_wait: float = MAX_WAIT) -> float:
    """How long this caller may wait for its slot."""
    allowed = max_wait if remaining_time is None else min(max_wait, remaining_time - WAIT_SAFETY_MARGIN)
    return max(0.0, allowed)


def reserves_now(lane: Lane, release: float, now: float) -> bool:
    """Whether a caller of `lane` takes the slot at `release` now (else it sleeps and looks again)."""
    return lane is Lane.ORDERS or release - now <= BACKGROUND_RESERVE_AHEAD


def poll_sleep(release: float, now: float, buckets: Buckets) -> float:
    """A background caller's sleep before it looks again: until its slot is near, at most the poll,
    and no later than the moment the orders turn idle (their reserve is the background's then)."""
    wait = min(BACKGROUND_POLL, max(BACKGROUND_RESERVE_AHEAD / 2, release - now - BACKGROUND_RESERVE_AHEAD))
    idle_in = buckets.orders_at + ORDERS_IDLE_AFTER - now
    return min(wait, idle_in + 1e-3) if idle_in > 0 else wait


class Lanes:
    """What both budgets share: windows, lane, reserve and the allowances derived from them."""

    def __init__(self, windows: Sequence[RateWindow], lane: Lane, reserve: float) -> None:
        self.windows = validated(windows)
        self.lane = Lane(lane)
        self.reserve = validated_reserve(reserve)
        self.allowances = tuple(Allowance.for_window(w, self.reserve) for w in self.windows)
        self.max_wait = MAX_WAIT if self.lane is Lane.ORDERS else BACKGROUND_MAX_WAIT

    def fresh(self, now: float) -> Buckets:
        return Buckets(
            [full_bucket(w, now) for w in self.windows], [full_bucket(a, now) for a in self.allowances]
        )
