"""`itemId` on every log line about an item, in the processor, the sweep and the reconciliation (issue 25).

One Logs Insights query (`filter itemId = "..."`, printed by `replay trace`) must find an item's lines in
all three functions; the webhook's are checked in test_delivery_archive.py. The key is appended for one
record (one sweep item, one drift) and removed after it: a line about another item, or about the batch,
never carries it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from devtools.offergrid_fake import OffergridFake
from offergrid_integration.clock import SYSTEM_CLOCK
from offergrid_integration.offergrid.client import OffergridClient
from offergrid_integration.orders.adapters.dynamodb import DynamoDBWorkOrderIndex
from offergrid_integration.orders.reconcile import reconcile
from offergrid_integration.orders.sweep import OrderRecordDecisions, sweep_missed_orders
from offergrid_integration.sqs_queue import SqsQueue
from tests.fixtures.offergrid_fake import OffergridClientFactory
from tests.integration import test_order_processor as base
from tests.integration.test_order_processor import ORDER, Invoke, Stack, sqs_event, status_event, webhook_body

fake = base.fake
stack = base.stack
runtime_factory = base.runtime_factory
runtime = base.runtime
invoke = base.invoke


@pytest.fixture
def lines(log_output: Callable[[], str]) -> Callable[[], list[dict[str, Any]]]:
    return lambda: [json.loads(line) for line in log_output().splitlines() if line.startswith("{")]


@pytest.fixture
def client(fake: OffergridFake, offergrid_client_factory: OffergridClientFactory) -> OffergridClient:
    return offergrid_client_factory(fake, max_retries=0)


@pytest.fixture
def orders_queue(aws: None) -> str:
    return str(boto3.client("sqs").create_queue(QueueName="orders")["QueueUrl"])


def test_every_processor_line_of_a_record_names_its_item_and_only_that_item(
    fake: OffergridFake, stack: Stack, invoke: Invoke, lines: Callable[[], list[dict[str, Any]]]
):
    # Given a batch about three items: a new order, a status change, and a status change that is
    # not one (recorded on its item as a permanent failure), then the new order delivered again
    fake.add_order_item(id="item-new", orderId=ORDER)
    fake.add_order_item(id="item-scheduled", orderId=ORDER, status="accepted")
    stack.we_accepted("item-scheduled")
    bad = status_event("item-bad", "scheduled")
    bad["detail"]["status"] = "teleported"
    created = webhook_body("order.created", itemId="item-new", orderId=ORDER)
    invoke(sqs_event(created, status_event("item-scheduled", "scheduled"), bad, created))
    # Then every line of each record carries that record's item, and its order when it has one
    logged = lines()
    by_key: dict[str, set[str | None]] = {}
    for line in logged:
        if "dedup_key" in line:
            by_key.setdefault(line["dedup_key"], set()).add(line.get("itemId"))
    assert by_key["order.created:item-new"] == {"item-new"}
    [status_key] = [key for key in by_key if key.startswith("workorder.status_changed:item-scheduled:")]
    assert by_key[status_key] == {"item-scheduled"}
    [failed] = [line for line in logged if line["message"].startswith("order message failed permanently")]
    assert failed["itemId"] == "item-bad"
    assert any(line.get("orderId") == ORDER for line in logged if line.get("itemId") == "item-new")
    # And the duplicate's line too (the idempotency replay), while no line without a record carries one
    duplicate = [line for line in logged if line["message"].startswith("duplicate order message")]
    assert [line["itemId"] for line in duplicate] == ["item-new"]
    assert all(
        "itemId" not in line for line in logged if "dedup_key" not in line and "failed" not in line["message"]
    )
    # And nothing is left behind for the next invocation
    invoke(sqs_event(webhook_body("order.cancelled", orderId="order-other")))
    last = lines()[len(logged) :]
    assert last
    assert all(line.get("itemId") is None for line in last)


def test_the_sweeps_line_about_an_order_only_it_found_names_the_order(
    fake: OffergridFake, stack: Stack, client: OffergridClient, orders_queue: str, lines
):
    fake.add_order_item(id="item-missed-1", orderId="order-missed")
    fake.add_order_item(id="item-missed-2", orderId="order-missed")
    report = sweep_missed_orders(
        client, SqsQueue(orders_queue), clock=SYSTEM_CLOCK, decisions=OrderRecordDecisions(stack.orders)
    )
    assert sorted(report.enqueued) == ["item-missed-1", "item-missed-2"]
    logged = lines()
    found = [line for line in logged if "no webhook brought" in line["message"]]
    assert sorted(line["itemId"] for line in found) == ["item-missed-1", "item-missed-2"]
    assert {line["orderId"] for line in found} == {"order-missed"}
    [finished] = [line for line in logged if line["message"] == "order sweep finished"]
    assert "itemId" not in finished


def test_the_reconciliations_line_about_a_drift_names_its_item(
    fake: OffergridFake, stack: Stack, client: OffergridClient, orders_queue: str, lines
):
    # an item accepted by hand in the Offergrid dashboard: no work order on our side
    fake.add_order_item(id="item-by-hand", orderId="order-by-hand", status="accepted")
    reconcile(
        client,
        SqsQueue(orders_queue),
        orders=stack.orders,
        work_orders=DynamoDBWorkOrderIndex(stack.env["WORK_ORDERS_TABLE"]),
        clock=SYSTEM_CLOCK,
        lookback_seconds=72 * 3600.0,
    )
    logged = lines()
    [drift] = [line for line in logged if line["message"] == "reconciliation found drift"]
    assert (drift["itemId"], drift["orderId"]) == ("item-by-hand", "order-by-hand")
    assert drift["drift"]["kind"] == "missing_work_order"
    [finished] = [line for line in logged if line["message"] == "reconciliation finished"]
    assert "itemId" not in finished
