"""The tolerant client (docs/decisions.md#5, #10, #12) against the fake answering the other way.

Regression tests of issue #10: a status PATCH answered 204 / 200 without the item (3); a GET
answered without the item (3); paged envelopes we did not know (4; issue 21's are in
test_offergrid_client_paging.py); one unreadable listed item (5); 429 without Retry-After (6); the
item id "." (8).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from aws_lambda_powertools import Metrics

from devtools.offergrid_fake import OffergridFake
from devtools.offergrid_fake.pagination import LIST_STYLES
from offergrid_integration.metrics_names import OFFERGRID_UNREADABLE_ITEM
from offergrid_integration.offergrid import MAX_RETRY_DELAY
from offergrid_integration.offergrid.client import OffergridClient
from offergrid_integration.offergrid.errors import (
    NotFoundError,
    OffergridError,
    RateLimitError,
    UnexpectedResponseError,
    UnreadableResponseError,
)
from offergrid_integration.offergrid.models import (
    ConnectionType,
    InternetServiceData,
    Offer,
    OfferCategory,
    OfferCreate,
    OfferUpdate,
    OrderItem,
    OrderItemStatus,
    StatusUpdate,
)
from offergrid_integration.offergrid.observer import MetricsObserver
from tests.fixtures.offergrid_fake import (
    TEST_API_KEY,
    OffergridClientFactory,
    OffergridFakeFactory,
    RecordingClock,
)

ACCEPT = StatusUpdate(status=OrderItemStatus.ACCEPTED, provider_notes="We can serve this")
PAGED_STYLES = [style for style in LIST_STYLES if style != "array"]


class RecordingObserver:
    def __init__(self) -> None:
        self.unreadable: list[tuple[str, str]] = []
        self.statuses: list[int | None] = []

    def on_response(self, method: str, status: int | None) -> None:
        self.statuses.append(status)

    def on_budget_wait(self, seconds: float) -> None:
        return None

    def on_budget_exhausted(self) -> None:
        return None

    def on_unreadable_item(self, method: str, path: str) -> None:
        self.unreadable.append((method, path))


@pytest.fixture
def make_client(offergrid_client_factory: OffergridClientFactory) -> OffergridClientFactory:
    return functools.partial(offergrid_client_factory, timeout=5.0)


@pytest.fixture
def other(offergrid_fake_factory: OffergridFakeFactory) -> OffergridFake:
    return offergrid_fake_factory(answers="other")


def served_by(handler: Callable[[httpx.Request], httpx.Response]) -> OffergridClient:
    return OffergridClient(
        base_url="http://127.0.0.1:9",
        api_key=lambda *, force_refresh=False: TEST_API_KEY,
        transport=httpx.MockTransport(handler),
        rng=lambda: 0.0,
        clock=RecordingClock(),
    )


def fiber(sku: str) -> OfferCreate:
    return OfferCreate(
        name="Fiber",
        category=OfferCategory.INTERNET,
        sku=sku,
        monthly_price=59.99,
        service_specific_data=InternetServiceData(
            min_bandwidth=100, max_bandwidth=1000, connection_type=ConnectionType.FIBER
        ),
    )


# --- #3: any 2xx is success ------------------------------------------------------------------------


def test_status_patch_answered_204_200_empty_or_a_message_is_applied_and_returns_none(
    other: OffergridFake, make_client
):
    client = make_client(other)
    items = [other.add_order_item()["id"] for _ in range(3)]

    results = [client.update_order_item_status(item_id, ACCEPT) for item_id in items]

    assert results == [None, None, None]
    assert [call.status for call in other.calls_matching("PATCH")] == [204, 200, 200]
    assert [other.order_items[item_id]["status"] for item_id in items] == ["accepted"] * 3
    assert len(other.calls) == 3  # each sent once: success, not an error retried or refused


def test_status_patch_answered_with_the_item_returns_it(offergrid_fake: OffergridFake, make_client):
    item_id = offergrid_fake.add_order_item()["id"]

    result = make_client(offergrid_fake).update_order_item_status(item_id, ACCEPT)

    assert isinstance(result, OrderItem)
    assert (result.id, result.status, result.provider_notes) == (
        item_id,
        OrderItemStatus.ACCEPTED,
        "We can serve this",
    )


def test_status_patch_answered_with_another_items_body_is_not_taken_for_ours(make_client):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "someone-else", "status": "pending"})

    with served_by(handler) as client:
        assert client.update_order_item_status("item-1", ACCEPT) is None


@pytest.mark.parametrize(("kind", "status"), [("empty", 204), ("empty", 200), ("message", 200)])
def test_a_read_answered_without_the_item_is_a_retryable_error(
    offergrid_fake: OffergridFake, make_client, kind: str, status: int
):
    item_id = offergrid_fake.add_order_item()["id"]
    offergrid_fake.inject_fault(kind, status=status, method="GET")

    with pytest.raises(UnreadableResponseError) as info:
        make_client(offergrid_fake).get_order_item(item_id)

    assert info.value.retryable is True
    assert isinstance(info.value, OffergridError)
    assert (info.value.status_code, info.value.method) == (status, "GET")
    assert len(offergrid_fake.calls) == 1  # not retried at once: the caller (SQS) retries later


def test_get_offer_answered_without_the_offer_is_a_retryable_error(
    offergrid_fake: OffergridFake, make_client
):
    offer_id = offergrid_fake.add_offer(sku="G-1")["id"]
    offergrid_fake.inject_fault("empty", method="GET")

    with pytest.raises(UnreadableResponseError, match="without a JSON body"):
        make_client(offergrid_fake).get_offer(offer_id)


@pytest.mark.parametrize("body", [{"data": None}, {"id": None, "status": "pending"}, [], "OK"])
def test_a_read_with_an_unreadable_body_is_a_retryable_error(make_client, body: Any):
    with (
        served_by(lambda request: httpx.Response(200, json=body)) as client,
        pytest.raises(UnreadableResponseError) as info,
    ):
        client.get_order_item("item-1")
    assert info.value.retryable is True


def test_a_resource_wrapped_in_data_is_read(make_client):
    item = {"id": "item-1", "status": "accepted", "orderId": "o-1"}
    with served_by(lambda request: httpx.Response(200, json={"data": item})) as client:
        assert client.get_order_item("item-1").order_id == "o-1"
        assert client.update_order_item_status("item-1", ACCEPT) == OrderItem.model_validate(item)


def test_offer_writes_answered_without_the_offer(other: OffergridFake, make_client):
    client = make_client(other)

    created = [client.create_offer(fiber("W-1")), client.create_offer(fiber("W-2"))]
    ids = {offer["sku"]: offer["id"] for offer in other.offers.values()}
    updated = [client.update_offer(ids["W-1"], OfferUpdate(monthly_price=49.99)) for _ in range(3)]
    deleted = [client.delete_offer(offer_id) for offer_id in ids.values()]

    assert created == [None, None]  # 201 without a body, 200 with a message
    assert updated == [None, None, None]  # 204, 200 with a message, 200 empty
    assert deleted == [None, None]
    assert [call.status for call in other.calls_matching("DELETE")] == [200, 200]
    assert other.offers == {}
    assert len(other.calls) == 7


def test_offer_writes_answered_with_the_offer_return_it(offergrid_fake: OffergridFake, make_client):
    client = make_client(offergrid_fake)
    created = client.create_offer(fiber("W-3"))
    assert isinstance(created, Offer)
    updated = client.update_offer(created.id, OfferUpdate(monthly_price=9.5))
    assert isinstance(updated, Offer)
    assert updated.monthly_price == 9.5


# --- #4: every paging convention -------------------------------------------------------------------


@pytest.mark.parametrize("style", PAGED_STYLES)
def test_every_envelope_is_followed_to_the_last_page(offergrid_fake_factory, make_client, style: str):
    fake = offergrid_fake_factory(answers="other", list_style=style, page_size=2)
    pending = [fake.add_order_item()["id"] for _ in range(5)]
    fake.add_order_item(status="accepted")
    skus = [fake.add_offer(sku=f"P-{n}")["sku"] for n in range(3)]
    client = make_client(fake)

    items = list(client.list_orders(OrderItemStatus.PENDING))
    offers = list(client.list_offers())

    assert [item.id for item in items] == pending
    assert [offer.sku for offer in offers] == skus
    listing = fake.calls_matching("GET", "/provider/orders")
    assert len(listing) == 3
    assert all(call.query["status"] == ["pending"] for call in listing)
    assert len(fake.calls_matching("GET", "/provider/offers")) == 2


def test_the_other_mode_listings_rotate_and_are_all_read_whole(other: OffergridFake, make_client):
    for n in range(5):
        other.add_offer(sku=f"ROT-{n}")
    client = make_client(other)

    listings = [sorted(offer.sku for offer in client.list_offers()) for _ in PAGED_STYLES]

    assert listings == [[f"ROT-{n}" for n in range(5)]] * len(PAGED_STYLES)


@pytest.mark.parametrize(
    "body",
    [
        {"data": [{"id": "o1"}], "total": 5},
        {"items": [{"id": "o1"}], "meta": {"totalCount": 3}},
    ],
)
def test_an_envelope_saying_there_is_more_without_a_way_there_is_an_error(make_client, body):
    client = served_by(lambda request: httpx.Response(200, json=body))
    with client, pytest.raises(UnexpectedResponseError, match="no way to the next page"):
        list(client.list_offers())


def test_a_next_link_that_repeats_is_an_error(make_client):
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(
            200, json={"data": [{"id": "o1"}], "links": {"next": "/provider/offers?page%5Bnumber%5D=2"}}
        )

    with served_by(handler) as client, pytest.raises(UnexpectedResponseError, match="does not advance"):
        list(client.list_offers())
    assert len(seen) == 2


def test_a_link_header_back_to_the_first_page_is_an_error(make_client):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[{"id": "o1"}], headers={"Link": '</provider/offers>; rel="next"'})

    with served_by(handler) as client, pytest.raises(UnexpectedResponseError, match="does not advance"):
        list(client.list_offers())


def test_a_list_answered_without_a_body_is_a_retryable_error(offergrid_fake: OffergridFake, make_client):
    offergrid_fake.inject_fault("empty", method="GET")
    with pytest.raises(UnreadableResponseError) as info:
        list(make_client(offergrid_fake).list_orders())
    assert info.value.retryable is True


# --- #5: one unreadable listed element is skipped and reported -------------------------------------


def test_unreadable_listed_items_are_skipped_and_reported_the_rest_is_read(
    offergrid_fake_factory, make_client, caplog
):
    fake = offergrid_fake_factory(answers="other", list_style="meta-links", page_size=2)
    no_order = fake.add_order_item(id="no-order-id")
    del fake.order_items[no_order["id"]]["orderId"]
    fake.add_order_item(
        id="numeric-zip",
        serviceAddress={"street": "1 Main St", "city": "Springfield", "zipCode": 62701, "country": "US"},
    )
    fake.add_order_item(id="list-metadata", metadata=["unitNumber", "4B"])
    nameless = fake.add_order_item(id="no-id", customerInfo={"fullName": "Secret Customer"})
    del fake.order_items[nameless["id"]]["id"]
    fake.add_order_item(id="fine")
    observer = RecordingObserver()
    caplog.set_level(logging.INFO, logger="offergrid_integration.offergrid.client")
    # full items are listed (not the sparse summary), so every oddity reaches the client
    fake.set_answers(dataclasses.replace(fake.answers, sparse_listings=False))

    items = {item.id: item for item in make_client(fake, observer=observer).list_orders()}

    assert list(items) == ["no-order-id", "numeric-zip", "list-metadata", "fine"]
    assert items["no-order-id"].order_id is None
    assert items["numeric-zip"].service_address is not None
    assert items["numeric-zip"].service_address.zip_code == "62701"
    assert items["list-metadata"].metadata is None
    assert items["list-metadata"].unreadable_fields == ("metadata",)
    assert observer.unreadable == [("GET", "/provider/orders")]
    [skipped] = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert skipped.position == 4
    assert "id: Field required" in skipped.getMessage()
    assert "Secret Customer" not in caplog.text


def test_an_element_that_is_not_an_object_is_skipped(make_client):
    body = [{"id": "i1", "status": "pending"}, "garbage", None, {"id": "i2", "status": "accepted"}]
    with served_by(lambda request: httpx.Response(200, json=body)) as client:
        assert [item.id for item in client.list_orders()] == ["i1", "i2"]


def test_skipped_elements_are_a_metric(capsys):
    metrics = Metrics(namespace="TolerantTest")
    metrics.clear_metrics()
    MetricsObserver(metrics).on_unreadable_item("GET", "/provider/orders")
    metrics.flush_metrics()
    assert f'"{OFFERGRID_UNREADABLE_ITEM}":[1.0]' in capsys.readouterr().out.replace(" ", "")


# --- #6: 429 without Retry-After backs off exponentially with full jitter ---------------------------


def test_429_without_retry_after_backs_off_exponentially(other: OffergridFake, make_client):
    clock = RecordingClock()
    other.inject_fault("rate_limit", times=3)

    list(make_client(other, clock=clock, rng=lambda: 1.0).list_offers())

    assert [call.status for call in other.calls] == [429, 429, 429, 200]
    assert clock.sleeps == [0.5, 1.0, 2.0]


def test_429_backoff_is_fully_jittered_by_the_injected_source(other: OffergridFake, make_client):
    clock = RecordingClock()
    draws = itertools.cycle([0.5, 0.25, 0.75])
    other.inject_fault("rate_limit", times=3)

    list(make_client(other, clock=clock, rng=lambda: next(draws)).list_offers())

    assert clock.sleeps == [0.25, 0.25, 1.5]  # uniform in [0, 0.5], [0, 1], [0, 2]


def test_429_from_the_rate_window_without_retry_after_is_capped_then_raised(
    offergrid_fake_factory, make_client
):
    fake = offergrid_fake_factory(answers="other", per_minute=1)
    clock = RecordingClock()
    client = make_client(fake, clock=clock, rng=lambda: 1.0, max_retries=6)

    list(client.list_offers())  # takes the one request of this minute
    with pytest.raises(RateLimitError):
        list(client.list_offers())

    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, MAX_RETRY_DELAY, MAX_RETRY_DELAY]
    assert fake.rate_limited == 7


# --- #8: every identifier is one path segment, dots included -----------------------------------------


@pytest.mark.parametrize(("item_id", "raw"), [(".", "%2E"), ("..", "%2E%2E"), ("...", "%2E%2E%2E")])
def test_dot_ids_never_reach_the_listing(offergrid_fake: OffergridFake, make_client, item_id: str, raw: str):
    offergrid_fake.add_order_item()
    client = make_client(offergrid_fake)

    with pytest.raises(NotFoundError):
        client.get_order_item(item_id)
    with pytest.raises(NotFoundError):
        client.update_order_item_status(item_id, ACCEPT)

    get, patch = offergrid_fake.calls
    assert (get.raw_path, get.path) == (f"/provider/orders/{raw}", f"/provider/orders/{item_id}")
    assert patch.raw_path == f"/provider/orders/{raw}/status"
    assert all(call.path != "/provider/orders" for call in offergrid_fake.calls)
    assert get.status == 404


@pytest.mark.parametrize(
    ("offer_id", "raw"),
    [(".", "%2E"), ("a/b", "a%2Fb"), ("../orders", "..%2Forders"), ("v1.2", "v1.2"), ("?x#y", "%3Fx%23y")],
)
def test_offer_ids_are_one_segment_on_the_wire(offergrid_fake: OffergridFake, make_client, offer_id, raw):
    client = make_client(offergrid_fake)

    with pytest.raises(NotFoundError) as info:
        client.get_offer(offer_id)

    assert offergrid_fake.calls[0].raw_path == f"/provider/offers/{raw}"
    assert info.value.body["message"] == f"Offer with ID {offer_id} not found"


def test_an_id_with_dots_and_slashes_round_trips(offergrid_fake: OffergridFake, make_client):
    offergrid_fake.add_order_item(id="../a/./b")
    assert make_client(offergrid_fake).get_order_item("../a/./b").id == "../a/./b"
