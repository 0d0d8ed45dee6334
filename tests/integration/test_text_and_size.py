"""Text we did not write, and deliveries of any size (docs/decisions.md#17; issue 21, cases 4, 5, 8).

A webhook travels the whole way here: the webhook Lambda handler (signature, validation, the queue
writer), moto's SQS holding SQS's documented limits (`sqs_as_documented`: bytes of body and
attributes, the characters it accepts) with a redrive to a DLQ after 5 receives (the template's
default), moto's S3 (the claim-check bucket), the order processor's Lambda handler as the event
source calls it, and the Offergrid fake. What each test asserts is the effect the provider sees:
the item at Offergrid, the work order, the DLQ.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import boto3
import pytest

from devtools.offergrid_fake import OffergridFake
from functions.order_processor import app as processor_app
from functions.webhook_ingress import app as webhook_app
from offergrid_integration.orders import processor as pipeline
from offergrid_integration.orders.ports import work_order_id_for
from offergrid_integration.signature import sign
from tests.fixtures.aws import FakeLambdaContext
from tests.fixtures.queues import drain, queue_with_dlq
from tests.integration import test_order_processor as base
from tests.integration.test_order_processor import Stack, patches, status_event

fake = base.fake
stack = base.stack
runtime_factory = base.runtime_factory
runtime = base.runtime

DEV_SECRET: Final = "local-dev-webhook-secret"
WEBHOOK_SECRET_NAME: Final = "offergrid/test/webhook-secret"
MAX_RECEIVE_COUNT: Final = 5  # template.yaml OrdersMaxReceiveCount's default
SQS_MAX_MESSAGE_BYTES: Final = 262_144
LONE_HIGH_SURROGATE: Final = "\ud83d"  # the first half of an emoji, as JavaScript cuts it


def webhook_event(body: str, *, secret: str = DEV_SECRET) -> dict[str, Any]:
    """An API Gateway REST proxy event of `body`, signed over its bytes as Offergrid signs."""
    event = json.loads((base.EVENTS / "webhook_order_cancelled.json").read_text())
    del event["multiValueHeaders"]
    event["body"] = body
    event["headers"]["X-Offergrid-Signature"] = sign(body, secret, prefix=True)
    return event


@dataclass
class Delivery:
    """The way a webhook travels: webhook handler -> orders queue (+ S3) -> processor handler."""

    queue_url: str
    queue_arn: str
    dlq_url: str
    bucket: str
    # Per SQS message id: how many deliveries to the processor failed (listed, or the batch raised).
    failures: dict[str, int] = field(default_factory=dict)
    batch_errors: list[str] = field(default_factory=list)

    def post(self, body: str, **kwargs: Any) -> dict[str, Any]:
        return self.invoke(webhook_event(body, **kwargs))

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """The webhook function's answer to an API Gateway event."""
        response: dict[str, Any] = webhook_app.lambda_handler(event, FakeLambdaContext())
        return response

    def send_raw(self, body: str) -> None:
        """A message another producer put on the queue (the provider's EventBridge rule, a tool)."""
        boto3.client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=body)

    def drain(self, *, max_rounds: int = 3 * MAX_RECEIVE_COUNT) -> None:
        """Play Lambda's SQS event source until the queue is empty: a listed failure, or every
        record of a batch whose invocation raised, becomes visible again at once."""

        def handle(event: dict[str, Any]) -> set[str]:
            try:
                response = processor_app.lambda_handler(event, FakeLambdaContext(timeout_seconds=60))
                failed = {failure["itemIdentifier"] for failure in response["batchItemFailures"]}
            except Exception as exc:  # the invocation failed: SQS retries the whole batch
                self.batch_errors.append(type(exc).__name__)
                failed = {record["messageId"] for record in event["Records"]}
            for message_id in failed:
                self.failures[message_id] = self.failures.get(message_id, 0) + 1
            return failed

        drain(self.queue_url, self.queue_arn, handle, max_rounds=max_rounds)

    def dead_letters(self) -> list[dict[str, Any]]:
        """What reached the DLQ since the last look (taken off it)."""
        sqs = boto3.client("sqs")
        messages = sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            sqs.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=message["ReceiptHandle"])
        return messages

    def claim_checks(self) -> list[str]:
        """The keys of the bodies kept in the claim-check bucket."""
        listed = boto3.client("s3").list_objects_v2(Bucket=self.bucket)
        return [item["Key"] for item in listed.get("Contents", [])]


@pytest.fixture
def delivery(
    stack: Stack,
    runtime: processor_app.Runtime,
    sqs_as_documented: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Delivery]:
    orders = queue_with_dlq(MAX_RECEIVE_COUNT, MaximumMessageSize=str(SQS_MAX_MESSAGE_BYTES))
    bucket = f"claim-checks-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    boto3.client("secretsmanager").create_secret(Name=WEBHOOK_SECRET_NAME, SecretString=DEV_SECRET)
    monkeypatch.setenv("OFFERGRID_WEBHOOK_SECRET", WEBHOOK_SECRET_NAME)
    monkeypatch.setenv("ORDERS_QUEUE_URL", orders.url)
    monkeypatch.setenv("CLAIM_CHECK_BUCKET", bucket)
    monkeypatch.delenv("WEBHOOK_MAX_BODY_BYTES", raising=False)
    webhook_app.reset()
    yield Delivery(orders.url, orders.arn, orders.dlq_url, bucket)
    webhook_app.reset()


def accepted_item(fake: OffergridFake, stack: Stack, delivery: Delivery, item_id: str, order_id: str) -> None:
    """An item we accepted through the same way: accepted at Offergrid, its work order open."""
    fake.add_order_item(id=item_id, orderId=order_id)
    body = json.dumps({"event": "order.created", "orderId": order_id, "itemId": item_id})
    assert delivery.post(body)["statusCode"] == 200
    delivery.drain()
    assert fake.order_items[item_id]["status"] == "accepted"
    work_order = stack.work_order(work_order_id_for(item_id))
    assert work_order is not None
    assert work_order["status"] == "open"


def assert_cancelled(fake: OffergridFake, stack: Stack, item_id: str) -> None:
    """Offergrid has the item cancelled (one PATCH), the work order is cancelled, our record says so."""
    assert fake.order_items[item_id]["status"] == "cancelled"
    assert [body["status"] for body in patches(fake, item_id)] == ["accepted", "cancelled"]
    work_order = stack.work_order(work_order_id_for(item_id))
    assert work_order is not None
    assert work_order["status"] == "cancelled"
    assert stack.record(item_id).cancelled_at is not None


# --- case 4: a lone surrogate in free text ----------------------------------------------------------
def test_a_cancellation_whose_reason_holds_a_lone_surrogate_is_applied(
    fake: OffergridFake, stack: Stack, delivery: Delivery
) -> None:
    # Given an item we accepted, and its cancellation whose reason a JavaScript sender cut in the
    # middle of an emoji (JSON allows the escape; UTF-8 cannot encode what it decodes to)
    accepted_item(fake, stack, delivery, "item-surrogate", "order-surrogate")
    body = json.dumps(
        {
            "event": "order.cancelled",
            "orderId": "order-surrogate",
            "itemId": "item-surrogate",
            "reason": f"Moving abroad {LONE_HIGH_SURROGATE}",
        }
    )
    assert "\\ud83d" in body

    # When Offergrid delivers it and the processor drains the queue
    response = delivery.post(body)
    delivery.drain()

    # Then it was answered 200 and applied on the first delivery: Offergrid has the item cancelled
    # (the lone surrogate sent as U+FFFD), the work order is cancelled, nothing is in the DLQ
    assert response["statusCode"] == 200
    assert delivery.failures == {}
    assert delivery.dead_letters() == []
    assert_cancelled(fake, stack, "item-surrogate")
    assert patches(fake, "item-surrogate")[-1]["providerNotes"] == "Cancelled: Moving abroad \ufffd"
    work_order = stack.work_order(work_order_id_for("item-surrogate"))
    assert work_order is not None
    assert work_order["cancelReason"] == "Moving abroad \ufffd"


def test_a_provider_event_whose_id_holds_a_lone_surrogate_fails_only_itself(
    fake: OffergridFake, stack: Stack, delivery: Delivery
) -> None:
    # Given a batch of good messages (two new orders, one status change of an accepted item) and a
    # status change whose EventBridge event id holds a lone surrogate
    accepted_item(fake, stack, delivery, "item-scheduled", "order-scheduled")
    for item_id in ("item-new-1", "item-new-2"):
        fake.add_order_item(id=item_id, orderId=f"order-{item_id}")
        assert (
            delivery.post(
                json.dumps({"event": "order.created", "orderId": f"order-{item_id}", "itemId": item_id})
            )["statusCode"]
            == 200
        )
    delivery.send_raw(
        json.dumps(status_event("item-scheduled", "in_progress", event_id=f"evt-{LONE_HIGH_SURROGATE}"))
    )
    delivery.send_raw(json.dumps(status_event("item-scheduled", "scheduled")))

    # When the processor drains the queue
    delivery.drain()

    # Then every good message was applied at its first delivery, no batch failed as a whole, and the
    # poison message, an unusable identifier (docs/decisions.md#12), was recorded as a permanent
    # failure: not retried, not in the DLQ
    assert delivery.batch_errors == []
    assert delivery.failures == {}
    assert delivery.dead_letters() == []
    for item_id in ("item-new-1", "item-new-2"):
        assert fake.order_items[item_id]["status"] == "accepted"
    assert fake.order_items["item-scheduled"]["status"] == "scheduled"


# --- case 5: a large non-ASCII body ----------------------------------------------------------------
def cancellation_of_size(item_id: str, order_id: str, size: int, letter: str = "Ж") -> str:
    """A compact signed cancellation of `size` UTF-8 bytes whose reason is non-ASCII text."""
    prefix = json.dumps(
        {"event": "order.cancelled", "orderId": order_id, "itemId": item_id, "reason": ""},
        separators=(",", ":"),
        ensure_ascii=False,
    )[:-2]
    letters = (size - len(prefix.encode()) - 2) // len(letter.encode())
    body = prefix + letter * letters + '"}'
    assert size - 4 <= len(body.encode()) <= size
    return body


def test_a_97_kb_cyrillic_cancellation_is_queued_and_applied(
    fake: OffergridFake, stack: Stack, delivery: Delivery
) -> None:
    # Given an item we accepted and a 97 KB signed cancellation with a Cyrillic reason (272 KB once
    # every character is escaped as \uXXXX)
    accepted_item(fake, stack, delivery, "item-cyrillic", "order-cyrillic")
    body = cancellation_of_size("item-cyrillic", "order-cyrillic", 97_000)

    # When Offergrid delivers it and the processor drains the queue
    response = delivery.post(body)
    delivery.drain()

    # Then it is answered 200 and applied; written compactly as UTF-8 it fits SQS as it is
    assert response["statusCode"] == 200
    assert_cancelled(fake, stack, "item-cyrillic")
    assert delivery.claim_checks() == []
    assert delivery.failures == {}


@pytest.mark.parametrize("size", [300_000, 1_500_000])
def test_a_body_sqs_cannot_hold_even_compact_goes_through_s3_and_is_applied(
    fake: OffergridFake, stack: Stack, delivery: Delivery, size: int
) -> None:
    # Given an item we accepted and a signed cancellation larger than any SQS message
    accepted_item(fake, stack, delivery, "item-large", "order-large")
    body = cancellation_of_size("item-large", "order-large", size)

    # When Offergrid delivers it and the processor drains the queue
    response = delivery.post(body)
    [key] = delivery.claim_checks()
    delivery.drain()

    # Then it is answered 200, its body kept in S3 (the queue message points at it), and applied
    assert response["statusCode"] == 200
    assert_cancelled(fake, stack, "item-large")
    assert delivery.failures == {}
    assert delivery.dead_letters() == []
    kept = boto3.client("s3").get_object(Bucket=delivery.bucket, Key=key)
    assert json.loads(kept["Body"].read())["event"]["itemId"] == "item-large"


# --- case 8: an event type ending in a newline -----------------------------------------------------
def test_an_event_type_the_webhook_refuses_is_never_queued_and_one_it_accepts_is_never_malformed(
    delivery: Delivery, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an event type ending in a newline (Python's `$` matches before a final "\n") and an
    # unknown but valid one
    refused = delivery.post(json.dumps({"event": "order.created\n", "itemId": "item-newline"}))
    accepted = delivery.post(json.dumps({"event": "order.rescheduled", "itemId": "item-unknown"}))
    capsys.readouterr()

    # When the processor drains the queue
    delivery.drain()

    # Then the newline one was refused at the door (400) and the unknown one is kept as unknown,
    # never a malformed message
    assert (refused["statusCode"], accepted["statusCode"]) == (400, 200)
    output = capsys.readouterr().out
    assert base.emitted_metrics(output).count(("PermanentFailure", "malformed_message")) == 0
    assert delivery.failures == {}


def test_whatever_escapes_one_records_handling_fails_that_record_only(
    fake: OffergridFake, delivery: Delivery, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two new orders and, between them, a message whose parsing raises what no rule expected
    for item_id in ("item-a", "item-b"):
        fake.add_order_item(id=item_id, orderId=f"order-{item_id}")
    delivery.post(json.dumps({"event": "order.created", "orderId": "order-item-a", "itemId": "item-a"}))
    delivery.send_raw('{"unexpected": true}')
    delivery.post(json.dumps({"event": "order.created", "orderId": "order-item-b", "itemId": "item-b"}))
    parse = pipeline.parse_queue_message

    def parse_or_break(body: str, attributes: Any = None) -> Any:
        if "unexpected" in body:
            raise RuntimeError("a bug met this one message")
        return parse(body, attributes)

    monkeypatch.setattr(pipeline, "parse_queue_message", parse_or_break)

    # When the processor drains the queue
    delivery.drain()

    # Then the good orders were decided at their first delivery; only the odd one was retried, to the DLQ
    assert delivery.batch_errors == []
    assert fake.order_items["item-a"]["status"] == fake.order_items["item-b"]["status"] == "accepted"
    assert sorted(delivery.failures.values()) == [MAX_RECEIVE_COUNT]
    [dead] = delivery.dead_letters()
    assert json.loads(dead["Body"]) == {"unexpected": True}


def test_a_claim_check_whose_body_is_gone_is_a_permanent_failure_not_a_retry_loop(
    fake: OffergridFake, stack: Stack, delivery: Delivery, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a large cancellation queued through S3, whose object then expired
    accepted_item(fake, stack, delivery, "item-expired", "order-expired")
    assert delivery.post(cancellation_of_size("item-expired", "order-expired", 300_000))["statusCode"] == 200
    [key] = delivery.claim_checks()
    boto3.client("s3").delete_object(Bucket=delivery.bucket, Key=key)
    capsys.readouterr()

    # When the processor drains the queue
    delivery.drain()

    # Then it is recorded as a malformed message once: not retried into the DLQ
    assert delivery.failures == {}
    assert delivery.dead_letters() == []
    assert ("PermanentFailure", "malformed_message") in base.emitted_metrics(capsys.readouterr().out)
    assert fake.order_items["item-expired"]["status"] == "accepted"
