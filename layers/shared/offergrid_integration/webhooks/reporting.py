"""Count and log one webhook request's result, as its `IngressResult.report` says.

Logs carry codes, ids and the dedup key only (`IngressResult.log_fields`): never a body or a signature.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from offergrid_integration.observability import logger, metric_dimensions, metrics
from offergrid_integration.webhooks.ingress import IngressResult

__all__ = ["report"]


def report(result: IngressResult) -> None:
    metrics.add_metric(name="WebhookReceived", unit=MetricUnit.Count, value=1)
    spec = result.report
    if spec.by_reason:
        # Its own metric set: the Reason dimension must not spread to the other metrics.
        with single_metric(
            name=spec.metric,
            unit=MetricUnit.Count,
            value=1,
            namespace=metrics.namespace,
            default_dimensions=metric_dimensions(metrics),
        ) as metric:
            metric.add_dimension(name="Reason", value=result.reason.value if result.reason else "unknown")
    else:
        metrics.add_metric(name=spec.metric, unit=MetricUnit.Count, value=1)
    for name in spec.also_count:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    getattr(logger, spec.level)(spec.message, extra=result.log_fields())
