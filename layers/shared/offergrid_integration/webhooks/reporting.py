"""Count and log one webhook request's result, as its `IngressResult.report` says.

Logs carry codes, ids and the dedup key only, never a body or a signature; `itemId` is the line's key so
`replay trace` finds it. `WebhookVerified` excludes the deploy check (the silence alarm watches it).
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from offergrid_integration.observability import item_log_scope, logger, metric_dimensions, metrics
from offergrid_integration.webhooks.results import IngressResult


def report(result: IngressResult) -> None:
    with item_log_scope(result.item_id, result.order_id):
        _count_and_log(result)


def _count_and_log(result: IngressResult) -> None:
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
    if result.from_offergrid:
        metrics.add_metric(name="WebhookVerified", unit=MetricUnit.Count, value=1)
    if result.freshness is not None and result.freshness.stale:
        metrics.add_metric(name="WebhookStale", unit=MetricUnit.Count, value=1)
    if result.archive is not None and not result.archive.ok:
        metrics.add_metric(name="WebhookArchiveFailed", unit=MetricUnit.Count, value=1)
        logger.error(
            "verified webhook not archived; its queue write was not affected", extra=result.log_fields()
        )
    getattr(logger, spec.level)(spec.message, extra=result.log_fields())
