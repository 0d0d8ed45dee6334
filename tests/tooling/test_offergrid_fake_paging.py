"""The fake's listings (docs/decisions.md#18): the envelopes of issue 21 and the misbehaviours a
client must survive (`devtools.offergrid_fake.pagination`)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from devtools.offergrid_fake import OTHER, OffergridFake
from devtools.offergrid_fake.answers import Answers, answers_from_dict
from devtools.offergrid_fake.pagination import (
    LIST_MISBEHAVIOURS,
    LIST_STYLES,
    continued_style,
    encode_cursor,
    paginate,
)
from tests.fixtures.offergrid_fake import OffergridFakeFactory, fake_http_client

PAGED_STYLES = [style for style in LIST_STYLES if style != "array"]
ITEMS = [{"id": f"e{n}"} for n in range(7)]


def ids(body: Any) -> list[str]:
    elements = body if isinstance(body, list) else body.get("data", body.get("items"))
    return [element["id"] for element in elements]


def second_page_query(style: str, first: Any, headers: dict[str, str]) -> dict[str, list[str]]:
    """The query of the page after `first` as a client of `style` would build it (pages of 2)."""
    match style:
        case "envelope-cursor":
            return {"cursor": [first["nextCursor"]]}
        case "link-header":
            return {"after": [encode_cursor(2)]} if headers else {}
        case "offset":
            return {"offset": ["2"]}
        case "has-more":
            return {"starting_after": [first["data"][-1]["id"]]}
        case "meta-links" | "jsonapi-page":
            return {"page[number]": ["2"], "page[size]": ["2"]}
        case "meta-pagination":
            return {"page": ["2"], "per_page": ["2"]}
        case _:
            return {"page": ["2"]}


# --- the envelopes of issue 21 ------------------------------------------------------------------------


def test_meta_pagination_pages_with_links_and_an_empty_php_array_at_the_end():
    first, _ = paginate(ITEMS, "meta-pagination", 3, {"status": ["pending"]}, "/provider/orders")
    last, _ = paginate(ITEMS, "meta-pagination", 3, {"page": ["3"], "per_page": ["3"]}, "/provider/orders")
    alone, _ = paginate(ITEMS[:2], "meta-pagination", 3, {}, "/provider/orders")

    assert ids(first) == ["e0", "e1", "e2"]
    assert first["meta"]["pagination"] == {
        "total": 7,
        "count": 3,
        "per_page": 3,
        "current_page": 1,
        "total_pages": 3,
        "links": {"next": "/provider/orders?status=pending&page=2&per_page=3"},
    }
    assert ids(last) == ["e6"]
    assert last["meta"]["pagination"]["links"] == {"previous": "/provider/orders?page=2&per_page=3"}
    assert alone["meta"]["pagination"]["links"] == []


def test_jsonapi_meta_page_counts_elements_and_honours_a_smaller_page_size():
    first, headers = paginate(ITEMS, "jsonapi-page", 3, {}, "/provider/offers")
    smaller, _ = paginate(ITEMS, "jsonapi-page", 3, {"page[number]": ["2"], "page[size]": ["2"]})
    larger, _ = paginate(ITEMS, "jsonapi-page", 3, {"page[size]": ["50"]})

    assert first == {"data": ITEMS[:3], "meta": {"page": {"number": 1, "size": 3, "total": 7}}}
    assert headers == {}
    assert (ids(smaller), smaller["meta"]["page"]) == (["e2", "e3"], {"number": 2, "size": 2, "total": 7})
    assert larger["meta"]["page"]["size"] == 3


def test_has_more_starts_after_the_named_id_and_ignores_a_page_number():
    first, _ = paginate(ITEMS, "has-more", 3, {"page": ["2"]}, "/provider/offers")
    after, _ = paginate(ITEMS, "has-more", 3, {"starting_after": ["e5"]}, "/provider/offers")

    assert first == {"object": "list", "data": ITEMS[:3], "has_more": True, "url": "/provider/offers"}
    assert (ids(after), after["has_more"]) == (["e6"], False)


def test_an_unknown_starting_after_is_a_400(offergrid_fake_factory: OffergridFakeFactory):
    fake = offergrid_fake_factory(list_style="has-more", page_size=2)
    fake.add_offer()
    with fake_http_client(fake) as api:
        response = api.get("/provider/offers", params={"starting_after": "no-such-offer"})
    assert response.status_code == 400
    assert "starting_after" in str(response.json()["message"])


def test_a_next_page_is_answered_in_its_listings_style_when_styles_share_a_parameter(
    offergrid_fake_factory: OffergridFakeFactory,
):
    # envelope-page and meta-pagination both continue with ?page=; meta-links and jsonapi-page with
    # ?page[number]=: the fake answers a next page in the style that answered its listing's first page
    rotation = ("envelope-page", "meta-pagination", "meta-links", "jsonapi-page")
    fake = offergrid_fake_factory(answers=Answers(list_styles=rotation, page_size=2))
    for _ in range(5):
        fake.add_order_item()
    shapes = []
    with fake_http_client(fake) as api:
        for _ in rotation:
            first = api.get("/provider/orders", params={"status": "pending"}).json()
            query = second_page_query(_style_of(first), first, {})
            second = api.get("/provider/orders", params={"status": "pending", **query}).json()
            shapes.append((_style_of(first), _style_of(second)))
    assert shapes == [(style, style) for style in rotation]


def test_a_parameter_only_one_style_reads_names_it_whatever_the_listing_was():
    # A has_more client sends `page` too (for a server that counts pages): `starting_after` decides
    query = {"status": ["pending"], "page": ["2"], "starting_after": ["e1"]}
    assert continued_style(query, OTHER.list_styles, "envelope-page") == "has-more"
    assert continued_style({"page": ["2"]}, OTHER.list_styles, "meta-pagination") == "meta-pagination"
    assert continued_style({"page": ["2"]}, OTHER.list_styles, None) == "envelope-page"
    assert continued_style({"status": ["pending"]}, OTHER.list_styles, "offset") is None


def _style_of(body: Any) -> str:
    meta = body.get("meta", {})
    if "links" in body:
        return "meta-links"
    if "pagination" in meta:
        return "meta-pagination"
    if isinstance(meta.get("page"), dict):
        return "jsonapi-page"
    return "envelope-page"


# --- misbehaviours ------------------------------------------------------------------------------------


@pytest.mark.parametrize("style", PAGED_STYLES)
def test_ignores_paging_answers_the_first_page_to_every_request_saying_there_is_more(style: str):
    first, first_headers = paginate(ITEMS, style, 2, {}, "/p", "ignores-paging")
    query = second_page_query(style, first, first_headers)
    again, again_headers = paginate(ITEMS, style, 2, query, "/p", "ignores-paging")

    assert (again, again_headers) == (first, first_headers)
    assert ids(again) == ["e0", "e1"]
    honest, honest_headers = paginate(ITEMS, style, 2, {}, "/p")
    assert (first, first_headers) == (honest, honest_headers)  # the first page says there is more


@pytest.mark.parametrize("style", PAGED_STYLES)
def test_repeats_page_answers_the_elements_of_the_page_before_under_the_envelope_asked_for(style: str):
    first, first_headers = paginate(ITEMS, style, 2, {}, "/p", "repeats-page")
    query = second_page_query(style, first, first_headers)
    repeated, _ = paginate(ITEMS, style, 2, query, "/p", "repeats-page")
    honest, _ = paginate(ITEMS, style, 2, query, "/p")

    assert ids(repeated) == ids(first) == ["e0", "e1"]
    assert ids(honest) == ["e2", "e3"]
    if isinstance(honest, dict):  # the envelope is the one of the page asked for
        assert {key: value for key, value in repeated.items() if key not in ("data", "items")} == {
            key: value for key, value in honest.items() if key not in ("data", "items")
        }


@pytest.mark.parametrize("style", PAGED_STYLES)
def test_more_without_a_way_states_a_total_and_nothing_to_follow(style: str):
    body, headers = paginate(ITEMS, style, 2, {}, "/p", "more-without-a-way")
    single, _ = paginate(ITEMS[:2], style, 2, {}, "/p", "more-without-a-way")

    assert headers == {}
    assert body in ({"data": ITEMS[:2], "total": 7}, {"data": ITEMS[:2], "meta": {"total": 7}})
    assert single == paginate(ITEMS[:2], style, 2, {}, "/p")[0]  # one page is just a page


@pytest.mark.parametrize("misbehaviour", LIST_MISBEHAVIOURS)
def test_a_bare_array_has_nothing_to_misbehave_with(misbehaviour: str):
    assert paginate(ITEMS, "array", None, {"page": ["3"]}, "/p", misbehaviour) == (ITEMS, {})


def test_a_misbehaviour_is_set_like_any_knob_and_an_unknown_one_is_refused(offergrid_fake: OffergridFake):
    with pytest.raises(ValueError, match="list_misbehaviour"):
        Answers(list_misbehaviour="sulks")
    assert answers_from_dict({"answers": "other", "list_misbehaviour": "repeats-page"}).list_misbehaviour == (
        "repeats-page"
    )
    for _ in range(3):
        offergrid_fake.add_offer()
    with httpx.Client(base_url=offergrid_fake.base_url) as control, fake_http_client(offergrid_fake) as api:
        switched = control.post(
            "/_fake/answers",
            json={"answers": "other", "list_styles": ["offset"], "list_misbehaviour": "ignores-paging"},
        )
        assert switched.json()["list_misbehaviour"] == "ignores-paging"
        first = api.get("/provider/offers").json()
        again = api.get("/provider/offers", params={"offset": "2"}).json()
    assert again == first
    assert (first["offset"], first["total"], len(first["data"])) == (0, 3, 2)
