"""The scheduled reconciliation (issue 15) against the Offergrid fake (both answer modes) and moto.

Each kind of drift is made the way it happens in production (a click in the dashboard, a webhook
that never came, a work order nobody can trace), found by `orders.reconcile.reconcile`, and repaired
by the order processor handling the queued repair message, exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from devtools.offergrid_fake import OffergridFake
from functions.offer_sync import app as offer_sync_app
from functions.offer_sync.app import SyncRuntime
from functions.order_processor import app
from offergrid_integration.catalog.settings import SyncSettings
from offergrid_integration.clock import SYSTEM_CLOCK, Clock
from offergrid_integration.config import load_settings
from offergrid_integration.offergrid.client import OffergridClient
from offergrid_integration.orders.adapters.dynamodb import (
    DynamoDBEventBridgeWorkOrders,
    DynamoDBWorkOrderIndex,
)
from offergrid_integration.orders.ports import (
    Decision,
    WorkOrder,
    WorkOrderSink,
    work_order_id_for,
)
from offergrid_integration.orders.reconcile import (
    CappedRateBudget,
    ReconcileReport,
    max_calls_per_run,
    reconcile,
)
from offergrid_integration.orders.repairs import ADOPTED_REASON
from offergrid_integration.sqs_queue import SqsQueue
from tests.fixtures.aws import FakeLambdaContext
from tests.fixtures.offergrid_fake import TEST_API_KEY, OffergridClientFactory
from tests.fixtures.processor import use_ports
from tests.fixtures.queues import receive_all
from tests.integration import test_order_processor as base
from tests.integration.test_order_integrity import LaterClock
from tests.integration.test_order_processor import (
    ORDER,
    Invoke,
    Stack,
    emitted_metrics,
    patches,
    sqs_event,
    status_event,
    webhook_body,
)

fake = base.fake
stack = base.stack
runtime_factory = base.runtime_factory
runtime = base.runtime
invoke = base.invoke

LOOKBACK = 72 * 3600.0


@pytest.fixture
def orders_queue(aws: None) -> str:
    return boto3.client("sqs").create_queue(QueueName="orders")["QueueUrl"]


@pytest.fixture
def client(fake: OffergridFake, offergrid_client_factory: OffergridClientFactory) -> OffergridClient:
    return offergrid_client_factory(fake, max_retries=0)


Reconcile = Callable[..., ReconcileReport]


@pytest.fixture
def run_reconcile(client: OffergridClient, stack: Stack, orders_queue: str) -> Reconcile:
    def run(
        *, dry_run: bool = False, clock: Clock = SYSTEM_CLOCK, max_calls: int | None = None
    ) -> ReconcileReport:
        reader = client
        if max_calls is not None:
            reader = OffergridClient(
                base_url=client.base_url,
                api_key=lambda *, force_refresh=False: TEST_API_KEY,
                max_retries=0,
                rate_budget=CappedRateBudget(None, max_calls),
            )
        return reconcile(
            reader,
            SqsQueue(orders_queue),
            orders=stack.orders,
            work_orders=DynamoDBWorkOrderIndex(stack.env["WORK_ORDERS_TABLE"]),
            clock=clock,
            lookback_seconds=LOOKBACK,
            dry_run=dry_run,
            correlation_id="reconcile-test",
            max_calls=max_calls,
        )

    return run


def queued(queue_url: str) -> list[dict[str, Any]]:
    """The orders-queue messages (taken off the queue) as the processor's SQS records carry them."""
    return [json.loads(message["Body"]) for message in receive_all(boto3.client("sqs"), queue_url)]


def kinds(report: ReconcileReport) -> list[tuple[str, str]]:
    return sorted((drift.kind.value, drift.item_id) for drift in report.drifts)


def announced(stack: Stack) -> list[tuple[str, str]]:
    return [(event["detail-type"], event["detail"]["itemId"]) for event in stack.published()]


def accept_by_webhook(fake: OffergridFake, invoke: Invoke, item_id: str) -> None:
    fake.add_order_item(id=item_id, orderId=ORDER)
    assert invoke(sqs_event(webhook_body("order.created", itemId=item_id, orderId=ORDER))) == []
    assert fake.order_items[item_id]["status"] == "accepted"


# ---------------------------------------------------------------------------------------------------
# Hand-accepted in the dashboard: no work order
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("webhook_first", [False, True], ids=["no-record", "decided-elsewhere"])
def test_an_item_accepted_by_hand_gets_one_work_order_and_may_then_be_fulfilled(
    fake: OffergridFake,
    stack: Stack,
    invoke: Invoke,
    run_reconcile: Reconcile,
    orders_queue: str,
    webhook_first: bool,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given an item someone accepted in the Offergrid dashboard (its webhook lost, or handled after
    # the click: the processor then recorded it `decided_elsewhere` and opened nothing)
    item = fake.add_order_item(id="item-by-hand", orderId=ORDER, status="accepted")
    if webhook_first:
        assert invoke(sqs_event(webhook_body("order.created", itemId=item["id"], orderId=ORDER))) == []
        assert stack.record(item["id"]).decision is Decision.DECIDED_ELSEWHERE
    assert stack.work_order(work_order_id_for(item["id"])) is None

    # When the reconciliation runs
    report = run_reconcile()

    # Then it reports the drift and queues one repair with its dedup key; Offergrid is not written
    assert kinds(report) == [("missing_work_order", item["id"])]
    [message] = queued(orders_queue)
    assert message["dedupKey"] == f"reconcile.open_work_order:{item['id']}"
    assert (message["source"], message["event"]["event"]) == ("reconcile", "reconcile.open_work_order")
    assert fake.calls_matching("PATCH") == []

    # When the processor handles the repair
    assert invoke(sqs_event(message)) == []

    # Then exactly one work order is open and fulfilment heard of it once
    work_order = stack.work_order(work_order_id_for(item["id"]))
    assert work_order is not None
    assert work_order["status"] == "open"
    assert work_order["customer"]["fullName"] == "Jane Doe"
    assert announced(stack) == [("offergrid.order.accepted", item["id"])]
    # ... the item counts as accepted by us, so fulfilment statuses are pushed for it (decision 11)
    record = stack.record(item["id"])
    assert (record.decision, record.decision_reason) == (Decision.ACCEPTED, ADOPTED_REASON)
    assert invoke(sqs_event(status_event(item["id"], "scheduled"))) == []
    assert fake.order_items[item["id"]]["status"] == "scheduled"
    assert [body["status"] for body in patches(fake, item["id"])] == ["scheduled"]
    # ... the repair delivered again is a duplicate, and the next run finds nothing
    assert invoke(sqs_event(message)) == []
    assert stack.published() == []
    assert run_reconcile().drifts == []
    assert queued(orders_queue) == []
    emitted = emitted_metrics(capsys.readouterr().out)
    assert ("PermanentFailure", "item_not_accepted") not in emitted
    # ... and on-call sees the repair itself counted, not only the drift
    assert ("ReconcileWorkOrderOpened", None) in emitted


# ---------------------------------------------------------------------------------------------------
# Cancelled at Offergrid, the webhook never came: the work order must not stay open
# ---------------------------------------------------------------------------------------------------
def test_an_item_cancelled_silently_gets_its_work_order_cancelled_and_announced(
    fake: OffergridFake,
    stack: Stack,
    invoke: Invoke,
    run_reconcile: Reconcile,
    orders_queue: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given an item we accepted (work order open), then cancelled at Offergrid without a webhook
    accept_by_webhook(fake, invoke, "item-cancelled")
    stack.published()
    fake.set_order_item_status("item-cancelled", "cancelled")

    # When the reconciliation runs and the processor handles its repair
    report = run_reconcile()
    assert kinds(report) == [("open_work_order_for_ended_item", "item-cancelled")]
    [message] = queued(orders_queue)
    assert message["dedupKey"] == "reconcile.cancel_work_order:item-cancelled"
    assert invoke(sqs_event(message)) == []

    # Then the work order is cancelled, fulfilment heard it, and Offergrid got no PATCH from us
    work_order = stack.work_order(work_order_id_for("item-cancelled"))
    assert work_order is not None
    assert work_order["status"] == "cancelled"
    assert announced(stack) == [("offergrid.order.cancelled", "item-cancelled")]
    assert [body["status"] for body in patches(fake, "item-cancelled")] == ["accepted"]
    assert stack.record("item-cancelled").cancelled_at is not None
    assert ("ReconcileWorkOrderCancelled", None) in emitted_metrics(capsys.readouterr().out)
    assert run_reconcile().drifts == []


def test_a_failed_status_our_fulfilment_pushed_is_no_drift(
    fake: OffergridFake, stack: Stack, invoke: Invoke, run_reconcile: Reconcile
) -> None:
    accept_by_webhook(fake, invoke, "item-failed")
    for status in ("in_progress", "failed"):
        assert invoke(sqs_event(status_event("item-failed", status))) == []
    assert fake.order_items["item-failed"]["status"] == "failed"

    assert run_reconcile().drifts == []


# ---------------------------------------------------------------------------------------------------
# A work order for an item Offergrid does not have: reported, never repaired by itself
# ---------------------------------------------------------------------------------------------------
def test_a_work_order_for_an_unknown_item_is_reported_not_touched(
    fake: OffergridFake,
    stack: Stack,
    run_reconcile: Reconcile,
    orders_queue: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given an open work order whose item Offergrid does not know (restored from a backup, typed in
    # by hand, an item of another environment)
    sink = DynamoDBEventBridgeWorkOrders(stack.env["WORK_ORDERS_TABLE"], stack.env["EVENT_BUS_NAME"])
    ghost = work_order_id_for("item-ghost")
    now = datetime.now(UTC)
    sink.open(WorkOrder(work_order_id=ghost, item_id="item-ghost", order_id="ord-x", created_at=now))
    stack.published()

    # When the reconciliation runs
    report = run_reconcile()

    # Then it is reported (and counted), nothing is queued and the work order is left open
    assert kinds(report) == [("unknown_work_order", "item-ghost")]
    assert report.drifts[0].repair is None
    assert report.to_dict()["drift"]["unknown_work_order"] == 1
    assert queued(orders_queue) == []
    work_order = stack.work_order(ghost)
    assert work_order is not None
    assert work_order["status"] == "open"
    assert fake.calls_matching("GET", "/provider/orders/item-ghost")[-1].status == 404


def test_our_cancellation_contradicted_by_offergrid_is_reported_not_reopened(
    fake: OffergridFake, stack: Stack, invoke: Invoke, run_reconcile: Reconcile, orders_queue: str
) -> None:
    # Given an item cancelled before our decision (work order tombstoned), later accepted by hand
    fake.add_order_item(id="item-reopened", orderId=ORDER)
    assert invoke(sqs_event(webhook_body("order.cancelled", itemId="item-reopened", orderId=ORDER))) == []
    fake.set_order_item_status("item-reopened", "accepted")

    report = run_reconcile()

    assert kinds(report) == [("decision_mismatch", "item-reopened")]
    assert queued(orders_queue) == []
    assert stack.published() == []


# ---------------------------------------------------------------------------------------------------
# Dry run, the budget cap, the metrics
# ---------------------------------------------------------------------------------------------------
def test_a_dry_run_reports_the_differences_and_queues_nothing(
    fake: OffergridFake, stack: Stack, invoke: Invoke, run_reconcile: Reconcile, orders_queue: str
) -> None:
    fake.add_order_item(id="item-by-hand", status="accepted")
    accept_by_webhook(fake, invoke, "item-cancelled")
    fake.set_order_item_status("item-cancelled", "cancelled")
    fake.clear_calls()

    report = run_reconcile(dry_run=True)

    assert kinds(report) == [
        ("missing_work_order", "item-by-hand"),
        ("open_work_order_for_ended_item", "item-cancelled"),
    ]
    assert "would queue 2 repairs" in report.summary()
    assert queued(orders_queue) == []
    assert {call.method for call in fake.calls} == {"GET"}


def test_a_run_stops_at_its_share_of_the_budget_and_says_so(
    fake: OffergridFake, stack: Stack, run_reconcile: Reconcile
) -> None:
    fake.add_order_item(id="item-by-hand", status="accepted")

    report = run_reconcile(max_calls=1)

    # The first listing (accepted) fits, the rest does not: what it found is still repaired
    assert report.incomplete is not None
    assert "1 calls" in report.incomplete
    assert kinds(report) == [("missing_work_order", "item-by-hand")]
    recorded: list[str] = []

    class Recorder:
        def add_metric(self, name: str, unit: str, value: float) -> None:
            if value:
                recorded.append(name)

    report.emit_metrics(Recorder())
    # (ReconcileRuns: the heartbeat of the reconcile-not-running alarm, a run however it went; issue 25)
    assert sorted(recorded) == [
        "ReconcileFailed",
        "ReconcileMissingWorkOrder",
        "ReconcileRepairsQueued",
        "ReconcileRuns",
    ]


def test_the_budget_share_gives_calls_per_run() -> None:
    assert max_calls_per_run(0.1, 60) == 1_000
    assert max_calls_per_run(0.1, 15) == 250
    assert max_calls_per_run(0.05, 1440) == 500  # a daily run may not spend more than an hour's share


# ---------------------------------------------------------------------------------------------------
# A reconciliation racing a webhook for the same item: still one work order
# ---------------------------------------------------------------------------------------------------
@dataclass
class ReconcileBeforeWorkOrder:
    """A work-order sink that lets the reconciliation run (as the schedule would) after the accept
    PATCH landed and before the work order is written: the one window where the item is accepted at
    Offergrid and has no work order."""

    inner: WorkOrderSink
    run: Callable[[], ReconcileReport]
    reports: list[ReconcileReport] = field(default_factory=list)

    def open(self, work_order: WorkOrder) -> WorkOrder:
        if not self.reports:
            self.reports.append(self.run())
        return self.inner.open(work_order)

    def cancel(self, work_order_id: str, *, item_id: str, reason: str | None, at: Any) -> WorkOrder | None:
        return self.inner.cancel(work_order_id, item_id=item_id, reason=reason, at=at)


def test_a_reconciliation_during_our_acceptance_leaves_it_alone(
    fake: OffergridFake,
    stack: Stack,
    runtime: app.Runtime,
    invoke: Invoke,
    run_reconcile: Reconcile,
    orders_queue: str,
) -> None:
    racing = ReconcileBeforeWorkOrder(runtime.pipeline.ports.work_orders, run_reconcile)
    use_ports(runtime, work_orders=racing)
    fake.add_order_item(id="item-race", orderId=ORDER)

    assert invoke(sqs_event(webhook_body("order.created", itemId="item-race", orderId=ORDER))) == []

    [report] = racing.reports
    assert (report.drifts, report.in_flight) == ([], 1)
    assert queued(orders_queue) == []
    assert announced(stack) == [("offergrid.order.accepted", "item-race")]


@pytest.mark.parametrize("repair_first", [True, False], ids=["repair-first", "webhook-first"])
def test_a_repair_and_the_webhook_of_the_same_item_give_one_work_order(
    fake: OffergridFake,
    stack: Stack,
    runtime_factory: Callable[..., app.Runtime],
    run_reconcile: Reconcile,
    orders_queue: str,
    repair_first: bool,
) -> None:
    # Given our acceptance that crashed after its PATCH landed and before its work order was written
    # (the message goes back to the queue; the decision's deadline passes)
    fake.add_order_item(id="item-race", orderId=ORDER)
    crashing = runtime_factory()

    class Crash(Exception):
        """The invocation dies between its PATCH and its work order."""

    class CrashOnOpen:
        def open(self, work_order: WorkOrder) -> WorkOrder:
            raise Crash

        def cancel(self, work_order_id: str, **kwargs: Any) -> WorkOrder | None:
            raise AssertionError("not expected")

    use_ports(crashing, work_orders=CrashOnOpen())
    webhook = webhook_body("order.created", itemId="item-race", orderId=ORDER)
    response = app.lambda_handler(sqs_event(webhook), FakeLambdaContext())
    assert len(response["batchItemFailures"]) == 1
    assert fake.order_items["item-race"]["status"] == "accepted"
    stack.orders.table.update_item(  # the invocation died: its in-flight deadline is long past
        Key={"itemId": "item-race"}, UpdateExpression="REMOVE decisionDeadline"
    )

    # When the reconciliation finds the item accepted without a work order
    later = LaterClock(SYSTEM_CLOCK, 1_000)
    report = run_reconcile(clock=later)
    assert kinds(report) == [("missing_work_order", "item-race")]
    [repair] = queued(orders_queue)

    # ... and the processor gets the repair and the webhook's retry, in either order
    runtime_factory()
    first, second = (repair, webhook) if repair_first else (webhook, repair)
    for body in (first, second):
        assert app.lambda_handler(sqs_event(body), FakeLambdaContext())["batchItemFailures"] == []

    # Then one work order, announced once, one acceptance at Offergrid
    work_order = stack.work_order(work_order_id_for("item-race"))
    assert work_order is not None
    assert work_order["status"] == "open"
    assert announced(stack) == [("offergrid.order.accepted", "item-race")]
    assert [body["status"] for body in patches(fake, "item-race")] == ["accepted"]
    record = stack.record("item-race")
    assert record.decision is Decision.ACCEPTED
    assert record.decision_reason != ADOPTED_REASON  # it was our own acceptance
    assert run_reconcile().drifts == []


# ---------------------------------------------------------------------------------------------------
# The scheduled function: its own switch, in every shape the trigger delivers
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "event",
    [
        {"reconcile": True, "sweep": False, "sync": False},
        {
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "detail": {"reconcile": True, "sync": False},
        },
    ],
    ids=["scheduler-input", "classic-scheduled-event"],
)
def test_the_schedule_input_switches_the_reconciliation_on(
    fake: OffergridFake,
    stack: Stack,
    orders_queue: str,
    event: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake.add_order_item(id="item-by-hand", status="accepted")
    env = {
        **stack.env,
        "CATALOG_SOURCE_URI": "s3://unused/catalog.csv",
        "SYNC_STATE_TABLE": "unused",
        "ORDERS_QUEUE_URL": orders_queue,
    }
    offer_sync_app.configure(SyncRuntime(load_settings(SyncSettings, env)))
    try:
        result = offer_sync_app.lambda_handler(event, FakeLambdaContext(timeout_seconds=900))
        default = offer_sync_app.schedule_input({})
    finally:
        offer_sync_app.reset()

    assert result["reconcile"]["drift"]["missing_work_order"] == 1
    assert result["reconcile"]["repairsQueued"] == 1
    assert 0 < result["reconcile"]["calls"] <= result["reconcile"]["maxCalls"] == 1_000
    assert [m["dedupKey"] for m in queued(orders_queue)] == ["reconcile.open_work_order:item-by-hand"]
    assert ("ReconcileMissingWorkOrder", None) in emitted_metrics(capsys.readouterr().out)
    json.dumps(result)
    assert default.reconcile is False  # `{}` (a console test): the reconciliation stays off


def test_an_old_open_work_order_of_an_item_listed_without_created_at_is_no_drift(
    fake: OffergridFake, stack: Stack, run_reconcile: Reconcile
) -> None:
    # Given an item in progress that the listing gives without `createdAt` (the guide documents no
    # listing fields), whose work order was opened before the lookback window
    fake.add_order_item(id="item-long-running", orderId=ORDER, status="in_progress", createdAt=None)
    stack.we_accepted("item-long-running")
    sink = DynamoDBEventBridgeWorkOrders(stack.env["WORK_ORDERS_TABLE"], stack.env["EVENT_BUS_NAME"])
    opened = datetime.fromtimestamp(SYSTEM_CLOCK.now() - LOOKBACK - 86_400, UTC)
    wo_id = work_order_id_for("item-long-running")
    sink.open(WorkOrder(work_order_id=wo_id, item_id="item-long-running", order_id=ORDER, created_at=opened))

    # Then its open work order is found: no drift
    report = run_reconcile()
    assert report.drifts == []
    assert report.outside_window == 1
