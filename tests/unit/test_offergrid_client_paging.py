"""A listing ends (docs/decisions.md#5, #18): every envelope read whole, every misbehaviour an error
within two extra requests, every listing within its page budget; and a listing that is only an
optimisation gives up at once (issue 21, cases 7 and 8).

Against the Offergrid fake (its envelopes and misbehaviours, `devtools.offergrid_fake.pagination`),
with enough rate limit that no 429 ever comes into the count of requests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from devtools.offergrid_fake import OffergridFake
from devtools.offergrid_fake.answers import Answers, resolve_answers
from devtools.offergrid_fake.pagination import LIST_MISBEHAVIOURS, LIST_STYLES
from offergrid_integration.offergrid.client import OffergridClient
from offergrid_integration.offergrid.errors import InternalServerError, UnexpectedResponseError
from offergrid_integration.offergrid.models import OrderItem, OrderItemStatus
from offergrid_integration.offergrid.paging import Page, parse_page
from offergrid_integration.orders.steps import BatchItemReads
from tests.fixtures.offergrid_fake import (
    TEST_API_KEY,
    OffergridClientFactory,
    OffergridFakeFactory,
    RecordingClock,
)

PAGED_STYLES = [style for style in LIST_STYLES if style != "array"]
UNLIMITED = {"per_minute": 1_000_000, "per_hour": 1_000_000}


@pytest.fixture
def make_client(offergrid_client_factory: OffergridClientFactory) -> Callable[..., OffergridClient]:
    def make(fake: OffergridFake, **kwargs: Any) -> OffergridClient:
        kwargs.setdefault("clock", RecordingClock())
        return offergrid_client_factory(fake, **kwargs)

    return make


def listing_fake(
    factory: OffergridFakeFactory, style: str, *, page_size: int = 2, misbehaviour: str | None = None
) -> OffergridFake:
    answers = Answers(list_styles=(style,), page_size=page_size, list_misbehaviour=misbehaviour)
    return factory(answers=answers, **UNLIMITED)


def listings(fake: OffergridFake, path: str = "/provider/offers") -> int:
    return sum(1 for call in fake.calls if call.method == "GET" and call.path == path)


# --- one answer read: every envelope ----------------------------------------------------------------


class TestParsePage:
    def test_bare_array_is_the_whole_list(self):
        assert parse_page([{"id": 1}], {}) == Page([{"id": 1}], None)

    @pytest.mark.parametrize("key", ["data", "items", "offers", "orders"])
    def test_envelope_keys(self, key):
        assert parse_page({key: [1, 2]}, {}) == Page([1, 2], None)

    @pytest.mark.parametrize("key", ["nextCursor", "next_cursor", "cursor", "next"])
    def test_cursor_keys_keep_the_other_params(self, key):
        page = parse_page({"data": [1], key: "abc"}, {"status": "pending"})
        assert page == Page([1], {"status": "pending", "cursor": "abc"})

    @pytest.mark.parametrize("end", [None, ""])
    def test_empty_cursor_ends(self, end):
        assert parse_page({"data": [1], "nextCursor": end}, {"cursor": "x"}) == Page([1], None)

    def test_next_link_carries_its_query(self):
        body = {"data": [1], "next": "https://api.offergrid.io/provider/orders?status=pending&page=3"}
        assert parse_page(body, {"status": "pending"}).next == {"status": "pending", "page": "3"}

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            ({"items": [1], "page": 1, "totalPages": 3}, {"page": "2"}),
            ({"items": [1], "page": 3, "totalPages": 3}, None),
            ({"items": [], "page": 1, "totalPages": 0}, None),
            ({"items": [1], "page": 2, "pages": 5}, {"page": "3"}),
            ({"items": [1], "page": 1, "hasMore": True}, {"page": "2"}),
            ({"items": [1], "page": 1, "hasMore": False}, None),
            ({"items": [1], "page": 4}, {"page": "5"}),  # no totals: go on until an empty page
            ({"items": [], "page": 5}, None),
        ],
    )
    def test_page_numbers(self, body, expected):
        assert parse_page(body, {}).next == expected

    def test_has_more_without_page_counts_from_the_request(self):
        assert parse_page({"data": [1], "hasMore": True}, {"page": "2"}).next == {"page": "3"}
        assert parse_page({"data": [1], "has_more": True}, {}).next == {"page": "2"}

    def test_links_next_is_followed_with_the_listing_filters(self):
        body = {"data": [1], "meta": {"page": 1, "totalPages": 3}, "links": {"next": "/x?page%5Bnumber%5D=2"}}
        nxt = parse_page(body, {"status": "pending", "page[number]": "1"}, base_params={"status": "pending"})
        assert nxt.next == {"status": "pending", "page[number]": "2"}

    def test_links_next_null_on_the_last_page(self):
        body = {"data": [1], "meta": {"page": 3, "totalPages": 3}, "links": {"next": None}}
        assert parse_page(body, {"page": "3"}).next is None

    def test_meta_page_and_total_pages_without_links(self):
        assert parse_page({"data": [1], "meta": {"page": 1, "totalPages": 2}}, {}).next == {"page": "2"}
        assert parse_page({"data": [1], "meta": {"currentPage": 2, "lastPage": 2}}, {}).next is None

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            ({"data": [1, 2], "total": 5, "limit": 2, "offset": 0}, {"offset": "2", "limit": "2"}),
            ({"data": [1], "total": 5, "limit": 2, "offset": 4}, None),
            ({"data": [1, 2], "meta": {"total": 3, "offset": 0, "limit": 2}}, {"offset": "2", "limit": "2"}),
            (
                {"data": [1, 2], "limit": 2, "offset": 0},
                {"offset": "2", "limit": "2"},
            ),  # no total: a full page
            ({"data": [1], "limit": 2, "offset": 2}, None),  # a short page is the last
        ],
    )
    def test_total_offset_limit(self, body, expected):
        listed = body.get("offset", 0)  # the pages before this one held as many as its offset
        assert parse_page(body, {}, listed=listed).next == expected

    def test_link_header_continues_a_bare_array(self):
        page = parse_page([1], {"status": "pending"}, next_link="/provider/orders?status=pending&after=abc")
        assert page == Page([1], {"status": "pending", "after": "abc"})

    def test_next_as_an_href_object(self):
        assert parse_page({"data": [1], "next": {"href": "?cursor=c2"}}, {}).next == {"cursor": "c2"}

    @pytest.mark.parametrize(
        "body",
        [
            {"data": [1], "total": 2},
            {"items": [1], "meta": {"totalItems": 9}},
            {"offers": [1, 2], "pagination": {"total_count": 3}},
        ],
    )
    def test_more_without_a_way_there_is_refused(self, body):
        with pytest.raises(ValueError, match="no way to the next page"):
            parse_page(body, {})

    def test_a_total_that_is_reached_ends(self):
        assert parse_page({"data": [1, 2], "total": 2}, {}).next is None

    @pytest.mark.parametrize("body", [{"result": []}, {"data": "nope"}, "text", 42, None])
    def test_unusable_bodies_raise(self, body):
        with pytest.raises(ValueError, match=r"expected a JSON array|no list"):
            parse_page(body, {})

    # issue 21: meta.pagination, JSON:API's meta.page, Stripe's has_more

    def test_meta_pagination_links_next(self):
        body = {
            "data": [1, 2],
            "meta": {
                "pagination": {
                    "total": 7,
                    "current_page": 1,
                    "total_pages": 4,
                    "links": {"next": "/x?page=2"},
                }
            },
        }
        assert parse_page(body, {"status": "pending"}).next == {"status": "pending", "page": "2"}

    def test_meta_pagination_without_links_counts_pages(self):
        body = {"data": [1, 2], "meta": {"pagination": {"current_page": 1, "total_pages": 4, "links": []}}}
        assert parse_page(body, {}).next == {"page": "2"}
        last = {
            "data": [7],
            "meta": {"pagination": {"total": 7, "current_page": 4, "total_pages": 4, "links": []}},
        }
        assert parse_page(last, {"page": "4"}, listed=6).next is None

    @pytest.mark.parametrize(
        ("page", "params", "expected"),
        [
            ({"number": 1, "size": 2, "total": 7}, {}, {"page[number]": "2", "page[size]": "2"}),
            ({"number": 4, "size": 2, "total": 7}, {"page[number]": "4"}, None),
            ({"number": 2, "size": 2, "totalPages": 2}, {}, None),
            ({"size": 2}, {"page[number]": "3"}, {"page[number]": "4", "page[size]": "2"}),  # a full page
            ({"number": 3, "size": 2}, {}, None),  # a short page is the last
        ],
    )
    def test_json_api_meta_page(self, page, params, expected):
        items = [1] if page.get("number") == 3 or page.get("number") == 4 else [1, 2]
        listed = 6 if page.get("total") == 7 and page.get("number") == 4 else 0
        assert parse_page({"data": items, "meta": {"page": page}}, params, listed=listed).next == (
            None if expected is None else {**params, **expected}
        )

    def test_has_more_starts_after_the_last_element_and_counts_pages_too(self):
        body = {"object": "list", "data": [{"id": "a"}, {"id": "b"}], "has_more": True}
        assert parse_page(body, {"status": "pending"}).next == {
            "status": "pending",
            "page": "2",
            "starting_after": "b",
        }
        assert parse_page({"data": [{"id": "c"}], "has_more": False}, {"starting_after": "b"}).next is None

    def test_a_last_page_short_of_the_stated_total_is_refused(self):
        body = {"data": [1], "meta": {"page": 2, "totalPages": 2, "total": 7}}
        with pytest.raises(ValueError, match="7 elements but the listing holds 3"):
            parse_page(body, {"page": "2"}, listed=2)
        assert parse_page(body, {"page": "2"}, listed=6).next is None


# --- case 7: envelopes read as one page, a has_more server fetched 10,000 times ---------------------


@pytest.mark.parametrize("style", ["meta-pagination", "jsonapi-page"])
def test_an_envelope_of_issue_21_is_read_to_its_last_element(
    offergrid_fake_factory: OffergridFakeFactory, make_client, style: str
):
    # Given 7 offers listed 2 a page as `{data, meta:{pagination:{total_pages, links:{next}}}}` or
    # `{data, meta:{page:{number, size, total}}}` (before: 2 of 7 read, no error)
    fake = listing_fake(offergrid_fake_factory, style)
    skus = [fake.add_offer(sku=f"E-{n}")["sku"] for n in range(7)]

    # When the offers are listed
    offers = list(make_client(fake).list_offers())

    # Then all 7 are read, one request a page
    assert [offer.sku for offer in offers] == skus
    assert listings(fake) == 4


def test_a_has_more_listing_is_followed_after_its_last_element(
    offergrid_fake_factory: OffergridFakeFactory, make_client
):
    # Given a `{data, has_more}` server that pages by `starting_after` and ignores `page`
    # (before: the client asked for page 2, 3, ... and got the first page 10,000 times)
    fake = listing_fake(offergrid_fake_factory, "has-more")
    pending = [fake.add_order_item()["id"] for _ in range(7)]
    fake.add_order_item(status="accepted")

    # When the pending items are listed
    items = list(make_client(fake).list_orders(OrderItemStatus.PENDING))

    # Then each page started after the last element of the one before, the filter kept
    assert [item.id for item in items] == pending
    calls = [call for call in fake.calls if call.path == "/provider/orders"]
    assert len(calls) == 4
    assert [call.query.get("starting_after") for call in calls] == [
        None,
        [pending[1]],
        [pending[3]],
        [pending[5]],
    ]
    assert all(call.query["status"] == ["pending"] for call in calls)


# --- a listing ends: each misbehaviour an error within two extra requests ---------------------------


@pytest.mark.parametrize("style", PAGED_STYLES)
@pytest.mark.parametrize("misbehaviour", LIST_MISBEHAVIOURS)
def test_a_misbehaving_listing_is_an_error_within_two_extra_requests(
    offergrid_fake_factory: OffergridFakeFactory, make_client, style: str, misbehaviour: str
):
    # Given 7 offers, 4 pages of 2, answered by a server that misbehaves
    fake = listing_fake(offergrid_fake_factory, style, misbehaviour=misbehaviour)
    for n in range(7):
        fake.add_offer(sku=f"M-{n}")

    # When the offers are listed, it is an error (never a partial list) ...
    with pytest.raises(UnexpectedResponseError) as info:
        list(make_client(fake).list_offers())

    # ... at once: the second request repeats a page (the query ignored, or the elements of the page
    # before), and a "more" that cannot be followed is refused on the first
    assert info.value.retryable is False
    assert listings(fake) == (1 if misbehaviour == "more-without-a-way" else 2)
    assert listings(fake) <= math.ceil(7 / 2) + 2


@pytest.mark.parametrize("style", PAGED_STYLES)
def test_a_page_budget_bounds_every_listing(
    offergrid_fake_factory: OffergridFakeFactory, make_client, style: str
):
    # Given 7 offers in 4 pages and a client whose page budget is 3
    fake = listing_fake(offergrid_fake_factory, style)
    for n in range(7):
        fake.add_offer(sku=f"B-{n}")

    # When they are listed, the fourth page is not asked for: an error, not 6 of 7 offers
    with pytest.raises(UnexpectedResponseError, match="more than 3 pages"):
        list(make_client(fake, max_pages=3).list_offers())
    assert listings(fake) == 3

    # And a budget the listing fits in reads everything
    fake.clear_calls()
    assert len(list(make_client(fake, max_pages=4).list_offers())) == 7


def test_a_listing_that_ends_short_of_the_total_it_states_is_an_error():
    # A server that ends its listing early while saying how many elements it has
    bodies = iter(
        [
            {"data": [{"id": "o1"}, {"id": "o2"}], "meta": {"page": 1, "totalPages": 2, "total": 7}},
            {"data": [{"id": "o3"}], "meta": {"page": 2, "totalPages": 2, "total": 7}},
        ]
    )
    client = OffergridClient(
        base_url="http://127.0.0.1:9",
        api_key=lambda *, force_refresh=False: TEST_API_KEY,
        transport=httpx.MockTransport(lambda request: httpx.Response(200, json=next(bodies))),
    )
    with client, pytest.raises(UnexpectedResponseError, match=r"7 elements.*holds 3"):
        list(client.list_offers())


# --- case 8: a 500 on page 2 of a batched read ------------------------------------------------------


class FailsAfterTheFirstPage:
    """The real client's listing, with the fake answering 500 from the second page on."""

    def __init__(self, client: OffergridClient, fake: OffergridFake) -> None:
        self.client, self.fake = client, fake

    def list_order_pages(
        self, status: OrderItemStatus | None = None, **options: Any
    ) -> Iterator[list[OrderItem]]:
        pages = self.client.list_order_pages(status, **options)
        yield next(pages)
        self.fake.inject_fault("status", status=500, times=20, method="GET", path="/provider/orders")
        yield from pages

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


@pytest.mark.parametrize("fake_answers", ["documented", "other"])
def test_a_batched_reads_listing_gives_up_at_its_first_failure(
    offergrid_fake_factory: OffergridFakeFactory, make_client, fake_answers: str
):
    # Given a batch wanting 4 pending items, listed 2 a page, the second page answering 500
    answers = resolve_answers(fake_answers)
    styles = answers.list_styles if answers.list_styles != ("array",) else ("meta-links",)
    fake = offergrid_fake_factory(
        answers=Answers(list_styles=styles, page_size=2, sparse_listings=False), **UNLIMITED
    )
    wanted = [fake.add_order_item()["id"] for _ in range(4)]
    client = make_client(fake)

    # When the batch's items are prefetched (an optimisation: a failed listing means a GET each)
    prefetch = BatchItemReads(FailsAfterTheFirstPage(client, fake)).prefetch(wanted)  # type: ignore[arg-type]

    # Then the listing cost its two pages' requests, not five attempts at page 2 (before: 6 requests)
    assert (prefetch.found, prefetch.pages) == (2, 1)
    assert prefetch.stopped == f"failed: {InternalServerError.__name__}"
    assert listings(fake, "/provider/orders") == 2
    assert client._clock.sleeps == []  # type: ignore[attr-defined]
