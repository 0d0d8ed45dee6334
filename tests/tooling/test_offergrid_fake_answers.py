"""The fake answers every undocumented choice both ways, and keeps every documented rule in both."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devtools.offergrid_fake import DOCUMENTED, OTHER, Answers, OffergridFake
from devtools.offergrid_fake.__main__ import parse_args
from devtools.offergrid_fake.answers import ANSWERS_ENV, answers_from_dict, resolve_answers
from devtools.offergrid_fake.pagination import LIST_STYLES
from tests.fixtures.offergrid_fake import TEST_API_KEY, OffergridFakeFactory, fake_http_client

PAGED_STYLES = [style for style in LIST_STYLES if style != "array"]

OFFER = {
    "name": "Fiber 1000",
    "category": "internet",
    "sku": "INT-1",
    "monthlyPrice": 59.99,
    "serviceSpecificData": {"minBandwidth": 100, "maxBandwidth": 1000, "connectionType": "fiber"},
}


@pytest.fixture
def other(offergrid_fake_factory: OffergridFakeFactory) -> OffergridFake:
    return offergrid_fake_factory(answers="other")


@pytest.fixture
def api(other: OffergridFake) -> Iterator[httpx.Client]:
    with fake_http_client(other) as client:
        yield client


def body_of(response: httpx.Response) -> Any:
    return response.json() if response.content else None


# --- presets and switches ------------------------------------------------------------------------


def test_the_documented_preset_is_what_the_fake_always_answered():
    assert Answers(name="documented") == DOCUMENTED
    assert (DOCUMENTED.status_patch, DOCUMENTED.offer_create, DOCUMENTED.offer_delete) == (
        ("200-item",),
        ("201-item",),
        ("204",),
    )
    assert (DOCUMENTED.list_styles, DOCUMENTED.page_size, DOCUMENTED.retry_after_on_429) == (
        ("array",),
        None,
        True,
    )


def test_the_other_preset_answers_every_choice_another_way():
    for knob in ("status_patch", "offer_create", "offer_update", "offer_delete", "list_styles"):
        assert not set(getattr(OTHER, knob)) & set(getattr(DOCUMENTED, knob)), knob
    assert set(OTHER.list_styles) == set(PAGED_STYLES)
    assert OTHER.page_size is not None
    assert OTHER.page_size <= 3
    assert (OTHER.retry_after_on_429, OTHER.sparse_listings) == (False, True)


def test_bad_knobs_are_refused():
    with pytest.raises(ValueError, match="status_patch"):
        Answers(status_patch=("202-later",))
    with pytest.raises(ValueError, match="bare array"):
        Answers(list_styles=("array",), page_size=2)
    with pytest.raises(ValueError, match="answers must be one of"):
        resolve_answers("sometimes")
    with pytest.raises(ValueError, match="unknown answers knob"):
        answers_from_dict({"answers": "other", "colour": "blue"})


def test_environment_chooses_for_a_fake_built_without_the_argument(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(ANSWERS_ENV, "other")
    assert OffergridFake().answers == OTHER
    assert OffergridFake(answers="documented").answers == DOCUMENTED
    monkeypatch.delenv(ANSWERS_ENV)
    assert OffergridFake().answers == DOCUMENTED


def test_explicit_list_arguments_override_the_preset():
    fake = OffergridFake(answers="other", list_style="offset", page_size=5)
    assert (fake.answers.list_styles, fake.page_size, fake.list_style) == (("offset",), 5, "offset")
    assert fake.answers.status_patch == OTHER.status_patch
    assert OffergridFake(answers="other").list_style == "rotate"


def test_cli_flag():
    assert parse_args(["--answers", "other"]).answers == "other"
    assert parse_args([]).answers is None  # then the environment, else documented
    with pytest.raises(SystemExit):
        parse_args(["--answers", "maybe"])


def test_control_plane_switches_a_running_fake(offergrid_fake: OffergridFake):
    with httpx.Client(base_url=offergrid_fake.base_url) as control, fake_http_client(offergrid_fake) as api:
        item = offergrid_fake.add_order_item()
        assert control.get("/_fake/answers").json()["name"] == "documented"

        switched = control.post("/_fake/answers", json={"answers": "other", "status_patch": ["204"]})

        assert switched.status_code == 200
        assert switched.json()["status_patch"] == ["204"]
        assert switched.json()["page_size"] == OTHER.page_size
        assert control.get("/_fake/state").json()["config"]["answers"]["status_patch"] == ["204"]
        patched = api.patch(f"/provider/orders/{item['id']}/status", json={"status": "accepted"})
        assert (patched.status_code, patched.content) == (204, b"")
        assert offergrid_fake.order_items[item["id"]]["status"] == "accepted"
        assert control.post("/_fake/answers", json={"answers": "nope"}).status_code == 400


# --- writes answered the other way, applied all the same -------------------------------------------


def test_status_patch_answers_204_then_200_empty_then_a_message_and_applies_each(
    other: OffergridFake, api: httpx.Client
):
    item = other.add_order_item(status="pending")
    path = f"/provider/orders/{item['id']}/status"
    steps = [
        {"status": "accepted"},
        {"status": "scheduled", "scheduledFor": "2026-12-01T09:00:00Z"},
        {"status": "in_progress"},
    ]
    answers = []
    for step in steps:
        response = api.patch(path, json=step)
        answers.append((response.status_code, body_of(response)))
        assert other.order_items[item["id"]]["status"] == step["status"]

    assert answers == [
        (204, None),
        (200, None),
        (200, {"message": "Order item status updated successfully"}),
    ]
    assert [change["to"] for change in other.history(item["id"])] == ["accepted", "scheduled", "in_progress"]


def test_offer_writes_answer_without_the_offer_and_are_applied(other: OffergridFake, api: httpx.Client):
    created = api.post("/provider/offers", json=OFFER)
    second = api.post("/provider/offers", json={**OFFER, "sku": "INT-2"})
    assert (created.status_code, body_of(created)) == (201, None)
    assert (second.status_code, body_of(second)) == (200, {"message": "Offer created successfully"})
    ids = {offer["sku"]: offer["id"] for offer in other.offers.values()}
    assert set(ids) == {"INT-1", "INT-2"}

    updated = api.patch(f"/provider/offers/{ids['INT-1']}", json={"monthlyPrice": 49.99})
    assert (updated.status_code, body_of(updated)) == (204, None)
    assert other.offers[ids["INT-1"]]["monthlyPrice"] == 49.99

    deleted = [api.delete(f"/provider/offers/{offer_id}") for offer_id in ids.values()]
    assert [(response.status_code, body_of(response)) for response in deleted] == [
        (200, None),
        (200, {"message": "Offer deleted successfully"}),
    ]
    assert other.offers == {}


# --- documented rules hold in the other mode too ----------------------------------------------------


def test_documented_rules_still_hold(other: OffergridFake, api: httpx.Client):
    with fake_http_client(other, key="wrong-key") as stranger:
        assert stranger.get("/provider/orders").status_code == 401
    assert api.post("/provider/offers", json={**OFFER, "category": "gadgets"}).status_code == 400
    assert api.post("/provider/offers", json=OFFER).is_success
    assert api.post("/provider/offers", json=OFFER).status_code == 409  # unique SKU
    item = other.add_order_item(status="rejected")
    refused = api.patch(f"/provider/orders/{item['id']}/status", json={"status": "accepted"})
    assert refused.status_code == 422  # lifecycle: nothing leaves a terminal status
    assert other.order_items[item["id"]]["status"] == "rejected"
    assert api.get("/provider/orders", params={"status": "lost"}).status_code == 400


def test_429_without_retry_after(offergrid_fake_factory: OffergridFakeFactory):
    fake = offergrid_fake_factory(answers="other", per_minute=2)
    with fake_http_client(fake) as api:
        statuses = [api.get("/provider/offers") for _ in range(3)]
        fake.inject_fault("rate_limit")  # the window is full anyway; an injected one has none either
    assert [response.status_code for response in statuses] == [200, 200, 429]
    assert "retry-after" not in statuses[2].headers
    assert statuses[2].json()["statusCode"] == 429


# --- lists ---------------------------------------------------------------------------------------


def _follow(api: httpx.Client, response: httpx.Response, style: str) -> str | None:
    """The next page's URL as a client following `style` would find it."""
    body = response.json()
    match style:
        case "meta-links":
            return body["links"]["next"]
        case "link-header":
            return response.links.get("next", {}).get("url")
        case "envelope-cursor":
            return (
                f"/provider/orders?status=pending&cursor={body['nextCursor']}" if body["nextCursor"] else None
            )
        case "envelope-page":
            more = body["page"] < body["totalPages"]
            return f"/provider/orders?status=pending&page={body['page'] + 1}" if more else None
        case "meta-pagination":
            links = body["meta"]["pagination"]["links"]
            return links.get("next") if isinstance(links, dict) else None
        case "jsonapi-page":
            page = body["meta"]["page"]
            more = page["number"] * page["size"] < page["total"]
            return (
                f"/provider/orders?status=pending&page[number]={page['number'] + 1}&page[size]={page['size']}"
                if more
                else None
            )
        case "has-more":
            last = body["data"][-1]["id"] if body["data"] else None
            return f"/provider/orders?status=pending&starting_after={last}" if body["has_more"] else None
        case _:  # offset
            end = body["offset"] + len(body["data"])
            return (
                f"/provider/orders?status=pending&offset={end}&limit={body['limit']}"
                if end < body["total"]
                else None
            )


def _elements(response: httpx.Response) -> list[dict[str, Any]]:
    body = response.json()
    if isinstance(body, list):
        return body
    return body["data"] if "data" in body else body["items"]


@pytest.mark.parametrize("style", PAGED_STYLES)
def test_each_envelope_pages_through_everything_and_keeps_the_filter(
    offergrid_fake_factory: OffergridFakeFactory, style: str
):
    fake = offergrid_fake_factory(answers="other", list_style=style, page_size=2)
    pending = [fake.add_order_item()["id"] for _ in range(5)]
    fake.add_order_item(status="accepted")
    seen: list[str] = []
    with fake_http_client(fake) as api:
        url: str | None = "/provider/orders?status=pending"
        pages = 0
        while url is not None:
            response = api.get(url)
            assert response.status_code == 200
            seen += [element["id"] for element in _elements(response)]
            url = _follow(api, response, style)
            pages += 1
    assert seen == pending
    assert pages == 3
    assert all(call.query["status"] == ["pending"] for call in fake.calls)


def test_shapes_of_the_new_envelopes(offergrid_fake_factory: OffergridFakeFactory):
    fake = offergrid_fake_factory(answers="other", list_style="meta-links", page_size=2)
    for n in range(3):
        fake.add_offer(sku=f"M-{n}")
    with fake_http_client(fake) as api:
        first = api.get("/provider/offers").json()
        last = api.get(first["links"]["next"]).json()
    assert first["meta"] == {"page": 1, "totalPages": 2, "total": 3, "pageSize": 2}
    assert first["links"]["next"] == "/provider/offers?page%5Bnumber%5D=2&page%5Bsize%5D=2"
    assert (last["meta"]["page"], last["links"]["next"], len(last["data"])) == (2, None, 1)


def _shape(body: Any) -> str:
    """The list style a first page was answered in."""
    if isinstance(body, list):
        return "link-header"
    meta = body.get("meta", {})
    for style, present in (
        ("meta-links", "links" in body),
        ("offset", "offset" in body),
        ("envelope-cursor", "nextCursor" in body),
        ("meta-pagination", "pagination" in meta),
        ("jsonapi-page", isinstance(meta.get("page"), dict)),
        ("has-more", "has_more" in body),
    ):
        if present:
            return style
    return "envelope-page"


def test_a_listing_rotates_through_the_styles_and_each_listing_stays_in_its_own(other: OffergridFake):
    for n in range(3):
        other.add_offer(sku=f"R-{n}")
    shapes = []
    with fake_http_client(other) as api:
        for _ in range(len(OTHER.list_styles)):
            response = api.get("/provider/offers")
            body = response.json()
            shapes.append(_shape(body))
        # a next page is answered in the style of its listing, whatever turn the rotation is at
        cursor_page = api.get("/provider/offers", params={"cursor": body.get("nextCursor") or ""})
    assert shapes == list(OTHER.list_styles)
    assert "nextCursor" in cursor_page.json()


def test_sparse_listings_leave_out_optional_fields_but_single_reads_are_whole(
    other: OffergridFake, api: httpx.Client
):
    item = other.add_order_item(notes=None)
    offer = other.add_offer(sku="S-1", description=None)

    listed_item = _elements(api.get("/provider/orders"))[0]
    listed_offer = _elements(api.get("/provider/offers"))[0]

    assert set(listed_item) == {"id", "orderId", "offerId", "status", "createdAt"}
    assert "description" not in listed_offer
    assert listed_offer["sku"] == "S-1"
    assert api.get(f"/provider/orders/{item['id']}").json() == other.order_items[item["id"]]
    assert api.get(f"/provider/offers/{offer['id']}").json()["description"] is None


# --- paths: each segment decoded on its own ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "item_id"),
    [("%2E", "."), ("%2E%2E", ".."), ("a%2Fb", "a/b"), ("%3Fx%3D1", "?x=1")],
)
def test_an_encoded_segment_is_one_item_id(offergrid_fake: OffergridFake, raw: str, item_id: str):
    with fake_http_client(offergrid_fake) as api:
        response = api.get(f"/provider/orders/{raw}")
        patched = api.patch(f"/provider/orders/{raw}/status", json={"status": "accepted"})
    assert response.status_code == 404
    assert response.json()["message"] == f"Order item with ID {item_id} not found"
    assert patched.status_code == 404
    (get, _) = offergrid_fake.calls
    assert get.raw_path == f"/provider/orders/{raw}"
    assert get.path == f"/provider/orders/{item_id}"


def test_an_item_with_a_slash_in_its_id_is_found(offergrid_fake: OffergridFake):
    offergrid_fake.add_order_item(id="a/b")
    with fake_http_client(offergrid_fake) as api:
        assert api.get("/provider/orders/a%2Fb").json()["id"] == "a/b"
        assert api.get("/provider/orders/a/b").status_code == 404  # two segments: no such route


# --- after-effect faults ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "expected"),
    [("empty", None, (204, None)), ("empty", 200, (200, None)), ("message", None, (200, {"message": "OK"}))],
)
def test_answer_faults_let_the_change_happen(
    offergrid_fake: OffergridFake, kind: str, status: int | None, expected: tuple[int, Any]
):
    item = offergrid_fake.add_order_item()
    offergrid_fake.inject_fault(kind, status=status, method="PATCH")
    with fake_http_client(offergrid_fake) as api:
        response = api.patch(f"/provider/orders/{item['id']}/status", json={"status": "accepted"})
    assert (response.status_code, body_of(response)) == expected
    assert offergrid_fake.order_items[item["id"]]["status"] == "accepted"
    assert offergrid_fake.calls[-1].fault == kind


def test_drop_after_applies_then_gives_no_answer(offergrid_fake: OffergridFake):
    item = offergrid_fake.add_order_item()
    offergrid_fake.inject_fault("drop_after", method="PATCH")
    with fake_http_client(offergrid_fake) as api, pytest.raises(httpx.TransportError):
        api.patch(f"/provider/orders/{item['id']}/status", json={"status": "accepted"})
    assert offergrid_fake.order_items[item["id"]]["status"] == "accepted"
    assert offergrid_fake.calls[-1].status is None


def test_an_answer_fault_leaves_an_error_answer_alone(offergrid_fake: OffergridFake):
    offergrid_fake.inject_fault("empty", path="/provider/orders/")
    with fake_http_client(offergrid_fake) as api:
        response = api.get("/provider/orders/missing")
    assert response.status_code == 404
    with pytest.raises(ValueError, match="2xx"):
        offergrid_fake.inject_fault("empty", status=500)


def test_answer_faults_through_the_control_plane(offergrid_fake: OffergridFake):
    item = offergrid_fake.add_order_item()
    with httpx.Client(base_url=offergrid_fake.base_url) as control, fake_http_client(offergrid_fake) as api:
        assert (
            control.post("/_fake/faults", json={"kind": "empty", "path": "/provider/orders/"}).status_code
            == 201
        )
        response = api.get(f"/provider/orders/{item['id']}")
    assert (response.status_code, response.content) == (204, b"")
    assert json.loads(json.dumps(offergrid_fake.calls[-1].to_dict()))["fault"] == "empty"
    assert TEST_API_KEY not in json.dumps([call.to_dict() for call in offergrid_fake.calls])
