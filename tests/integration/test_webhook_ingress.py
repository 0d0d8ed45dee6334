"""The webhook Lambda in process against moto (SQS + Secrets Manager), fed the sample events.

Every `events/webhook_*.json` file is invoked here. Each test asserts the HTTP answer and what is, or
is not, on the queue afterwards (read back with `receive_message`), plus logs and EMF metrics.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from functions.webhook_ingress import app
from offergrid_integration.observability import metric_dimensions, metrics
from offergrid_integration.queueing import QueueSendError
from offergrid_integration.secrets import MIN_REFRESH_INTERVAL_SECONDS, Secret, parse_webhook_secrets
from offergrid_integration.signature import (
    SIGNATURE_HEADER,
    find_signature_header,
    sign,
    verify_signature,
)
from offergrid_integration.sqs_queue import SqsQueue
from offergrid_integration.webhooks.ingress import WebhookIngress
from scripts import make_sample_events

REPO_ROOT = Path(__file__).resolve().parents[2]
EVENTS = REPO_ROOT / "events"
DEV_SECRET = "local-dev-webhook-secret"
SECRET_NAME = "offergrid/test/webhook-secret"
QUEUE_NAME = "offergrid-orders-test"


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return event


# --- fixtures -------------------------------------------------------------------------------------
@pytest.fixture
def sqs(aws: None) -> Any:
    return boto3.client("sqs")


@pytest.fixture
def queue_url(sqs: Any) -> str:
    return str(sqs.create_queue(QueueName=QUEUE_NAME)["QueueUrl"])


@pytest.fixture
def webhook_secret(aws: None) -> str:
    boto3.client("secretsmanager").create_secret(Name=SECRET_NAME, SecretString=DEV_SECRET)
    return SECRET_NAME


@pytest.fixture
def ingress_env(monkeypatch: pytest.MonkeyPatch, queue_url: str, webhook_secret: str) -> Iterator[None]:
    monkeypatch.setenv("OFFERGRID_WEBHOOK_SECRET", webhook_secret)
    monkeypatch.setenv("ORDERS_QUEUE_URL", queue_url)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "webhook-ingress")
    monkeypatch.delenv("WEBHOOK_MAX_BODY_BYTES", raising=False)
    monkeypatch.delenv("CLAIM_CHECK_BUCKET", raising=False)
    app.reset()
    yield
    app.reset()


@pytest.fixture
def invoke(ingress_env: None, lambda_context: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def _invoke(event: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = app.lambda_handler(event, lambda_context)
        return response

    return _invoke


@pytest.fixture
def queued(sqs: Any, queue_url: str) -> Callable[[], list[dict[str, Any]]]:
    """Every message on the queue (received and deleted)."""

    def _queued() -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
            ).get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            messages.extend(batch)

    return _queued


def log_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def emf_metrics(stdout: str) -> list[dict[str, Any]]:
    """The EMF documents Powertools printed (one per metric set)."""
    documents = []
    for line in stdout.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            documents.append(json.loads(line))
    return documents


def metric_names(documents: list[dict[str, Any]]) -> set[str]:
    return {m["Name"] for doc in documents for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}


def attributes(message: dict[str, Any]) -> dict[str, str]:
    return {name: value["StringValue"] for name, value in message.get("MessageAttributes", {}).items()}


# --- the committed sample events ------------------------------------------------------------------
SAMPLE_FILES = sorted(path.name for path in EVENTS.glob("webhook_*.json"))


def test_sample_events_are_current_and_signed_with_the_dev_secret():
    # Given the generator's output equals the committed files
    assert make_sample_events.main(["--check"]) == 0
    assert len(SAMPLE_FILES) >= 4
    for name in SAMPLE_FILES:
        event = load_event(name)
        header = find_signature_header(event["headers"], event["multiValueHeaders"])
        body = event["body"].encode() if not event["isBase64Encoded"] else None
        if name == "webhook_bad_signature.json":
            with pytest.raises(Exception, match="signature_mismatch"):
                verify_signature(body or b"", header, [DEV_SECRET])
        elif body is not None:
            verify_signature(body, header, [DEV_SECRET])


def test_order_created_event_is_queued_with_its_dedup_key(invoke, queued, log_output, capsys):
    event = load_event("webhook_order_created.json")
    # When the flat, signed order.created arrives
    response = invoke(event)
    # Then 200 {"received": true}, and exactly one message on the queue
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"received": True}
    assert response["headers"]["Content-Type"] == "application/json"
    [message] = queued()
    body = json.loads(message["Body"])
    request_id = event["requestContext"]["requestId"]
    assert body["dedupKey"] == "order.created:item-456-def"
    assert body["source"] == "webhook"
    assert body["correlationId"] == request_id
    assert body["event"] == {
        "event": "order.created",
        "orderId": "order-123-abc",
        "itemId": "item-456-def",
        "offerId": "offer-789-ghi",
        "reason": None,
        "timestamp": "2026-11-27T14:30:00.000Z",
        "extra": {},
    }
    attrs = attributes(message)
    assert attrs["dedupKey"] == "order.created:item-456-def"
    assert attrs["eventType"] == "order.created"
    assert attrs["correlationId"] == request_id
    assert attrs["receivedAt"] == body["receivedAt"]
    assert attrs["receivedAt"].endswith("Z")
    # And the log line says what happened, with the correlation id, without the signature
    [line] = [line for line in log_lines(log_output()) if line["message"] == "webhook queued"]
    assert line["correlation_id"] == request_id
    assert line["dedup_key"] == "order.created:item-456-def"
    assert line["item_id"] == "item-456-def"
    assert event["headers"]["X-Offergrid-Signature"] not in log_output()
    assert {"WebhookReceived", "WebhookQueued"} <= metric_names(emf_metrics(capsys.readouterr().out))


def test_nested_cancellation_is_queued_with_order_and_item_in_the_key(invoke, queued):
    response = invoke(load_event("webhook_order_cancelled.json"))
    assert response["statusCode"] == 200
    [message] = queued()
    body = json.loads(message["Body"])
    assert body["dedupKey"] == "order.cancelled:order-123-abc:item-456-def"
    assert body["event"]["reason"] == "Customer cancelled before installation"
    assert attributes(message)["eventType"] == "order.cancelled"


def test_base64_encoded_event_is_verified_on_the_decoded_body(invoke, queued):
    assert invoke(load_event("webhook_order_created_base64.json"))["statusCode"] == 200
    [message] = queued()
    assert attributes(message)["dedupKey"] == "order.created:item-457-xyz"


def test_unknown_event_type_is_queued_logged_and_counted(invoke, queued, log_output, capsys):
    assert invoke(load_event("webhook_unknown_event.json"))["statusCode"] == 200
    [message] = queued()
    assert attributes(message)["dedupKey"].startswith("offer.ordered:sha256:")
    assert any(
        line["message"].startswith("webhook with an unknown event type") for line in log_lines(log_output())
    )
    assert "UnknownEventType" in metric_names(emf_metrics(capsys.readouterr().out))


def test_bad_signature_is_401_generic_and_nothing_is_queued(invoke, queued, log_output, capsys):
    event = load_event("webhook_bad_signature.json")
    response = invoke(event)
    assert response["statusCode"] == 401
    assert json.loads(response["body"]) == {"message": "Unauthorized"}
    assert queued() == []
    # The reason is in the log and in a metric with a Reason dimension, never the signature
    output = log_output()
    [line] = [line for line in log_lines(output) if line["message"] == "webhook rejected"]
    assert line["reason"] == "signature_mismatch"
    assert event["headers"]["X-Offergrid-Signature"] not in output
    assert "item-456-def" not in output  # the unverified body is not even summarised
    documents = emf_metrics(capsys.readouterr().out)
    [rejected] = [doc for doc in documents if "WebhookRejected" in doc]
    assert rejected["Reason"] == "signature_mismatch"
    assert ["Reason"] in [
        sorted(set(dims) - {"service"}) for dims in rejected["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    ]
    # Reason does not leak into the main metric set
    [main] = [doc for doc in documents if "WebhookReceived" in doc]
    assert "Reason" not in main


def test_malformed_body_is_400_and_nothing_is_queued(invoke, queued):
    response = invoke(load_event("webhook_malformed_body.json"))
    assert response["statusCode"] == 400
    assert json.loads(response["body"]) == {"message": "body must be JSON"}
    assert queued() == []


# --- every other status ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "reason"),
    [(None, "signature_missing"), ("sha256=", "signature_empty"), ("nothex", "signature_not_hex")],
)
def test_missing_or_malformed_signature_header_is_401(invoke, queued, capsys, header, reason):
    event = load_event("webhook_order_created.json")
    event["headers"].pop("X-Offergrid-Signature")
    event["multiValueHeaders"].pop("X-Offergrid-Signature")
    if header is not None:
        event["headers"][SIGNATURE_HEADER] = header
    response = invoke(event)
    assert (response["statusCode"], json.loads(response["body"])) == (401, {"message": "Unauthorized"})
    assert queued() == []
    [rejected] = [doc for doc in emf_metrics(capsys.readouterr().out) if "WebhookRejected" in doc]
    assert rejected["Reason"] == reason


def test_repeated_signature_header_is_401(invoke, queued):
    event = load_event("webhook_order_created.json")
    good = event["headers"]["X-Offergrid-Signature"]
    event["multiValueHeaders"]["X-Offergrid-Signature"] = ["0" * 64, good]
    assert invoke(event)["statusCode"] == 401
    assert queued() == []


def test_body_over_the_configured_limit_is_413(invoke, queued, monkeypatch):
    monkeypatch.setenv("WEBHOOK_MAX_BODY_BYTES", "1024")
    app.reset()
    event = load_event("webhook_order_created.json")
    event["body"] = json.dumps({"event": "order.created", "itemId": "i-1", "pad": "x" * 2000})
    event["headers"]["X-Offergrid-Signature"] = sign(event["body"], DEV_SECRET)
    del event["multiValueHeaders"]
    response = invoke(event)
    assert response["statusCode"] == 413
    assert queued() == []


def test_default_limit_is_lambdas_6_mib_request_limit(invoke, queued):
    # docs/decisions.md#2: no larger body can reach the function through API Gateway
    event = load_event("webhook_order_created.json")
    del event["multiValueHeaders"]
    event["body"] = json.dumps({"event": "order.created", "itemId": "i-1", "pad": "x" * (6 * 1024 * 1024)})
    event["headers"]["X-Offergrid-Signature"] = sign(event["body"], DEV_SECRET)
    assert invoke(event)["statusCode"] == 413
    event["body"] = json.dumps({"event": "order.created", "itemId": "i-1", "pad": "x" * (250 * 1024)})
    event["headers"]["X-Offergrid-Signature"] = sign(event["body"], DEV_SECRET)
    assert invoke(event)["statusCode"] == 200
    assert len(queued()) == 1


def test_other_methods_are_405(invoke, queued):
    event = load_event("webhook_order_created.json")
    event["httpMethod"] = "GET"
    response = invoke(event)
    assert (response["statusCode"], response["headers"]["Allow"]) == (405, "POST")
    assert queued() == []


# --- the shapes AWS tools generate (docs/decisions.md#14; sam local generate-event apigateway ...) -----
def test_http_api_v2_event_is_queued_like_the_rest_api_one(invoke, queued):
    # Given the same signed order.created as an HTTP API (payload v2) event, as sam generates it
    response = invoke(load_event("http_api_webhook_order_created.json"))
    # Then it is accepted and queued with the same dedup key as the REST API event
    assert (response["statusCode"], json.loads(response["body"])) == (200, {"received": True})
    [message] = queued()
    assert attributes(message)["dedupKey"] == "order.created:item-456-def"


def test_http_api_v2_get_is_405_and_nothing_is_queued(invoke, queued):
    # Given a validly signed body in an HTTP API v2 GET (the method lives in requestContext.http)
    event = load_event("http_api_webhook_get.json")
    assert event["requestContext"]["http"]["method"] == "GET"
    # Then the method check refuses it exactly as for a REST API GET
    response = invoke(event)
    assert (response["statusCode"], response["headers"]["Allow"]) == (405, "POST")
    assert queued() == []


@pytest.mark.parametrize("name", ["sam_apigateway_aws_proxy.json", "sam_apigateway_http_api_proxy.json"])
def test_sams_default_api_events_are_unsigned_401s(invoke, queued, name):
    # `sam local generate-event apigateway aws-proxy|http-api-proxy` untouched: a POST, no signature
    response = invoke(load_event(name))
    assert (response["statusCode"], json.loads(response["body"])) == (401, {"message": "Unauthorized"})
    assert queued() == []


def test_sqs_failure_is_503_not_2xx(invoke, queued, sqs, queue_url, log_output, capsys):
    # Given the ingress is warm, then its queue disappears
    assert invoke(load_event("webhook_order_created.json"))["statusCode"] == 200
    queued()
    sqs.delete_queue(QueueUrl=queue_url)
    capsys.readouterr()
    # When the next webhook arrives
    response = invoke(load_event("webhook_order_cancelled.json"))
    # Then Offergrid gets a 5xx (and retries), and the failure is logged and counted
    assert response["statusCode"] == 503
    assert json.loads(response["body"]) == {"message": "Service Unavailable"}
    [line] = [line for line in log_lines(log_output()) if line["level"] == "ERROR"]
    assert line["outcome"] == "queue_failed"
    assert line["error"] == "AWS.SimpleQueueService.NonExistentQueue"
    assert "WebhookQueueFailed" in metric_names(emf_metrics(capsys.readouterr().out))
    assert "WebhookQueued" not in metric_names(emf_metrics(capsys.readouterr().out))


def test_unreadable_secret_is_503_and_nothing_is_queued(invoke, queued, monkeypatch, capsys):
    monkeypatch.setenv("OFFERGRID_WEBHOOK_SECRET", "offergrid/test/does-not-exist")
    app.reset()
    response = invoke(load_event("webhook_order_created.json"))
    assert response["statusCode"] == 503
    assert queued() == []
    assert "WebhookSecretUnavailable" in metric_names(emf_metrics(capsys.readouterr().out))


def test_rotation_secret_json_accepts_both_secrets(invoke, queued, webhook_secret):
    # Given the secret now holds a new current value and the dev secret as previous
    boto3.client("secretsmanager").put_secret_value(
        SecretId=webhook_secret,
        SecretString=json.dumps({"current": "brand-new-secret", "previous": DEV_SECRET}),
    )
    # Then events signed with the previous secret are still accepted, and the new one too
    assert invoke(load_event("webhook_order_created.json"))["statusCode"] == 200
    event = load_event("webhook_order_created.json")
    event["headers"]["X-Offergrid-Signature"] = sign(event["body"], "brand-new-secret")
    del event["multiValueHeaders"]
    assert invoke(event)["statusCode"] == 200
    assert len(queued()) == 2


def test_redelivery_is_queued_again_under_the_same_key(invoke, queued):
    # Dedup happens in the processor: the ingress stores every verified delivery with the same key
    assert invoke(load_event("webhook_order_created.json"))["statusCode"] == 200
    assert invoke(load_event("webhook_order_created.json"))["statusCode"] == 200
    assert {attributes(m)["dedupKey"] for m in queued()} == {"order.created:item-456-def"}


def test_customer_data_never_reaches_the_logs(invoke, queued, log_output):
    event = load_event("webhook_order_created.json")
    del event["multiValueHeaders"]
    event["body"] = json.dumps(
        {"event": "order.created", "itemId": "i-9", "customerInfo": {"email": "jane.doe@example.com"}}
    )
    event["headers"]["X-Offergrid-Signature"] = sign(event["body"], DEV_SECRET)
    assert invoke(event)["statusCode"] == 200
    output = log_output()
    assert "jane.doe@example.com" not in output
    assert DEV_SECRET not in output
    assert "order.created:i-9" in output
    [message] = queued()
    assert json.loads(message["Body"])["event"]["extra"]["customerInfo"]["email"] == "jane.doe@example.com"


def test_bad_configuration_fails_loudly_naming_the_variable(monkeypatch, lambda_context):
    monkeypatch.delenv("ORDERS_QUEUE_URL", raising=False)
    monkeypatch.setenv("OFFERGRID_WEBHOOK_SECRET", SECRET_NAME)
    app.reset()
    try:
        with pytest.raises(Exception, match="ORDERS_QUEUE_URL"):
            app.lambda_handler(load_event("webhook_order_created.json"), lambda_context)
    finally:
        app.reset()


# --- a message SQS would refuse ---------------------------------------------------------------------
@pytest.fixture
def sqs_sized_queue(sqs: Any, monkeypatch: pytest.MonkeyPatch, webhook_secret: str) -> str:
    """A queue with SQS's 256 KiB message limit (moto's default is 1 MiB), wired to the function."""
    url = str(
        sqs.create_queue(QueueName="orders-256k", Attributes={"MaximumMessageSize": "262144"})["QueueUrl"]
    )
    monkeypatch.setenv("ORDERS_QUEUE_URL", url)
    app.reset()
    return url


def test_signed_non_ascii_webhook_too_big_for_a_queue_without_claim_checks_is_413_not_503(
    invoke, sqs, sqs_sized_queue, log_output, capsys
):
    # Given a function without a claim-check bucket (CLAIM_CHECK_BUCKET unset) and a correctly signed
    # 400 KB body of non-ASCII text: more than SQS holds, even written compactly as UTF-8
    event = load_event("webhook_order_created.json")
    del event["multiValueHeaders"]
    prefix = json.dumps({"event": "order.created", "itemId": "i-big", "note": ""}, ensure_ascii=False)[:-2]
    event["body"] = prefix + "ü" * ((400_000 - len(prefix) - 2) // 2) + '"}'
    event["headers"]["X-Offergrid-Signature"] = sign(event["body"], DEV_SECRET)
    capsys.readouterr()
    # When it arrives
    response = invoke(event)
    # Then it is refused for good with 413 (a 503 would be retried by Offergrid forever), nothing is
    # queued, and the reason is in a metric and an error log line naming the lost event
    assert response["statusCode"] == 413
    assert json.loads(response["body"]) == {"message": "Payload Too Large"}
    messages = sqs.receive_message(QueueUrl=sqs_sized_queue, WaitTimeSeconds=0).get("Messages", [])
    assert messages == []
    documents = emf_metrics(capsys.readouterr().out)
    [rejected] = [doc for doc in documents if "WebhookRejected" in doc]
    assert rejected["Reason"] == "message_too_large"
    assert "WebhookQueueFailed" not in metric_names(documents)
    [line] = [line for line in log_lines(log_output()) if line["level"] == "ERROR"]
    assert (line["reason"], line["status"], line["dedup_key"]) == (
        "message_too_large",
        413,
        "order.created:i-big",
    )
    assert line["message_bytes"] > 262_144


# --- the forced secret refresh is throttled by the store, not the ingress ---------------------------
class SteppingClock:
    def __init__(self, now: float = 1_795_789_805.0) -> None:
        self.current = now

    def now(self) -> float:
        return self.current

    def sleep(self, seconds: float) -> None:
        self.current += seconds


@pytest.fixture
def get_secret_value_calls(aws: None, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every GetSecretValue moto answers (the calls that would reach Secrets Manager)."""
    from moto.secretsmanager.models import SecretsManagerBackend

    calls: list[str] = []
    original = SecretsManagerBackend.get_secret_value

    def counting(self: SecretsManagerBackend, secret_id: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(secret_id)
        return original(self, secret_id, *args, **kwargs)

    monkeypatch.setattr(SecretsManagerBackend, "get_secret_value", counting)
    return calls


@pytest.fixture
def store_clock(ingress_env: None, queue_url: str, webhook_secret: str) -> Iterator[SteppingClock]:
    """The function's ingress with its webhook Secret on a clock the test moves."""
    clock = SteppingClock()
    secrets = Secret(webhook_secret, parse_webhook_secrets, clock=clock)
    app.reset(WebhookIngress(secrets=secrets, queue=SqsQueue(queue_url), clock=clock))
    yield clock
    app.reset()


def test_a_rotated_secret_is_picked_up_with_one_forced_read(
    invoke, queued, store_clock, webhook_secret, get_secret_value_calls
):
    # Given a warm ingress that cached the dev secret
    assert invoke(load_event("webhook_order_created.json"))["statusCode"] == 200
    assert len(get_secret_value_calls) == 1
    # When the secret is rotated and Offergrid signs with the new one before the cache expires
    boto3.client("secretsmanager").put_secret_value(
        SecretId=webhook_secret,
        SecretString=json.dumps({"current": "rotated-secret", "previous": DEV_SECRET}),
    )
    event = load_event("webhook_order_created.json")
    del event["multiValueHeaders"]
    event["headers"]["X-Offergrid-Signature"] = sign(event["body"], "rotated-secret")
    # Then the webhook is accepted after exactly one more read, bypassing the cache
    assert invoke(event)["statusCode"] == 200
    assert len(get_secret_value_calls) == 2
    assert len(queued()) == 2


def test_junk_signatures_cannot_hammer_secrets_manager(invoke, queued, store_clock, get_secret_value_calls):
    # Given a warm ingress
    assert invoke(load_event("webhook_order_created.json"))["statusCode"] == 200
    junk = load_event("webhook_order_created.json")
    del junk["multiValueHeaders"]
    junk["headers"]["X-Offergrid-Signature"] = "0" * 64
    # When 20 well-formed but wrong signatures arrive within the store's refresh interval
    for _ in range(20):
        assert invoke(junk)["statusCode"] == 401
    # Then Secrets Manager saw one forced read, not twenty
    assert len(get_secret_value_calls) == 2
    # And once the interval has passed, a mismatch may read it once more
    store_clock.sleep(MIN_REFRESH_INTERVAL_SECONDS + 1)
    for _ in range(5):
        assert invoke(junk)["statusCode"] == 401
    assert len(get_secret_value_calls) == 3
    assert len(queued()) == 1


# --- one definition of the metric dimensions ---------------------------------------------------------
def test_rejected_metric_carries_the_shared_default_dimensions(invoke, capsys):
    # Given a default dimension set on the one Metrics object
    metrics.set_default_dimensions(environment="test")
    try:
        capsys.readouterr()
        event = load_event("webhook_bad_signature.json")
        assert invoke(event)["statusCode"] == 401
        [rejected] = [doc for doc in emf_metrics(capsys.readouterr().out) if "WebhookRejected" in doc]
        # Then the Reason metric set has the function's dimensions (one helper computes them for the
        # ingress and the client observer), plus Reason
        service = {"service": str(metrics.service)} if metrics.service else {}
        assert metric_dimensions(metrics) == {"environment": "test", **service}
        [dimensions] = rejected["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
        assert sorted(set(dimensions) - {"service"}) == ["Reason", "environment"]
        assert rejected["environment"] == "test"
    finally:
        metrics.set_default_dimensions()
        metrics.default_dimensions.clear()


# --- the SQS adapter ------------------------------------------------------------------------------
def test_sqs_adapter_sends_string_attributes(sqs, queue_url, queued):
    message_id = SqsQueue(queue_url).send('{"a":1}', {"dedupKey": "k", "eventType": "t", "empty": ""})
    [message] = queued()
    assert message["MessageId"] == message_id
    assert message["Body"] == '{"a":1}'
    assert attributes(message) == {"dedupKey": "k", "eventType": "t"}


def test_sqs_adapter_turns_client_errors_into_queue_send_error(sqs, queue_url):
    client = boto3.client("sqs")
    with Stubber(client) as stubber:
        stubber.add_client_error("send_message", service_error_code="KMS.ThrottlingException")
        with pytest.raises(QueueSendError) as excinfo:
            SqsQueue(queue_url, client=client).send("{}", {})
    assert excinfo.value.code == "KMS.ThrottlingException"


def test_sqs_adapter_turns_connection_errors_into_queue_send_error(queue_url):
    class Unreachable:
        def send_message(self, **kwargs: Any) -> dict[str, Any]:
            raise EndpointConnectionError(endpoint_url="https://sqs.eu-west-1.amazonaws.com/")

    with pytest.raises(QueueSendError) as excinfo:
        SqsQueue(queue_url, client=Unreachable()).send("{}", {})  # type: ignore[arg-type]
    assert excinfo.value.code == "EndpointConnectionError"
