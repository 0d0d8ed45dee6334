"""The webhook Lambda's archive of verified deliveries, against moto (S3, SQS, Secrets Manager).

What lands in S3 (the body as received, its flag, the signature header; never the secret), where
(archive/ or checks/), that a failing archive costs the delivery nothing, what is counted for the
silence alarm (`WebhookVerified`) and for stale deliveries, and the `itemId` key of its log lines.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from functions.webhook_ingress import app
from offergrid_integration.archive import ArchivedDelivery
from offergrid_integration.contract import DEPLOY_CHECK_EVENT
from offergrid_integration.observability import metrics
from offergrid_integration.signature import compact_json, sign, verify_signature
from tests.integration.test_webhook_ingress import emf_metrics, load_event, log_lines

DEV_SECRET = "local-dev-webhook-secret"
SECRET_NAME = "offergrid/test/webhook-secret"
BUCKET = "offergrid-webhook-bodies"
# How long an answer waits for its archive write here: the function's second would be eaten by a
# stalled machine (the client is made by the first write), and these tests read what was archived.
PATIENT_SECONDS = 60.0


def rebuild() -> None:
    """The function's ingress built again from the environment, patient with its archive writes."""
    app.reset()  # first: it also drops the AWS clients, which the new ingress must not share
    app.reset(app.build_ingress(archive_wait_seconds=PATIENT_SECONDS))


@pytest.fixture
def stack(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    queue_url = boto3.client("sqs").create_queue(QueueName="orders")["QueueUrl"]
    boto3.client("secretsmanager").create_secret(Name=SECRET_NAME, SecretString=DEV_SECRET)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    environment = {
        "OFFERGRID_WEBHOOK_SECRET": SECRET_NAME,
        "ORDERS_QUEUE_URL": queue_url,
        "POWERTOOLS_SERVICE_NAME": "webhook-ingress",
        "CLAIM_CHECK_BUCKET": BUCKET,
        "DELIVERY_ARCHIVE_BUCKET": BUCKET,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    # As in Lambda, where the variable is set before the metrics are made at import
    monkeypatch.setattr(metrics, "service", "webhook-ingress")
    rebuild()
    yield environment
    app.reset()


@pytest.fixture
def invoke(stack: dict[str, str], lambda_context: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def _invoke(event: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = app.lambda_handler(event, lambda_context)
        return response

    return _invoke


def archived(prefix: str = "") -> dict[str, bytes]:
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
    return {key: s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in keys}


def queued(stack: dict[str, str]) -> list[dict[str, Any]]:
    response = boto3.client("sqs").receive_message(QueueUrl=stack["ORDERS_QUEUE_URL"], MaxNumberOfMessages=10)
    messages: list[dict[str, Any]] = response.get("Messages", [])
    return messages


def metrics_of(stdout: str) -> dict[str, list[dict[str, str]]]:
    """Metric name -> the dimension sets it was emitted with (each EMF document's dimensions)."""
    found: dict[str, list[dict[str, str]]] = {}
    for document in emf_metrics(stdout):
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dims = {name: document[name] for name in dimension_set}
                for metric in directive["Metrics"]:
                    found.setdefault(metric["Name"], []).append(dims)
    return found


def signed_event(payload: dict[str, Any], request_id: str = "req-archive-1") -> dict[str, Any]:
    event = load_event("webhook_order_created.json")
    body = compact_json(payload)
    event["body"] = body.decode()
    event["headers"] = {"Content-Type": "application/json", "X-Offergrid-Signature": sign(body, DEV_SECRET)}
    event["multiValueHeaders"] = {name: [value] for name, value in event["headers"].items()}
    event["requestContext"]["requestId"] = request_id
    return event


def test_a_verified_delivery_is_archived_as_received_and_counted_for_the_silence_alarm(
    invoke, stack, log_output, capsys
):
    event = load_event("webhook_order_created.json")
    # When Offergrid's signed order.created arrives
    response = invoke(event)
    # Then it is queued, and kept under archive/<its hour>/<received-at>-<request id>.json
    assert response["statusCode"] == 200
    assert len(queued(stack)) == 1
    [(key, data)] = archived().items()
    request_id = event["requestContext"]["requestId"]
    assert key.startswith("archive/")
    assert key.endswith(f"-{request_id}.json")
    delivery = ArchivedDelivery.from_json(data)
    assert (delivery.body, delivery.is_base64_encoded) == (event["body"], event["isBase64Encoded"])
    verify_signature(delivery.raw_body(), delivery.signature, [DEV_SECRET])  # verifiable again
    assert DEV_SECRET.encode() not in data  # the signature is kept, never the secret
    # And the delivery is counted as verified (the silence alarm's signal), with the alarm's dimensions
    metrics = metrics_of(capsys.readouterr().out)
    assert metrics["WebhookVerified"] == [{"service": "webhook-ingress"}]
    assert "WebhookArchiveFailed" not in metrics
    # And its log line names the item with the structured key every function uses, and the archive key
    [line] = [line for line in log_lines(log_output()) if line["message"] == "webhook queued"]
    assert line["itemId"] == "item-456-def"
    assert line["orderId"] == "order-123-abc"
    assert (line["archive"], line["archive_key"]) == ("archived", key)


def test_a_failing_archive_costs_the_delivery_nothing_and_is_alarmed(
    invoke, stack, log_output, capsys, monkeypatch
):
    # Given an archive bucket that does not exist (a wrong name, a deleted bucket, S3 refusing)
    monkeypatch.setenv("DELIVERY_ARCHIVE_BUCKET", "no-such-bucket")
    rebuild()
    # When a delivery arrives
    response = invoke(load_event("webhook_order_created.json"))
    # Then it is queued and answered 200 as ever
    assert response["statusCode"] == 200
    assert len(queued(stack)) == 1
    # And the failure is counted (the webhook-archive-failed alarm) and logged with its code and item
    metrics = metrics_of(capsys.readouterr().out)
    assert metrics["WebhookArchiveFailed"] == [{"service": "webhook-ingress"}]
    [line] = [line for line in log_lines(log_output()) if "not archived" in line["message"]]
    assert (line["level"], line["archive_error"], line["itemId"]) == ("ERROR", "NoSuchBucket", "item-456-def")


def test_the_deploy_check_is_archived_apart_and_not_counted_as_offergrids(invoke, stack, capsys):
    response = invoke(signed_event({"event": DEPLOY_CHECK_EVENT, "checkId": "c-1"}))
    assert response["statusCode"] == 200
    assert list(archived("archive/")) == []
    assert len(archived("checks/")) == 1
    assert "WebhookVerified" not in metrics_of(capsys.readouterr().out)


def test_count_mode_counts_a_stale_delivery_and_queues_it(invoke, stack, capsys):
    old = {"event": "order.created", "itemId": "i-old", "timestamp": "2001-01-01T00:00:00Z"}
    assert invoke(signed_event(old))["statusCode"] == 200
    assert len(queued(stack)) == 1
    assert metrics_of(capsys.readouterr().out)["WebhookStale"] == [{"service": "webhook-ingress"}]


def test_refuse_mode_refuses_a_stale_delivery_with_its_reason(invoke, stack, capsys, monkeypatch):
    monkeypatch.setenv("STALE_DELIVERY_MODE", "refuse")
    monkeypatch.setenv("STALE_DELIVERY_TOLERANCE_SECONDS", "600")
    rebuild()
    old = {"event": "order.created", "itemId": "i-old", "timestamp": "2001-01-01T00:00:00Z"}
    undated = {"event": "order.created", "itemId": "i-undated"}
    assert invoke(signed_event(old, "r-old"))["statusCode"] == 401
    assert invoke(signed_event(undated, "r-undated"))["statusCode"] == 200  # never refused without one
    assert [json.loads(m["Body"])["event"]["itemId"] for m in queued(stack)] == ["i-undated"]
    metrics = metrics_of(capsys.readouterr().out)
    assert {"service": "webhook-ingress", "Reason": "timestamp_stale"} in metrics["WebhookRejected"]
    assert metrics["WebhookStale"] == [{"service": "webhook-ingress"}]
    assert len(archived("archive/")) == 2  # both verified: both kept
