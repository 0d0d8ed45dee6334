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
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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


DEFAULT_WINDOWS: tuple[RateWindow, ...] = (
    RateWindow(limit=100, period_seconds=60.0),
    RateWindow(limit=10_000, period_seconds=3600.0),
)


@dataclass(frozen=True, slots=True)
class BucketState:
    tokens: float
    updated_at: float


def full_bucket(window: RateWindow, now: float) -> BucketState:
    return BucketState(tokens=float(window.capacity), updated_at=now)


def refill(window: RateWindow, state: BucketState, now: float) -> BucketState:
    """The bucket at `now`; a clock behind `updated_at` (another host's) adds nothing, never removes."""
    at = max(now, state.updated_at)
    tokens = min(float(window.capacity), state.tokens + (at - state.updated_at) * window.refill_per_second)
    return BucketState(tokens=tokens, updated_at=at)


def schedule(
    windows: Sequence[RateWindow], states: Sequence[BucketState], now: float
) -> tuple[float, list[BucketState]]:
    """When one more request may go, and every bucket once it has taken its token then.

    The release time is the earliest moment, not before `now` nor before any slot already handed
    out (`updated_at`), at which every window holds a token. Each bucket is refilled to that moment
    and debited there, so the buckets see the requests at the times they are actually sent, in
    order: exactly a token bucket admitting them one by one, whatever the number of callers.
    """
    release = now
    for window, state in zip(windows, states, strict=True):
        current = refill(window, state, now)
        missing = 1.0 - current.tokens
        ready = (
            current.updated_at
            if missing <= TOKEN_EPSILON
            else current.updated_at + missing / window.refill_per_second
        )
        release = max(release, ready)
    taken = []
    for window, state in zip(windows, states, strict=True):
        at_release = refill(window, state, release)
        taken.append(BucketState(tokens=at_release.tokens - 1.0, updated_at=release))
    return release, taken


class RateBudget(Protocol):
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


def _deadline(clock: Clock, remaining_time: float | None) -> float:
    """The latest release time this caller may accept, on `clock`."""
    allowed = MAX_WAIT if remaining_time is None else min(MAX_WAIT, remaining_time - WAIT_SAFETY_MARGIN)
    return clock.now() + max(0.0, allowed)


def _sleep_until(clock: Clock, release: float) -> None:
    wait = release - clock.now()
    if wait > 0:
        clock.sleep(wait)


class InProcessRateBudget:
    """The budget for one process only (thread-safe); used when no DynamoDB table is configured."""

    def __init__(self, windows: Sequence[RateWindow] = DEFAULT_WINDOWS, clock: Clock = SYSTEM_CLOCK) -> None:
        self.windows = _validated(windows)
        self._clock = clock
        self._lock = threading.Lock()
        now = clock.now()
        self._states = [full_bucket(w, now) for w in self.windows]

    def acquire(self, *, remaining_time: float | None = None) -> None:
        deadline = _deadline(self._clock, remaining_time)
        with self._lock:
            now = self._clock.now()
            release, taken = schedule(self.windows, self._states, now)
            if release > deadline:
                raise RateBudgetExhausted(retry_after=release - now)
            self._states = taken
        _sleep_until(self._clock, release)

    def snapshot(self) -> list[BucketState]:
        """The buckets refilled to now, without taking anything (for tests and diagnostics)."""
        with self._lock:
            now = self._clock.now()
            return [refill(w, s, now) for w, s in zip(self.windows, self._states, strict=True)]

    def __repr__(self) -> str:
        return f"InProcessRateBudget(windows={self.windows!r})"


class DynamoDBRateBudget:
    """The budget shared by every Lambda instance: one DynamoDB item, optimistic concurrency.

    Item (partition key `pk` = `ratelimit#<budget_id>`): for each window `tokens_<period>s` and
    `updated_at_<period>s` (clock seconds; may lie ahead of now while slots are queued), a
    `version` incremented by every write, and `expires_at` (epoch seconds, the table's TTL).

    Each reservation is a PutItem conditional on the version last seen. The instance remembers what
    it last wrote and starts from that, so while nobody else writes a request costs one PutItem;
    otherwise the refused write returns the current item (ReturnValuesOnConditionCheckFailure) and
    the next try starts from it. A GetItem (consistent) is only needed on an instance's first call.
    """

    def __init__(
        self,
        table_name: str,
        budget_id: str,
        windows: Sequence[RateWindow] = DEFAULT_WINDOWS,
        clock: Clock = SYSTEM_CLOCK,
        client: DynamoDBClient | None = None,
    ) -> None:
        self.table_name = table_name
        self.budget_id = budget_id
        self.windows = _validated(windows)
        self._clock = clock
        # The given client, else the container's (offergrid_integration.aws).
        self.client: DynamoDBClient = client if client is not None else aws.clients().dynamodb
        self._key: dict[str, AttributeValueTypeDef] = {"pk": {"S": f"ratelimit#{budget_id}"}}
        self._last_written: tuple[int | None, list[BucketState]] | None = None

    def acquire(self, *, remaining_time: float | None = None) -> None:
        deadline = _deadline(self._clock, remaining_time)
        client = self.client
        # Start from what this instance last wrote: when nobody else wrote since, one conditional
        # write is all it takes; when somebody did, the refused write returns the current item.
        known = self._last_written
        for attempt in range(MAX_CONFLICT_RETRIES):
            if attempt:
                time.sleep(random.uniform(0, min(CONFLICT_BACKOFF_CAP, CONFLICT_BACKOFF_BASE * 2**attempt)))
            now = self._clock.now()
            version, states = known if known is not None else self._read(now)
            release, taken = schedule(self.windows, states, now)
            # A stale `known` only makes `release` earlier (an item vanishes only by expiring after
            # days idle, when any memory of it has refilled to full), so this refusal holds
            if release > deadline:
                raise RateBudgetExhausted(retry_after=release - now)
            try:
                self._write(version, taken, now)
            except client.exceptions.ConditionalCheckFailedException as conflict:
                # another caller took a slot since: schedule again from the item as it is now
                current = cast("Mapping[str, AttributeValueTypeDef] | None", conflict.response.get("Item"))
                known = (None, self._fresh(now)) if current is None else self._parse(current, now)
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
        now = self._clock.now()
        _, states = self._read(now)
        return [refill(w, s, now) for w, s in zip(self.windows, states, strict=True)]

    def _read(self, now: float) -> tuple[int | None, list[BucketState]]:
        item = self.client.get_item(TableName=self.table_name, Key=self._key, ConsistentRead=True).get("Item")
        return (None, self._fresh(now)) if item is None else self._parse(item, now)

    def _fresh(self, now: float) -> list[BucketState]:
        return [full_bucket(w, now) for w in self.windows]

    def _parse(self, item: Mapping[str, AttributeValueTypeDef], now: float) -> tuple[int, list[BucketState]]:
        return int(item["version"]["N"]), [_state_from_item(item, w, now) for w in self.windows]

    def _write(self, version: int | None, states: Sequence[BucketState], now: float) -> None:
        item: dict[str, AttributeValueTypeDef] = {
            **self._key,
            "version": {"N": str((version or 0) + 1)},
            "expires_at": {"N": str(int(now) + TTL_SECONDS)},
        }
        for window, state in zip(self.windows, states, strict=True):
            item[f"tokens_{window.key}"] = {"N": _tokens_number(state.tokens)}
            item[f"updated_at_{window.key}"] = {"N": _time_number(state.updated_at)}
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
        return f"DynamoDBRateBudget(table_name={self.table_name!r}, budget_id={self.budget_id!r})"


def _state_from_item(
    item: Mapping[str, AttributeValueTypeDef], window: RateWindow, now: float
) -> BucketState:
    tokens = item.get(f"tokens_{window.key}")
    updated_at = item.get(f"updated_at_{window.key}")
    if tokens is None or updated_at is None:  # a window added since the item was written
        return full_bucket(window, now)
    return BucketState(
        tokens=min(float(window.capacity), float(tokens["N"])), updated_at=float(updated_at["N"])
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
) -> RateBudget:
    """The shared DynamoDB budget when a table is configured (a blank name is none), else in-process.
    `client`: the DynamoDB client to use (default: one created on first use)."""
    if table_name:
        return DynamoDBRateBudget(table_name, budget_id, windows=windows, clock=clock, client=client)
    return InProcessRateBudget(windows=windows, clock=clock)
