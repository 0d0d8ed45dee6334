"""Lambda entry for `POST /webhooks/offergrid`: API Gateway event -> `WebhookIngress` -> response.

No Powertools Tracer: the X-Ray SDK's import would dominate the cold start of a function whose job is to
answer fast; Lambda's active tracing still records each invocation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from offergrid_integration.container import Container, init_phase

with init_phase():  # the GC paused while the imports and the init allocate (container.init_phase)
    from aws_lambda_powertools.logging import correlation_paths

    from offergrid_integration import aws
    from offergrid_integration.archive import ARCHIVE_WAIT_SECONDS, BackgroundArchive, S3DeliveryArchive
    from offergrid_integration.observability import log_metrics, logger
    from offergrid_integration.secrets import Secret, parse_webhook_secrets
    from offergrid_integration.sqs_queue import S3ClaimChecks, SqsQueue
    from offergrid_integration.webhooks.ingress import WebhookIngress, WebhookIngressSettings
    from offergrid_integration.webhooks.results import report

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


def build_ingress(*, archive_wait_seconds: float = ARCHIVE_WAIT_SECONDS) -> WebhookIngress:
    """The ingress wired to this function's environment (tests on a busy machine wait longer)."""
    settings = WebhookIngressSettings.from_environ()
    secrets = Secret(
        settings.offergrid_webhook_secret,
        parse_webhook_secrets,
        max_age_seconds=settings.secrets_cache_seconds,
        client=aws.clients().secretsmanager,
    )
    # One S3 client for the archive and the claim checks, made by the first delivery's archive write on
    # its worker thread: neither the init nor a queue write waits for it.
    archive = (
        S3DeliveryArchive(settings.delivery_archive_bucket) if settings.delivery_archive_bucket else None
    )
    claim_checks = (
        S3ClaimChecks(
            settings.claim_check_bucket,
            client_factory=(lambda: archive.client) if archive is not None else None,
        )
        if settings.claim_check_bucket
        else None
    )
    queue = SqsQueue(settings.orders_queue_url, claim_checks=claim_checks)
    return WebhookIngress(
        secrets=secrets,
        queue=queue,
        max_body_bytes=settings.webhook_max_body_bytes,
        archive=BackgroundArchive(archive) if archive is not None else None,
        archive_wait_seconds=archive_wait_seconds,
        stale_mode=settings.stale_delivery_mode,
        stale_tolerance_seconds=settings.stale_delivery_tolerance_seconds,
    )


_ingress = Container(build_ingress, close=lambda _: aws.reset())
get_ingress = _ingress.get
with init_phase():
    _ingress.build_at_init()


def reset(ingress: WebhookIngress | None = None) -> None:
    """Forget the ingress (the next request re-reads the environment) or use `ingress` (tests, bench)."""
    _ingress.reset()
    if ingress is not None:
        _ingress.configure(ingress)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = get_ingress().handle(event, correlation_id=logger.get_correlation_id())
    report(result)
    return result.http_response()
