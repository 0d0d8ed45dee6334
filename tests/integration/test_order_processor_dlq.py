"""End to end through real (moto) queues: a poison message ends in the DLQ, nothing else is lost.

The orders queue has a redrive policy (maxReceiveCount 2) to a DLQ. A small loop plays Lambda's
SQS event source: receive a batch, invoke the handler, delete the successes, make the failures
visible again (ChangeMessageVisibility 0). Provider status events reach the same queue the way the
template routes them: an EventBridge rule on the provider's bus (detail-type
workorder.status_changed) targeting the queue.
"""

from __future__ import annotations

import json
from typing import Any

import boto3

from devtools.offergrid_fake import OffergridFake
from functions.order_processor import app
from offergrid_integration.contract import QueuedMessage, normalise_payload, utc_from_epoch
from tests.fixtures import queues
from tests.fixtures.aws import FakeLambdaContext
from tests.fixtures.queues import queue_with_dlq
from tests.integration import test_order_processor as base
from tests.integration.test_order_processor import Stack, patches

fake = base.fake
stack = base.stack
runtime_factory = base.runtime_factory
runtime = base.runtime

MAX_RECEIVE_COUNT = 2


def send_webhook(queue_url: str, payload: dict[str, Any]) -> None:
    """What the webhook ingress sends: the envelope as body, the routing fields as attributes."""
    message = QueuedMessage.for_event(
        normalise_payload(payload), received_at=utc_from_epoch(1_795_791_000), source="webhook"
    )
    boto3.client("sqs").send_message(
        QueueUrl=queue_url,
        MessageBody=message.to_json(),
        MessageAttributes={
            name: {"DataType": "String", "StringValue": value}
            for name, value in message.message_attributes().items()
        },
    )


def drain(queue_url: str, queue_arn: str, *, max_rounds: int = 10) -> int:
    """Play the SQS event source until the queue is empty; returns the number of invocations."""

    def handle(event: dict[str, Any]) -> set[str]:
        response = app.lambda_handler(event, FakeLambdaContext())
        return {failure["itemIdentifier"] for failure in response["batchItemFailures"]}

    return queues.drain(queue_url, queue_arn, handle, max_rounds=max_rounds)


def test_a_poison_message_ends_in_the_dlq_and_nothing_else_is_lost(
    fake: OffergridFake, stack: Stack, runtime: app.Runtime
) -> None:
    # Given the orders queue with its DLQ and the rule routing provider status events to it
    orders = queue_with_dlq(MAX_RECEIVE_COUNT)
    queue_url, queue_arn, dlq_url = orders.url, orders.arn, orders.dlq_url
    events = boto3.client("events")
    events.put_rule(
        Name="workorder-status-to-orders",
        EventBusName="provider-bus",
        EventPattern=json.dumps({"detail-type": ["workorder.status_changed"]}),
    )
    events.put_targets(
        Rule="workorder-status-to-orders",
        EventBusName="provider-bus",
        Targets=[{"Id": "orders", "Arn": queue_arn}],
    )
    # ... two good orders, one item Offergrid always fails for (the poison), one cancellation
    # arriving twice, one scheduled item the provider reports in progress, and one malformed message
    for item_id in ("item-good-1", "item-good-2", "item-poison"):
        fake.add_order_item(id=item_id, orderId=f"order-{item_id}")
    fake.add_order_item(id="item-to-cancel", orderId="order-cancel", status="accepted")
    fake.add_order_item(id="item-scheduled", orderId="order-scheduled", status="scheduled")
    # (accepted before our work-order ids existed: the provider's own id, WO-9, is then recorded)
    stack.we_accepted("item-scheduled", "order-scheduled", with_work_order_id=False)
    fake.inject_fault("status", status=500, times=1_000, path="/provider/orders/item-poison")
    for item_id in ("item-good-1", "item-good-2", "item-poison"):
        send_webhook(queue_url, {"event": "order.created", "orderId": f"order-{item_id}", "itemId": item_id})
    for _ in range(2):
        send_webhook(
            queue_url, {"event": "order.cancelled", "orderId": "order-cancel", "reason": "moved away"}
        )
    detail = {
        "id": "WO-9",
        "offergridItemId": "item-scheduled",
        "status": "in_progress",
        "technicianId": "tech-1",
    }
    published = events.put_events(
        Entries=[
            {
                "Source": "acme.fulfilment",
                "DetailType": "workorder.status_changed",
                "Detail": json.dumps(detail),
                "EventBusName": "provider-bus",
            }
        ]
    )
    assert published["FailedEntryCount"] == 0
    boto3.client("sqs").send_message(QueueUrl=queue_url, MessageBody="{not json")

    # When the event source drains the queue
    drain(queue_url, queue_arn)

    # Then the poison message (and only it) is in the DLQ, unchanged
    dlq = boto3.client("sqs").receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(message["Body"])["event"]["itemId"] for message in dlq] == ["item-poison"]
    assert fake.order_items["item-poison"]["status"] == "pending"
    # ... and every other message was acted on exactly once
    for item_id in ("item-good-1", "item-good-2"):
        assert fake.order_items[item_id]["status"] == "accepted"
        assert len(patches(fake, item_id)) == 1
    assert fake.order_items["item-to-cancel"]["status"] == "cancelled"
    assert len(patches(fake, "item-to-cancel")) == 1
    assert fake.order_items["item-scheduled"]["status"] == "in_progress"
    assert patches(fake, "item-scheduled") == [
        {"status": "in_progress", "metadata": {"workOrderId": "WO-9", "technicianId": "tech-1"}}
    ]
    assert stack.record("item-scheduled").work_order_id == "WO-9"
