"""P5 (issue 21): the shared budget holds whatever the callers' clocks say.

Hypothesis generates the hosts (2-3 order-processor instances and 1-2 background instances: sync,
sweep, reconciliation, an operator's CLI), each with its clock up to 60 s off the true time and its
own round trip to DynamoDB; how AWS's time reaches them (the true clock they are skewed from, or the
`Date` header of DynamoDB's answers, dated to the second); how long a request takes to reach
Offergrid after its slot; and how the orders arrive (steady or in bursts, 70-150 a minute: more than
the 60 the property promises). The run is `tests.fixtures.budget_world`: the DynamoDB budget on
moto, the fake's sliding-window limiter judging every arrival in true time, a few true minutes in
a few real seconds.

`make test` runs a small profile (a few examples); `make test-deep` (RATE_PROPERTIES_PROFILE=deep)
many more and longer runs.
"""

from __future__ import annotations

import itertools
import os
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offergrid_integration.clock import SkewedClock
from offergrid_integration.ratelimit import DynamoDBRateBudget, Lane, RateBudget
from offergrid_integration.ratelimit.buckets import DateHeaderTime
from tests.fixtures.aws import create_table
from tests.fixtures.budget_world import T0, Host, VirtualTime, simulate

pytestmark = pytest.mark.slow

PROFILES = {
    "fast": {"max_examples": 4, "minutes": 2.0},
    "deep": {"max_examples": 60, "minutes": 6.0},
}
PROFILE_NAME = os.environ.get("RATE_PROPERTIES_PROFILE", "fast")
PROFILE = PROFILES[PROFILE_NAME]
TABLE = "offergrid-rate-budget-properties"
MAX_SKEW = 60.0
ORDERS_FLOOR_PER_MINUTE = 60

_budget_ids = itertools.count()


def served_at_the_floor(arrivals: list[float], start: float, end: float) -> int:
    """How many of these orders a server giving them exactly the floor (one a second, each once it
    has arrived) has served by `end`: what "at least 60 a minute" promises orders that are there to
    be served. Orders wanting more than 60 a minute from the start get 60 a minute; a burst arriving
    near the end cannot be served before it, by any budget."""
    gap = 60 / ORDERS_FLOOR_PER_MINUTE
    done, served = start, 0
    for arrival in arrivals:
        done = max(done, arrival) + gap
        if done > end:
            break
        served += 1
    return served


@pytest.fixture
def dynamodb(aws: None) -> Any:
    client = create_table(TABLE, "pk")
    return client


skews = st.floats(min_value=-MAX_SKEW, max_value=MAX_SKEW, allow_nan=False)
# up to 0.4 s: past 0.2 s the first answer leaves more doubt than the headroom covers, and the
# budget has to take timed readings before it sends
round_trips = st.floats(min_value=0.005, max_value=0.4)


@st.composite
def hosts(draw: st.DrawFn) -> list[Host]:
    # two instances at least: one instance's requests wait for each other's round trips (a batch of
    # the processor's is sequential), so one alone would not ask for 60 a minute at every latency
    orders = draw(st.integers(min_value=2, max_value=3))
    background = draw(st.integers(min_value=1, max_value=2))
    lanes = [Lane.ORDERS] * orders + [Lane.BACKGROUND] * background
    return [Host(lane, draw(skews), draw(round_trips)) for lane in lanes]


@st.composite
def order_arrivals(draw: st.DrawFn, minutes: float) -> list[float]:
    """70-150 order requests a minute, spread evenly or in bursts of up to 30 within 5 s."""
    per_minute = draw(st.integers(min_value=70, max_value=150))
    total = round(per_minute * minutes)
    span = minutes * 60
    rng = random.Random(draw(st.integers(min_value=0, max_value=2**32)))
    burst = draw(st.integers(min_value=1, max_value=30))
    arrivals: list[float] = []
    while len(arrivals) < total:
        at = rng.uniform(0, span)
        size = min(burst, total - len(arrivals))
        arrivals.extend(T0 + min(span, at + rng.uniform(0, 5)) for _ in range(size))
    return sorted(arrivals)


@pytest.mark.parametrize("reference", ["true-clock", "date-header"])
def test_p5_skewed_clocks_keep_the_limit_and_the_orders_pace(dynamodb: Any, reference: str) -> None:
    """Effect guarded: whatever the clocks of the budget's users say (each up to 60 s off, AWS's
    time learnt exactly or from `Date` headers), Offergrid never sees more than 100 requests in any
    60 s of true time (no 429), and orders wanting more than 60 a minute get at least 60 a minute
    while a sync runs beside them."""
    minutes = PROFILE["minutes"]

    @settings(
        max_examples=int(PROFILE["max_examples"]),
        deadline=None,
        database=None,
        derandomize=PROFILE_NAME != "deep",
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        hosts=hosts(),
        orders=order_arrivals(minutes),
        jitter=st.floats(min_value=0.0, max_value=0.6),
        seed=st.integers(min_value=0, max_value=2**16),
    )
    def property_holds(hosts: list[Host], orders: list[float], jitter: float, seed: int) -> None:
        budget_id = f"p5-{next(_budget_ids)}"

        def budget(host: Host, clock: SkewedClock, client: Any) -> RateBudget:
            return DynamoDBRateBudget(
                TABLE,
                budget_id,
                clock=clock,
                client=client,
                lane=host.lane,
                reference=DateHeaderTime() if reference == "date-header" else None,
            )

        run = simulate(
            dynamodb=dynamodb,
            budgets=budget,
            hosts=hosts,
            orders=orders,
            minutes=minutes,
            latency=(0.02, 0.02 + jitter),
            seed=seed,
            time=VirtualTime(),
        )
        described = f"{run.figures()}; hosts {hosts}, jitter {jitter:.2f} s"
        assert run.offergrid.refused == 0, described
        assert run.offergrid.busiest() <= 100, described
        served = run.offergrid.count(Lane.ORDERS, run.start, run.end)
        # one request per order instance may still be on its way to Offergrid at the end
        in_flight = sum(host.lane is Lane.ORDERS for host in hosts)
        assert served >= served_at_the_floor(orders, run.start, run.end) - in_flight, described

    property_holds()


def test_the_floor_is_the_full_pace_for_orders_waiting_from_the_start() -> None:
    # orders there from the start: the floor is the whole 60 a minute ...
    assert served_at_the_floor([T0] * 200, T0, T0 + 120) == 120
    assert served_at_the_floor([T0 + i * 0.4 for i in range(300)], T0, T0 + 120) == 120
    # ... a burst of 30 arriving 5 s before the end: 5 of them, whatever the budget
    assert served_at_the_floor([T0 + 115] * 30, T0, T0 + 120) == 5
