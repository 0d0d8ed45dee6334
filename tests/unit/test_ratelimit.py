"""The rate budget: token-bucket math, waiting vs refusing, and the shared DynamoDB variant (moto).

Every test drives a `FakeClock`: `sleep` advances it and records how long was asked for, so a whole
simulated hour takes milliseconds and the waits are exact.
"""

from __future__ import annotations

import math
import random
import threading
import time
from abc import ABC, abstractmethod
from bisect import bisect_right
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any, cast

import boto3
import pytest
from botocore.exceptions import ClientError

from offergrid_integration.clock import SYSTEM_CLOCK, SkewedClock
from offergrid_integration.offergrid.errors import RateBudgetExhausted
from offergrid_integration.ratelimit import (
    DEFAULT_WINDOWS,
    DynamoDBRateBudget,
    InProcessRateBudget,
    Lane,
    RateBudget,
    RateWindow,
    budget_id_for_api_key,
    build_rate_budget,
)
from offergrid_integration.ratelimit.buckets import (
    BACKGROUND_RESERVE_AHEAD,
    DEFAULT_ORDER_RESERVE,
    MAX_REFERENCE_READS,
    MAX_REFERENCE_WIDTH,
    MAX_WAIT,
    ORDERS_IDLE_AFTER,
    WAIT_SAFETY_MARGIN,
    Allowance,
    BucketState,
    ClockOffset,
    DateHeaderTime,
    date_header_seconds,
    reference_time_for,
    refill,
)
from offergrid_integration.ratelimit.budgets import TTL_SECONDS
from tests.fixtures.aws import create_table
from tests.fixtures.budgets import LaneView, snapshot

T0 = 1_800_000_000.0
TABLE = "offergrid-rate-budget"
MINUTE_TOKEN = 60 / 92  # seconds per token of the default per-minute window: (97 - 5) per 60 s
SMALL_WINDOWS = (RateWindow(limit=20, period_seconds=60), RateWindow(limit=100, period_seconds=3600))
HOUR_TOKEN_SMALL = 3600 / 92  # the small hourly window refills (97 - 5) per hour


class FakeClock:
    """`sleep` records and advances time; a `frozen` clock only records (many callers, one instant)."""

    def __init__(self, now: float = T0, *, frozen: bool = False) -> None:
        self.time = now
        self.frozen = frozen
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if not self.frozen:
            self.time += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        self.time += seconds


BudgetFactory = Callable[..., RateBudget]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def dynamodb(aws: None) -> Any:
    client = create_table(TABLE, "pk")
    client.update_time_to_live(
        TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )
    return client


@pytest.fixture(params=["in-process", "dynamodb"])
def make_budget(request: pytest.FixtureRequest, clock: FakeClock) -> BudgetFactory:
    """Builds either implementation, so every behaviour below is asserted for both."""
    if request.param == "in-process":

        def in_process(
            windows: tuple[RateWindow, ...] = DEFAULT_WINDOWS, on: FakeClock = clock
        ) -> RateBudget:
            return InProcessRateBudget(windows=windows, clock=on)

        return in_process

    client = request.getfixturevalue("dynamodb")

    def dynamo(windows: tuple[RateWindow, ...] = DEFAULT_WINDOWS, on: FakeClock = clock) -> RateBudget:
        return DynamoDBRateBudget(TABLE, "budget-1", windows=windows, clock=on, client=client)

    return dynamo


def drain(budget: RateBudget, times: int) -> None:
    for _ in range(times):
        budget.acquire(remaining_time=0)


def max_in_any_window(timestamps: list[float], period: float) -> int:
    """Brute force: the most timestamps inside any closed interval of length `period`."""
    ordered = sorted(timestamps)
    return max((bisect_right(ordered, t + period) - i for i, t in enumerate(ordered)), default=0)


def run_back_to_back(budget: RateBudget, clock: FakeClock, duration: float) -> list[float]:
    """Acquire as fast as the budget allows for `duration` clock seconds; the times tokens were taken."""
    taken: list[float] = []
    end = clock.now() + duration
    while clock.now() < end:
        budget.acquire()
        taken.append(clock.now())
    return taken


# --- the bucket --------------------------------------------------------------------------------


def test_default_windows_follow_the_documented_formula() -> None:
    minute, hour = DEFAULT_WINDOWS
    assert (minute.limit, minute.period_seconds, minute.capacity, minute.effective_limit) == (100, 60, 5, 97)
    assert minute.refill_per_second == pytest.approx(92 / 60)
    assert (hour.limit, hour.period_seconds, hour.capacity, hour.effective_limit) == (10_000, 3600, 500, 9700)
    assert hour.refill_per_second == pytest.approx(9200 / 3600)


@pytest.mark.parametrize("limit", [0, 1, 2])
def test_a_window_too_small_for_a_bucket_is_refused(limit: int) -> None:
    with pytest.raises(ValueError, match="too small"):
        RateWindow(limit=limit, period_seconds=60)


def test_windows_must_have_distinct_periods(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="distinct periods"):
        InProcessRateBudget(windows=(RateWindow(100, 60), RateWindow(50, 60)), clock=clock)


def test_refill_never_goes_backwards_when_the_clock_is_behind() -> None:
    # Given a bucket last written by a host whose clock is 10 s ahead of ours
    window = DEFAULT_WINDOWS[0]
    state = BucketState(tokens=0.5, updated_at=T0 + 10)
    # When we refill it at our (earlier) time
    refilled = refill(window, state, T0)
    # Then nothing is added or removed and the timestamp does not move back
    assert refilled == state


def test_starts_full_and_takes_one_token_per_acquire(make_budget: BudgetFactory, clock: FakeClock) -> None:
    budget = make_budget()
    # Given a fresh budget, when the clock does not move, the 5-token burst passes without waiting
    drain(budget, 5)
    assert clock.sleeps == []
    # Then the sixth request has no token
    with pytest.raises(RateBudgetExhausted):
        budget.acquire(remaining_time=0)


def test_refills_at_the_sustained_rate_up_to_capacity(make_budget: BudgetFactory, clock: FakeClock) -> None:
    budget = make_budget()
    drain(budget, 5)
    # Given an empty bucket, after two tokens' worth of time exactly two requests pass
    clock.advance(2 * MINUTE_TOKEN + 1e-3)
    drain(budget, 2)
    with pytest.raises(RateBudgetExhausted):
        budget.acquire(remaining_time=0)
    # And after an idle hour the burst is back, but no more than the capacity
    clock.advance(3600)
    drain(budget, 5)
    with pytest.raises(RateBudgetExhausted):
        budget.acquire(remaining_time=0)


def test_waits_for_the_next_token_when_there_is_time(make_budget: BudgetFactory, clock: FakeClock) -> None:
    budget = make_budget()
    drain(budget, 5)
    # When a request arrives with 10 s to spare
    budget.acquire(remaining_time=10)
    # Then it waited exactly until the next token, once
    assert clock.sleeps == [pytest.approx(MINUTE_TOKEN, rel=1e-6)]
    assert clock.now() == pytest.approx(T0 + MINUTE_TOKEN, rel=1e-12)


def test_refuses_without_waiting_when_the_token_comes_too_late(
    make_budget: BudgetFactory, clock: FakeClock
) -> None:
    budget = make_budget()
    drain(budget, 5)
    # When the caller has less than the next token's wait plus the safety margin left
    with pytest.raises(RateBudgetExhausted) as refused:
        budget.acquire(remaining_time=WAIT_SAFETY_MARGIN + MINUTE_TOKEN / 2)
    # Then it did not sleep, and retry_after says when the token comes
    assert clock.sleeps == []
    assert refused.value.retry_after == pytest.approx(MINUTE_TOKEN, rel=1e-6)
    assert refused.value.retryable
    # And the refused request consumed nothing: the token is there when retry_after has passed
    clock.advance(refused.value.retry_after)
    budget.acquire(remaining_time=0)


def test_concurrent_callers_queue_for_successive_slots(make_budget: BudgetFactory) -> None:
    # Given callers arriving at the same instant (the clock does not move while they wait)
    clock = FakeClock(frozen=True)
    budget = make_budget(on=clock)
    drain(budget, 5)
    # When three more arrive with time to spare, each reserves the next free slot
    for _ in range(3):
        budget.acquire(remaining_time=10)
    assert clock.sleeps == pytest.approx([MINUTE_TOKEN, 2 * MINUTE_TOKEN, 3 * MINUTE_TOKEN], rel=1e-6)
    # And a fourth whose slot would come too late is refused, told when the fourth slot is
    with pytest.raises(RateBudgetExhausted) as refused:
        budget.acquire(remaining_time=3.5 * MINUTE_TOKEN + WAIT_SAFETY_MARGIN)
    assert refused.value.retry_after == pytest.approx(4 * MINUTE_TOKEN, rel=1e-6)
    assert len(clock.sleeps) == 3


def test_the_safety_margin_is_kept(make_budget: BudgetFactory, clock: FakeClock) -> None:
    budget = make_budget()
    drain(budget, 5)
    # Given just enough time for the wait but not for the margin too
    with pytest.raises(RateBudgetExhausted):
        budget.acquire(remaining_time=MINUTE_TOKEN + WAIT_SAFETY_MARGIN * 0.9)
    # With the margin on top, it waits
    budget.acquire(remaining_time=MINUTE_TOKEN + WAIT_SAFETY_MARGIN * 1.1)
    assert clock.sleeps == [pytest.approx(MINUTE_TOKEN, rel=1e-6)]


def test_no_deadline_still_caps_the_wait(make_budget: BudgetFactory, clock: FakeClock) -> None:
    # Given a window whose next token is an hour away (3 per hour: capacity 1, refill 1 per hour)
    budget = make_budget(windows=(RateWindow(limit=3, period_seconds=3600),))
    budget.acquire()
    # When asked with no deadline, or with a deadline longer than the cap
    for remaining in (None, 10 * 3600.0):
        with pytest.raises(RateBudgetExhausted) as refused:
            budget.acquire(remaining_time=remaining)
        # Then it refuses at once instead of sleeping for an hour
        assert refused.value.retry_after == pytest.approx(3600, rel=1e-6)
    assert clock.sleeps == []
    assert MAX_WAIT < 3600


def test_hourly_window_binds_when_it_is_the_tighter_one(make_budget: BudgetFactory, clock: FakeClock) -> None:
    # Given 20/min and 100/h: after the hour window's 5-token burst, its 39 s per token rules
    budget = make_budget(windows=SMALL_WINDOWS)
    # When requests are made back to back for two hours
    taken = run_back_to_back(budget, clock, 2 * 3600)
    # Then never more than the limit in any hour (nor any minute), and the hourly pace is kept
    assert max_in_any_window(taken, 3600) <= 97
    assert max_in_any_window(taken, 60) <= 19
    assert len(taken) >= 0.9 * 200
    assert clock.sleeps[-1] == pytest.approx(HOUR_TOKEN_SMALL, rel=1e-3)


@pytest.mark.parametrize(
    ("windows", "duration"),
    [
        pytest.param(DEFAULT_WINDOWS, 2 * 3600, id="default"),
        pytest.param(
            (RateWindow(limit=10, period_seconds=1), RateWindow(limit=400, period_seconds=60)),
            600,
            id="small",
        ),
    ],
)
def test_never_exceeds_any_window_over_a_long_run(
    clock: FakeClock, windows: tuple[RateWindow, ...], duration: float
) -> None:
    # Given back-to-back acquires for a long simulated run
    taken = run_back_to_back(InProcessRateBudget(windows=windows, clock=clock), clock, duration)
    # Then a brute-force sliding count never exceeds any window's limit (nor its effective limit)
    for window in windows:
        assert max_in_any_window(taken, window.period_seconds) <= window.effective_limit < window.limit
    # And the tightest window's limit is sustained above 90 %
    sustained = min(w.limit * duration / w.period_seconds for w in windows)
    assert len(taken) >= 0.9 * sustained


def offered_load(budget: RateBudget, clock: FakeClock, arrivals: int, span: float, seed: int) -> list[float]:
    """Callers arriving at random moments, each willing to wait a random while; their release times."""
    rng = random.Random(seed)
    released: list[float] = []
    for arrival in sorted(rng.uniform(0, span) for _ in range(arrivals)):
        clock.time = T0 + arrival
        try:
            budget.acquire(remaining_time=rng.uniform(0, 2 * MAX_WAIT))
        except RateBudgetExhausted:
            continue
        released.append(clock.time + clock.sleeps[-1] if clock.sleeps else clock.time)
        clock.sleeps.clear()
    return released


@pytest.mark.parametrize(
    ("windows", "arrivals", "span"),
    [
        pytest.param(DEFAULT_WINDOWS, 3000, 20 * 60, id="default"),
        pytest.param(SMALL_WINDOWS, 400, 2 * 3600, id="hour-binds"),
    ],
)
def test_many_callers_reserving_slots_never_exceed_any_window(
    windows: tuple[RateWindow, ...], arrivals: int, span: float
) -> None:
    # Given more callers than the budget allows, arriving at random, overlapping their waits
    clock = FakeClock(frozen=True)
    released = offered_load(InProcessRateBudget(windows=windows, clock=clock), clock, arrivals, span, seed=7)
    # Then the moments they are let go never put more than the effective limit in any window
    assert released == sorted(released)
    for window in windows:
        assert max_in_any_window(released, window.period_seconds) <= window.effective_limit
    # And the budget is used: the tightest window's sustained rate over the span, less the tail
    sustained = min((w.effective_limit - w.capacity) * span / w.period_seconds for w in windows)
    assert len(released) >= 0.95 * sustained


def test_many_callers_on_dynamodb_never_exceed_any_window(dynamodb: Any) -> None:
    clock = FakeClock(frozen=True)
    budget = DynamoDBRateBudget(TABLE, "load", windows=SMALL_WINDOWS, clock=clock, client=dynamodb)
    released = offered_load(budget, clock, 400, 2 * 3600, seed=11)
    assert max_in_any_window(released, 3600) <= 97
    assert max_in_any_window(released, 60) <= 19
    assert len(released) >= 0.95 * 2 * 92


def test_dynamodb_never_exceeds_the_minute_window(dynamodb: Any, clock: FakeClock) -> None:
    budget = DynamoDBRateBudget(TABLE, "long-run", clock=clock, client=dynamodb)
    taken = run_back_to_back(budget, clock, 5 * 60)
    assert max_in_any_window(taken, 60) <= 97
    assert len(taken) >= 0.9 * 5 * 100


def test_threads_share_one_in_process_budget(clock: FakeClock) -> None:
    # Given one budget and a clock that does not move
    budget = InProcessRateBudget(clock=clock)
    granted: list[int] = []
    barrier = threading.Barrier(8)

    def hammer() -> None:
        barrier.wait()
        for _ in range(10):
            try:
                budget.acquire(remaining_time=0)
                granted.append(1)
            except RateBudgetExhausted:
                pass

    # When 8 threads try 80 requests at once
    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then exactly the burst capacity was granted
    assert len(granted) == 5


# --- DynamoDB specifics ------------------------------------------------------------------------


def test_item_layout(dynamodb: Any, clock: FakeClock) -> None:
    budget = DynamoDBRateBudget(TABLE, "abc123", clock=clock, client=dynamodb)
    budget.acquire()
    item = stored(dynamodb, "abc123")
    assert {name: next(iter(value)) for name, value in item.items()} == {
        "pk": "S",
        "version": "N",
        "expires_at": "N",
        "tokens_60s": "N",
        "updated_at_60s": "N",
        "tokens_3600s": "N",
        "updated_at_3600s": "N",
        "lane_tokens_60s": "N",
        "lane_updated_at_60s": "N",
        "lane_tokens_3600s": "N",
        "lane_updated_at_3600s": "N",
        "orders_at": "N",
    }
    assert item["pk"]["S"] == "ratelimit#abc123"
    numbers = {name: float(value["N"]) for name, value in item.items() if "N" in value}
    assert numbers == {
        "version": 1,
        "expires_at": int(T0) + TTL_SECONDS,
        "tokens_60s": 4,
        "updated_at_60s": T0,
        "tokens_3600s": 499,
        "updated_at_3600s": T0,
        # the background allowances (60 % of 97/min and 9,700/h: 58 and 5,820, buckets of 3 and 291)
        # are debited by every request, an order's too
        "lane_tokens_60s": 2,
        "lane_updated_at_60s": T0,
        "lane_tokens_3600s": 290,
        "lane_updated_at_3600s": T0,
        # the orders' latest slot (the background lane uses their reserve when they are idle)
        "orders_at": T0,
    }


def test_ttl_moves_with_every_write(dynamodb: Any, clock: FakeClock) -> None:
    budget = DynamoDBRateBudget(TABLE, "ttl", clock=clock, client=dynamodb)
    budget.acquire()
    clock.advance(3600)
    budget.acquire()
    item = stored(dynamodb, "ttl")
    assert int(item["expires_at"]["N"]) == int(T0) + 3600 + TTL_SECONDS
    assert item["version"] == {"N": "2"}


def test_two_instances_share_one_budget(dynamodb: Any, clock: FakeClock) -> None:
    # Given two instances (two Lambda containers) on the same table and budget id
    a = DynamoDBRateBudget(TABLE, "shared", clock=clock, client=dynamodb)
    b = DynamoDBRateBudget(TABLE, "shared", clock=clock, client=boto3.client("dynamodb"))
    other = DynamoDBRateBudget(TABLE, "another-key", clock=clock, client=dynamodb)
    # When A spends the whole burst
    drain(a, 5)
    # Then B has nothing left, while a different budget id is untouched
    with pytest.raises(RateBudgetExhausted):
        b.acquire(remaining_time=0)
    assert [s.tokens for s in snapshot(b)] == pytest.approx([0, 495])
    drain(other, 5)


@pytest.mark.parametrize("skew", [-10.0, 30.0], ids=["10s-behind", "30s-ahead"])
def test_a_host_with_a_wrong_clock_schedules_in_the_true_time(
    dynamodb: Any, clock: FakeClock, skew: float
) -> None:
    a = DynamoDBRateBudget(TABLE, "skew", clock=clock, client=dynamodb)
    drain(a, 5)
    # Given B's clock is off the true one (A's): its reference is the true clock it is skewed from
    b = DynamoDBRateBudget(TABLE, "skew", clock=SkewedClock(clock, skew), client=dynamodb)
    # Then B's next slot is one token after A's last, in true time: it neither waits out a clock
    # that is behind nor takes a slot early with one that is ahead
    with pytest.raises(RateBudgetExhausted) as refused:
        b.acquire(remaining_time=0)
    assert refused.value.retry_after == pytest.approx(MINUTE_TOKEN, rel=1e-6)
    b.acquire(remaining_time=5)
    assert clock.sleeps == [pytest.approx(MINUTE_TOKEN, rel=1e-6)]
    # And the item holds true times: A, on the true clock, finds its next slot a token later
    assert float(stored(dynamodb, "skew")["updated_at_60s"]["N"]) == pytest.approx(T0 + MINUTE_TOKEN)
    with pytest.raises(RateBudgetExhausted) as refused:
        a.acquire(remaining_time=0)
    assert refused.value.retry_after == pytest.approx(MINUTE_TOKEN, rel=1e-6)


class SpyClient:
    """Passes calls to moto, counting them; can let another caller write between our read and write."""

    def __init__(self, real: Any, before_first_put: Callable[[], None] | None = None) -> None:
        self._real = real
        self._before_first_put = before_first_put
        self.exceptions = real.exceptions
        self.gets = 0
        self.puts = 0

    def get_item(self, **kwargs: Any) -> Any:
        self.gets += 1
        return self._real.get_item(**kwargs)

    def put_item(self, **kwargs: Any) -> Any:
        self.puts += 1
        if self._before_first_put is not None:
            interleave, self._before_first_put = self._before_first_put, None
            interleave()
        return self._real.put_item(**kwargs)


def spied_budget(
    real: Any, clock: FakeClock, budget_id: str, **spy: Any
) -> tuple[DynamoDBRateBudget, SpyClient]:
    client = SpyClient(real, **spy)
    return DynamoDBRateBudget(TABLE, budget_id, clock=clock, client=cast(Any, client)), client


def stored(dynamodb: Any, budget_id: str) -> Any:
    key = {"pk": {"S": f"ratelimit#{budget_id}"}}
    return dynamodb.get_item(TableName=TABLE, Key=key, ConsistentRead=True).get("Item", {})


@pytest.mark.parametrize("first_write", [True, False], ids=["creating-the-item", "updating-the-item"])
def test_a_conditional_write_conflict_is_retried(dynamodb: Any, clock: FakeClock, first_write: bool) -> None:
    b = DynamoDBRateBudget(TABLE, "race", clock=clock, client=dynamodb)
    if not first_write:
        drain(b, 1)
    # Given B takes a slot between A's read and A's conditional write
    a, spy = spied_budget(dynamodb, clock, "race", before_first_put=lambda: b.acquire(remaining_time=0))
    # When A acquires
    a.acquire(remaining_time=0)
    # Then A's first write was refused and A wrote again from the item it got back: both count
    assert (spy.gets, spy.puts) == (1, 2)
    used = 2 if first_write else 3
    item = stored(dynamodb, "race")
    assert item["version"] == {"N": str(used)}
    assert float(item["tokens_60s"]["N"]) == pytest.approx(5 - used)


def test_an_instance_alone_needs_one_write_per_request(dynamodb: Any, clock: FakeClock) -> None:
    a, spy = spied_budget(dynamodb, clock, "alone")
    drain(a, 3)
    clock.advance(60)
    a.acquire()
    # Then after the first read, each request was a single conditional write
    assert (spy.gets, spy.puts) == (1, 4)
    assert stored(dynamodb, "alone")["version"] == {"N": "4"}


def test_a_stale_instance_catches_up_from_the_refused_write(dynamodb: Any, clock: FakeClock) -> None:
    # Given A wrote once, then B (another instance) took two slots
    a, spy = spied_budget(dynamodb, clock, "stale")
    a.acquire(remaining_time=0)
    drain(DynamoDBRateBudget(TABLE, "stale", clock=clock, client=dynamodb), 2)
    # When A acquires again from what it last wrote
    a.acquire(remaining_time=0)
    # Then its write was refused once and it continued from the returned item without a GetItem
    assert (spy.gets, spy.puts) == (1, 3)
    item = stored(dynamodb, "stale")
    assert item["version"] == {"N": "4"}
    assert float(item["tokens_60s"]["N"]) == pytest.approx(1)


def test_an_expired_item_starts_a_full_budget(dynamodb: Any, clock: FakeClock) -> None:
    # Given A drained the burst, then stayed idle until the item expired (TTL) while A remembered it
    a, spy = spied_budget(dynamodb, clock, "expired")
    drain(a, 5)
    clock.advance(TTL_SECONDS + 1)
    dynamodb.delete_item(TableName=TABLE, Key={"pk": {"S": "ratelimit#expired"}})
    # When A acquires, its write conditional on the old version is refused (no item)
    a.acquire(remaining_time=0)
    # Then it recreated the item from a full bucket
    item = stored(dynamodb, "expired")
    assert item["version"] == {"N": "1"}
    assert float(item["tokens_60s"]["N"]) == pytest.approx(4)
    assert (spy.gets, spy.puts) == (1, 7)


def test_dynamodb_errors_other_than_conflicts_propagate_unchanged(aws: None, clock: FakeClock) -> None:
    # Given a table that does not exist (a misconfiguration, not an exhausted budget)
    budget = DynamoDBRateBudget("no-such-table", "x", clock=clock)
    # Then the botocore error reaches the caller as is
    with pytest.raises(ClientError) as raised:
        budget.acquire()
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert not isinstance(raised.value, RateBudgetExhausted)


# --- wiring ------------------------------------------------------------------------------------


def test_budget_id_is_a_short_fingerprint_that_never_contains_the_key() -> None:
    key = "og_live_0123456789abcdef0123456789abcdef"
    budget_id = budget_id_for_api_key(key)
    assert len(budget_id) == 16
    assert int(budget_id, 16) >= 0
    assert budget_id not in key
    assert key not in budget_id
    assert budget_id == budget_id_for_api_key(key)
    assert budget_id != budget_id_for_api_key(key + "x")


def test_the_key_never_reaches_the_item_or_the_repr(dynamodb: Any, clock: FakeClock) -> None:
    key = "test-api-key"
    budget = DynamoDBRateBudget(TABLE, budget_id_for_api_key(key), clock=clock, client=dynamodb)
    budget.acquire()
    items = dynamodb.scan(TableName=TABLE)["Items"]
    assert len(items) == 1
    assert key not in repr(items)
    assert key not in repr(budget)


@pytest.mark.parametrize("table_name", [None, ""])
def test_build_rate_budget_without_a_table_is_in_process(table_name: str | None, clock: FakeClock) -> None:
    budget = build_rate_budget(table_name, "id", clock=clock)
    assert isinstance(budget, InProcessRateBudget)


def test_build_rate_budget_with_a_table_uses_dynamodb(dynamodb: Any, clock: FakeClock) -> None:
    budget = build_rate_budget(TABLE, "built", clock=clock, windows=SMALL_WINDOWS)
    assert isinstance(budget, DynamoDBRateBudget)
    assert (budget.table_name, budget.budget_id, budget.windows) == (TABLE, "built", SMALL_WINDOWS)
    budget.acquire()  # lazily creates its own client, inside moto
    assert stored(dynamodb, "built")["version"] == {"N": "1"}


# --- lanes: orders first, nothing left idle ------------------------------------------------------
# The background lane (offer sync, sweep, reconciliation) leaves a reserve of each window to the
# order processor's lane while orders are active: with the default 40 %, it then takes no more than
# 58 of the minute's 97 (55 sustained), less what the orders take, and none at all while orders run
# above its share. With no order for ORDERS_IDLE_AFTER seconds it may use the whole window.
BACKGROUND_MINUTE = 58  # floor(97 * 0.6)
BACKGROUND_TOKEN = 60 / 55  # its allowance refills (58 - 3) per minute


class OrdersWhileSleeping(FakeClock, ABC):
    """A `FakeClock` on which orders are taken (`orders.acquire()`, once `orders` is set) while a
    background caller sleeps: `take_orders` says which, up to the end of the sleep; an order's own
    sleep is a plain one."""

    def __init__(self) -> None:
        super().__init__()
        self.orders: RateBudget | None = None
        self._in_orders = False

    def sleep(self, seconds: float) -> None:
        if self._in_orders or self.orders is None:
            super().sleep(seconds)
            return
        end = self.time + max(0.0, seconds)
        self._in_orders = True
        try:
            self.take_orders(self.orders, end)
        finally:
            self._in_orders = False
        self.time = max(self.time, end)

    @abstractmethod
    def take_orders(self, orders: RateBudget, end: float) -> None:
        """Take order tokens until `end` while something else sleeps."""


class BusyClock(OrdersWhileSleeping):
    """A `FakeClock` on which orders keep arriving while a background caller sleeps.

    Whenever something other than an order sleeps, `orders.acquire()` is called back to back for
    the slept time (until `busy_until`), as an order processor would while a sync waits; every
    release is recorded with its lane.
    """

    def __init__(self, busy_until: float) -> None:
        super().__init__()
        self.busy_until = busy_until
        self.released: list[tuple[float, Lane]] = []

    def take_orders(self, orders: RateBudget, end: float) -> None:
        while self.time < min(end, self.busy_until):
            orders.acquire()
            self.released.append((self.time, Lane.ORDERS))


LaneFactory = Callable[..., tuple[RateBudget, RateBudget]]


@pytest.fixture(params=["in-process", "dynamodb"])
def make_lanes(request: pytest.FixtureRequest) -> LaneFactory:
    """(orders, background) budget objects sharing one budget, for either implementation."""

    def in_process(on: FakeClock, reserve: float = DEFAULT_ORDER_RESERVE) -> tuple[RateBudget, RateBudget]:
        orders = InProcessRateBudget(clock=on, reserve=reserve)
        return orders, LaneView(orders, Lane.BACKGROUND)

    if request.param == "in-process":
        return in_process
    client = request.getfixturevalue("dynamodb")

    def dynamo(on: FakeClock, reserve: float = DEFAULT_ORDER_RESERVE) -> tuple[RateBudget, RateBudget]:
        return tuple(  # type: ignore[return-value]
            DynamoDBRateBudget(TABLE, "lanes", clock=on, client=client, lane=lane, reserve=reserve)
            for lane in (Lane.ORDERS, Lane.BACKGROUND)
        )

    return dynamo


def test_the_background_allowance_follows_the_reserve() -> None:
    minute, hour = DEFAULT_WINDOWS
    # 58 of the minute's 97 for the background lane; orders may drive it 39 (the reserve) below zero
    assert Allowance.for_window(minute, 0.4) == Allowance(
        limit=BACKGROUND_MINUTE, period_seconds=60, reserved=39
    )
    assert Allowance.for_window(minute, 0.4).capacity == 3
    assert Allowance.for_window(hour, 0.4).limit == 5820
    assert Allowance.for_window(minute, 0.0).limit == minute.effective_limit
    with pytest.raises(ValueError, match="order reserve"):
        InProcessRateBudget(reserve=0.95)


def test_a_background_lane_alone_uses_the_whole_window(make_lanes: LaneFactory, clock: FakeClock) -> None:
    orders, background = make_lanes(clock)
    # When the background lane takes tokens back to back for ten minutes, no order in sight
    taken = run_back_to_back(background, clock, 600)
    # Then it runs at the window's sustained pace (work-conserving), never over the window
    assert len(taken) >= 0.99 * 92 * 10
    assert max_in_any_window(taken, 60) <= 97
    # And an order arriving right then has its slot within about a second (the background reserves
    # no further ahead), and from then on the orders have the window's full sustained pace
    asked = clock.now()
    orders.acquire(remaining_time=10)
    assert clock.now() - asked <= BACKGROUND_RESERVE_AHEAD + MINUTE_TOKEN
    orders_taken = run_back_to_back(orders, clock, 60)
    assert len(orders_taken) >= 91
    assert max_in_any_window(taken + orders_taken, 60) <= 97
    # While the orders are active the background lane has nothing: its allowance is in debt
    with pytest.raises(RateBudgetExhausted):
        background.acquire(remaining_time=0)


def test_orders_above_the_background_share_leave_it_nothing(
    make_lanes: LaneFactory, clock: FakeClock
) -> None:
    orders, background = make_lanes(clock)
    # Given orders arriving steadily at 70 a minute (above the background's 58, below the window's 92)
    background_taken = 0
    for n in range(5 * 70):
        clock.time = T0 + n * 60 / 70
        orders.acquire(remaining_time=0)
        # When the background lane tries, without waiting, after every order
        try:
            background.acquire(remaining_time=0)
        except RateBudgetExhausted:
            continue
        background_taken += 1
    # Then it got only the allowance's initial burst, though the window had 22 a minute spare: the
    # orders' requests count against it (without lanes it would have taken about 110 here)
    assert background_taken <= 3


def test_a_background_caller_waits_out_an_order_burst_rather_than_fails(make_lanes: LaneFactory) -> None:
    # Given orders that keep the budget busy for two minutes from now
    clock = BusyClock(busy_until=T0 + 120)
    orders, background = make_lanes(clock)
    clock.orders = orders
    clock.sleep(10)  # the orders' first 10 s
    # When a background caller asks, with no deadline
    background.acquire()
    started = clock.time
    clock.released.append((started, Lane.BACKGROUND))
    # Then it did not fail: it waited until the orders were done (they did not queue behind it)
    assert started >= T0 + 120 - 2 * MINUTE_TOKEN
    order_times = [at for at, lane in clock.released if lane is Lane.ORDERS]
    # And the orders used the whole window meanwhile: the burst plus 92 a minute
    assert len(order_times) >= 5 + 2 * 92 - 2
    # And both lanes together never exceeded any window
    assert max_in_any_window([at for at, _ in clock.released], 60) <= 97


def test_a_background_caller_still_gives_up_at_its_deadline(make_lanes: LaneFactory) -> None:
    clock = BusyClock(busy_until=T0 + 600)
    orders, background = make_lanes(clock)
    clock.orders = orders
    clock.sleep(10)
    # When the orders keep the budget busy longer than the caller has
    with pytest.raises(RateBudgetExhausted) as refused:
        background.acquire(remaining_time=30)
    # Then it waited while its slot could still come in time, and gave up within its remaining time
    # once even the earliest moment its slot could come lay beyond it
    assert T0 + 10 < clock.time <= T0 + 10 + 30
    assert clock.time + refused.value.retry_after > T0 + 10 + 30 - WAIT_SAFETY_MARGIN


def test_with_no_reserve_the_lanes_share_alike(make_lanes: LaneFactory, clock: FakeClock) -> None:
    _, background = make_lanes(clock, reserve=0.0)
    taken = run_back_to_back(background, clock, 300)
    assert len(taken) >= 0.95 * 5 * 92


def test_after_an_order_burst_the_background_waits_until_the_orders_are_idle(
    make_lanes: LaneFactory, clock: FakeClock
) -> None:
    orders, background = make_lanes(clock)
    # Given orders that used the whole window for two minutes and then stopped
    run_back_to_back(orders, clock, 120)
    last_order = clock.now()
    # When a background caller asks right after
    background.acquire()
    # Then it waited until the orders had been idle for ORDERS_IDLE_AFTER (they may come back within
    # it), not until its allowance was out of the orders' debt (39 tokens at 55/min, about 43 s)
    assert clock.now() - last_order == pytest.approx(ORDERS_IDLE_AFTER, abs=0.01)


class TrickleClock(OrdersWhileSleeping):
    """A `FakeClock` on which one order arrives every `every` seconds, taken (`orders.acquire()`)
    while a background caller sleeps; every order's release is recorded."""

    def __init__(self, every: float) -> None:
        super().__init__()
        self.every = every
        self.next_order = T0
        self.released: list[float] = []

    def take_orders(self, orders: RateBudget, end: float) -> None:
        while self.next_order <= end:
            self.time = max(self.time, self.next_order)
            orders.acquire(remaining_time=60)
            self.released.append(self.time)
            self.next_order += self.every


def test_orders_below_the_background_share_leave_it_the_rest_of_its_share(make_lanes: LaneFactory) -> None:
    # Given orders arriving steadily at 20 a minute (one every 3 s: active all along)
    clock = TrickleClock(every=3.0)
    orders, background = make_lanes(clock)
    clock.orders = orders
    clock.sleep(0)  # the first order
    # When the background lane takes tokens back to back beside them for five minutes
    taken = run_back_to_back(background, clock, 300)
    # Then it had its share (58 a minute, 55 sustained) less the orders' 20, not the window's rest
    assert 5 * (55 - 20) - 5 <= len(taken) <= 5 * (58 - 20) + 3
    # And the orders were all served, one every 3 s
    assert len(clock.released) >= 100


# --- shared time: AWS's clock from the Date header -------------------------------------------------


def dated(seconds: float) -> dict[str, Any]:
    """A botocore response (or error response) carrying AWS's `Date` for `seconds` (floored)."""
    return {"ResponseMetadata": {"HTTPHeaders": {"date": formatdate(math.floor(seconds), usegmt=True)}}}


def test_one_answer_bounds_the_offset_by_its_second_and_its_round_trip() -> None:
    # Given AWS 30 s behind this host; an answer sent at local 100.2, received at 100.3
    reference = DateHeaderTime()
    true_offset = -30.0
    reference.observe(100.2, 100.3, dated(100.25 + true_offset))
    offset = reference.offset(100.3)
    # Then the offset lies in [D - received, D + 1 - sent]: one second and one round trip wide
    assert offset is not None
    assert offset.low <= true_offset <= offset.high
    assert offset.width == pytest.approx(1.1)


def test_answers_at_other_fractions_of_a_second_narrow_the_offset_to_the_round_trip() -> None:
    reference = DateHeaderTime()
    true_offset = 12.345
    rng = random.Random(5)
    local = 1_000.0
    for _ in range(40):
        local += rng.uniform(0.1, 3.0)
        round_trip = rng.uniform(0.005, 0.03)
        stamped = local + rng.uniform(0, round_trip)  # AWS dates the answer somewhere in the trip
        reference.observe(local, local + round_trip, dated(stamped + true_offset))
    offset = reference.offset(local)
    assert offset is not None
    assert offset.low <= true_offset <= offset.high
    assert offset.width <= 0.2  # from the 1.03 s of one answer


def test_a_stepped_clock_starts_the_offset_again_from_the_new_answer() -> None:
    reference = DateHeaderTime()
    reference.observe(100.0, 100.01, dated(100.005))
    # When this host's clock is stepped 20 s back (NTP after a laptop woke up)
    reference.observe(90.0, 90.01, dated(110.005))
    offset = reference.offset(90.01)
    # Then the old interval, disjoint from the answer, is dropped
    assert offset is not None
    assert offset.low <= 20.0 <= offset.high
    assert offset.width == pytest.approx(1.01)


def test_a_learnt_offset_widens_with_its_age() -> None:
    reference = DateHeaderTime(drift=1e-3)
    reference.observe(0.0, 0.0, dated(0.5))
    fresh, aged = reference.offset(0.0), reference.offset(1000.0)
    assert fresh is not None
    assert aged is not None
    assert aged.width == pytest.approx(fresh.width + 2 * 1.0)


@pytest.mark.parametrize(
    "response",
    [
        {},
        {"ResponseMetadata": {}},
        {"ResponseMetadata": {"HTTPHeaders": {}}},
        {"ResponseMetadata": {"HTTPHeaders": {"date": "yesterday"}}},
        {"ResponseMetadata": {"HTTPHeaders": {"date": "Tue, 01 Dec 2026 10:00:00"}}},  # no zone
        {"ResponseMetadata": {"HTTPHeaders": {"date": 5}}},
    ],
)
def test_an_answer_without_a_usable_date_teaches_nothing(response: dict[str, Any]) -> None:
    assert date_header_seconds(response) is None
    reference = DateHeaderTime()
    reference.observe(0.0, 0.1, response)
    assert reference.offset(0.1) is None


def test_the_date_header_is_read_as_aws_sends_it() -> None:
    assert date_header_seconds(dated(1_800_000_000.7)) == 1_800_000_000
    assert (
        date_header_seconds({"ResponseMetadata": {"HTTPHeaders": {"date": "Sun, 06 Dec 2026 17:29:58 GMT"}}})
        == datetime(2026, 12, 6, 17, 29, 58, tzinfo=UTC).timestamp()
    )


def test_the_reference_follows_the_clock() -> None:
    # The system clock's reference is AWS's; a skewed system clock's too (a laptop); a test clock is
    # its own; a skewed test clock's is the test clock it is skewed from
    assert isinstance(reference_time_for(SYSTEM_CLOCK), DateHeaderTime)
    assert isinstance(reference_time_for(SkewedClock(SYSTEM_CLOCK, 30)), DateHeaderTime)
    fake = FakeClock()
    assert reference_time_for(fake).offset(fake.now()) == ClockOffset(0.0, 0.0)
    skewed = SkewedClock(SkewedClock(fake, 30), 5)
    offset = reference_time_for(skewed).offset(skewed.now())
    assert offset is not None
    assert offset.estimate == pytest.approx(-35)
    assert offset.width == pytest.approx(0, abs=1e-6)


def test_against_moto_the_date_header_places_a_laptop_30s_ahead(dynamodb: Any) -> None:
    # Given the offer-sync CLI's budget on a laptop whose clock is 30 s fast (moto dates its answers
    # with this machine's clock, as AWS does with its own)
    laptop = SkewedClock(SYSTEM_CLOCK, 30)
    budget = DynamoDBRateBudget(TABLE, "laptop", clock=laptop, client=dynamodb, lane=Lane.BACKGROUND)
    assert isinstance(budget.reference, DateHeaderTime)
    # When it takes a slot (one read, one write)
    budget.acquire(remaining_time=5)
    # Then it knows AWS's time is 30 s behind its own, within a second and a round trip
    offset = budget.reference.offset(laptop.now())
    assert offset is not None
    assert offset.low <= -30 <= offset.high
    assert offset.width <= MAX_REFERENCE_WIDTH
    # And the slot it stored is in AWS's time, not 30 s ahead of it
    assert abs(float(stored(dynamodb, "laptop")["updated_at_60s"]["N"]) - time.time()) <= 1.5


class UndatedClient(SpyClient):
    """moto's answers with their `Date` header removed (and counted like SpyClient)."""

    def get_item(self, **kwargs: Any) -> Any:
        response = super().get_item(**kwargs)
        response["ResponseMetadata"]["HTTPHeaders"].pop("date", None)
        return response


def test_without_aws_time_the_budget_refuses_rather_than_guesses(dynamodb: Any, clock: FakeClock) -> None:
    # Given answers that never carry a Date (a proxy stripping it)
    client = UndatedClient(dynamodb)
    budget = DynamoDBRateBudget(
        TABLE, "undated", clock=clock, client=cast(Any, client), reference=DateHeaderTime()
    )
    # Then it reads a few times, then refuses, having taken nothing
    with pytest.raises(RateBudgetExhausted, match="AWS's time is not known"):
        budget.acquire()
    assert (client.gets, client.puts) == (1 + MAX_REFERENCE_READS, 0)
    assert stored(dynamodb, "undated") == {}


class FarClient(SpyClient):
    """moto as seen from far away: each call takes `round_trip` on the clock, and its answer is dated
    (to the second) with a true time `offset` from the clock, in the middle of the trip."""

    def __init__(self, real: Any, clock: FakeClock, round_trip: float, offset: float) -> None:
        super().__init__(real)
        self.clock, self.round_trip, self.offset = clock, round_trip, offset

    def get_item(self, **kwargs: Any) -> Any:
        return self._far(super().get_item, kwargs)

    def put_item(self, **kwargs: Any) -> Any:
        return self._far(super().put_item, kwargs)

    def _far(self, call: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        stamp = dated(self.clock.time + self.round_trip / 2 + self.offset)["ResponseMetadata"]
        self.clock.advance(self.round_trip)
        try:
            response = call(**kwargs)
        except ClientError as error:
            error.response["ResponseMetadata"]["HTTPHeaders"].update(stamp["HTTPHeaders"])
            raise
        response["ResponseMetadata"]["HTTPHeaders"].update(stamp["HTTPHeaders"])
        return response


def test_a_slow_link_takes_readings_timed_to_narrow_the_offset(dynamodb: Any) -> None:
    # Given a host whose round trips take 0.5 s (the first answer leaves 1.5 s of doubt, over the
    # 1.2 s the headroom covers), its clock 7.3 s behind AWS's
    clock = FakeClock(T0 + 0.37)
    client = FarClient(dynamodb, clock, round_trip=0.5, offset=7.3)
    budget = DynamoDBRateBudget(
        TABLE, "far", clock=clock, client=cast(Any, client), reference=DateHeaderTime()
    )
    # When it takes a slot
    budget.acquire()
    # Then it read again (each reading timed so AWS's second turns mid-trip) until the doubt was
    # within the limit, and only then wrote
    offset = budget.reference.offset(clock.now())
    assert offset is not None
    assert offset.low <= 7.3 <= offset.high
    assert offset.width <= MAX_REFERENCE_WIDTH
    assert 2 <= client.gets <= 3
    assert client.puts == 1
    # And the slot is in AWS's time
    assert float(stored(dynamodb, "far")["updated_at_60s"]["N"]) == pytest.approx(clock.now() + 7.3, abs=1.0)
