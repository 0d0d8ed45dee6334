"""The order processor handler in-process, against moto (tables, bus, parameter, secret) and the
Offergrid fake: accept, reject, already decided, cancellations, status pushes, permanent failures,
duplicates and faults.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from devtools.offergrid_fake import OffergridFake
from functions.order_processor import app
from offergrid_integration.clock import Clock, ScaledClock
from offergrid_integration.config import load_settings
from offergrid_integration.orders import processor as pipeline
from offergrid_integration.orders.adapters.dynamodb import DynamoDBOrderStore
from offergrid_integration.orders.messages import parse_queue_message
from offergrid_integration.orders.ports import Decision, OrderRecord, work_order_id_for
from offergrid_integration.orders.processor import NotAnSqsEvent, ProcessorSettings
from tests.fixtures.aws import FakeLambdaContext

EVENTS = Path(__file__).resolve().parents[2] / "events"
ITEM = "item-456-def"
ORDER = "order-123-abc"
API_KEY_SECRET = "offergrid/test/api-key"
RULES_PARAMETER = "/offergrid/test/coverage-rules"
# Illinois and California only: the fake's default address (Springfield, IL 62701) is covered.
RULES = {"version": 1, "defaultCountry": "US", "allow": [{"countries": ["US"], "states": ["IL", "CA"]}]}
TEXAS = {"street": "1 Elm St", "city": "Austin", "state": "TX", "zipCode": "73301", "country": "US"}
# Backoff and Retry-After compressed 20x; the 30 s request timeout is then 1.5 real seconds.
FAST_CLOCK_SCALE = 20


def load_event(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


def sqs_event(*bodies: str | dict[str, Any]) -> dict[str, Any]:
    """An SQS event with one record per body (a dict is serialised)."""
    records = []
    for body in bodies:
        text = body if isinstance(body, str) else json.dumps(body)
        message_id = str(uuid.uuid4())
        records.append(
            {
                "messageId": message_id,
                "receiptHandle": f"handle-{message_id}",
                "body": text,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:offergrid-orders",
                "awsRegion": "eu-west-1",
            }
        )
    return {"Records": records}


def webhook_body(event: str, **fields: Any) -> dict[str, Any]:
    """An ingress envelope, as `contract.QueuedMessage` serialises it."""
    item_id, order_id = fields.get("itemId"), fields.get("orderId")
    key = (
        f"{event}:{item_id}"
        if event == "order.created"
        else f"{event}:{order_id}" + (f":{item_id}" if item_id else "")
    )
    return {
        "event": {"event": event, "reason": None, "timestamp": None, "extra": {}, **fields},
        "dedupKey": key,
        "receivedAt": "2026-11-27T14:41:00.123Z",
        "source": "webhook",
        "correlationId": "test",
    }


def status_event(item_id: str, status: str, *, event_id: str | None = None, **detail: Any) -> dict[str, Any]:
    event = load_event("eventbridge_workorder_status_changed.json")
    event["id"] = event_id or str(uuid.uuid4())
    event["detail"] = {
        "id": "WO-1",
        "offergridItemId": item_id,
        "status": status,
        "technicianId": "tech-7",
        **detail,
    }
    if status == "scheduled":
        event["detail"].setdefault("appointmentDate", "2026-12-01T09:00:00Z")
    return event


@dataclass
class Stack:
    """The AWS side the processor talks to, in moto."""

    env: dict[str, str]
    crm_queue_url: str
    orders: DynamoDBOrderStore
    ssm: Any = field(default_factory=lambda: boto3.client("ssm"))

    def record(self, item_id: str) -> OrderRecord:
        record = self.orders.get(item_id)
        assert record is not None, f"no order record for {item_id}"
        return record

    def we_accepted(self, item_id: str, order_id: str = ORDER, *, with_work_order_id: bool = True) -> None:
        """Our record of an earlier acceptance: fulfilment statuses are pushed only for items we
        accepted (docs/decisions.md#11)."""
        now = datetime.now(UTC)
        self.orders.save(
            OrderRecord(
                item_id=item_id,
                order_id=order_id,
                decision=Decision.ACCEPTED,
                work_order_id=work_order_id_for(item_id) if with_work_order_id else None,
                created_at=now,
                updated_at=now,
            )
        )

    def published(self) -> list[dict[str, Any]]:
        """Events that reached the provider's bus (via a rule into a CRM queue)."""
        sqs = boto3.client("sqs")
        events: list[dict[str, Any]] = []
        while True:
            messages = sqs.receive_message(QueueUrl=self.crm_queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                return events
            for message in messages:
                events.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.crm_queue_url, ReceiptHandle=message["ReceiptHandle"])

    def work_order(self, work_order_id: str) -> dict[str, Any] | None:
        table = boto3.resource("dynamodb").Table(self.env["WORK_ORDERS_TABLE"])
        item: dict[str, Any] | None = table.get_item(Key={"workOrderId": work_order_id}).get("Item")
        return item


def create_stack(fake_url: str, *, with_bus: bool = True, with_rules: bool = True) -> Stack:
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName="orders",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "itemId", "AttributeType": "S"},
            {"AttributeName": "orderId", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "itemId", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "byOrderId",
                "KeySchema": [{"AttributeName": "orderId", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    for name, key in (("work-orders", "workOrderId"), ("idempotency", "id")):
        dynamodb.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        )
    boto3.client("secretsmanager").create_secret(Name=API_KEY_SECRET, SecretString="test-api-key")
    if with_rules:
        boto3.client("ssm").put_parameter(Name=RULES_PARAMETER, Type="String", Value=json.dumps(RULES))
    sqs = boto3.client("sqs")
    crm_url = sqs.create_queue(QueueName="crm-events")["QueueUrl"]
    if with_bus:
        create_bus(crm_url)
    env = {
        "OFFERGRID_API_URL": fake_url,
        "OFFERGRID_API_KEY_SECRET": API_KEY_SECRET,
        "OFFERGRID_TIMEOUT_SECONDS": "30",
        "ORDERS_TABLE": "orders",
        "WORK_ORDERS_TABLE": "work-orders",
        "IDEMPOTENCY_TABLE": "idempotency",
        "EVENT_BUS_NAME": "provider-bus",
        "SERVICEABILITY_RULES_PARAMETER": RULES_PARAMETER,
        "SERVICEABILITY_CACHE_SECONDS": "0",
    }
    return Stack(env=env, crm_queue_url=crm_url, orders=DynamoDBOrderStore("orders"))


def create_bus(crm_queue_url: str) -> None:
    events = boto3.client("events")
    events.create_event_bus(Name="provider-bus")
    crm_arn = boto3.client("sqs").get_queue_attributes(QueueUrl=crm_queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(
        Name="crm",
        EventBusName="provider-bus",
        EventPattern=json.dumps({"source": ["offergrid.integration"]}),
    )
    events.put_targets(Rule="crm", EventBusName="provider-bus", Targets=[{"Id": "crm", "Arn": crm_arn}])


@pytest.fixture
def fake(offergrid_fake: OffergridFake) -> OffergridFake:
    return offergrid_fake


@pytest.fixture
def stack(aws: None, fake: OffergridFake) -> Stack:
    return create_stack(fake.base_url)


@pytest.fixture
def runtime_factory(stack: Stack) -> Iterator[Callable[..., app.Runtime]]:
    def build(clock: Clock | None = None, **env: str) -> app.Runtime:
        app.reset()
        settings = load_settings(ProcessorSettings, {**stack.env, **env})
        runtime = app.Runtime(settings, clock=clock or ScaledClock(FAST_CLOCK_SCALE))
        app.configure(runtime)
        return runtime

    yield build
    app.reset()


@pytest.fixture
def runtime(runtime_factory: Callable[..., app.Runtime]) -> app.Runtime:
    return runtime_factory()


Invoke = Callable[[dict[str, Any]], list[str]]


@pytest.fixture
def invoke(runtime: app.Runtime) -> Invoke:
    """Run the handler on an SQS event; returns the ids of the records reported as failed."""

    def run(event: dict[str, Any], context: FakeLambdaContext | None = None) -> list[str]:
        response = app.lambda_handler(event, context or FakeLambdaContext())
        return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]

    return run


def patches(fake: OffergridFake, item_id: str) -> list[dict[str, Any]]:
    """Bodies of the status PATCHes that reached the fake for `item_id` and succeeded (any 2xx:
    200 with the item, or 204 / 200 without one when the fake answers the other way)."""
    return [
        call.body
        for call in fake.calls_matching("PATCH", f"/provider/orders/{item_id}/status")
        if call.status is not None and 200 <= call.status < 300
    ]


def emitted_metrics(output: str) -> list[tuple[str, str | None]]:
    """(metric name, its Reason dimension or None) of every EMF line printed."""
    found = []
    for line in output.splitlines():
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        if not isinstance(blob, dict) or "_aws" not in blob:
            continue
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            dimension_names = {name for group in directive["Dimensions"] for name in group}
            dimensions = {name: blob[name] for name in dimension_names}
            for metric in directive["Metrics"]:
                found.append((metric["Name"], dimensions.get("Reason")))
    return found


# ---------------------------------------------------------------------------------------------------
# order.created
# ---------------------------------------------------------------------------------------------------
def test_accepts_a_serviceable_item_and_opens_a_work_order(
    fake: OffergridFake, stack: Stack, invoke: Invoke, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a pending item in Illinois (covered) and the sample order.created message
    fake.add_order_item(id=ITEM, orderId=ORDER)

    # When the processor handles it
    failed = invoke(load_event("sqs_order_created.json"))

    # Then the item is accepted once, with notes saying when the customer will be contacted
    assert failed == []
    assert fake.order_items[ITEM]["status"] == "accepted"
    [body] = patches(fake, ITEM)
    work_order_id = work_order_id_for(ITEM)
    assert body["status"] == "accepted"
    assert "within 24 hours" in body["providerNotes"]
    assert body["metadata"]["workOrderId"] == work_order_id
    # ... a work order is stored and announced on the provider's bus
    work_order = stack.work_order(work_order_id)
    assert work_order is not None
    assert (work_order["itemId"], work_order["status"]) == (ITEM, "open")
    assert work_order["customer"]["fullName"] == "Jane Doe"
    [announced] = stack.published()
    assert announced["detail-type"] == "offergrid.order.accepted"
    assert announced["detail"]["workOrderId"] == work_order_id
    # ... the record says what happened
    record = stack.record(ITEM)
    assert (record.decision, record.offergrid_status, record.work_order_id) == (
        "accepted",
        "accepted",
        work_order_id,
    )
    assert [entry.action for entry in record.history] == ["accepting", "accepted"]
    assert record.history[-1].dedup_key == "order.created:item-456-def"
    # ... and counted
    assert ("OrderAccepted", None) in emitted_metrics(capsys.readouterr().out)


def test_rejects_an_item_outside_coverage_with_the_reason(
    fake: OffergridFake, stack: Stack, invoke: Invoke
) -> None:
    fake.add_order_item(id=ITEM, orderId=ORDER, serviceAddress=TEXAS)

    assert invoke(load_event("sqs_order_created.json")) == []

    assert fake.order_items[ITEM]["status"] == "rejected"
    [body] = patches(fake, ITEM)
    assert body["status"] == "rejected"
    assert "outside our coverage area" in body["providerNotes"]
    assert "73301" in body["providerNotes"]
    record = stack.record(ITEM)
    assert record.decision == "rejected"
    assert record.work_order_id is None
    assert stack.published() == []


@pytest.mark.parametrize("status", ["accepted", "cancelled", "scheduled"])
def test_an_item_no_longer_pending_is_recorded_not_decided(
    fake: OffergridFake, stack: Stack, invoke: Invoke, status: str
) -> None:
    fake.add_order_item(id=ITEM, orderId=ORDER, status=status)

    assert invoke(load_event("sqs_order_created.json")) == []

    assert patches(fake, ITEM) == []
    assert fake.order_items[ITEM]["status"] == status
    record = stack.record(ITEM)
    assert (record.decision, record.offergrid_status) == ("decided_elsewhere", status)


def test_submitted_to_provider_is_still_decided(fake: OffergridFake, invoke: Invoke) -> None:
    fake.add_order_item(id=ITEM, orderId=ORDER, status="submitted_to_provider")
    assert invoke(load_event("sqs_order_created.json")) == []
    assert fake.order_items[ITEM]["status"] == "accepted"


def test_an_unknown_item_is_a_permanent_failure_recorded_once(
    fake: OffergridFake, stack: Stack, invoke: Invoke, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no such item on Offergrid (404)
    failed = invoke(load_event("sqs_order_created.json"))

    # Then the record is not retried, the failure is recorded and counted by reason
    assert failed == []
    record = stack.record(ITEM)
    assert record.last_failure is not None
    assert record.last_failure.startswith("item_not_found")
    assert ("PermanentFailure", "item_not_found") in emitted_metrics(capsys.readouterr().out)


def test_a_malformed_message_is_dropped_and_counted_not_retried(
    fake: OffergridFake, invoke: Invoke, capsys: pytest.CaptureFixture[str]
) -> None:
    event = sqs_event("not json", {"hello": "world"}, "[1, 2]")
    assert invoke(event) == []
    reasons = [
        reason for name, reason in emitted_metrics(capsys.readouterr().out) if name == "PermanentFailure"
    ]
    assert reasons == ["malformed_message"] * 3
    assert fake.calls == []


def test_a_dedup_key_only_in_the_message_attributes_is_used(fake: OffergridFake, invoke: Invoke) -> None:
    fake.add_order_item(id=ITEM, orderId=ORDER)
    body = webhook_body("order.created", itemId=ITEM, orderId=ORDER)
    key = body.pop("dedupKey")
    event = sqs_event(body)
    event["Records"][0]["messageAttributes"] = {"dedupKey": {"stringValue": key, "dataType": "String"}}
    assert invoke(event) == []
    assert invoke(event) == []
    assert fake.order_items[ITEM]["status"] == "accepted"
    assert len(fake.calls_matching("PATCH")) == 1


def test_an_event_that_is_not_from_sqs_is_refused_with_what_was_expected(
    fake: OffergridFake, runtime: app.Runtime
) -> None:
    # A console "Test" with {} and another service's record: a clear error, nothing handled
    sns = {"Records": [{"eventSource": "aws:sns", "messageId": "m", "body": "{}"}]}
    for event in ({}, sns):
        with pytest.raises(NotAnSqsEvent, match=r'expects an SQS event: \{"Records"'):
            app.lambda_handler(event, FakeLambdaContext())
    assert fake.calls == []


def test_an_empty_batch_is_answered_with_no_failures(fake: OffergridFake, invoke: Invoke) -> None:
    assert invoke({"Records": []}) == []
    assert fake.calls == []


def test_an_unknown_event_type_is_kept_and_ignored(fake: OffergridFake, invoke: Invoke) -> None:
    assert invoke(sqs_event(webhook_body("offer.ordered", offerId="offer-1"))) == []
    assert fake.calls == []


def test_the_same_webhook_three_times_is_decided_once(
    fake: OffergridFake, stack: Stack, invoke: Invoke
) -> None:
    # Given the same webhook delivered three times: twice in one batch, once later
    fake.add_order_item(id=ITEM, orderId=ORDER)
    sample = load_event("sqs_order_created.json")
    record = sample["Records"][0]
    twice = {"Records": [record, {**copy.deepcopy(record), "messageId": "second-delivery"}]}

    # When the processor handles them
    assert invoke(twice) == []
    assert invoke(sample) == []

    # Then exactly one PATCH reached Offergrid, one work order was announced, one decision recorded
    assert len(fake.calls_matching("PATCH", f"/provider/orders/{ITEM}/status")) == 1
    assert len(stack.published()) == 1
    assert [entry.action for entry in stack.record(ITEM).history] == ["accepting", "accepted"]


def test_the_sweep_finding_a_webhook_item_does_not_decide_it_again(
    fake: OffergridFake, invoke: Invoke
) -> None:
    fake.add_order_item(id=ITEM, orderId=ORDER)
    assert invoke(load_event("sqs_order_created.json")) == []
    sweep = webhook_body("order.created", itemId=ITEM, orderId=ORDER) | {"source": "sweep"}
    assert invoke(sqs_event(sweep)) == []
    assert len(fake.calls_matching("PATCH", f"/provider/orders/{ITEM}/status")) == 1


def test_the_sweep_recovers_an_item_whose_webhook_failed_permanently(
    fake: OffergridFake, stack: Stack, invoke: Invoke
) -> None:
    # Given the webhook arrived before Offergrid served the item: 404, a permanent failure
    assert invoke(load_event("sqs_order_created.json")) == []
    assert (stack.record(ITEM).last_failure or "").startswith("item_not_found")

    # When the item becomes readable and the sweep queues the same dedup key
    fake.add_order_item(id=ITEM, orderId=ORDER)
    sweep = webhook_body("order.created", itemId=ITEM, orderId=ORDER) | {"source": "sweep"}
    assert invoke(sqs_event(sweep)) == []

    # Then the failure was not remembered as processed: the sweep decides the item, once
    assert fake.order_items[ITEM]["status"] == "accepted"
    assert len(fake.calls_matching("PATCH", f"/provider/orders/{ITEM}/status")) == 1
    assert stack.record(ITEM).decision == "accepted"
    # ... and a later duplicate of the decided message is still answered from the idempotency store
    assert invoke(sqs_event(sweep)) == []
    assert len(fake.calls_matching("GET", f"/provider/orders/{ITEM}")) == 2


def test_each_message_is_parsed_once(
    fake: OffergridFake, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[str] = []

    def counting(body: str, attributes: Any) -> Any:
        parsed.append(body)
        return parse_queue_message(body, attributes)

    monkeypatch.setattr(pipeline, "parse_queue_message", counting)
    fake.add_order_item(id=ITEM, orderId=ORDER)

    assert invoke(load_event("sqs_order_created.json")) == []

    assert fake.order_items[ITEM]["status"] == "accepted"
    assert len(parsed) == 1


def test_a_redelivery_after_the_idempotency_window_is_still_not_decided_twice(
    fake: OffergridFake, stack: Stack, invoke: Invoke
) -> None:
    # Given an accepted item whose idempotency record has gone (expired)
    fake.add_order_item(id=ITEM, orderId=ORDER)
    assert invoke(load_event("sqs_order_created.json")) == []
    table = boto3.resource("dynamodb").Table("idempotency")
    for item in table.scan()["Items"]:
        table.delete_item(Key={"id": item["id"]})

    # When the same message comes again, the state check stops it
    assert invoke(load_event("sqs_order_created.json")) == []
    assert len(fake.calls_matching("PATCH", f"/provider/orders/{ITEM}/status")) == 1
    assert stack.record(ITEM).history[-1].action == "skipped"


# ---------------------------------------------------------------------------------------------------
# order.cancelled
# ---------------------------------------------------------------------------------------------------
def test_cancellation_with_item_id_cancels_on_offergrid_and_the_work_order(
    fake: OffergridFake, stack: Stack, invoke: Invoke, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an item we accepted
    fake.add_order_item(id=ITEM, orderId=ORDER)
    assert invoke(load_event("sqs_order_created.json")) == []
    stack.published()

    # When the customer cancels it
    assert invoke(load_event("sqs_order_cancelled.json")) == []

    # Then Offergrid has it cancelled with the reason, and the work order is cancelled and announced
    assert fake.order_items[ITEM]["status"] == "cancelled"
    assert patches(fake, ITEM)[-1] == {
        "status": "cancelled",
        "providerNotes": "Cancelled: Customer moved before installation",
    }
    work_order = stack.work_order(work_order_id_for(ITEM))
    assert work_order is not None
    assert (work_order["status"], work_order["cancelReason"]) == (
        "cancelled",
        "Customer moved before installation",
    )
    [announced] = stack.published()
    assert announced["detail-type"] == "offergrid.order.cancelled"
    record = stack.record(ITEM)
    assert record.cancelled_at is not None
    assert record.offergrid_status == "cancelled"
    assert ("OrderCancelled", None) in emitted_metrics(capsys.readouterr().out)


def test_cancellation_of_an_already_cancelled_item_sends_no_patch(
    fake: OffergridFake, stack: Stack, invoke: Invoke
) -> None:
    fake.add_order_item(id=ITEM, orderId=ORDER, status="cancelled")
    assert invoke(load_event("sqs_order_cancelled.json")) == []
    assert patches(fake, ITEM) == []
    assert stack.record(ITEM).cancelled_at is not None


def test_cancellation_of_a_terminal_item_changes_nothing_on_offergrid(
    fake: OffergridFake, stack: Stack, invoke: Invoke
) -> None:
    fake.add_order_item(id=ITEM, orderId=ORDER, status="active")
    assert invoke(load_event("sqs_order_cancelled.json")) == []
    assert patches(fake, ITEM) == []
    assert fake.order_items[ITEM]["status"] == "active"
    assert "cannot become cancelled" in (stack.record(ITEM).history[-1].detail or "")


def test_cancellation_of_an_active_item_keeps_its_work_order(
    fake: OffergridFake, stack: Stack, invoke: Invoke, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an item we accepted, which has since been installed (active: terminal on Offergrid)
    fake.add_order_item(id=ITEM, orderId=ORDER)
    assert invoke(load_event("sqs_order_created.json")) == []
    fake.set_order_item_status(ITEM, "active")
    stack.published()
    capsys.readouterr()

    # When a cancellation arrives for it
    assert invoke(load_event("sqs_order_cancelled.json")) == []

    # Then nothing is cancelled anywhere: Offergrid, the work order, the provider's bus
    assert [body["status"] for body in patches(fake, ITEM)] == ["accepted"]
    assert fake.order_items[ITEM]["status"] == "active"
    work_order = stack.work_order(work_order_id_for(ITEM))
    assert work_order is not None
    assert work_order["status"] == "open"
    assert stack.published() == []
    record = stack.record(ITEM)
    assert (record.decision, record.cancelled_at) == ("accepted", None)
    assert "cannot become cancelled" in (record.history[-1].detail or "")
    assert ("OrderCancelled", None) not in emitted_metrics(capsys.readouterr().out)


def test_a_pending_item_cancelled_before_our_decision_is_never_accepted(
    fake: OffergridFake, stack: Stack, invoke: Invoke
) -> None:
    # Given a pending item whose cancellation arrives before its order.created
    fake.add_order_item(id=ITEM, orderId=ORDER)
    assert invoke(load_event("sqs_order_cancelled.json")) == []
    assert patches(fake, ITEM) == []  # Offergrid has no pending -> cancelled move

    # When order.created arrives afterwards, the item is not accepted
    assert invoke(load_event("sqs_order_created.json")) == []
    assert patches(fake, ITEM) == []
    assert stack.record(ITEM).decision == "cancelled"


LISTED_FOR_CANCELLATION = {"pending", "submitted_to_provider", "accepted", "scheduled", "in_progress"}


def listed_statuses(fake: OffergridFake) -> set[str]:
    """The statuses the order items were listed by (each listing may take several pages)."""
    return {
        status
        for call in fake.calls
        if call.path == "/provider/orders"
        for status in call.query.get("status", [])
    }


def test_cancellation_without_item_id_uses_our_records(
    fake: OffergridFake, stack: Stack, invoke: Invoke
) -> None:
    # Given two items of the order that we accepted (so we have records), and one of another order
    fake.add_order_item(id=ITEM, orderId=ORDER)
    fake.add_order_item(id="item-2", orderId=ORDER)
    fake.add_order_item(id="item-other", orderId="order-other")
    for item_id, order_id in ((ITEM, ORDER), ("item-2", ORDER), ("item-other", "order-other")):
        assert invoke(sqs_event(webhook_body("order.created", itemId=item_id, orderId=order_id))) == []
    fake.clear_calls()

    # When the order is cancelled without an itemId
    assert invoke(load_event("sqs_order_cancelled_no_item.json")) == []

    # Then both items of the order (found in our records, no listing) are cancelled, the other is not
    assert fake.order_items[ITEM]["status"] == "cancelled"
    assert fake.order_items["item-2"]["status"] == "cancelled"
    assert fake.order_items["item-other"]["status"] == "accepted"
    # Offergrid is listed too (docs/decisions.md#4), for items whose webhook has not arrived yet
    assert listed_statuses(fake) == LISTED_FOR_CANCELLATION


def test_cancellation_without_item_id_falls_back_to_listing_orders(
    fake: OffergridFake, stack: Stack, invoke: Invoke
) -> None:
    # Given items we never heard of (no records): one accepted elsewhere, one scheduled, one of another order
    fake.add_order_item(id=ITEM, orderId=ORDER, status="accepted")
    fake.add_order_item(id="item-2", orderId=ORDER, status="scheduled")
    fake.add_order_item(id="item-other", orderId="order-other", status="accepted")

    fake.clear_calls()

    assert invoke(load_event("sqs_order_cancelled_no_item.json")) == []

    # A listing of each status that can still be cancelled or decided, then a PATCH per item of the
    # order: the listed items are not fetched again
    assert listed_statuses(fake) == LISTED_FOR_CANCELLATION
    assert [(call.method, call.path) for call in fake.calls if call.path != "/provider/orders"] == [
        ("PATCH", "/provider/orders/item-2/status"),
        ("PATCH", f"/provider/orders/{ITEM}/status"),
    ]
    assert fake.order_items[ITEM]["status"] == "cancelled"
    assert fake.order_items["item-2"]["status"] == "cancelled"
    assert fake.order_items["item-other"]["status"] == "accepted"
    assert {record.item_id for record in stack.orders.find_by_order(ORDER)} == {ITEM, "item-2"}


def test_cancellation_of_an_order_with_no_items_of_ours_is_not_retried(
    fake: OffergridFake, invoke: Invoke
) -> None:
    assert invoke(load_event("sqs_order_cancelled_no_item.json")) == []
    assert fake.calls_matching("PATCH") == []


# ---------------------------------------------------------------------------------------------------
# workorder.status_changed
# ---------------------------------------------------------------------------------------------------
def test_sample_status_event_schedules_the_item(fake: OffergridFake, stack: Stack, invoke: Invoke) -> None:
    fake.add_order_item(id=ITEM, orderId=ORDER, status="accepted")
    stack.we_accepted(ITEM)

    assert invoke(load_event("sqs_status_changed.json")) == []

    assert fake.order_items[ITEM]["status"] == "scheduled"
    assert patches(fake, ITEM) == [
        {
            "status": "scheduled",
            "providerNotes": "Installation booked; the technician will call 30 minutes before arrival.",
            "scheduledFor": "2026-12-01T09:00:00Z",
            "metadata": {"workOrderId": "WO-2026-000123", "technicianId": "tech-042"},
        }
    ]
    record = stack.record(ITEM)
    assert record.history[-1].action == "status_pushed"
    assert record.history[-1].dedup_key == (
        "workorder.status_changed:item-456-def:scheduled:7bf73129-1428-4cd3-a780-95db273d1602"
    )


def test_each_status_maps_through_the_whole_lifecycle(
    fake: OffergridFake, stack: Stack, invoke: Invoke, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.add_order_item(id=ITEM, orderId=ORDER, status="accepted")
    stack.we_accepted(ITEM)
    for status in ("scheduled", "in_progress", "completed", "active"):
        assert invoke(sqs_event(status_event(ITEM, status, notes=f"now {status}"))) == []
        assert fake.order_items[ITEM]["status"] == status
    sent = patches(fake, ITEM)
    assert [body["status"] for body in sent] == ["scheduled", "in_progress", "completed", "active"]
    assert all(body["metadata"] == {"workOrderId": "WO-1", "technicianId": "tech-7"} for body in sent)
    assert [body["providerNotes"] for body in sent] == [
        f"now {s}" for s in ("scheduled", "in_progress", "completed", "active")
    ]
    pushed = [name for name, _ in emitted_metrics(capsys.readouterr().out) if name == "StatusPushed"]
    assert len(pushed) == 4


def test_failed_maps_from_in_progress(fake: OffergridFake, stack: Stack, invoke: Invoke) -> None:
    fake.add_order_item(id=ITEM, orderId=ORDER, status="in_progress")
    stack.we_accepted(ITEM)
    assert invoke(sqs_event(status_event(ITEM, "failed", notes="Line not reachable"))) == []
    assert patches(fake, ITEM) == [
        {
            "status": "failed",
            "providerNotes": "Line not reachable",
            "metadata": {"workOrderId": "WO-1", "technicianId": "tech-7"},
        }
    ]


@pytest.mark.parametrize(
    ("current", "target", "problem"),
    [
        ("completed", "in_progress", "regression"),
        ("cancelled", "scheduled", "from_terminal"),
        ("accepted", "failed", "not_allowed"),
        ("rejected", "completed", "from_terminal"),
    ],
)
def test_invalid_transitions_are_recorded_not_sent_not_retried(
    fake: OffergridFake,
    stack: Stack,
    invoke: Invoke,
    capsys: pytest.CaptureFixture[str],
    current: str,
    target: str,
    problem: str,
) -> None:
    fake.add_order_item(id=ITEM, orderId=ORDER, status=current)
    stack.we_accepted(ITEM)

    assert invoke(sqs_event(status_event(ITEM, target))) == []

    assert patches(fake, ITEM) == []
    assert fake.order_items[ITEM]["status"] == current
    record = stack.record(ITEM)
    assert record.last_failure == f"invalid_transition: {current} -> {target} ({problem})"
    assert (
        "PermanentFailure",
        "invalid_transition",
    ) in emitted_metrics(capsys.readouterr().out)


def test_the_status_the_item_already_has_is_not_patched(
    fake: OffergridFake, stack: Stack, invoke: Invoke
) -> None:
    fake.add_order_item(id=ITEM, orderId=ORDER, status="scheduled")
    stack.we_accepted(ITEM)
    assert invoke(sqs_event(status_event(ITEM, "scheduled"))) == []
    assert fake.calls_matching("PATCH") == []
    assert stack.record(ITEM).history[-1].action == "status_unchanged"


def test_a_status_change_refused_by_offergrid_is_permanent(
    fake: OffergridFake, stack: Stack, invoke: Invoke
) -> None:
    # Given Offergrid moves the item between our GET and our PATCH (the fake refuses with 422)
    fake.add_order_item(id=ITEM, orderId=ORDER, status="accepted")
    stack.we_accepted(ITEM)
    fake.inject_fault("status", status=422, method="PATCH", path=f"/provider/orders/{ITEM}/status")

    assert invoke(sqs_event(status_event(ITEM, "scheduled"))) == []

    assert (stack.record(ITEM).last_failure or "").startswith("invalid_transition")


def test_scheduled_without_appointment_is_recorded_on_the_item(
    fake: OffergridFake, stack: Stack, invoke: Invoke
) -> None:
    fake.add_order_item(id=ITEM, orderId=ORDER, status="accepted")
    stack.we_accepted(ITEM)
    event = status_event(ITEM, "in_progress")
    event["detail"]["status"] = "scheduled"  # and no appointmentDate

    assert invoke(sqs_event(event)) == []

    assert fake.calls == []
    assert (stack.record(ITEM).last_failure or "").startswith("invalid_provider_event")


def test_duplicate_status_events_push_once(fake: OffergridFake, stack: Stack, invoke: Invoke) -> None:
    fake.add_order_item(id=ITEM, orderId=ORDER, status="accepted")
    stack.we_accepted(ITEM)
    event = status_event(ITEM, "in_progress", event_id="evt-1")
    assert invoke(sqs_event(event, event, event)) == []
    assert len(fake.calls_matching("PATCH")) == 1
    # A different event (new id) for the same status is stopped by the state check instead
    assert invoke(sqs_event(status_event(ITEM, "in_progress", event_id="evt-2"))) == []
    assert len(fake.calls_matching("PATCH")) == 1
