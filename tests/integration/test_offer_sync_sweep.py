"""The missed-order sweep: queue exactly the undecided pending/submitted items, webhook dedup key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from devtools.offergrid_fake import OffergridFake
from offergrid_integration.clock import SYSTEM_CLOCK
from offergrid_integration.contract import QueuedMessage, dedup_key_for, normalise_payload
from offergrid_integration.offergrid.client import OffergridClient
from offergrid_integration.orders.adapters.dynamodb import DynamoDBOrderStore
from offergrid_integration.orders.ports import Decision, OrderRecord
from offergrid_integration.orders.sweep import OrderRecordDecisions, sweep_missed_orders
from offergrid_integration.ratelimit import InProcessRateBudget, RateWindow
from offergrid_integration.sqs_queue import SqsQueue
from tests.fixtures.offergrid_fake import TEST_API_KEY, OffergridClientFactory, OffergridFakeFactory
from tests.fixtures.queues import receive_all

ORDERS_TABLE = "orders"


@pytest.fixture
def fake(offergrid_fake_factory: OffergridFakeFactory) -> OffergridFake:
    return offergrid_fake_factory(time_scale=60.0, list_style="envelope-page", page_size=2)


@pytest.fixture
def client(fake: OffergridFake, offergrid_client_factory: OffergridClientFactory) -> OffergridClient:
    return offergrid_client_factory(fake, max_retries=0)


@pytest.fixture
def queue_url(aws: None) -> str:
    return boto3.client("sqs").create_queue(QueueName="orders")["QueueUrl"]


@pytest.fixture
def order_store(aws: None) -> DynamoDBOrderStore:
    boto3.client("dynamodb").create_table(
        TableName=ORDERS_TABLE,
        AttributeDefinitions=[{"AttributeName": "itemId", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "itemId", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return DynamoDBOrderStore(ORDERS_TABLE)


def received(queue_url: str) -> list[dict[str, Any]]:
    return receive_all(boto3.client("sqs"), queue_url)


def record_decision(store: DynamoDBOrderStore, item_id: str, decision: Decision) -> None:
    now = datetime.now(UTC)
    store.save(OrderRecord(item_id=item_id, decision=decision, created_at=now, updated_at=now))


def test_sweep_queues_exactly_the_undecided_items_with_the_webhook_dedup_key(
    fake: OffergridFake, client: OffergridClient, queue_url: str, order_store: DynamoDBOrderStore
) -> None:
    # Given pending and submitted items, some already decided by the order processor
    undecided_pending = fake.add_order_item(status="pending")
    undecided_submitted = fake.add_order_item(status="submitted_to_provider")
    decided = fake.add_order_item(status="pending")
    decided_elsewhere = fake.add_order_item(status="submitted_to_provider")
    in_progress = fake.add_order_item(status="pending")  # the processor started but did not finish
    fake.add_order_item(status="accepted")
    fake.add_order_item(status="cancelled")
    record_decision(order_store, decided["id"], Decision.ACCEPTED)
    record_decision(order_store, decided_elsewhere["id"], Decision.DECIDED_ELSEWHERE)
    now = datetime.now(UTC)
    order_store.save(
        OrderRecord(
            item_id=in_progress["id"], intended_decision=Decision.ACCEPTED, created_at=now, updated_at=now
        )
    )

    # When the sweep runs
    report = sweep_missed_orders(
        client,
        SqsQueue(queue_url),
        clock=SYSTEM_CLOCK,
        decisions=OrderRecordDecisions(order_store),
        correlation_id="sweep-test",
    )

    # Then exactly the undecided items were queued
    expected = {undecided_pending["id"], undecided_submitted["id"], in_progress["id"]}
    assert set(report.enqueued) == expected
    assert report.listed == 5
    assert report.already_decided == 2
    messages = received(queue_url)
    assert len(messages) == 3
    by_item: dict[str, tuple[QueuedMessage, dict[str, Any]]] = {}
    for message in messages:
        queued = QueuedMessage.from_json(message["Body"])
        assert queued.event.item_id is not None
        by_item[queued.event.item_id] = (queued, message["MessageAttributes"])
    assert set(by_item) == expected

    # And each carries the dedup key the webhook path computes for the same item
    for item in (undecided_pending, undecided_submitted):
        queued, attributes = by_item[item["id"]]
        webhook_event = normalise_payload(fake.webhook_payload("order.created", item["id"]))
        assert queued.dedup_key == dedup_key_for(webhook_event) == f"order.created:{item['id']}"
        assert attributes["dedupKey"]["StringValue"] == queued.dedup_key
        assert attributes["source"]["StringValue"] == "sweep"
        assert queued.event.order_id == item["orderId"]
        assert queued.event.offer_id == item["offerId"]
        assert queued.correlation_id == "sweep-test"
    # Only listing calls were made to Offergrid (paged: 2 per page)
    assert {(call.method, call.path) for call in fake.calls} == {("GET", "/provider/orders")}
    assert {call.query["status"][0] for call in fake.calls} == {"pending", "submitted_to_provider"}


def test_sweep_without_a_decision_store_queues_every_listed_item(
    fake: OffergridFake, client: OffergridClient, queue_url: str
) -> None:
    items = {fake.add_order_item(status="pending")["id"] for _ in range(3)}

    report = sweep_missed_orders(client, SqsQueue(queue_url), clock=SYSTEM_CLOCK)

    assert set(report.enqueued) == items
    assert len(received(queue_url)) == 3


def test_items_younger_than_the_grace_period_are_left_to_their_webhook(
    fake: OffergridFake, client: OffergridClient, queue_url: str
) -> None:
    fake.add_order_item(status="pending", createdAt=datetime.now(UTC).isoformat())
    old = fake.add_order_item(status="pending", createdAt="2026-01-01T08:00:00.000Z")

    report = sweep_missed_orders(client, SqsQueue(queue_url), clock=SYSTEM_CLOCK, min_age_seconds=600)

    assert report.enqueued == [old["id"]]
    assert report.too_recent == 1


def test_dry_run_sweep_queues_nothing(fake: OffergridFake, client: OffergridClient, queue_url: str) -> None:
    item = fake.add_order_item(status="pending")

    report = sweep_missed_orders(client, SqsQueue(queue_url), clock=SYSTEM_CLOCK, dry_run=True)

    assert report.enqueued == [item["id"]]
    assert received(queue_url) == []


def test_a_listing_failure_is_reported_and_nothing_is_queued(
    fake: OffergridFake, client: OffergridClient, queue_url: str
) -> None:
    fake.add_order_item(status="pending")
    fake.inject_fault("status", status=503, times=5, method="GET", path="/provider/orders")

    report = sweep_missed_orders(client, SqsQueue(queue_url), clock=SYSTEM_CLOCK)

    assert report.error is not None
    assert "503" in report.error
    assert report.enqueued == []
    assert received(queue_url) == []


def test_a_queue_failure_is_reported_per_item(
    fake: OffergridFake, client: OffergridClient, aws: None
) -> None:
    item = fake.add_order_item(status="pending")
    missing_queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/does-not-exist"

    report = sweep_missed_orders(client, SqsQueue(missing_queue), clock=SYSTEM_CLOCK)

    assert report.enqueued == []
    assert [failure["itemId"] for failure in report.failures] == [item["id"]]


def test_a_listed_item_with_an_unusable_id_is_reported_and_the_others_still_queued(
    fake: OffergridFake, client: OffergridClient, queue_url: str
) -> None:
    # Given a pending item whose id breaks docs/decisions.md#12 (over 128 characters) beside a good one
    good = fake.add_order_item(status="pending")["id"]
    fake.add_order_item(id="x" * 300, status="pending")

    # When the sweep runs
    report = sweep_missed_orders(client, SqsQueue(queue_url), clock=SYSTEM_CLOCK)

    # Then the good item is queued, the other reported (never queued, never a crash)
    assert report.enqueued == [good]
    assert [failure["reason"] for failure in report.failures] == ["item id longer than 128 characters"]
    assert len(received(queue_url)) == 1


def test_a_sweep_that_finds_the_rate_budget_exhausted_reports_it_and_queues_nothing(
    fake: OffergridFake, queue_url: str
) -> None:
    # Given a pending item, and a rate budget with one token left for the sweep's two listings
    fake.add_order_item(status="pending")
    budget = InProcessRateBudget([RateWindow(limit=3, period_seconds=3600)])
    with OffergridClient(
        base_url=fake.base_url,
        api_key=lambda *, force_refresh=False: TEST_API_KEY,
        rate_budget=budget,
        remaining_time=lambda: 2.0,
        max_retries=0,
    ) as client:
        # When the sweep runs
        report = sweep_missed_orders(client, SqsQueue(queue_url), clock=SYSTEM_CLOCK)

    # Then it says so in its report (the scheduled run goes on to its other jobs) and queues nothing
    assert report.error is not None
    assert "rate budget exhausted" in report.error
    assert received(queue_url) == []
