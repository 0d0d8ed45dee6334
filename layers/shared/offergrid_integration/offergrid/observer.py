"""What the Offergrid client reports about its requests: a small observer, and the metrics one.

`OffergridClient` calls its observer after every HTTP attempt (`on_response`, with the status or
None when no answer came), after every rate-budget token it takes (`on_budget_wait`, the clock
seconds spent in `RateBudget.acquire`), when the budget refused a token (`on_budget_exhausted`), and
when it skipped a listed element it could not read (`on_unreadable_item`, docs/decisions.md#5).
An observer must be cheap and must not raise (the client swallows and logs what it raises anyway).

`MetricsObserver` turns these into Powertools metrics (names in `offergrid_integration.metrics_names`):

- `OffergridRequest` (Count) per attempt and `RateBudgetWait` (Seconds, only waits of at least
  `MIN_REPORTED_WAIT`: a token taken at once, DynamoDB round trip included, is not a wait),
  `RateBudgetExhausted` (Count) and `OffergridUnreadableItem` (Count) go into the function's
  shared metric set, flushed once per invocation by `@metrics.log_metrics`;
- `OffergridError` (Count) with the `Status` dimension (a fixed set: see `error_status_label`) is
  its own small EMF document per failed attempt, so the dimension never spreads to the other
  metrics and successful requests add nothing but a value to `OffergridRequest`.

`default_observer()` is what a client gets when it is given none: `MetricsObserver` inside a Lambda
function (`AWS_LAMBDA_FUNCTION_NAME` is set: AWS, `sam local`, the local stack's workers), where
`@metrics.log_metrics` flushes the metric set; a no-op elsewhere (CLIs, benchmarks, tests), where
nothing would flush it and EMF documents would only clutter standard output.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Final, Protocol

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from offergrid_integration.metrics_names import (
    OFFERGRID_ERROR,
    OFFERGRID_REQUEST,
    OFFERGRID_UNREADABLE_ITEM,
    RATE_BUDGET_EXHAUSTED,
    RATE_BUDGET_WAIT,
    error_status_label,
)

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics

__all__ = [
    "MIN_REPORTED_WAIT",
    "ClientObserver",
    "MetricsObserver",
    "NullObserver",
    "default_observer",
]

MIN_REPORTED_WAIT: Final = 0.05  # clock seconds
LAMBDA_ENV: Final = "AWS_LAMBDA_FUNCTION_NAME"


class ClientObserver(Protocol):
    def on_response(self, method: str, status: int | None) -> None:
        """One HTTP attempt ended: its status code, or None when no answer came (network, timeout)."""

    def on_budget_wait(self, seconds: float) -> None:
        """A rate-budget token was taken after `seconds` (clock seconds; about 0 when none waited)."""

    def on_budget_exhausted(self) -> None:
        """The rate budget had no token within the time left: the request was not sent."""

    def on_unreadable_item(self, method: str, path: str) -> None:
        """A listed element of `method path` could not be read: it was skipped (and logged)."""


class NullObserver:
    """Reports nothing."""

    def on_response(self, method: str, status: int | None) -> None:
        return None

    def on_budget_wait(self, seconds: float) -> None:
        return None

    def on_budget_exhausted(self) -> None:
        return None

    def on_unreadable_item(self, method: str, path: str) -> None:
        return None


class MetricsObserver:
    """Reports to Powertools metrics (default: the one `Metrics` of `offergrid_integration.observability`)."""

    def __init__(
        self, metrics: Metrics | None = None, *, min_reported_wait: float = MIN_REPORTED_WAIT
    ) -> None:
        if metrics is None:
            from offergrid_integration.observability import metrics as shared_metrics

            metrics = shared_metrics
        self._metrics = metrics
        self._min_reported_wait = min_reported_wait

    def on_response(self, method: str, status: int | None) -> None:
        self._metrics.add_metric(name=OFFERGRID_REQUEST, unit=MetricUnit.Count, value=1)
        label = error_status_label(status)
        if label is None:
            return
        with single_metric(
            name=OFFERGRID_ERROR,
            unit=MetricUnit.Count,
            value=1,
            namespace=self._metrics.namespace,
            default_dimensions=self._dimensions(),
        ) as metric:
            metric.add_dimension(name="Status", value=label)

    def on_budget_wait(self, seconds: float) -> None:
        if seconds >= self._min_reported_wait:
            self._metrics.add_metric(name=RATE_BUDGET_WAIT, unit=MetricUnit.Seconds, value=round(seconds, 3))

    def on_budget_exhausted(self) -> None:
        self._metrics.add_metric(name=RATE_BUDGET_EXHAUSTED, unit=MetricUnit.Count, value=1)

    def on_unreadable_item(self, method: str, path: str) -> None:
        self._metrics.add_metric(name=OFFERGRID_UNREADABLE_ITEM, unit=MetricUnit.Count, value=1)

    def _dimensions(self) -> dict[str, str]:
        from offergrid_integration.observability import metric_dimensions

        return metric_dimensions(self._metrics)


def default_observer() -> ClientObserver:
    """`MetricsObserver` inside a Lambda function, `NullObserver` elsewhere (see the module doc)."""
    if os.environ.get(LAMBDA_ENV):
        return MetricsObserver()
    return NullObserver()
