"""Lambda entry for `POST /webhooks/offergrid`: API Gateway event -> `WebhookIngress` -> response.

Settings, the secret store and the SQS client are built once per container: at import inside Lambda,
on first use elsewhere (`reset()` drops them for tests and the benchmark). The correlation id is
API Gateway's request id. No Powertools Tracer here: importing the X-Ray SDK would dominate the cold
start of a function whose job is to answer fast; Lambda's active tracing still records each
invocation. Logs carry codes, ids and the dedup key only: never a body or a signature.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from offergrid_integration.config import WebhookIngressSettings, load_settings
from offergrid_integration.observability import log_metrics, logger, metric_dimensions, metrics
from offergrid_integration.secrets import Secret, parse_webhook_secrets
from offergrid_integration.webhooks.ingress import IngressResult, Outcome, RequestFailure, WebhookIngress
from offergrid_integration.webhooks.sqs_queue import SqsQueue

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

_ingress: WebhookIngress | None = None


def build_ingress() -> WebhookIngress:
    """The ingress wired to this function's environment; `ConfigurationError` names a bad variable."""
    settings = load_settings(WebhookIngressSettings)
    secrets = Secret(
        settings.offergrid_webhook_secret,
        parse_webhook_secrets,
        max_age_seconds=settings.secrets_cache_seconds,
    )
    queue = SqsQueue(settings.orders_queue_url)
    return WebhookIngress(secrets=secrets, queue=queue, max_body_bytes=settings.webhook_max_body_bytes)


def get_ingress() -> WebhookIngress:
    global _ingress
    if _ingress is None:
        _ingress = build_ingress()
    return _ingress


def reset(ingress: WebhookIngress | None = None) -> None:
    """Forget the ingress (the next request re-reads the environment) or use `ingress` (tests, bench)."""
    global _ingress
    _ingress = ingress


# Inside Lambda, build during the init phase (full CPU, and a bad environment fails the init loudly);
# elsewhere (tests, tools) on first use.
if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    get_ingress()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = get_ingress().handle(event, correlation_id=logger.get_correlation_id())
    _record(result)
    return {
        "statusCode": result.status,
        "headers": {"Content-Type": "application/json", **result.headers},
        "body": json.dumps(result.body),
    }


def _record(result: IngressResult) -> None:
    metrics.add_metric(name="WebhookReceived", unit=MetricUnit.Count, value=1)
    fields = result.log_fields()
    match result.outcome:
        case Outcome.QUEUED:
            metrics.add_metric(name="WebhookQueued", unit=MetricUnit.Count, value=1)
            if result.unknown_event_type:
                metrics.add_metric(name="UnknownEventType", unit=MetricUnit.Count, value=1)
                logger.warning("webhook with an unknown event type queued", extra=fields)
            else:
                logger.info("webhook queued", extra=fields)
        case Outcome.REJECTED:
            # Its own metric set: the Reason dimension must not spread to the other metrics.
            with single_metric(
                name="WebhookRejected",
                unit=MetricUnit.Count,
                value=1,
                namespace=metrics.namespace,
                default_dimensions=metric_dimensions(metrics),
            ) as rejected:
                rejected.add_dimension(
                    name="Reason", value=result.reason.value if result.reason else "unknown"
                )
            if result.reason is RequestFailure.MESSAGE_TOO_LARGE:
                # Authentic, but no queue will take it: lost unless the pending-order sweep finds it.
                logger.error(
                    "verified webhook too large for the orders queue; refused with 413", extra=fields
                )
            else:
                logger.warning("webhook rejected", extra=fields)
        case Outcome.QUEUE_FAILED:
            metrics.add_metric(name="WebhookQueueFailed", unit=MetricUnit.Count, value=1)
            logger.error("webhook not queued; answering 503 so Offergrid retries", extra=fields)
        case Outcome.SECRET_UNAVAILABLE:
            metrics.add_metric(name="WebhookSecretUnavailable", unit=MetricUnit.Count, value=1)
            logger.error("webhook secret unavailable; answering 503 so Offergrid retries", extra=fields)
