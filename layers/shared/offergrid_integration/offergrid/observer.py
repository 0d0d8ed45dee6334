"""What the Offergrid client reports about its requests; an observer must be cheap.

Each failed attempt's `Status` dimension goes out as its own EMF document so it never spreads to the
invocation's other metrics. Outside Lambda nothing would flush metrics, so clients get no observer.
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
    STATUS_DIMENSION,
    error_status_label,
)
from offergrid_integration.offergrid import MIN_REPORTED_WAIT

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics

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


class MetricsObserver:
    """Reports to Powertools metrics (default: the one `Metrics` of `offergrid_integration.observability`)."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        if metrics is None:
            from offergrid_integration.observability import metrics as shared_metrics

            metrics = shared_metrics
        self._metrics = metrics

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
            metric.add_dimension(name=STATUS_DIMENSION, value=label)

    def on_budget_wait(self, seconds: float) -> None:
        if seconds >= MIN_REPORTED_WAIT:
            self._metrics.add_metric(name=RATE_BUDGET_WAIT, unit=MetricUnit.Seconds, value=round(seconds, 3))

    def on_budget_exhausted(self) -> None:
        self._metrics.add_metric(name=RATE_BUDGET_EXHAUSTED, unit=MetricUnit.Count, value=1)

    def on_unreadable_item(self, method: str, path: str) -> None:
        self._metrics.add_metric(name=OFFERGRID_UNREADABLE_ITEM, unit=MetricUnit.Count, value=1)

    def _dimensions(self) -> dict[str, str]:
        from offergrid_integration.observability import metric_dimensions

        return metric_dimensions(self._metrics)


def default_observer() -> ClientObserver | None:
    """`MetricsObserver` inside a Lambda function, none elsewhere (see the module doc)."""
    return MetricsObserver() if os.environ.get(LAMBDA_ENV) else None
