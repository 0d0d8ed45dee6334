"""The two budgets behind `RateBudget`: DynamoDB (shared, conditional writes) and in-process.

`acquire` reserves a slot and sleeps until it rather than polling, or refuses at once past the caller's
remaining time. DynamoDB errors other than the conflict propagate: an infrastructure fault.
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from offergrid_integration import aws
from offergrid_integration.clock import SYSTEM_CLOCK, Clock
from offergrid_integration.ratelimit.buckets import (
    DEFAULT_ORDER_RESERVE,
    DEFAULT_WINDOWS,
    MAX_REFERENCE_READS,
    MAX_REFERENCE_WIDTH,
    Allowance,
    Buckets,
    BucketState,
    Lane,
    Lanes,
    RateBudget,
    RateBudgetExhausted,
    RateWindow,
    ReferenceTime,
    allowed_wait,
    full_bucket,
    poll_sleep,
    reference_time_for,
    reserves_now,
    schedule_lane,
    until_second_mid_trip,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

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


class InProcessRateBudget(Lanes):
    """The budget of one process (thread-safe): the same buckets, behind a lock."""

    def __init__(
        self,
        windows: Sequence[RateWindow] = DEFAULT_WINDOWS,
        clock: Clock = SYSTEM_CLOCK,
        *,
        lane: Lane = Lane.ORDERS,
        reserve: float = DEFAULT_ORDER_RESERVE,
    ) -> None:
        super().__init__(windows, lane, reserve)
        self._clock = clock
        self._buckets = self.fresh(clock.now())
        self._lock = threading.Lock()

    def acquire(self, *, remaining_time: float | None = None) -> None:
        deadline = self._clock.now() + allowed_wait(remaining_time, self.max_wait)
        while True:
            with self._lock:
                now = self._clock.now()
                release, taken = schedule_lane(self.windows, self.allowances, self.lane, self._buckets, now)
                if release > deadline:
                    raise RateBudgetExhausted(retry_after=release - now)
                if reserves_now(self.lane, release, now):
                    self._buckets = taken
                    break
                pause = poll_sleep(release, now, self._buckets)
            self._clock.sleep(pause)
        wait = release - self._clock.now()
        if wait > 0:
            self._clock.sleep(wait)

    def __repr__(self) -> str:
        return f"InProcessRateBudget(windows={self.windows!r}, lane={self.lane.value!r})"


class DynamoDBRateBudget(Lanes):
    """The budget shared by every Lambda instance: one item, optimistic concurrency on a version (the
    item's layout: docs/architecture.md#rate-budget-ratelimit).

    An instance starts from what it last wrote, so an uncontended request costs one PutItem; every answer,
    refusals included, teaches `reference` AWS's time.
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
        local_deadline = self._clock.now() + allowed_wait(remaining_time, self.max_wait)
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
            if not reserves_now(self.lane, release, now):
                # a background caller: the slot is far (orders are using the budget); look again later
                self._clock.sleep(poll_sleep(release, now, buckets))
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
            wait = release - self.now()
            if wait > 0:
                self._clock.sleep(wait)
            return
        raise RateBudgetExhausted(
            retry_after=CONFLICT_RETRY_AFTER,
            message="Offergrid rate budget too contended to take a slot; retry shortly",
        )

    def now(self) -> float:
        """Shared time now (see `_offset`)."""
        return self._clock.now() + self._offset()

    def _offset(self) -> float:
        """Shared time minus this host's clock. While unknown or too wide, read DynamoDB again (timed so
        AWS's second turns mid-trip); refuse after `MAX_REFERENCE_READS`.
        """
        reads = 0
        while True:
            local = self._clock.now()
            offset = self.reference.offset(local)
            if offset is not None and offset.width <= MAX_REFERENCE_WIDTH:
                return offset.estimate
            if reads == MAX_REFERENCE_READS:
                raise RateBudgetExhausted(
                    retry_after=CONFLICT_RETRY_AFTER,
                    message=(
                        f"Offergrid rate budget: AWS's time is not known within {MAX_REFERENCE_WIDTH:g} s "
                        f"on this host (DynamoDB round trips of {self._round_trip:.2f} s); not sending on a "
                        "guess"
                    ),
                )
            if offset is not None:
                self._clock.sleep(until_second_mid_trip(local, offset, self._round_trip))
            self._read()
            reads += 1

    def _read(self) -> Mapping[str, AttributeValueTypeDef] | None:
        response = self._observed(
            lambda: self.client.get_item(TableName=self.table_name, Key=self._key, ConsistentRead=True)
        )
        return response.get("Item")

    def _observed[R](self, call: Callable[[], R]) -> R:
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
            [_state_from_item(item, "", w.key, w, now) for w in self.windows],
            [
                _state_from_item(item, "lane_", w.key, a, now)
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


_Known = tuple[int | None, Buckets]
"""A version of the item (None: none yet) and the buckets it holds."""


def _state_from_item(
    item: Mapping[str, AttributeValueTypeDef],
    prefix: str,
    key: str,
    bucket: RateWindow | Allowance,
    now: float,
) -> BucketState:
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
    """The shared DynamoDB budget when a table is configured (a blank name is none), else in-process."""
    if table_name:
        return DynamoDBRateBudget(
            table_name, budget_id, windows=windows, clock=clock, client=client, lane=lane, reserve=reserve
        )
    return InProcessRateBudget(windows=windows, clock=clock, lane=lane, reserve=reserve)
