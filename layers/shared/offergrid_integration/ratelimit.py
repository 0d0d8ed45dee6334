"""The Offergrid request budget (100/min, 10,000/h per API key) shared by every function.

Offergrid's limits are enforced (by our fake, and we assume by Offergrid) as a *sliding* window:
never more than N requests in any W seconds. Each window here is a token bucket of capacity
`b = max(1, round(BURST_FRACTION * N))`, starting full, refilled continuously at
`(N' - b) / W` tokens per second, where `N' = N - max(1, round(HEADROOM_FRACTION * N))`. In any
interval of length W the bucket hands out at most what it held at the start (<= b) plus what
flowed in during it ((N' - b) / W * W), i.e. at most `N' < N` requests: it can never trip the
limit, yet it sustains `N' - b` per W, over 90 % of N (92/min for 100/min). The headroom absorbs
what the bucket cannot see: network jitter between taking a token and the request arriving, and
clock differences between callers.

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

**Lanes: orders first.** A budget object belongs to one `Lane`, chosen when the client is built
(`offergrid/wiring.py`). The order processor's lane (`Lane.ORDERS`) may use the whole window. The
background lane (`Lane.BACKGROUND`: the offer sync, the missed-order sweep, the reconciliation) takes
a token only while more than the orders' reserve (`reserve`, default 40 % of each window's
allowance) remains: each window has a second bucket, the *background allowance*, sized like the
window's own for `(1 - reserve)` of its limit (so the background lane alone never sends more than
that share in any window). Every request, of either lane, is debited from it; only the background
lane needs a token there, and orders may drive it below zero (as far as the reserve). So background
requests count against what orders have left, orders' requests starve the background lane while
they run at more than its share and for a while after (until the window's use is back under the
background's share), and a background caller never takes the reserve. The window's own bucket
still admits every request of both lanes: the guarantee above (never more than N in any W) does not
depend on the lanes at all.

A background caller does not queue for slots far ahead (that would put it in front of orders that
come later): it reserves only a slot within `BACKGROUND_RESERVE_AHEAD` clock seconds; otherwise it
sleeps (at most `BACKGROUND_POLL`) and looks again, for up to `BACKGROUND_MAX_WAIT` (and the
caller's remaining time): a background caller waits out an order burst rather than failing.
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, cast

from offergrid_integration import aws
from offergrid_integration.clock import SYSTEM_CLOCK, Clock
from offergrid_integration.offergrid.errors import RateBudgetExhausted

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

BURST_FRACTION = 0.05
"""Bucket capacity as a fraction of the window's limit."""
HEADROOM_FRACTION = 0.03
"""Part of the limit never used, so jitter and clock skew cannot push us over it."""
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
"""Share of each window's allowance the background lane leaves to orders (`ORDER_RESERVE_PERCENT`)."""
MAX_ORDER_RESERVE = 0.9
"""The background lane keeps at least a tenth of the budget (the sync and the sweep must progress)."""
BACKGROUND_RESERVE_AHEAD = 1.0
"""Clock seconds ahead a background caller may reserve a slot (about one token of the minute window)."""
BACKGROUND_POLL = 5.0
"""Longest clock sleep of a background caller between two looks at the budget."""
BACKGROUND_MAX_WAIT = 300.0
"""Longest one background `acquire()` waits (an order burst at the full rate takes a few minutes)."""


class Lane(StrEnum):
    """Who a budget object draws for; see the module docstring."""

    ORDERS = "orders"
    """The order processor: may use the whole window."""
    BACKGROUND = "background"
    """The offer sync, the sweep, the reconciliation: only above the orders' reserve."""


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
    """A budget's whole state: each window's bucket and each window's background allowance."""

    windows: list[BucketState]
    allowances: list[BucketState]


def schedule_lane(
    windows: Sequence[RateWindow],
    allowances: Sequence[Allowance],
    lane: Lane,
    buckets: Buckets,
    now: float,
) -> tuple[float, Buckets]:
    """`schedule` for a lane: the background lane also waits for a token of every allowance; every
    request, of either lane, is debited from the allowances at its release (orders may drive them
    below zero, at most by the reserve)."""
    release, taken = schedule(windows, buckets.windows, now)
    if lane is Lane.BACKGROUND:
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
    return release, Buckets(taken, debited)


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


def _deadline(clock: Clock, remaining_time: float | None, max_wait: float = MAX_WAIT) -> float:
    """The latest release time this caller may accept, on `clock`."""
    allowed = max_wait if remaining_time is None else min(max_wait, remaining_time - WAIT_SAFETY_MARGIN)
    return clock.now() + max(0.0, allowed)


def _sleep_until(clock: Clock, release: float) -> None:
    wait = release - clock.now()
    if wait > 0:
        clock.sleep(wait)


def _reserves_now(lane: Lane, release: float, now: float) -> bool:
    """Whether a caller of `lane` takes the slot at `release` now (else it sleeps and looks again)."""
    return lane is Lane.ORDERS or release - now <= BACKGROUND_RESERVE_AHEAD


def _poll_sleep(release: float, now: float) -> float:
    """A background caller's sleep before it looks again: until its slot is near, at most the poll."""
    return min(BACKGROUND_POLL, max(BACKGROUND_RESERVE_AHEAD / 2, release - now - BACKGROUND_RESERVE_AHEAD))


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
        deadline = _deadline(self._clock, remaining_time, self.max_wait)
        while True:
            with self._lock:
                now = self._clock.now()
                release, taken = schedule_lane(self.windows, self.allowances, self.lane, self._shared[0], now)
                if release > deadline:
                    raise RateBudgetExhausted(retry_after=release - now)
                if _reserves_now(self.lane, release, now):
                    self._shared[0] = taken
                    break
            self._clock.sleep(_poll_sleep(release, now))
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
    `updated_at_<period>s` (clock seconds; may lie ahead of now while slots are queued), the same for
    its background allowance (`lane_tokens_<period>s`, `lane_updated_at_<period>s`), a `version`
    incremented by every write, and `expires_at` (epoch seconds, the table's TTL).

    Each reservation is a PutItem conditional on the version last seen. The instance remembers what
    it last wrote and starts from that, so while nobody else writes a request costs one PutItem;
    otherwise the refused write returns the current item (ReturnValuesOnConditionCheckFailure) and
    the next try starts from it. A GetItem (consistent) is only needed on an instance's first call,
    and by a background caller each time it looks again after sleeping.
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
    ) -> None:
        super().__init__(windows, lane, reserve)
        self.table_name = table_name
        self.budget_id = budget_id
        self._clock = clock
        # The given client, else the container's (offergrid_integration.aws).
        self.client: DynamoDBClient = client if client is not None else aws.clients().dynamodb
        self._key: dict[str, AttributeValueTypeDef] = {"pk": {"S": f"ratelimit#{budget_id}"}}
        self._last_written: tuple[int | None, Buckets] | None = None

    def acquire(self, *, remaining_time: float | None = None) -> None:
        deadline = _deadline(self._clock, remaining_time, self.max_wait)
        client = self.client
        # Start from what this instance last wrote: when nobody else wrote since, one conditional
        # write is all it takes; when somebody did, the refused write returns the current item.
        known = self._last_written
        conflicts = 0
        while conflicts < MAX_CONFLICT_RETRIES:
            if conflicts:
                time.sleep(random.uniform(0, min(CONFLICT_BACKOFF_CAP, CONFLICT_BACKOFF_BASE * 2**conflicts)))
            now = self._clock.now()
            version, buckets = known if known is not None else self._read(now)
            release, taken = schedule_lane(self.windows, self.allowances, self.lane, buckets, now)
            # A stale `known` only makes `release` earlier (an item vanishes only by expiring after
            # days idle, when any memory of it has refilled to full), so this refusal holds
            if release > deadline:
                raise RateBudgetExhausted(retry_after=release - now)
            if not _reserves_now(self.lane, release, now):
                # a background caller: the slot is far (orders are using the budget); look again later
                self._clock.sleep(_poll_sleep(release, now))
                known, conflicts = None, 0
                continue
            try:
                self._write(version, taken, now)
            except client.exceptions.ConditionalCheckFailedException as conflict:
                # another caller took a slot since: schedule again from the item as it is now
                current = cast("Mapping[str, AttributeValueTypeDef] | None", conflict.response.get("Item"))
                known = (None, self.fresh(now)) if current is None else self._parse(current, now)
                conflicts += 1
                continue
            self._last_written = ((version or 0) + 1, taken)
            _sleep_until(self._clock, release)
            return
        raise RateBudgetExhausted(
            retry_after=CONFLICT_RETRY_AFTER,
            message="Offergrid rate budget too contended to take a slot; retry shortly",
        )

    def snapshot(self) -> list[BucketState]:
        """The buckets as stored, refilled to now, without taking anything."""
        return self.buckets().windows

    def buckets(self) -> Buckets:
        """Every bucket (windows and background allowances) as stored, refilled to now."""
        now = self._clock.now()
        _, buckets = self._read(now)
        return self.refilled(buckets, now)

    def _read(self, now: float) -> tuple[int | None, Buckets]:
        item = self.client.get_item(TableName=self.table_name, Key=self._key, ConsistentRead=True).get("Item")
        return (None, self.fresh(now)) if item is None else self._parse(item, now)

    def _parse(self, item: Mapping[str, AttributeValueTypeDef], now: float) -> tuple[int, Buckets]:
        return int(item["version"]["N"]), Buckets(
            [_state_from_item(item, "", w, now) for w in self.windows],
            [
                _state_from_item(item, "lane_", a, now, key=w.key)
                for w, a in zip(self.windows, self.allowances, strict=True)
            ],
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
        if version is None:
            self.client.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        else:
            self.client.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression="#version = :version",
                ExpressionAttributeNames={"#version": "version"},
                ExpressionAttributeValues={":version": {"N": str(version)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )

    def __repr__(self) -> str:
        return (
            f"DynamoDBRateBudget(table_name={self.table_name!r}, budget_id={self.budget_id!r}, "
            f"lane={self.lane.value!r})"
        )


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
    lane leaves to orders."""
    if table_name:
        return DynamoDBRateBudget(
            table_name, budget_id, windows=windows, clock=clock, client=client, lane=lane, reserve=reserve
        )
    return InProcessRateBudget(windows=windows, clock=clock, lane=lane, reserve=reserve)
