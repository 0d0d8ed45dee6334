"""Order integrity regressions (issue 10): each case was seen failing before its fix.

Never accepted without a work order, never cancelled with one open, no fulfilment status for an
item we did not accept, no poison message looping to the DLQ. Offergrid is the fake; AWS is moto.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime

import pytest

from devtools.offergrid_fake import OffergridFake
from functions.order_processor import app
from offergrid_integration.clock import Clock
from offergrid_integration.contract import OffergridEvent
from offergrid_integration.offergrid.client import OffergridClient
from offergrid_integration.orders.cancel import handle_order_cancelled
from offergrid_integration.orders.ports import (
    OrderOutcome,
    Ports,
    RecordConflict,
    WorkOrder,
    WorkOrderSink,
    work_order_id_for,
)
from tests.fixtures.processor import use_client, use_ports
from tests.integration import test_order_processor as base
from tests.integration.test_order_invariants import AnswerShaper
from tests.integration.test_order_processor import (
    ITEM,
    ORDER,
    Invoke,
    Stack,
    load_event,
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


class LaterClock:
    """`inner` shifted `offset` seconds ahead: another instance running after a deadline passed."""

    def __init__(self, inner: Clock, offset: float) -> None:
        self.inner, self.offset = inner, offset

    def now(self) -> float:
        return self.inner.now() + self.offset

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


@dataclass
class CancelBeforeWorkOrder:
    """A work-order sink that runs the cancellation (as another instance would) after the accept
    PATCH has landed and before the work order is written: the window of issue 10, case 1."""

    inner: WorkOrderSink
    cancel_ports: Ports
    client: OffergridClient
    results: list[OrderOutcome | Exception] = field(default_factory=list)

    def open(self, work_order: WorkOrder) -> WorkOrder:
        if not self.results:
            event = OffergridEvent("order.cancelled", order_id=ORDER, item_id=ITEM, reason="changed mind")
            try:
                self.results.append(
                    handle_order_cancelled(event, ports=self.cancel_ports, client=self.client, dedup_key="c")
                )
            except Exception as exc:  # that instance's message fails and SQS retries it
                self.results.append(exc)
        return self.inner.open(work_order)

    def cancel(
        self, work_order_id: str, *, item_id: str, reason: str | None, at: datetime
    ) -> WorkOrder | None:
        return self.inner.cancel(work_order_id, item_id=item_id, reason=reason, at=at)


def assert_no_open_work_order_for_a_cancelled_item(fake: OffergridFake, stack: Stack) -> None:
    work_order = stack.work_order(work_order_id_for(ITEM))
    assert fake.order_items[ITEM]["status"] == "cancelled"
    assert work_order is None or work_order["status"] == "cancelled"
    announced = [event["detail-type"] for event in stack.published()]
    if "offergrid.order.accepted" in announced:  # fulfilment heard of it: it must hear it is cancelled
        assert announced[-1] == "offergrid.order.cancelled"


def test_case_1_a_cancel_between_the_accept_patch_and_the_work_order_waits_then_cancels(
    fake: OffergridFake, stack: Stack, runtime: app.Runtime, invoke: Invoke
) -> None:
    # Given a pending item and a cancellation arriving after the accept PATCH, before the work order
    fake.add_order_item(id=ITEM, orderId=ORDER)
    racing = CancelBeforeWorkOrder(runtime.pipeline.ports.work_orders, runtime.pipeline.ports, runtime.client)
    use_ports(runtime, work_orders=racing)

    # When order.created is handled: the cancellation sees a decision in flight and backs off
    assert invoke(load_event("sqs_order_created.json")) == []
    [first] = racing.results
    assert isinstance(first, RecordConflict)

    # When SQS delivers the cancellation again
    assert invoke(load_event("sqs_order_cancelled.json")) == []

    # Then the item is cancelled and so is its work order, and fulfilment heard both
    assert_no_open_work_order_for_a_cancelled_item(fake, stack)
    assert [body["status"] for body in patches(fake, ITEM)] == ["accepted", "cancelled"]


def test_case_1_a_cancel_after_the_deadline_leaves_a_tombstone_the_accept_cannot_open(
    fake: OffergridFake, stack: Stack, runtime: app.Runtime, invoke: Invoke
) -> None:
    # Given the same window, but the cancellation runs after the accept's deadline (as if that
    # instance had hung): it does not wait, it cancels at Offergrid and tombstones the work order
    fake.add_order_item(id=ITEM, orderId=ORDER)
    late = replace(runtime.pipeline.ports, clock=LaterClock(runtime.pipeline.ports.clock, 3_600))
    racing = CancelBeforeWorkOrder(runtime.pipeline.ports.work_orders, late, runtime.client)
    use_ports(runtime, work_orders=racing)

    # When order.created is handled: the cancel lands first, the accept finds the tombstone
    failed = invoke(load_event("sqs_order_created.json"))
    [cancelled] = racing.results
    assert isinstance(cancelled, OrderOutcome)
    assert cancelled.item_ids == (ITEM,)
    assert failed == [load_event("sqs_order_created.json")["Records"][0]["messageId"]]

    # When SQS delivers order.created again, it keeps the item cancelled
    assert invoke(load_event("sqs_order_created.json")) == []

    # Then no work order was ever opened, nothing was announced as accepted
    assert_no_open_work_order_for_a_cancelled_item(fake, stack)
    work_order = stack.work_order(work_order_id_for(ITEM))
    assert work_order is not None
    assert work_order["opened"] is False
    assert stack.record(ITEM).decision == "cancelled"


def test_case_2_a_cancellation_without_item_id_covers_items_we_have_no_record_of(
    fake: OffergridFake, stack: Stack, invoke: Invoke
) -> None:
    # Given an order of three items: one we accepted (a record), two whose webhooks have not arrived
    for item_id in (ITEM, "item-2", "item-3"):
        fake.add_order_item(id=item_id, orderId=ORDER)
    assert invoke(load_event("sqs_order_created.json")) == []
    assert fake.order_items[ITEM]["status"] == "accepted"

    # When the order is cancelled without itemId
    assert invoke(load_event("sqs_order_cancelled_no_item.json")) == []

    # Then the accepted item is cancelled, and the two others are never accepted afterwards,
    # neither by their webhooks nor by the sweep (the same order.created message)
    assert fake.order_items[ITEM]["status"] == "cancelled"
    for item_id in ("item-2", "item-3"):
        body = webhook_body("order.created", itemId=item_id, orderId=ORDER)
        assert invoke(sqs_event(body)) == []
        assert patches(fake, item_id) == []
        assert stack.record(item_id).decision == "cancelled"
        work_order = stack.work_order(work_order_id_for(item_id))
        assert work_order is None or work_order["status"] == "cancelled"


def test_case_2_an_item_listed_only_after_the_cancellation_is_not_accepted(
    fake: OffergridFake, stack: Stack, invoke: Invoke
) -> None:
    # Given an order cancelled without itemId while Offergrid listed one of its items
    fake.add_order_item(id=ITEM, orderId=ORDER)
    assert invoke(load_event("sqs_order_cancelled_no_item.json")) == []
    # ... and a second item of that order that shows up only afterwards
    fake.add_order_item(id="item-late", orderId=ORDER)

    # When its order.created arrives, the order's cancellation is remembered
    assert invoke(sqs_event(webhook_body("order.created", itemId="item-late", orderId=ORDER))) == []
    assert patches(fake, "item-late") == []
    assert stack.record("item-late").decision == "cancelled"


@pytest.mark.parametrize("style", ["204", "empty", "message"])
def test_case_3_a_status_patch_answered_without_the_item_is_applied(
    fake: OffergridFake, stack: Stack, runtime: app.Runtime, invoke: Invoke, style: str
) -> None:
    # Given Offergrid answering status PATCHes with no item (204, empty 200, message-only 200)
    fake.add_order_item(id=ITEM, orderId=ORDER)
    shaper = AnswerShaper()
    use_client(
        runtime,
        OffergridClient(
            base_url=fake.base_url,
            api_key=lambda *, force_refresh=False: "test-api-key",
            remaining_time=runtime.remaining_time,
            transport=shaper,
        ),
    )

    # When the order is accepted, then scheduled by fulfilment
    shaper.next_answer = style
    assert invoke(load_event("sqs_order_created.json")) == []
    shaper.next_answer = style
    assert invoke(sqs_event(status_event(ITEM, "scheduled"))) == []

    # Then both are recorded as applied: a decision, one open work order, no failure
    record = stack.record(ITEM)
    assert (record.decision, record.last_failure, record.offergrid_status) == ("accepted", None, "scheduled")
    work_order = stack.work_order(work_order_id_for(ITEM))
    assert work_order is not None
    assert work_order["status"] == "open"
    assert fake.order_items[ITEM]["status"] == "scheduled"


@pytest.mark.parametrize("current", ["pending", "submitted_to_provider"])
@pytest.mark.parametrize("target", ["scheduled", "in_progress", "completed"])
def test_case_7_no_fulfilment_status_for_an_item_we_never_accepted(
    fake: OffergridFake,
    stack: Stack,
    invoke: Invoke,
    capsys: pytest.CaptureFixture[str],
    current: str,
    target: str,
) -> None:
    # Given an item still waiting for our decision
    fake.add_order_item(id=ITEM, orderId=ORDER, status=current)
    capsys.readouterr()

    # When fulfilment reports a status for it
    assert invoke(sqs_event(status_event(ITEM, target))) == []

    # Then nothing is sent; it is a permanent failure with its own reason, logged and counted
    assert fake.calls_matching("PATCH") == []
    assert fake.order_items[ITEM]["status"] == current
    assert (stack.record(ITEM).last_failure or "").startswith("item_not_accepted")
    assert '"Reason":"item_not_accepted"' in capsys.readouterr().out  # the PermanentFailure metric


@pytest.mark.parametrize(
    "item_id",
    ["item-\ud800", "i" * 3_000, "bad\x07id"],
    ids=["lone-surrogate", "3000-chars", "control-char"],
)
def test_case_8_poison_ids_are_permanent_not_retried(
    fake: OffergridFake, stack: Stack, invoke: Invoke, item_id: str
) -> None:
    # Given queued messages (as an older ingress or a hand-sent message could leave them) whose
    # item id can never be a key: an order.created and a provider status event
    created = json.dumps(webhook_body("order.created", itemId=item_id, orderId=ORDER))
    status = json.dumps(status_event(item_id, "scheduled"))

    # When the processor handles them: no failure reported to SQS, so no retry and no DLQ
    assert invoke(sqs_event(created, status)) == []
    assert fake.calls == []


def test_case_8_an_item_called_dot_is_that_item_not_the_listing(
    fake: OffergridFake, stack: Stack, invoke: Invoke
) -> None:
    # Given an order.created for itemId "." (valid: opaque, docs/decisions.md#12) unknown to Offergrid
    # When it is handled
    assert invoke(sqs_event(webhook_body("order.created", itemId=".", orderId=ORDER))) == []

    # Then Offergrid was asked for that item (404: permanent), never for the listing
    assert [call.path for call in fake.calls] == ["/provider/orders/."]
    assert (stack.record(".").last_failure or "").startswith("item_not_found")
