"""The rate budget against the Offergrid fake's sliding window: 8 threads, compressed time.

Requirement: threads hammering the API through the budget get zero 429s, and the throughput stays
within 10 % of the 100/min limit. Each worker loops { acquire(); raw GET /provider/offers } for a
few fake minutes; the fake's recorded calls are the evidence. The raw httpx call (not the project's
client) proves the limiter on its own. Both run on compressed time: the budget on
`ScaledClock(scale)`, the fake at `time_scale=scale`.
"""

from __future__ import annotations

import gc
import logging
import threading
from bisect import bisect_right
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from moto.dynamodb.models import DynamoDBBackend
from moto.server import ThreadedMotoServer

from devtools.offergrid_fake import OffergridFake
from offergrid_integration.clock import SYSTEM_CLOCK, ScaledClock, SkewedClock
from offergrid_integration.offergrid.errors import RateBudgetExhausted
from offergrid_integration.ratelimit import (
    DynamoDBRateBudget,
    InProcessRateBudget,
    Lane,
    RateBudget,
    budget_id_for_api_key,
)
from offergrid_integration.ratelimit.buckets import MAX_REFERENCE_WIDTH, WAIT_SAFETY_MARGIN, DateHeaderTime
from tests.fixtures.aws import create_table
from tests.fixtures.budgets import LaneView, snapshot
from tests.fixtures.offergrid_fake import TEST_API_KEY, OffergridFakeFactory

pytestmark = pytest.mark.slow

THREADS = 8
# In-process: 2 fake minutes in 15 real seconds. The 3-request headroom absorbs about 2 fake
# seconds of jitter between taking a slot and the request arriving: 250 ms real at this scale. At
# scale 20 (100 ms real) a loaded machine (load ~20, a valgrind benchmark beside the suite) once
# delivered 2 requests late enough to land in the next window of the fake: 2 of them refused.
IN_PROCESS_SCALE, IN_PROCESS_MINUTES = 8.0, 2.0
# DynamoDB over the moto server: a slot costs one or two conditional PutItems (a few ms of CPU
# each, client and server in this one process) and the 8 writers collide often, so this variant
# runs slower: 3 fake minutes at scale 10 (18 s real). At scale 20 it falls below 90/min under load,
# and at 15 it did once (89.3/min) with the parallel suite sharing two cores.
DYNAMODB_SCALE, DYNAMODB_MINUTES = 10.0, 3.0
# The pace a quiet machine keeps (printed beside the one measured, not asserted). The safety (never
# over 100 in any 60 s, every token counted once) does not depend on the CPU; the pace does: this
# variant measured 84.3/min at load 4-7, 89.3 at load 10-14 and 40 at load 30 (`make test-stress`,
# issue 22), 93.3 on a quiet machine. The budget's pace is asserted where no CPU decides it, on a
# clock that moves only when slept (tests/unit/test_ratelimit.py: 90 % of the limit, in process and
# on DynamoDB); `make bench-orders` measures the pace of the real path.
DYNAMODB_MIN_PER_MINUTE = 75
TABLE = "offergrid-rate-budget-it"


def max_in_any_window(timestamps: list[float], period: float) -> int:
    ordered = sorted(timestamps)
    return max((bisect_right(ordered, t + period) - i for i, t in enumerate(ordered)), default=0)


def hammer(
    fake: OffergridFake, budgets: list[RateBudget], clock: ScaledClock, minutes: float
) -> list[BaseException]:
    """One thread per budget: acquire, GET, repeat until `minutes` have passed on `clock`."""
    failures: list[BaseException] = []
    ends: list[float] = []
    start_together = threading.Barrier(len(budgets))

    def worker(budget: RateBudget) -> None:
        try:
            with httpx.Client(
                base_url=fake.base_url, headers={"x-api-key": TEST_API_KEY}, timeout=10.0
            ) as http:
                # Open every connection before the clock starts, so connection setup does not
                # delay the first requests into the next window (the control plane is not limited)
                http.get("/_fake/state").raise_for_status()
                if isinstance(budget, DynamoDBRateBudget):
                    snapshot(budget)
                if start_together.wait() == 0:
                    ends.append(clock.now() + minutes * 60)
                start_together.wait()
                end = ends[0]
                while (remaining := end - clock.now()) > 0:
                    try:
                        # may wait right up to `end`, never past it
                        budget.acquire(remaining_time=remaining + WAIT_SAFETY_MARGIN)
                    except RateBudgetExhausted:
                        return
                    http.get("/provider/offers")
        except BaseException as exc:  # surfaced to the test thread below
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(b,), name=f"hammer-{i}") for i, b in enumerate(budgets)]
    # A full collection over this process's heap (moto's models, every test module) stops all
    # threads for ~0.3 s real, several fake seconds: freeze what exists so the run measures the
    # budget, not the test process's garbage collector.
    gc.collect()
    gc.freeze()
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=minutes * 60)
    finally:
        gc.unfreeze()
    assert not any(t.is_alive() for t in threads), "a worker did not finish"
    return failures


def assert_within_limit_and_close_to_it(fake: OffergridFake, minutes: float, *, floor: float = 90) -> None:
    calls = fake.calls_matching("GET", "/provider/offers")
    statuses = {call.status for call in calls}
    # Then not a single request was refused by the fake's sliding window
    assert fake.rate_limited == 0
    assert statuses == {200}
    # And no 60 s of the fake's clock saw more than 100 requests. The pace (`floor` on a quiet machine)
    # is the CPU's to give on a real-time clock: printed, asserted on a manual clock (see above).
    busiest_minute = max_in_any_window([call.at for call in calls], 60)
    per_minute = len(calls) / minutes
    print(f"{len(calls)} requests, {per_minute:.1f}/fake min (quiet: >= {floor}), busiest: {busiest_minute}")
    assert busiest_minute <= 100
    assert 0 < per_minute <= 100


def test_in_process_budget_never_trips_the_fake(offergrid_fake_factory: OffergridFakeFactory) -> None:
    # Given the fake enforcing 100/min and 10,000/h, and one budget shared by 8 threads
    fake = offergrid_fake_factory(time_scale=IN_PROCESS_SCALE, per_minute=100, per_hour=10_000)
    clock = ScaledClock(IN_PROCESS_SCALE)
    budget = InProcessRateBudget(clock=clock)
    # When they hammer the API for three fake minutes
    failures = hammer(fake, [budget] * THREADS, clock, IN_PROCESS_MINUTES)
    assert failures == []
    assert_within_limit_and_close_to_it(fake, IN_PROCESS_MINUTES)


def test_lanes_sharing_one_budget_never_trip_the_fake_and_orders_come_first(
    offergrid_fake_factory: OffergridFakeFactory,
) -> None:
    # Given 4 order-processor threads and 4 background threads (sync, sweep...) on one budget
    fake = offergrid_fake_factory(time_scale=IN_PROCESS_SCALE, per_minute=100, per_hour=10_000)
    clock = ScaledClock(IN_PROCESS_SCALE)
    orders = Counting(InProcessRateBudget(clock=clock))
    background = Counting(LaneView(orders.inner, Lane.BACKGROUND))
    budgets: list[RateBudget] = [*[orders] * (THREADS // 2), *[background] * (THREADS // 2)]
    # When they all hammer the API for three fake minutes
    failures = hammer(fake, budgets, clock, IN_PROCESS_MINUTES)
    assert failures == []
    # Then the guarantee holds as without lanes: no 429, never over 100 in any 60 s
    assert_within_limit_and_close_to_it(fake, IN_PROCESS_MINUTES)
    # And the orders, who always want more, got nearly all of it (without lanes: about half)
    print(f"orders {orders.count}, background {background.count}")
    assert orders.count >= 0.9 * (orders.count + background.count)


class Counting:
    """A budget that counts the tokens it handed out."""

    def __init__(self, inner: InProcessRateBudget) -> None:
        self.inner = inner
        self.count = 0
        self._lock = threading.Lock()

    def acquire(self, *, remaining_time: float | None = None) -> None:
        self.inner.acquire(remaining_time=remaining_time)
        with self._lock:
            self.count += 1


@pytest.fixture
def moto_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    # DynamoDB applies a conditional write atomically; moto's threaded server checks the condition
    # and stores the item without a lock, so two writers expecting the same version can both pass
    # (seen: the item's version one short of the requests made). Make moto as atomic as DynamoDB.
    write_lock = threading.Lock()
    put_item = DynamoDBBackend.put_item

    def atomic_put_item(self: DynamoDBBackend, *args: Any, **kwargs: Any) -> Any:
        with write_lock:
            return put_item(self, *args, **kwargs)

    monkeypatch.setattr(DynamoDBBackend, "put_item", atomic_put_item)
    # werkzeug logs every request the moto server answers; at hundreds per second that formatting
    # alone starves the threads under test
    access_log = logging.getLogger("werkzeug")
    level = access_log.level
    access_log.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = create_table(TABLE, "pk", client=boto3.client("dynamodb", endpoint_url=endpoint))
    try:
        yield endpoint
    finally:
        client.delete_table(TableName=TABLE)
        server.stop()
        access_log.setLevel(level)


def test_dynamodb_budget_shared_by_instances_never_trips_the_fake(
    offergrid_fake_factory: OffergridFakeFactory, moto_endpoint: str
) -> None:
    # Given 8 threads, each its own "Lambda instance": its own budget object and boto3 client,
    # all on one table and one budget id, against a moto server
    fake = offergrid_fake_factory(time_scale=DYNAMODB_SCALE, per_minute=100, per_hour=10_000)
    clock = ScaledClock(DYNAMODB_SCALE)
    budget_id = budget_id_for_api_key(TEST_API_KEY)
    budgets: list[RateBudget] = [
        DynamoDBRateBudget(TABLE, budget_id, clock=clock, client=_client(moto_endpoint))
        for _ in range(THREADS)
    ]
    # When they hammer the API for three fake minutes
    failures = hammer(fake, budgets, clock, DYNAMODB_MINUTES)
    assert failures == []
    assert_within_limit_and_close_to_it(fake, DYNAMODB_MINUTES, floor=DYNAMODB_MIN_PER_MINUTE)
    # And the item's version counts every token handed out: no write was lost or doubled
    item = _client(moto_endpoint).get_item(
        TableName=TABLE, Key={"pk": {"S": f"ratelimit#{budget_id}"}}, ConsistentRead=True
    )["Item"]
    assert int(item["version"]["N"]) == len(fake.calls_matching("GET", "/provider/offers"))


# Hosts whose clocks disagree by up to two minutes (issue 21): 2 fake minutes at the same scale.
SKEWED_MINUTES = 2.0
SKEWS = (-60.0, -41.0, -17.0, -5.0, 0.0, 5.0, 30.0, 60.0)


def test_dynamodb_budget_shared_by_hosts_whose_clocks_disagree_never_trips_the_fake(
    offergrid_fake_factory: OffergridFakeFactory, moto_endpoint: str
) -> None:
    # Given 8 "Lambda instances" (or an operator's laptop) on one budget, their clocks from 60 s
    # behind to 60 s ahead of the true one, which the fake and AWS keep (each host's reference is
    # the true clock it is skewed from: AWS's `Date` counts real seconds, not compressed ones)
    clock = ScaledClock(DYNAMODB_SCALE)
    fake = offergrid_fake_factory(clock=clock, per_minute=100, per_hour=10_000)
    budget_id = budget_id_for_api_key(TEST_API_KEY)
    budgets: list[RateBudget] = [
        DynamoDBRateBudget(TABLE, budget_id, clock=SkewedClock(clock, skew), client=_client(moto_endpoint))
        for skew in SKEWS
    ]
    # When they hammer the API
    failures = hammer(fake, budgets, clock, SKEWED_MINUTES)
    assert failures == []
    # Then, as with agreeing clocks: no 429, never over 100 in any 60 s of true time, the pace kept
    assert_within_limit_and_close_to_it(fake, SKEWED_MINUTES, floor=DYNAMODB_MIN_PER_MINUTE)


def test_against_the_moto_server_the_date_header_places_a_laptop_60s_behind(moto_endpoint: str) -> None:
    # Given a budget on a (real-time) clock 60 s slow, its DynamoDB a moto server that dates its
    # answers with this machine's clock, as AWS dates them with its own
    laptop = SkewedClock(SYSTEM_CLOCK, -60)
    budget = DynamoDBRateBudget(
        TABLE, "laptop", clock=laptop, client=_client(moto_endpoint), lane=Lane.BACKGROUND
    )
    assert isinstance(budget.reference, DateHeaderTime)
    # When it takes a few slots (the bucket's burst: no waiting)
    for _ in range(4):
        budget.acquire(remaining_time=5)
    # Then it places AWS's time 60 s ahead of its own, within the doubt it may schedule on
    offset = budget.reference.offset(laptop.now())
    assert offset is not None
    assert offset.low <= 60 <= offset.high
    assert offset.width <= MAX_REFERENCE_WIDTH


def _client(endpoint: str) -> Any:
    return boto3.session.Session().client("dynamodb", endpoint_url=endpoint)
