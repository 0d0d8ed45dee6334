"""The rate budget's arithmetic: token buckets per window, the two lanes, and the one time line they run
on, AWS's clock from the `Date` of DynamoDB's answers (docs/decisions.md#6; the interval arithmetic:
docs/architecture.md#rate-budget-ratelimit). Pure: times are passed in.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Protocol

from offergrid_integration.clock import Clock, SkewedClock, SystemClock
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
    """Who a budget object draws for (docs/decisions.md#6)."""

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


DEFAULT_WINDOWS: tuple[RateWindow, ...] = (
    RateWindow(limit=100, period_seconds=60.0),
    RateWindow(limit=10_000, period_seconds=3600.0),
)


@dataclass(frozen=True, slots=True)
class BucketState:
    tokens: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class Buckets:
    """A budget's whole state: each window's bucket and each window's background allowance, and
    the latest slot the orders' lane took (-inf: none known)."""

    windows: list[BucketState]
    allowances: list[BucketState]
    orders_at: float = -math.inf


def full_bucket(window: RateWindow | Allowance, now: float) -> BucketState:
    return BucketState(tokens=float(window.capacity), updated_at=now)


def refill(window: RateWindow | Allowance, state: BucketState, now: float) -> BucketState:
    """The bucket at `now`; a clock behind `updated_at` (another host's) adds nothing, never removes."""
    at = max(now, state.updated_at)
    tokens = min(float(window.capacity), state.tokens + (at - state.updated_at) * window.refill_per_second)
    return BucketState(tokens=tokens, updated_at=at)


def _ready(window: RateWindow | Allowance, state: BucketState, now: float) -> float:
    """The earliest moment, not before `now` nor before `updated_at`, at which the bucket holds a token."""
    current = refill(window, state, now)
    missing = 1.0 - current.tokens
    if missing <= TOKEN_EPSILON:
        return current.updated_at
    return current.updated_at + missing / window.refill_per_second


def schedule_lane(
    windows: Sequence[RateWindow],
    allowances: Sequence[Allowance],
    lane: Lane,
    buckets: Buckets,
    now: float,
) -> tuple[float, Buckets]:
    """When one more request of `lane` may go, and the buckets once it took its slot.

    The slot is the earliest moment, not before `now` nor any slot already handed out, at which every
    window holds a token (so queued slots line up); while orders are active (a slot within
    `ORDERS_IDLE_AFTER`) the background lane also needs an allowance token. Every request is debited from
    the windows and from the allowances (down to minus the reserve).
    """
    pairs = list(zip(windows, buckets.windows, strict=True))
    release = max([now, *(_ready(w, s, now) for w, s in pairs)])
    if lane is Lane.BACKGROUND and now - buckets.orders_at < ORDERS_IDLE_AFTER:
        release = max(
            [release, *(_ready(a, s, now) for a, s in zip(allowances, buckets.allowances, strict=True))]
        )
    taken = [BucketState(refill(w, s, release).tokens - 1.0, release) for w, s in pairs]
    debited = []
    for allowance, state in zip(allowances, buckets.allowances, strict=True):
        at_release = refill(allowance, state, release)
        debited.append(
            BucketState(max(-float(allowance.reserved), at_release.tokens - 1.0), at_release.updated_at)
        )
    orders_at = max(buckets.orders_at, release) if lane is Lane.ORDERS else buckets.orders_at
    return release, Buckets(taken, debited, orders_at)


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
        if not windows:
            raise ValueError("at least one rate window is required")
        if len({w.key for w in windows}) != len(windows):
            raise ValueError("rate windows must have distinct periods")
        if not 0.0 <= reserve <= MAX_ORDER_RESERVE:
            raise ValueError(
                f"the order reserve must be between 0 and {MAX_ORDER_RESERVE:g} (got {reserve!r})"
            )
        self.windows = tuple(windows)
        self.lane = Lane(lane)
        self.reserve = reserve
        self.allowances = tuple(Allowance.for_window(w, reserve) for w in self.windows)
        self.max_wait = MAX_WAIT if self.lane is Lane.ORDERS else BACKGROUND_MAX_WAIT

    def fresh(self, now: float) -> Buckets:
        return Buckets(
            [full_bucket(w, now) for w in self.windows], [full_bucket(a, now) for a in self.allowances]
        )


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


class DateHeaderTime:
    """AWS's clock from the `Date` header of DynamoDB's answers: interval intersection, 1 s resolution."""

    def __init__(self, drift: float = CLOCK_DRIFT) -> None:
        self._drift = drift
        self._known: ClockOffset | None = None
        self._learnt_at = 0.0
        self._lock = threading.Lock()

    def offset(self, local_now: float) -> ClockOffset | None:
        """AWS's time minus the local clock at `local_now`, or None while nothing is known."""
        with self._lock:
            return None if self._known is None else self._aged(self._known, local_now)

    def observe(self, sent: float, received: float, response: Mapping[str, object]) -> None:
        """Learn from a DynamoDB answer (or error response) received between local `sent` and `received`:
        AWS wrote its `Date` (floored to the second) at some moment in between."""
        server_second = date_header_seconds(response)
        if server_second is None or received < sent:
            return
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


type ReferenceTime = DateHeaderTime | ClockTime
"""The shared time line of one budget, as seen from this host."""


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


def reference_time_for(clock: Clock) -> ReferenceTime:
    """The system clock's reference is AWS's (`DateHeaderTime`); a `SkewedClock`'s is its base's; any
    other clock (a `ScaledClock`, a test's) is its own: AWS's `Date` does not count its seconds."""
    true = clock
    while isinstance(true, SkewedClock):
        true = true.base
    return DateHeaderTime() if isinstance(true, SystemClock) else ClockTime(true, clock)


def until_second_mid_trip(local_now: float, offset: ClockOffset, round_trip: float) -> float:
    """Local seconds to wait so that, if the offset is its middle, AWS's clock turns a whole second
    halfway through a call sent then: its `Date` then halves the offset's interval."""
    send_at = math.ceil(local_now + offset.estimate + round_trip / 2) - offset.estimate - round_trip / 2
    return max(0.0, send_at - local_now)
