"""Races and lost answers: a PATCH Offergrid applied but whose answer never arrived, and a
cancellation arriving while an acceptance is in flight.

Offergrid is the fake throughout. A lost answer is played by a transport that forwards the request
to the fake (which applies it) and then raises a read timeout instead of returning the response.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from devtools.offergrid_fake import OffergridFake
from functions.order_processor import app
from offergrid_integration.clock import ScaledClock
from offergrid_integration.contract import OffergridEvent
from offergrid_integration.offergrid.client import OffergridClient
from offergrid_integration.orders.cancel import handle_order_cancelled
from offergrid_integration.orders.ports import (
    Decision,
    OrderOutcome,
    OrderRecord,
    OrderStore,
    Ports,
    RecordConflict,
    work_order_id_for,
)
from tests.fixtures.processor import use_client, use_ports
from tests.integration import test_order_processor as base
from tests.integration.test_order_processor import (
    FAST_CLOCK_SCALE,
    ITEM,
    ORDER,
    Invoke,
    Stack,
    load_event,
    patches,
    sqs_event,
    status_event,
)

fake = base.fake
stack = base.stack
runtime_factory = base.runtime_factory
runtime = base.runtime
invoke = base.invoke

STATUS_PATH = f"/provider/orders/{ITEM}/status"


class AnswerLostOnce(httpx.BaseTransport):
    """Sends every request to the fake; the first PATCH of `path` is applied there, but its answer
    is lost (a read timeout), as when a connection drops after Offergrid committed the change."""

    def __init__(self, path: str) -> None:
        self._inner = httpx.HTTPTransport()
        self._path = path
        self.lost = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if self.lost == 0 and request.method == "PATCH" and request.url.path == self._path:
            response.read()
            response.close()
            self.lost += 1
            raise httpx.ReadTimeout("answer lost after the write was applied", request=request)
        return response

    def close(self) -> None:
        self._inner.close()


@pytest.fixture
def lossy(fake: OffergridFake, runtime: app.Runtime) -> AnswerLostOnce:
    """The runtime's Offergrid client, through a transport that loses the first PATCH answer."""
    transport = AnswerLostOnce(STATUS_PATH)
    use_client(
        runtime,
        OffergridClient(
            base_url=fake.base_url,
            api_key=lambda *, force_refresh=False: "test-api-key",
            clock=ScaledClock(FAST_CLOCK_SCALE),
            remaining_time=runtime.remaining_time,
            transport=transport,
        ),
    )
    return transport


def transitions_to(fake: OffergridFake, status: str) -> int:
    return sum(1 for entry in fake.history(ITEM) if entry["to"] == status)


# ---------------------------------------------------------------------------------------------------
# A PATCH applied by Offergrid whose answer was lost
# ---------------------------------------------------------------------------------------------------
def test_an_accept_applied_but_unanswered_is_finished_not_failed(
    fake: OffergridFake, stack: Stack, invoke: Invoke, lossy: AnswerLostOnce
) -> None:
    # Given a pending item, and the answer to the first accept PATCH lost after Offergrid applied it
    fake.add_order_item(id=ITEM, orderId=ORDER)

    # When the processor handles order.created (the client retries the PATCH and gets 422 "already")
    assert invoke(load_event("sqs_order_created.json")) == []

    # Then the 422 is recognised as our own applied PATCH: accepted once, decision and work order kept
    assert lossy.lost == 1
    [applied, refused] = [call.status for call in fake.calls_matching("PATCH", STATUS_PATH)]
    assert (200 <= applied < 300, refused) == (True, 422)  # 200 + item, or 204 / a message
    assert fake.order_items[ITEM]["status"] == "accepted"
    assert transitions_to(fake, "accepted") == 1
    record = stack.record(ITEM)
    assert (record.decision, record.intended_decision, record.last_failure) == ("accepted", None, None)
    work_order = stack.work_order(work_order_id_for(ITEM))
    assert work_order is not None
    assert work_order["status"] == "open"
    [announced] = stack.published()
    assert announced["detail-type"] == "offergrid.order.accepted"


def test_a_cancel_applied_but_unanswered_is_recorded_as_cancelled(
    fake: OffergridFake, stack: Stack, invoke: Invoke, lossy: AnswerLostOnce
) -> None:
    # Given an item accepted elsewhere, and the answer to our cancel PATCH lost after it was applied
    fake.add_order_item(id=ITEM, orderId=ORDER, status="accepted")

    # When the cancellation is handled (the retried PATCH gets 422: cancelled is terminal)
    assert invoke(load_event("sqs_order_cancelled.json")) == []

    # Then it is recorded as cancelled, not as a refused transition
    assert lossy.lost == 1
    assert fake.order_items[ITEM]["status"] == "cancelled"
    assert transitions_to(fake, "cancelled") == 1
    record = stack.record(ITEM)
    assert (record.offergrid_status, record.last_failure) == ("cancelled", None)
    assert record.cancelled_at is not None
    assert record.history[-1].detail == "cancelled"


def test_a_status_push_applied_but_unanswered_is_recorded_as_pushed(
    fake: OffergridFake, stack: Stack, invoke: Invoke, lossy: AnswerLostOnce
) -> None:
    fake.add_order_item(id=ITEM, orderId=ORDER, status="accepted")
    stack.we_accepted(ITEM)

    assert invoke(sqs_event(status_event(ITEM, "in_progress"))) == []

    assert lossy.lost == 1
    assert fake.order_items[ITEM]["status"] == "in_progress"
    record = stack.record(ITEM)
    assert (record.history[-1].action, record.last_failure) == ("status_pushed", None)


def test_a_refusal_for_another_status_is_still_a_permanent_failure(
    fake: OffergridFake, stack: Stack, invoke: Invoke
) -> None:
    # Given the item moves elsewhere between our GET and our PATCH (the fake refuses with 422)
    fake.add_order_item(id=ITEM, orderId=ORDER, status="accepted")
    stack.we_accepted(ITEM)
    fake.inject_fault("status", status=422, method="PATCH", path=STATUS_PATH)

    assert invoke(sqs_event(status_event(ITEM, "scheduled"))) == []

    # Then the re-read shows it is not in the target status: the refusal stands
    assert fake.order_items[ITEM]["status"] == "accepted"
    assert (stack.record(ITEM).last_failure or "").startswith("invalid_transition")
    assert len(fake.calls_matching("GET", f"/provider/orders/{ITEM}")) == 2


# ---------------------------------------------------------------------------------------------------
# A cancellation arriving while the acceptance is in flight
# ---------------------------------------------------------------------------------------------------
@dataclass
class CancelDuringAccept:
    """An order store that, right after the acceptance saved its intended decision (so before its
    PATCH), runs the cancellation as another Lambda instance would: deterministically in between."""

    inner: OrderStore
    cancel_ports: Ports
    client: OffergridClient
    results: list[OrderOutcome | Exception] = field(default_factory=list)

    def get(self, item_id: str) -> OrderRecord | None:
        return self.inner.get(item_id)

    def find_by_order(self, order_id: str) -> list[OrderRecord]:
        return self.inner.find_by_order(order_id)

    def save(self, record: OrderRecord) -> OrderRecord:
        saved = self.inner.save(record)
        if not self.results and record.intended_decision is Decision.ACCEPTED and record.decision is None:
            cancelled = OffergridEvent("order.cancelled", order_id=ORDER, item_id=ITEM, reason="changed mind")
            try:
                self.results.append(
                    handle_order_cancelled(
                        cancelled,
                        ports=self.cancel_ports,
                        client=self.client,
                        dedup_key=f"order.cancelled:{ORDER}:{ITEM}",
                    )
                )
            except Exception as exc:  # the other instance's message fails: SQS retries it
                self.results.append(exc)
        return saved


def test_a_cancellation_during_an_accept_is_retried_and_then_cancels(
    fake: OffergridFake, stack: Stack, runtime: app.Runtime, invoke: Invoke
) -> None:
    # Given a pending item, and a cancellation that runs between the accept's intent and its PATCH
    fake.add_order_item(id=ITEM, orderId=ORDER)
    racing = CancelDuringAccept(runtime.pipeline.ports.orders, runtime.pipeline.ports, runtime.client)
    use_ports(runtime, orders=racing)

    # When order.created is handled
    assert invoke(load_event("sqs_order_created.json")) == []

    # Then the cancellation backed off (transient) and the acceptance went through whole
    [cancel_result] = racing.results
    assert isinstance(cancel_result, RecordConflict)
    assert fake.order_items[ITEM]["status"] == "accepted"
    assert stack.record(ITEM).decision == "accepted"

    # When SQS delivers the cancellation again, the accepted item and its work order are cancelled
    assert invoke(load_event("sqs_order_cancelled.json")) == []
    assert [body["status"] for body in patches(fake, ITEM)] == ["accepted", "cancelled"]
    assert fake.order_items[ITEM]["status"] == "cancelled"
    work_order = stack.work_order(work_order_id_for(ITEM))
    assert work_order is not None
    assert work_order["status"] == "cancelled"
    assert [event["detail-type"] for event in stack.published()] == [
        "offergrid.order.accepted",
        "offergrid.order.cancelled",
    ]
    record = stack.record(ITEM)
    assert (record.offergrid_status, record.intended_decision) == ("cancelled", None)
    assert record.cancelled_at is not None


def test_an_abandoned_decision_does_not_block_a_cancellation(
    fake: OffergridFake, stack: Stack, invoke: Invoke
) -> None:
    # Given an accept that saved its intent an hour ago and never PATCHed (longer than any invocation)
    fake.add_order_item(id=ITEM, orderId=ORDER)
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    stack.orders.save(
        OrderRecord(
            item_id=ITEM,
            order_id=ORDER,
            intended_decision=Decision.ACCEPTED,
            created_at=an_hour_ago,
            updated_at=an_hour_ago,
        )
    )

    # When the cancellation arrives, it is not held back by the stale intent
    assert invoke(load_event("sqs_order_cancelled.json")) == []
    record = stack.record(ITEM)
    assert (record.decision, record.intended_decision) == ("cancelled", None)

    # ... and the item is never accepted afterwards
    assert invoke(load_event("sqs_order_created.json")) == []
    assert fake.calls_matching("PATCH") == []
    assert fake.order_items[ITEM]["status"] == "pending"
