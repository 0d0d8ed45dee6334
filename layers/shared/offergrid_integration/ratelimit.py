"""The Offergrid request budget (100/min, 10,000/h per API key) shared by every function.

Offergrid's limits are enforced (by our fake, and we assume by Offergrid) as a *sliding* window:
never more than N requests in any W seconds. Each window here is a token bucket of capacity
`b = max(1, round(BURST_FRACTION * N))`, starting full, refilled continuously at
`(N' - b) / W` tokens per second, where `N' = N - max(1, round(HEADROOM_FRACTION * N))`. In any
interval of length W the bucket hands out at most what it held at the start (<= b) plus what
flowed in during it ((N' - b) / W * W), i.e. at most `N' < N` requests: it can never trip the
limit, yet it sustains `N' - b` per W, over 90 % of N (92/min for 100/min). The headroom (3 of the
minute's 100: about 2 s of requests at 92/min) absorbs what the bucket cannot see: how far a
request's arrival at Offergrid may stray from its slot, i.e. the network's jitter plus the
uncertainty of the shared time below (`MAX_REFERENCE_WIDTH`).

A request takes one token from every window. Callers do not poll: `acquire` *reserves* the
earliest moment at which every window has a token (the bucket is debited at that moment, so
reserved slots queue up one behind another) and then sleeps until it through the injected
`Clock`. It reserves only if that moment falls within the caller's remaining time minus
`WAIT_SAFETY_MARGIN` (and within `MAX_WAIT`); otherwise it raises `RateBudgetExhausted(retry_after)`
at once, having consumed nothing. Reserving instead of polling means no thundering herd of
waiters re-reading the bucket for every token (measured against moto: polling lost a tenth of the
throughput to conflicts). A caller that dies while waiting wastes its slot, erring on the safe side.

`DynamoDBRateBudget` keeps one item per budget, so every Lambda instance and thread shares it; it
writes conditionally on a version number, so concurrent callers can never reserve the same slot
twice; a refused write is retried from the item as it now is (bounded, with a little jitter).
DynamoDB errors other than that conflict (throttling after botocore's own retries, a missing
table, access denied) propagate unchanged as botocore exceptions: they are infrastructure faults,
not an exhausted budget, and the caller lets the record fail and be retried. `InProcessRateBudget`
is the same bucket behind a lock, for when no table is configured (local runs, tests); it only
limits the process it lives in.

**One time line: AWS's, not the callers' clocks.** The item's times (slots, refills) are in one
*shared time*, the reference every caller converts its own clock to; no caller's clock is trusted
to agree with another's (an operator's laptop running the offer-sync CLI can be a minute off, and
one writer ahead would otherwise push the stored time forward so everyone else waits out the
difference, and take slots that are really earlier in real time than the stored frame says, so
the window could be exceeded too). The reference is AWS's clock as DynamoDB states it in the `Date`
header of every answer the budget already receives (GetItem, PutItem, and the refused conditional
write alike): `DateHeaderTime`. The header has a resolution of one second, so each answer received
between local `sent` and `received` with date `D` says only that AWS's time minus ours lies in
`[D - received, D + 1 - sent]`; the budget keeps the intersection of these intervals (NTP's
reasoning with a coarse server), which narrows as answers arrive at different fractions of a
second, and uses its middle. A new interval disjoint from the kept one means this host's clock was
stepped: the kept one is dropped. The interval widens with the time since it was learnt
(`CLOCK_DRIFT`). Before the budget trusts it to schedule, it must be narrower than
`MAX_REFERENCE_WIDTH` (about one second plus one round trip after the first answer: enough for a
Lambda in the region); while it is wider, the budget takes another reading timed so that AWS's
second ticks in the middle of the round trip, which halves it, and refuses (RateBudgetExhausted)
rather than sending on a guess. Why AWS's clock: every caller already talks to DynamoDB, it needs
no extra service, call or permission, and it is the one clock all of them see alike; the callers'
own clocks are exactly what cannot be trusted. A clock other than the system's (a `ScaledClock`
in tests and the local demo, whose seconds AWS's `Date` does not count) is its own reference, and
a `SkewedClock`'s reference is its base: tests skew hosts from one true clock (`ClockTime`).

**Lanes: orders first, and nothing left idle.** A budget object belongs to one `Lane`, chosen when
the client is built (`offergrid/wiring.py`). The order processor's lane (`Lane.ORDERS`) may use the
whole window, always. The background lane (`Lane.BACKGROUND`: the offer sync, the missed-order
sweep, the reconciliation) is *work-conserving*: while no order has taken a slot for
`ORDERS_IDLE_AFTER` seconds, it too may use the whole window (a first import runs at the full 92/min,
not at its share); while orders are active, it takes a token only while more than the orders'
reserve (`reserve`, default 40 % of each window's allowance) remains. For that each window has a
second bucket, the *background allowance*, sized like the window's own for `(1 - reserve)` of its
limit. Every request, of either lane, is debited from it, down to minus the reserve; only the
background lane needs a token there, and only while orders are active. So when an order burst
starts, the background lane stops at once (the allowance is at or below zero after it used the
whole window) and stays out until the window's use is back under its share or the orders have been
idle for `ORDERS_IDLE_AFTER`; orders above its share starve it; orders below it leave it the rest
of its share. The window's own bucket still admits every request of both lanes: the guarantee above
(never more than N in any W) does not depend on the lanes at all.

A background caller does not queue for slots far ahead (that would put it in front of orders that
come later): it reserves only a slot within `BACKGROUND_RESERVE_AHEAD` seconds; otherwise it sleeps
(at most `BACKGROUND_POLL`) and looks again, for up to `BACKGROUND_MAX_WAIT` (and the caller's
remaining time): a background caller waits out an order burst rather than failing. An order that
arrives while the background lane is using the whole window waits at most that second behind it.
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from offergrid_integration import aws
from offergrid_integration.clock import SYSTEM_CLOCK, Clock, SkewedClock, SystemClock
from offergrid_integration.offergrid.errors import RateBudgetExhausted

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

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
TTL_SECONDS = 2 * 24 * 3600
"""An idle budget item expires after this long (DynamoDB TTL on `expires_at`)."""
MAX_CONFLICT_RETRIES = 32
"""Conditional-write conflicts in a row before one `acquire()` gives up (RateBudgetExhausted). Each
conflict means another caller got a slot, so the budget is being used meanwhile; the caller's
deadline bounds the retries too."""
CONFLICT_BACKOFF_BASE = 0.001
CONFLICT_BACKOFF_CAP = 0.02
"""After the n-th conflict in a row, pause uniform(0, min(CAP, BASE * 2**n)) real seconds (full
jitter), so contending writers spread out instead of colliding again. Real time, not the clock:
the collision is between real DynamoDB round trips."""
CONFLICT_RETRY_AFTER = 1.0
"""`retry_after` when the conflicts never stopped."""
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


# --- shared time: AWS's clock as every caller sees it ------------------------------------------


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
    """When one more request may go, and every bucket once it has taken its token then.

    The release time is the earliest moment, not before `now` nor before any slot already handed
    out (`updated_at`), at which every window holds a token. Each bucket is refilled to that moment
    and debited there, so the buckets see the requests at the times they are actually sent, in
    order: exactly a token bucket admitting them one by one, whatever the number of callers.
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
    """`schedule` for a lane: while orders are active the background lane also waits for a token of
    every allowance; every request, of either lane, is debited from the allowances at its release
    (down to minus the reserve), and an order's release is remembered as the orders' latest slot."""
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


class RateBudget(Protocol):
    """What the Offergrid client draws from: one token per request (the one definition of it)."""

    def acquire(self, *, remaining_time: float | None = None) -> None:
        """Take one request token from every window, waiting if allowed; else RateBudgetExhausted."""
        ...


def _validated(windows: Sequence[RateWindow]) -> tuple[RateWindow, ...]:
    if not windows:
        raise ValueError("at least one rate window is required")
    keys = [w.key for w in windows]
    if len(set(keys)) != len(keys):
        raise ValueError("rate windows must have distinct periods")
    return tuple(windows)


def _allowed_wait(remaining_time: float | None, max_wait: float = MAX_WAIT) -> float:
    """How long this caller may wait for its slot."""
    allowed = max_wait if remaining_time is None else min(max_wait, remaining_time - WAIT_SAFETY_MARGIN)
    return max(0.0, allowed)


def _sleep_until(clock: Clock, release: float) -> None:
    wait = release - clock.now()
    if wait > 0:
        clock.sleep(wait)


def _reserves_now(lane: Lane, release: float, now: float) -> bool:
    """Whether a caller of `lane` takes the slot at `release` now (else it sleeps and looks again)."""
    return lane is Lane.ORDERS or release - now <= BACKGROUND_RESERVE_AHEAD


def _poll_sleep(release: float, now: float, buckets: Buckets) -> float:
    """A background caller's sleep before it looks again: until its slot is near, at most the poll,
    and no later than the moment the orders turn idle (their reserve is the background's then)."""
    wait = min(BACKGROUND_POLL, max(BACKGROUND_RESERVE_AHEAD / 2, release - now - BACKGROUND_RESERVE_AHEAD))
    idle_in = buckets.orders_at + ORDERS_IDLE_AFTER - now
    return min(wait, idle_in + 1e-3) if idle_in > 0 else wait


class _Lanes:
    """What both budgets share: windows, lane, reserve and the allowances derived from them."""

    def __init__(self, windows: Sequence[RateWindow], lane: Lane, reserve: float) -> None:
        self.windows = _validated(windows)
        self.lane = Lane(lane)
        self.reserve = validated_reserve(reserve)
        self.allowances = tuple(Allowance.for_window(w, self.reserve) for w in self.windows)
        self.max_wait = MAX_WAIT if self.lane is Lane.ORDERS else BACKGROUND_MAX_WAIT

    def fresh(self, now: float) -> Buckets:
        return Buckets(
            [full_bucket(w, now) for w in self.windows], [full_bucket(a, now) for a in self.allowances]
        )

    def refilled(self, buckets: Buckets, now: float) -> Buckets:
        return Buckets(
            [refill(w, s, now) for w, s in zip(self.windows, buckets.windows, strict=True)],
            [refill(a, s, now) for a, s in zip(self.allowances, buckets.allowances, strict=True)],
            buckets.orders_at,
        )


class InProcessRateBudget(_Lanes):
    """The budget for one process only (thread-safe); used when no DynamoDB table is configured.
    Budget objects of different lanes share one state when built with `sharing=` another one."""

    def __init__(
        self,
        windows: Sequence[RateWindow] = DEFAULT_WINDOWS,
        clock: Clock = SYSTEM_CLOCK,
        *,
        lane: Lane = Lane.ORDERS,
        reserve: float = DEFAULT_ORDER_RESERVE,
        sharing: InProcessRateBudget | None = None,
    ) -> None:
        super().__init__(windows, lane, reserve)
        self._clock = clock
        if sharing is not None:
            if sharing.windows != self.windows or sharing.reserve != self.reserve:
                raise ValueError("a shared in-process budget needs the same windows and reserve")
            self._shared: list[Buckets] = sharing._shared
            self._lock: threading.Lock = sharing._lock
        else:
            self._shared = [self.fresh(clock.now())]
            self._lock = threading.Lock()

    def lane_view(self, lane: Lane) -> InProcessRateBudget:
        """A budget object of `lane` drawing from this one's state."""
        return InProcessRateBudget(self.windows, self._clock, lane=lane, reserve=self.reserve, sharing=self)

    def acquire(self, *, remaining_time: float | None = None) -> None:
        deadline = self._clock.now() + _allowed_wait(remaining_time, self.max_wait)
        while True:
            with self._lock:
                now = self._clock.now()
                release, taken = schedule_lane(self.windows, self.allowances, self.lane, self._shared[0], now)
                if release > deadline:
                    raise RateBudgetExhausted(retry_after=release - now)
                if _reserves_now(self.lane, release, now):
                    self._shared[0] = taken
                    break
                pause = _poll_sleep(release, now, self._shared[0])
            self._clock.sleep(pause)
        _sleep_until(self._clock, release)

    def snapshot(self) -> list[BucketState]:
        """The buckets refilled to now, without taking anything (for tests and diagnostics)."""
        return self.buckets().windows

    def buckets(self) -> Buckets:
        """Every bucket (windows and background allowances) refilled to now."""
        with self._lock:
            return self.refilled(self._shared[0], self._clock.now())

    def __repr__(self) -> str:
        return f"InProcessRateBudget(windows={self.windows!r}, lane={self.lane.value!r})"


class DynamoDBRateBudget(_Lanes):
    """The budget shared by every Lambda instance: one DynamoDB item, optimistic concurrency.

    Item (partition key `pk` = `ratelimit#<budget_id>`): for each window `tokens_<period>s` and
    `updated_at_<period>s` (shared-time seconds; may lie ahead of now while slots are queued), the
    same for its background allowance (`lane_tokens_<period>s`, `lane_updated_at_<period>s`),
    `orders_at` (the orders' latest slot), a `version` incremented by every write, and `expires_at`
    (epoch seconds, the table's TTL).

    Each reservation is a PutItem conditional on the version last seen. The instance remembers what
    it last wrote and starts from that, so while nobody else writes a request costs one PutItem;
    otherwise the refused write returns the current item (ReturnValuesOnConditionCheckFailure) and
    the next try starts from it. A GetItem (consistent) is only needed on an instance's first call,
    and by a background caller each time it looks again after sleeping. Every answer, refusals
    included, teaches `reference` (default: `reference_time_for(clock)`) AWS's time.
    """

    def __init__(
        self,
        table_name: str,
        budget_id: str,
        windows: Sequence[RateWindow] = DEFAULT_WINDOWS,
        clock: Clock = SYSTEM_CLOCK,
        client: DynamoDBClient | None = None,
        *,
        lane: Lane = Lane.ORDERS,
        reserve: float = DEFAULT_ORDER_RESERVE,
        reference: ReferenceTime | None = None,
    ) -> None:
        super().__init__(windows, lane, reserve)
        self.table_name = table_name
        self.budget_id = budget_id
        self._clock = clock
        self.reference: ReferenceTime = reference if reference is not None else reference_time_for(clock)
        # The given client, else the container's (offergrid_integration.aws).
        self.client: DynamoDBClient = client if client is not None else aws.clients().dynamodb
        self._key: dict[str, AttributeValueTypeDef] = {"pk": {"S": f"ratelimit#{budget_id}"}}
        self._last_written: _Known | None = None
        self._round_trip = 0.0

    def acquire(self, *, remaining_time: float | None = None) -> None:
        # the caller's remaining time runs on its own clock; the shared time's offset may still move
        # (each answer narrows it), so the deadline is converted afresh at each look
        local_deadline = self._clock.now() + _allowed_wait(remaining_time, self.max_wait)
        client = self.client
        # Start from what this instance last wrote: when nobody else wrote since, one conditional
        # write is all it takes; when somebody did, the refused write returns the current item.
        known: _Known | None = self._last_written
        if known is None:
            item = self._read()
            known = self._parse(item, self.now())
        conflicts = 0
        while conflicts < MAX_CONFLICT_RETRIES:
            if conflicts:
                time.sleep(random.uniform(0, min(CONFLICT_BACKOFF_CAP, CONFLICT_BACKOFF_BASE * 2**conflicts)))
            offset = self._offset()
            now, deadline = self._clock.now() + offset, local_deadline + offset
            version, buckets = known if known is not None else self._parse(self._read(), now)
            release, taken = schedule_lane(self.windows, self.allowances, self.lane, buckets, now)
            # A stale `known` only makes `release` earlier (an item vanishes only by expiring after
            # days idle, when any memory of it has refilled to full), so this refusal holds
            if release > deadline:
                raise RateBudgetExhausted(retry_after=release - now)
            if not _reserves_now(self.lane, release, now):
                # a background caller: the slot is far (orders are using the budget); look again later
                self._clock.sleep(_poll_sleep(release, now, buckets))
                known, conflicts = None, 0
                continue
            try:
                self._write(version, taken, now)
            except client.exceptions.ConditionalCheckFailedException as conflict:
                # another caller took a slot since: schedule again from the item as it is now
                current = cast("Mapping[str, AttributeValueTypeDef] | None", conflict.response.get("Item"))
                known = self._parse(current, now)
                conflicts += 1
                continue
            self._last_written = ((version or 0) + 1, taken)
            self._sleep_until(release)
            return
        raise RateBudgetExhausted(
            retry_after=CONFLICT_RETRY_AFTER,
            message="Offergrid rate budget too contended to take a slot; retry shortly",
        )

    def now(self) -> float:
        """Shared time now (see `_offset`)."""
        offset = self._offset()
        return self._clock.now() + offset

    def _offset(self) -> float:
        """Shared time minus this host's clock: the middle of the reference's interval. While it is
        unknown or wider than `MAX_REFERENCE_WIDTH`, read DynamoDB again (each answer narrows it),
        timed so that AWS's second turns mid-trip; refuse once `MAX_REFERENCE_READS` did not do."""
        reads = 0
        while True:
            local = self._clock.now()
            offset = self.reference.offset(local)
            if offset is not None and offset.width <= MAX_REFERENCE_WIDTH:
                return offset.estimate
            if reads == MAX_REFERENCE_READS:
                raise _time_unknown(self._round_trip)
            if offset is not None:
                self._clock.sleep(_until_second_mid_trip(local, offset, self._round_trip))
            self._read()
            reads += 1

    def snapshot(self) -> list[BucketState]:
        """The buckets as stored, refilled to now, without taking anything."""
        return self.buckets().windows

    def buckets(self) -> Buckets:
        """Every bucket (windows and background allowances) as stored, refilled to now."""
        item = self._read()
        now = self.now()
        _, buckets = self._parse(item, now)
        return self.refilled(buckets, now)

    def _sleep_until(self, release: float) -> None:
        wait = release - self.now()
        if wait > 0:
            self._clock.sleep(wait)

    def _read(self) -> Mapping[str, AttributeValueTypeDef] | None:
        response = self._observed(
            lambda: self.client.get_item(TableName=self.table_name, Key=self._key, ConsistentRead=True)
        )
        return response.get("Item")

    def _observed(self, call: Callable[[], _Response]) -> _Response:
        """Make a DynamoDB call; its answer (or error response) tells the reference AWS's time."""
        sent = self._clock.now()
        try:
            response = call()
        except Exception as error:  # botocore's ClientError: the refused write carries a date too
            answered = getattr(error, "response", None)
            if isinstance(answered, Mapping):
                self._learn(sent, answered)
            raise
        self._learn(sent, cast("Mapping[str, object]", response))
        return response

    def _learn(self, sent: float, response: Mapping[str, object]) -> None:
        received = self._clock.now()
        self._round_trip = max(0.0, received - sent)
        self.reference.observe(sent, received, response)

    def _parse(
        self, item: Mapping[str, AttributeValueTypeDef] | None, now: float
    ) -> tuple[int | None, Buckets]:
        if item is None:
            return None, self.fresh(now)
        orders_at = item.get("orders_at")
        return int(item["version"]["N"]), Buckets(
            [_state_from_item(item, "", w, now) for w in self.windows],
            [
                _state_from_item(item, "lane_", a, now, key=w.key)
                for w, a in zip(self.windows, self.allowances, strict=True)
            ],
            -math.inf if orders_at is None else float(orders_at["N"]),
        )

    def _write(self, version: int | None, buckets: Buckets, now: float) -> None:
        item: dict[str, AttributeValueTypeDef] = {
            **self._key,
            "version": {"N": str((version or 0) + 1)},
            "expires_at": {"N": str(int(now) + TTL_SECONDS)},
        }
        for prefix, states in (("", buckets.windows), ("lane_", buckets.allowances)):
            for window, state in zip(self.windows, states, strict=True):
                item[f"{prefix}tokens_{window.key}"] = {"N": _tokens_number(state.tokens)}
                item[f"{prefix}updated_at_{window.key}"] = {"N": _time_number(state.updated_at)}
        if math.isfinite(buckets.orders_at):
            item["orders_at"] = {"N": _time_number(buckets.orders_at)}
        if version is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "#version = :version",
                "ExpressionAttributeNames": {"#version": "version"},
                "ExpressionAttributeValues": {":version": {"N": str(version)}},
            }
        self._observed(
            lambda: self.client.put_item(
                TableName=self.table_name,
                Item=item,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **condition,
            )
        )

    def __repr__(self) -> str:
        return (
            f"DynamoDBRateBudget(table_name={self.table_name!r}, budget_id={self.budget_id!r}, "
            f"lane={self.lane.value!r})"
        )


def _time_unknown(round_trip: float) -> RateBudgetExhausted:
    return RateBudgetExhausted(
        retry_after=CONFLICT_RETRY_AFTER,
        message=(
            f"Offergrid rate budget: AWS's time is not known within {MAX_REFERENCE_WIDTH:g} s on this "
            f"host (DynamoDB round trips of {round_trip:.2f} s); not sending on a guess"
        ),
    )


_Response = TypeVar("_Response")
_Known = tuple[int | None, Buckets]
"""A version of the item (None: none yet) and the buckets it holds."""


def _until_second_mid_trip(local_now: float, offset: ClockOffset, round_trip: float) -> float:
    """Local seconds to wait so that, if the offset is its middle, AWS's clock turns a whole second
    halfway through a call sent then: its `Date` then halves the offset's interval."""
    send_at = math.ceil(local_now + offset.estimate + round_trip / 2) - offset.estimate - round_trip / 2
    return max(0.0, send_at - local_now)


def _state_from_item(
    item: Mapping[str, AttributeValueTypeDef],
    prefix: str,
    bucket: RateWindow | Allowance,
    now: float,
    *,
    key: str | None = None,
) -> BucketState:
    key = key or cast("RateWindow", bucket).key
    tokens = item.get(f"{prefix}tokens_{key}")
    updated_at = item.get(f"{prefix}updated_at_{key}")
    if tokens is None or updated_at is None:  # a window (or the lanes) added since the item was written
        return full_bucket(bucket, now)
    return BucketState(
        tokens=min(float(bucket.capacity), float(tokens["N"])), updated_at=float(updated_at["N"])
    )


# Stored numbers are rounded in the budget's favour: tokens down, timestamps up (less refill later).
def _tokens_number(tokens: float) -> str:
    return f"{math.floor(tokens * 1e9) / 1e9:.9f}"


def _time_number(seconds: float) -> str:
    return f"{math.ceil(seconds * 1e6) / 1e6:.6f}"


def budget_id_for_api_key(api_key: str) -> str:
    """A short, non-reversible fingerprint of the key: one budget per key, the key never stored."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


def build_rate_budget(
    table_name: str | None,
    budget_id: str,
    clock: Clock = SYSTEM_CLOCK,
    windows: Sequence[RateWindow] = DEFAULT_WINDOWS,
    client: DynamoDBClient | None = None,
    *,
    lane: Lane = Lane.ORDERS,
    reserve: float = DEFAULT_ORDER_RESERVE,
) -> RateBudget:
    """The shared DynamoDB budget when a table is configured (a blank name is none), else in-process.
    `client`: the DynamoDB client to use (default: one created on first use). `lane`: who draws from
    it (the order processor, or a background job); `reserve`: the share of each window the background
    lane leaves to orders while they are active. The DynamoDB budget's shared time is AWS's clock for
    the system clock (`reference_time_for`)."""
    if table_name:
        return DynamoDBRateBudget(
            table_name, budget_id, windows=windows, clock=clock, client=client, lane=lane, reserve=reserve
        )
    return InProcessRateBudget(windows=windows, clock=clock, lane=lane, reserve=reserve)
