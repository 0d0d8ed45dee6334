"""Lambda entry of the pre-traffic hook: CodeDeploy runs it before a release of the webhook or the order
processor takes traffic (docs/runbooks/pipeline.md#rollout-and-rollback).

It invokes the new versions with a check without side effects (`DEPLOY_CHECK_EVENT`, docs/decisions.md#2:
unknown to the processor on purpose, queued and kept but never acted on; the ingress archives it under
checks/ and leaves it out of WebhookVerified): the webhook must queue a signed delivery, the processor
must take its message. It always reports to CodeDeploy, whatever went wrong: a hook that does not leaves
the deploy waiting an hour. `make smoke` delivers the same check (devtools/smoke.py).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from offergrid_integration.contract import (
    DEPLOY_CHECK_EVENT,
    QueuedMessage,
    format_timestamp,
    normalise_payload,
)
from offergrid_integration.observability import logger
from offergrid_integration.signature import compact_json, sign

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

WEBHOOK_PATH: Final = "/webhooks/offergrid"
# The processor may take its whole 60 s timeout: wait a little longer, and never re-invoke on a timeout.
INVOKE_READ_TIMEOUT_SECONDS: Final = 75

# (function error or None, the answer's payload)
Invoker = Callable[[str, dict[str, Any]], tuple[str | None, Any]]
# One check of one new version: codes and statuses only, never a body or the secret.
CheckResult = dict[str, Any]


def _result(name: str, ok: bool, detail: str) -> CheckResult:
    return {"check": name, "ok": ok, "detail": detail}


# --- The check's event: shared with `make smoke` ------------------------------------------------------------
def deploy_check_payload(check_id: str, *, now: datetime | None = None) -> dict[str, Any]:
    """A webhook body of the deploy-check event type; `checkId` makes each check's dedup key its own."""
    moment = now or datetime.now(UTC)
    return {"event": DEPLOY_CHECK_EVENT, "checkId": check_id, "timestamp": format_timestamp(moment)}


def signed_delivery(payload: Mapping[str, Any], secret: str) -> tuple[bytes, dict[str, str]]:
    """The body Offergrid would send for `payload` and its headers, signed with `secret`."""
    body = compact_json(dict(payload))
    return body, {"Content-Type": "application/json", "X-Offergrid-Signature": sign(body, secret)}


def api_gateway_event(body: bytes, headers: Mapping[str, str], *, request_id: str) -> dict[str, Any]:
    """The REST API proxy event API Gateway would send the webhook function for this delivery."""
    return {
        "resource": WEBHOOK_PATH,
        "path": WEBHOOK_PATH,
        "httpMethod": "POST",
        "headers": dict(headers),
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": WEBHOOK_PATH,
            "httpMethod": "POST",
            "path": WEBHOOK_PATH,
            "requestId": request_id,
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "offergrid-integration-deploy-check"},
        },
        "body": body.decode("utf-8"),
        "isBase64Encoded": False,
    }


def queue_event(payload: Mapping[str, Any], *, correlation_id: str) -> dict[str, Any]:
    """The SQS event the order processor would get for the message the ingress queues for `payload`."""
    message = QueuedMessage.for_event(
        normalise_payload(payload),
        received_at=datetime.now(UTC),
        source="webhook",
        correlation_id=correlation_id,
    )
    record = {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "deploy-check",
        "body": message.to_json(),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {
            name: {"stringValue": value, "dataType": "String"}
            for name, value in message.message_attributes().items()
        },
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:deploy-check",
        "awsRegion": os.environ.get("AWS_REGION", ""),
    }
    return {"Records": [record]}


# --- The checks ---------------------------------------------------------------------------------------------
def check_webhook_ingress(invoke: Invoker, version: str, event: dict[str, Any]) -> CheckResult:
    error, answer = invoke(version, event)
    if error is not None:
        return _result("webhook-ingress", False, f"the function failed: {_error_type(answer, error)}")
    status = answer.get("statusCode") if isinstance(answer, dict) else None
    if status != 200:
        return _result("webhook-ingress", False, f"answered {status!r}, expected 200 (queued)")
    return _result("webhook-ingress", True, "answered 200: the signed delivery was queued")


def check_order_processor(invoke: Invoker, version: str, event: dict[str, Any]) -> CheckResult:
    error, answer = invoke(version, event)
    if error is not None:
        return _result("order-processor", False, f"the function failed: {_error_type(answer, error)}")
    failures = answer.get("batchItemFailures") if isinstance(answer, dict) else None
    if failures != []:
        shown = len(failures) if isinstance(failures, list) else repr(type(answer).__name__)
        return _result("order-processor", False, f"batchItemFailures: {shown}, expected none")
    return _result("order-processor", True, "kept the message, no failed record")


def _error_type(answer: Any, error: str) -> str:
    if isinstance(answer, dict) and isinstance(answer.get("errorType"), str):
        return str(answer["errorType"])
    return error


def run_checks(
    invoke: Invoker, *, secret: str, webhook_version: str, processor_version: str
) -> list[CheckResult]:
    """Both checks, each against its new version, with one deploy-check event."""
    check_id = str(uuid.uuid4())
    payload = deploy_check_payload(check_id)
    body, headers = signed_delivery(payload, secret)
    return [
        check_webhook_ingress(invoke, webhook_version, api_gateway_event(body, headers, request_id=check_id)),
        check_order_processor(invoke, processor_version, queue_event(payload, correlation_id=check_id)),
    ]


# --- Lambda entry -------------------------------------------------------------------------------------------
def _lambda_invoker() -> Invoker:
    import boto3
    from botocore.config import Config

    config = Config(read_timeout=INVOKE_READ_TIMEOUT_SECONDS, retries={"max_attempts": 1})
    client: Any = boto3.client("lambda", config=config)

    def invoke(function: str, event: dict[str, Any]) -> tuple[str | None, Any]:
        response = client.invoke(FunctionName=function, Payload=json.dumps(event).encode("utf-8"))
        raw = response["Payload"].read()
        return response.get("FunctionError"), json.loads(raw) if raw else None

    return invoke


def _webhook_secret() -> str:
    """The current webhook secret (the one Offergrid signs with), read now: a deploy may follow a rotation."""
    from offergrid_integration.secrets import Secret, parse_webhook_secrets

    return Secret(os.environ["OFFERGRID_WEBHOOK_SECRET"], parse_webhook_secrets, max_age_seconds=0)()[0]


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any] | None, context: LambdaContext) -> dict[str, Any]:
    request = event or {}
    deployment_id = str(request.get("DeploymentId") or "")
    results: list[CheckResult] = []
    try:
        results = run_checks(
            _lambda_invoker(),
            secret=_webhook_secret(),
            webhook_version=os.environ["WEBHOOK_INGRESS_VERSION"],
            processor_version=os.environ["ORDER_PROCESSOR_VERSION"],
        )
    except Exception as exc:  # whatever it is, CodeDeploy must hear Failed rather than wait an hour
        logger.exception("pre-traffic check could not run", extra={"error": type(exc).__name__})
        results.append(_result("hook", False, f"could not run the checks: {type(exc).__name__}"))
    status = "Succeeded" if results and all(result["ok"] for result in results) else "Failed"
    logger.info(
        "pre-traffic check", extra={"status": status, "checks": results, "deploymentId": deployment_id}
    )
    if deployment_id:
        import boto3

        codedeploy: Any = boto3.client("codedeploy")
        codedeploy.put_lifecycle_event_hook_execution_status(
            deploymentId=deployment_id,
            lifecycleEventHookExecutionId=str(request.get("LifecycleEventHookExecutionId") or ""),
            status=status,
        )
    else:
        logger.warning("invoked without a DeploymentId (by hand): nothing reported to CodeDeploy")
    return {"status": status, "checks": results, "deploymentId": deployment_id or None}
