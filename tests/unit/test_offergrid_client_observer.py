"""What the Offergrid client reports to its observer, and the metrics the default observer emits.

Requests go to the Offergrid HTTP fake with injected faults; the rate budget is a stand-in that
advances a manual clock, so budget waits are exact and take no real time.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aws_lambda_powertools import Metrics

from devtools.offergrid_fake import OffergridFake
from offergrid_integration.metrics_names import (
    CATALOGUE,
    OFFERGRID_ERROR,
    OFFERGRID_ERROR_STATUSES,
    OFFERGRID_REQUEST,
    RATE_BUDGET_EXHAUSTED,
    RATE_BUDGET_WAIT,
    error_status_label,
)
from offergrid_integration.offergrid import MIN_REPORTED_WAIT
from offergrid_integration.offergrid.client import OffergridClient
from offergrid_integration.offergrid.errors import (
    APIConnectionError,
    InternalServerError,
    NotFoundError,
    RateBudgetExhausted,
)
from offergrid_integration.offergrid.observer import MetricsObserver, default_observer
from tests.fixtures.offergrid_fake import OffergridClientFactory

KEY = "test-api-key"
NAMESPACE = "ObserverTest"


class RecordingObserver:
    def __init__(self) -> None:
        self.responses: list[tuple[str, int | None]] = []
        self.waits: list[float] = []
        self.exhausted = 0

    def on_response(self, method: str, status: int | None) -> None:
        self.responses.append((method, status))

    def on_budget_wait(self, seconds: float) -> None:
        self.waits.append(seconds)

    def on_budget_exhausted(self) -> None:
        self.exhausted += 1


class ManualClock:
    """`now()` moves only when the budget stand-in or a sleep moves it."""

    def __init__(self) -> None:
        self.t = 1_000_000.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


class WaitingBudget:
    """Stands in for the shared rate budget: each token costs the next wait (clock seconds)."""

    def __init__(self, clock: ManualClock, waits: list[float], *, exhausted_after: int | None = None) -> None:
        self.clock = clock
        self.waits = list(waits)
        self.exhausted_after = exhausted_after
        self.taken = 0

    def acquire(self, *, remaining_time: float | None = None) -> None:
        if self.exhausted_after is not None and self.taken >= self.exhausted_after:
            raise RateBudgetExhausted(30.0)
        self.clock.t += self.waits.pop(0) if self.waits else 0.0
        self.taken += 1


@pytest.fixture
def make_client(
    offergrid_fake: OffergridFake, offergrid_client_factory: OffergridClientFactory
) -> Callable[..., OffergridClient]:
    return functools.partial(offergrid_client_factory, offergrid_fake, timeout=5.0)


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    # Powertools `Metrics` instances share one metric set: start and end empty.
    shared = Metrics(namespace=NAMESPACE)
    shared.clear_metrics()
    yield shared
    shared.clear_metrics()


def emf_documents(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{") and '"_aws"' in line]


def metrics_in(document: dict[str, Any]) -> dict[str, Any]:
    names = [m["Name"] for d in document["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]]
    return {name: document[name] for name in names}


def dimensions_of(document: dict[str, Any]) -> dict[str, str]:
    keys = [key for d in document["_aws"]["CloudWatchMetrics"] for group in d["Dimensions"] for key in group]
    return {key: document[key] for key in keys}


# --- the client's calls to its observer ---------------------------------------------------------


def test_a_503_then_a_200_is_reported_as_two_attempts(make_client, offergrid_fake):
    # Given Offergrid fails the next request with a 503
    observer = RecordingObserver()
    client = make_client(observer=observer)
    offer = offergrid_fake.add_offer(sku="S-1")
    offergrid_fake.inject_fault("status", status=503)

    # When the client reads the offer (and retries once)
    client.get_offer(offer["id"])

    # Then the observer heard both attempts, in order
    assert observer.responses == [("GET", 503), ("GET", 200)]


def test_a_dropped_connection_is_reported_without_a_status(make_client, offergrid_fake):
    observer = RecordingObserver()
    client = make_client(observer=observer, max_retries=0)
    offergrid_fake.inject_fault("drop")

    with pytest.raises(APIConnectionError):
        client.get_offer("any")

    assert observer.responses == [("GET", None)]


def test_final_errors_and_429s_are_reported_per_attempt(make_client, offergrid_fake):
    observer = RecordingObserver()
    client = make_client(observer=observer)
    offergrid_fake.inject_fault("rate_limit", retry_after=0)

    with pytest.raises(NotFoundError):
        client.get_offer("missing")

    assert observer.responses == [("GET", 429), ("GET", 404)]


def test_rate_budget_waits_and_refusals_are_reported(make_client, offergrid_fake):
    # Given a budget whose first token costs 2.5 s, second none, then refuses
    clock = ManualClock()
    budget = WaitingBudget(clock, [2.5, 0.0], exhausted_after=2)
    observer = RecordingObserver()
    client = make_client(observer=observer, rate_budget=budget, clock=clock)
    offer = offergrid_fake.add_offer(sku="S-1")

    # When three requests are made
    client.get_offer(offer["id"])
    client.get_offer(offer["id"])
    with pytest.raises(RateBudgetExhausted):
        client.get_offer(offer["id"])

    # Then the waits are the clock seconds spent in acquire(), and the refusal is reported once
    assert observer.waits == [2.5, 0.0]
    assert observer.exhausted == 1
    assert observer.responses == [("GET", 200), ("GET", 200)]  # the refused request was never sent


def test_a_failing_observer_never_fails_a_request(make_client, offergrid_fake, caplog):
    class Broken(RecordingObserver):
        def on_response(self, method: str, status: int | None) -> None:
            raise RuntimeError("metrics backend down")

    client = make_client(observer=Broken())
    offer = offergrid_fake.add_offer(sku="S-1")

    assert client.get_offer(offer["id"]).id == offer["id"]
    assert "observer failed in on_response: RuntimeError" in caplog.text


def test_the_default_observer_emits_metrics_only_inside_lambda(monkeypatch):
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    assert default_observer() is None

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "OrderProcessorFunction")
    assert isinstance(default_observer(), MetricsObserver)


def test_a_client_built_without_an_observer_gets_the_default(make_client, monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "OfferSyncFunction")
    assert isinstance(make_client()._observer, MetricsObserver)


# --- the metrics ---------------------------------------------------------------------------------


def test_503_then_200_emits_one_5xx_error_and_counts_two_requests(
    make_client, offergrid_fake, metrics, capsys
):
    # Given the metrics observer and a 503 before a success
    client = make_client(observer=MetricsObserver(metrics))
    offer = offergrid_fake.add_offer(sku="S-1")
    offergrid_fake.inject_fault("status", status=503)

    # When the request succeeds on the retry and the invocation's metrics are flushed
    client.get_offer(offer["id"])
    metrics.flush_metrics()

    # Then one OffergridError document with Status=5xx, and OffergridRequest counts both attempts
    documents = emf_documents(capsys.readouterr().out)
    errors = [doc for doc in documents if OFFERGRID_ERROR in metrics_in(doc)]
    assert len(errors) == 1
    assert metrics_in(errors[0]) == {OFFERGRID_ERROR: [1.0]}
    assert dimensions_of(errors[0]) == {"Status": "5xx", "service": "offergrid-test"}
    assert errors[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == NAMESPACE
    [invocation] = [doc for doc in documents if OFFERGRID_REQUEST in metrics_in(doc)]
    assert metrics_in(invocation) == {OFFERGRID_REQUEST: [1.0, 1.0]}
    assert dimensions_of(invocation) == {"service": "offergrid-test"}  # no Status on the shared set


def test_final_error_statuses_map_to_their_labels(make_client, offergrid_fake, metrics, capsys):
    client = make_client(observer=MetricsObserver(metrics), max_retries=0)
    offergrid_fake.inject_fault("status", status=500)
    offergrid_fake.inject_fault("drop")

    with pytest.raises(InternalServerError):
        client.get_offer("x")
    with pytest.raises(APIConnectionError):
        client.get_offer("x")
    with pytest.raises(NotFoundError):
        client.get_offer("x")

    labels = [
        dimensions_of(doc)["Status"]
        for doc in emf_documents(capsys.readouterr().out)
        if OFFERGRID_ERROR in metrics_in(doc)
    ]
    assert labels == ["5xx", "network", "404"]


def test_budget_waits_and_refusals_become_metrics_short_waits_do_not(metrics, capsys):
    observer = MetricsObserver(metrics)

    observer.on_budget_wait(MIN_REPORTED_WAIT / 2)  # a token taken at once (DynamoDB round trip)
    observer.on_budget_wait(1.23456)
    observer.on_budget_exhausted()
    metrics.flush_metrics()

    [document] = emf_documents(capsys.readouterr().out)
    assert metrics_in(document) == {RATE_BUDGET_WAIT: [1.235], RATE_BUDGET_EXHAUSTED: [1.0]}
    units = {m["Name"]: m["Unit"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units == {RATE_BUDGET_WAIT: "Seconds", RATE_BUDGET_EXHAUSTED: "Count"}


@pytest.mark.parametrize(
    ("status", "label"),
    [
        (None, "network"),
        (200, None),
        (204, None),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (408, "408"),
        (409, "409"),
        (422, "422"),
        (429, "429"),
        (500, "5xx"),
        (503, "5xx"),
        (599, "5xx"),
        (302, "other"),
        (410, "other"),
        (418, "other"),
    ],
)
def test_status_labels_are_a_fixed_small_set(status: int | None, label: str | None) -> None:
    assert error_status_label(status) == label
    assert label is None or label in OFFERGRID_ERROR_STATUSES


def test_client_metrics_are_in_the_catalogue() -> None:
    for name in (OFFERGRID_REQUEST, OFFERGRID_ERROR, RATE_BUDGET_WAIT, RATE_BUDGET_EXHAUSTED):
        assert name in CATALOGUE
    assert CATALOGUE[OFFERGRID_ERROR].dimension == "Status"
