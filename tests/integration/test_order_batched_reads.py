"""Batched reads (issue 16): a batch's items read with one pending listing instead of a GET each,
through the real handler (its batch processor brackets the batch), against moto and the fake in
both answer modes. The listing's rule is in `orders/steps.py` (`BatchItemReads`).

Listings here hold full items (`sparse_listings=False`) in the mode's envelopes unless a test is
about summaries: the "other" mode's listing summaries cannot stand in for a GET, and a test says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import pytest

from devtools.offergrid_fake import OffergridFake
from devtools.offergrid_fake.answers import resolve_answers
from functions.order_processor import app
from offergrid_integration.clock import ScaledClock
from offergrid_integration.config import load_settings
from offergrid_integration.offergrid import MAX_RETRIES
from offergrid_integration.offergrid.models import OrderItem, OrderItemStatus, StatusUpdate
from offergrid_integration.orders.ports import work_order_id_for
from offergrid_integration.orders.processor import ProcessorSettings, SqsRecord
from offergrid_integration.orders.steps import BatchItemReads, Prefetch, is_full_read
from tests.fixtures.aws import FakeLambdaContext
from tests.fixtures.offergrid_fake import OffergridFakeFactory
from tests.integration.test_order_processor import (
    FAST_CLOCK_SCALE,
    Stack,
    create_stack,
    sqs_event,
    webhook_body,
)

ORDER = "order-batch"


def created(item_id: str) -> dict[str, Any]:
    return webhook_body("order.created", itemId=item_id, orderId=ORDER)


class Harness:
    """The fake, the stack and the processor's handler (a new runtime per harness)."""

    def __init__(self, fake: OffergridFake, stack: Stack) -> None:
        self.fake, self.stack = fake, stack
        app.reset()
        self.runtime = app.Runtime(
            load_settings(ProcessorSettings, stack.env), clock=ScaledClock(FAST_CLOCK_SCALE)
        )
        app.configure(self.runtime)

    def invoke(self, *bodies: dict[str, Any]) -> list[str]:
        response = app.lambda_handler(sqs_event(*bodies), FakeLambdaContext())
        return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]

    def item_gets(self) -> list[str]:
        """Item ids read with GET /provider/orders/{itemId}."""
        return [
            call.path.split("/")[3]
            for call in self.fake.calls
            if call.method == "GET" and call.path.startswith("/provider/orders/")
        ]

    def listings(self) -> int:
        return sum(1 for call in self.fake.calls if call.method == "GET" and call.path == "/provider/orders")


HarnessFactory = Callable[..., Harness]


@pytest.fixture
def harness(
    aws: None, offergrid_fake_factory: OffergridFakeFactory, fake_answers: str
) -> Iterator[HarnessFactory]:
    """`harness(page_size=None, sparse=False)`: a fake in this test's answer mode whose listings
    hold full items (or summaries, `sparse=True`), paged by `page_size` in the mode's envelopes."""
    built: list[Harness] = []

    def build(*, page_size: int | None = None, sparse: bool = False) -> Harness:
        answers = replace(resolve_answers(fake_answers), sparse_listings=sparse)
        if page_size is not None:
            styles = answers.list_styles if answers.list_styles != ("array",) else ("meta-links",)
            answers = replace(answers, list_styles=styles, page_size=page_size)
        fake = offergrid_fake_factory(answers=answers, time_scale=1.0)
        built.append(Harness(fake, create_stack(fake.base_url)))
        return built[-1]

    yield build
    app.reset()


def test_a_batch_of_orders_is_read_with_one_listing_and_decided(harness: HarnessFactory) -> None:
    h = harness()
    items = [h.fake.add_order_item(orderId=ORDER)["id"] for _ in range(4)]

    assert h.invoke(*(created(item_id) for item_id in items)) == []

    # One listing page read the four items (with pages of two: at most two pages), no item GET ...
    assert h.item_gets() == []
    assert 1 <= h.listings() <= (1 if h.fake.answers.page_size is None else 2)
    # ... and every item was decided and has its work order
    for item_id in items:
        assert h.fake.order_items[item_id]["status"] == "accepted"
        work_order = h.stack.work_order(work_order_id_for(item_id))
        assert work_order is not None
        assert work_order["status"] == "open"
        assert work_order["customer"]["fullName"] == "Jane Doe"


def test_an_item_the_listing_does_not_hold_is_read_with_get(harness: HarnessFactory) -> None:
    h = harness()
    pending = [h.fake.add_order_item(orderId=ORDER)["id"] for _ in range(2)]
    moved_on = h.fake.add_order_item(orderId=ORDER, status="submitted_to_provider")["id"]

    assert h.invoke(*(created(item_id) for item_id in [*pending, moved_on])) == []

    # The submitted item is not in the pending listing: its GET, and only its.
    assert h.item_gets() == [moved_on]
    for item_id in [*pending, moved_on]:
        assert h.fake.order_items[item_id]["status"] == "accepted"


def test_a_listing_spanning_pages_is_followed_until_every_wanted_item_is_found(
    harness: HarnessFactory,
) -> None:
    h = harness(page_size=2)
    items = [h.fake.add_order_item(orderId=ORDER)["id"] for _ in range(6)]
    later = h.fake.add_order_item(orderId=ORDER)["id"]  # pending, not in the batch: after the last page read

    assert h.invoke(*(created(item_id) for item_id in items)) == []

    # Six wanted items on pages 1-3 (two per page): three pages, no item GET, page 4 never read.
    assert h.item_gets() == []
    assert h.listings() == 3
    assert all(h.fake.order_items[item_id]["status"] == "accepted" for item_id in items)
    assert h.fake.order_items[later]["status"] == "pending"


def test_pages_that_do_not_pay_for_themselves_are_not_read(harness: HarnessFactory) -> None:
    h = harness(page_size=2)
    ahead = [h.fake.add_order_item(orderId=ORDER)["id"] for _ in range(6)]  # pending, not this batch's
    items = [h.fake.add_order_item(orderId=ORDER)["id"] for _ in range(2)]

    assert h.invoke(*(created(item_id) for item_id in items)) == []

    # Page 1 held none of the batch's items: no second page; each item read with its GET.
    assert h.listings() == 1
    assert sorted(h.item_gets()) == sorted(items)
    assert all(h.fake.order_items[item_id]["status"] == "accepted" for item_id in items)
    assert all(h.fake.order_items[item_id]["status"] == "pending" for item_id in ahead)


def test_a_listing_of_summaries_is_not_a_read(harness: HarnessFactory) -> None:
    h = harness(sparse=True)
    items = [h.fake.add_order_item(orderId=ORDER)["id"] for _ in range(3)]

    assert h.invoke(*(created(item_id) for item_id in items)) == []

    # No address or customer in the listing: each item read with its GET, and decided on it
    # (accepted: a summary without an address would have been rejected as outside coverage).
    assert sorted(h.item_gets()) == sorted(items)
    for item_id in items:
        assert h.fake.order_items[item_id]["status"] == "accepted"
        work_order = h.stack.work_order(work_order_id_for(item_id))
        assert work_order is not None
        assert work_order["customer"]["fullName"] == "Jane Doe"


def assert_decided_from_the_full_item(h: Harness, item_id: str) -> None:
    """Accepted, with a work order holding the item's whole customer and address (as its GET has)."""
    item = h.fake.order_items[item_id]
    assert item["status"] == "accepted"
    work_order = h.stack.work_order(work_order_id_for(item_id))
    assert work_order is not None
    assert work_order["customer"] == item["customerInfo"]
    assert work_order["serviceAddress"] == item["serviceAddress"]


def test_listing_elements_with_an_empty_address_and_customer_are_read_with_get(
    harness: HarnessFactory,
) -> None:
    # Issue 21, case 3: listed with `serviceAddress: {}` and `customerInfo: {}`, the three were
    # rejected as out of coverage with no GET, although each GET holds a covered address.
    h = harness()
    items = [h.fake.add_order_item(orderId=ORDER) for _ in range(3)]
    for item in items:
        h.fake.set_listing_view(item["id"], {**item, "serviceAddress": {}, "customerInfo": {}})

    assert h.invoke(*(created(item["id"]) for item in items)) == []

    assert sorted(h.item_gets()) == sorted(item["id"] for item in items)
    for item in items:
        assert_decided_from_the_full_item(h, item["id"])


def test_listing_elements_with_part_of_the_address_and_customer_are_read_with_get(
    harness: HarnessFactory,
) -> None:
    # Issue 21, case 3: listed with `{city, state}` and `{fullName}`, the items were accepted with
    # work orders holding no street, ZIP code, email or phone.
    h = harness()
    items = [h.fake.add_order_item(orderId=ORDER) for _ in range(3)]
    for item in items:
        address, customer = item["serviceAddress"], item["customerInfo"]
        h.fake.set_listing_view(
            item["id"],
            {
                **item,
                "serviceAddress": {"city": address["city"], "state": address["state"]},
                "customerInfo": {"fullName": customer["fullName"]},
            },
        )

    assert h.invoke(*(created(item["id"]) for item in items)) == []

    assert sorted(h.item_gets()) == sorted(item["id"] for item in items)
    for item in items:
        assert_decided_from_the_full_item(h, item["id"])


def test_a_lone_order_is_read_with_get_not_a_listing(harness: HarnessFactory) -> None:
    h = harness()
    item_id = h.fake.add_order_item(orderId=ORDER)["id"]

    assert h.invoke(created(item_id)) == []

    assert (h.listings(), h.item_gets()) == (0, [item_id])


def test_a_failing_listing_falls_back_to_gets(harness: HarnessFactory) -> None:
    h = harness()
    items = [h.fake.add_order_item(orderId=ORDER)["id"] for _ in range(2)]
    h.fake.inject_fault("status", status=400, method="GET", path="/provider/orders", times=1)

    assert h.invoke(*(created(item_id) for item_id in items)) == []

    assert sorted(h.item_gets()) == sorted(items)
    assert all(h.fake.order_items[item_id]["status"] == "accepted" for item_id in items)


def test_a_stale_listed_item_cancelled_at_offergrid_is_not_accepted(harness: HarnessFactory) -> None:
    h = harness()
    items = [h.fake.add_order_item(orderId=ORDER)["id"] for _ in range(3)]
    stale = items[1]
    # Cancelled at Offergrid after the batch's listing was read, before its message is handled.
    begin_batch = h.runtime.pipeline.begin_batch

    def listing_then_cancel(records: Sequence[SqsRecord]) -> Prefetch:
        prefetch = begin_batch(records)
        h.fake.set_order_item_status(stale, "cancelled")
        return prefetch

    h.runtime.pipeline.begin_batch = listing_then_cancel  # type: ignore[method-assign]

    assert h.invoke(*(created(item_id) for item_id in items)) == []

    # The listing said pending; the accept PATCH was refused and re-read: no acceptance, no work order.
    assert h.fake.order_items[stale]["status"] == "cancelled"
    assert all(entry["to"] != "accepted" for entry in h.fake.history(stale))
    assert h.stack.work_order(work_order_id_for(stale)) is None
    assert h.stack.record(stale).decision != "accepted"
    assert [event["detail"]["itemId"] for event in h.stack.published()] == [items[0], items[2]]
    # The others were decided from the listing.
    assert stale in h.item_gets()  # the re-read after the refused PATCH
    assert all(h.fake.order_items[item_id]["status"] == "accepted" for item_id in (items[0], items[2]))


def test_nothing_listed_survives_the_batch_even_when_a_record_fails(harness: HarnessFactory) -> None:
    h = harness()
    items = [h.fake.add_order_item(orderId=ORDER)["id"] for _ in range(3)]
    failing = items[1]
    attempts = MAX_RETRIES + 1  # every attempt of the client's one PATCH
    h.fake.inject_fault(
        "status", status=503, times=attempts, method="PATCH", path=f"/provider/orders/{failing}/"
    )

    # The failing item's PATCH keeps answering 503: its record goes back to the queue ...
    assert len(h.invoke(*(created(item_id) for item_id in items))) == 1

    # ... and the batch's listing and parsed records are dropped all the same (white box: the
    # pipeline between batches holds nothing read from Offergrid).
    assert h.runtime.pipeline._reads is None
    assert h.runtime.pipeline._parsed == {}
    assert h.fake.pending_faults() == []
    h.fake.clear_calls()
    # The retry, a batch of its own with another order, lists again: nothing carried over.
    other = h.fake.add_order_item(orderId=ORDER)["id"]
    assert h.invoke(created(failing), created(other)) == []
    assert h.listings() == 1
    assert h.fake.order_items[failing]["status"] == "accepted"


# --- BatchItemReads on its own: take-once, a PATCH drops the listed item ------------------------------
class Counting:
    """An `OrderItemsApi` answering from a dict, counting what it is asked."""

    def __init__(self, items: dict[str, OrderItem], page_size: int) -> None:
        self.items, self.page_size = items, page_size
        self.gets: list[str] = []
        self.pages = 0

    def get_order_item(self, item_id: str) -> OrderItem:
        self.gets.append(item_id)
        return self.items[item_id]

    def update_order_item_status(self, item_id: str, update: StatusUpdate) -> OrderItem | None:
        self.items[item_id] = self.items[item_id].model_copy(update={"status": update.status.value})
        return None

    def list_orders(self, status: OrderItemStatus | None = None) -> Iterator[OrderItem]:
        for page in self.list_order_pages(status):
            yield from page

    def list_order_pages(
        self, status: OrderItemStatus | None = None, *, max_retries: int | None = None
    ) -> Iterator[list[OrderItem]]:
        listed = [item for item in self.items.values() if status is None or item.status == status]
        for start in range(0, len(listed), self.page_size):
            self.pages += 1
            yield listed[start : start + self.page_size]


def full_item(item_id: str) -> OrderItem:
    return OrderItem.model_validate(
        {
            "id": item_id,
            "status": "pending",
            "orderId": ORDER,
            "offerId": "offer-1",
            "offerName": "Fiber 1000",
            "notes": None,
            "customerInfo": {"fullName": "Jane Doe", "email": "jane@example.com", "phone": "+1-555-0100"},
            "serviceAddress": {
                "street": "1 Main St",
                "city": "Springfield",
                "state": "IL",
                "zipCode": "62701",
                "country": "US",
            },
        }
    )


def test_a_listed_item_answers_only_the_first_read_and_not_after_a_patch() -> None:
    inner = Counting({f"i{n}": full_item(f"i{n}") for n in range(4)}, page_size=10)
    assert all(is_full_read(item) for item in inner.items.values())
    reads = BatchItemReads(inner)

    prefetch = reads.prefetch(["i0", "i1", "i2"])

    assert (prefetch.found, prefetch.pages, prefetch.stopped) == (3, 1, "all found")
    assert reads.get_order_item("i0").status == "pending"
    assert inner.gets == []
    assert reads.get_order_item("i0").id == "i0"
    assert inner.gets == ["i0"]
    reads.update_order_item_status("i1", StatusUpdate(status=OrderItemStatus.ACCEPTED))
    assert reads.get_order_item("i1").status == "accepted"
    assert inner.gets == ["i0", "i1"]
    assert reads.get_order_item("i3").id == "i3"
    assert inner.gets == ["i0", "i1", "i3"]


def test_the_listing_never_costs_more_than_one_request_beyond_the_gets() -> None:
    # 20 pending items, one per page; the batch wants the last three: page 1 finds none, stop.
    inner = Counting({f"i{n:02d}": full_item(f"i{n:02d}") for n in range(20)}, page_size=1)
    reads = BatchItemReads(inner)
    prefetch = reads.prefetch(["i17", "i18", "i19"])
    assert (prefetch.found, prefetch.pages, inner.pages) == (0, 1, 1)
    # Wanted items spread one every other page: each page read after the first was paid for.
    inner = Counting({f"i{n:02d}": full_item(f"i{n:02d}") for n in range(20)}, page_size=1)
    reads = BatchItemReads(inner)
    wanted = [f"i{n:02d}" for n in range(0, 20, 2)]
    prefetch = reads.prefetch(wanted)
    assert prefetch.pages <= prefetch.found + 1
    assert prefetch.pages + (len(wanted) - prefetch.found) <= len(wanted) + 1


def test_a_listed_summary_answers_a_state_read_but_never_a_full_read() -> None:
    summary = full_item("i1").model_copy(update={"service_address": None})
    inner = Counting({"i0": full_item("i0"), "i1": summary}, page_size=10)
    reads = BatchItemReads(inner)

    prefetch = reads.prefetch(["i0", "i1"])

    # One listed element is a full read, the other a summary: a page paid for by one item.
    assert (prefetch.found, prefetch.summaries, prefetch.pages) == (1, 1, 1)
    assert reads.get_full_order_item("i0") is not None
    assert inner.gets == []
    assert reads.get_full_order_item("i1").id == "i1"  # its GET
    assert inner.gets == ["i1"]
    # A state read (a cancellation's, say) may be answered by the summary: it reads the status only
    reads = BatchItemReads(inner)
    reads.prefetch(["i0", "i1"])
    assert reads.get_order_item("i1").service_address is None
    assert reads.get_full_order_item("i1").id == "i1"
    assert inner.gets == ["i1", "i1"]
