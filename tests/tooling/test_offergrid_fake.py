"""The Offergrid fake over real HTTP: auth, offers, orders, lifecycle, lists, faults and the call log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devtools.offergrid_fake import FORBIDDEN_BODY, UNAUTHORIZED_BODY, OffergridFake
from tests.fixtures.offergrid_fake import TEST_API_KEY, OffergridFakeFactory, fake_http_client

INTERNET = {"minBandwidth": 100, "maxBandwidth": 1000, "connectionType": "fiber", "dataCap": None}
SECURITY = {"monitoringType": "hybrid", "installationType": "diy", "equipmentIncluded": "2 cameras"}


def offer_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "High-Speed Internet 1000 Mbps",
        "category": "internet",
        "sku": "INT-1000-001",
        "pricingType": "fixed",
        "monthlyPrice": 59.99,
        "serviceSpecificData": dict(INTERNET),
    }
    body.update(overrides)
    return body


client_for = fake_http_client


@pytest.fixture
def api(offergrid_fake: OffergridFake) -> Iterator[httpx.Client]:
    with client_for(offergrid_fake) as client:
        yield client


# -- auth --------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "wrong-key", ""])
def test_missing_or_wrong_api_key_is_401_with_the_documented_body(offergrid_fake: OffergridFake, key):
    with client_for(offergrid_fake, key) as client:
        response = client.get("/provider/offers")
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED_BODY
    assert offergrid_fake.calls[-1].api_key_valid is False


def test_keys_can_be_rotated_at_runtime(offergrid_fake: OffergridFake):
    # Given a second key added and the original revoked
    offergrid_fake.add_api_key("rotated-key")
    offergrid_fake.revoke_api_key(TEST_API_KEY)
    # Then the old key is refused and the new one accepted
    with client_for(offergrid_fake) as old, client_for(offergrid_fake, "rotated-key") as new:
        assert old.get("/provider/offers").status_code == 401
        assert new.get("/provider/offers").status_code == 200


def test_reseller_key_is_403_provider_role_required(offergrid_fake_factory: OffergridFakeFactory):
    fake = offergrid_fake_factory(reseller_keys=["reseller-key"])
    with client_for(fake, "reseller-key") as client:
        response = client.get("/provider/orders")
    assert response.status_code == 403
    assert response.json() == FORBIDDEN_BODY


def test_unknown_route_is_404_and_bad_json_is_400(api: httpx.Client):
    assert api.get("/provider/nothing").status_code == 404
    assert api.put("/provider/offers/x", json={}).status_code == 404
    response = api.post(
        "/provider/offers", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert api.post("/provider/offers", json=[offer_body()]).status_code == 400


# -- offers: create and validation ---------------------------------------------------------------


def test_create_offer_returns_201_with_id_timestamps_default_status_and_unknown_fields(api: httpx.Client):
    response = api.post(
        "/provider/offers", json=offer_body(visibility="public", futureField={"x": 1}, id="mine")
    )
    assert response.status_code == 201
    offer = response.json()
    assert offer["id"]
    assert offer["id"] != "mine"
    assert offer["status"] == "draft"
    assert offer["futureField"] == {"x": 1}
    assert offer["createdAt"] == offer["updatedAt"]
    assert offer["createdAt"].endswith("Z")
    assert api.get(f"/provider/offers/{offer['id']}").json() == offer


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": None}, "name should not be empty"),
        ({"name": "  "}, "name should not be empty"),
        ({"sku": 42}, "sku must be a string"),
        ({"category": "mobile"}, "category must be one of the following values: internet, television"),
        (
            {"status": "published"},
            "status must be one of the following values: draft, active, inactive, archived",
        ),
        (
            {"pricingType": "flat"},
            "pricingType must be one of the following values: fixed, variable, tiered, custom",
        ),
        ({"monthlyPrice": "59.99"}, "monthlyPrice must be a number"),
        ({"monthlyPrice": True}, "monthlyPrice must be a number"),
        ({"keyFeatures": ["fast", 1]}, "each value in keyFeatures must be a string"),
        ({"metadata": []}, "metadata must be an object"),
        (
            {"serviceSpecificData": {"minBandwidth": 100, "connectionType": "fiber"}},
            "maxBandwidth should not be empty",
        ),
        ({"serviceSpecificData": {**INTERNET, "connectionType": "copper"}}, "connectionType must be one of"),
        ({"serviceSpecificData": {**INTERNET, "minBandwidth": "100"}}, "minBandwidth must be a number"),
        ({"serviceSpecificData": {**INTERNET, "dataCap": "1TB"}}, "dataCap must be a number"),
        (
            {"category": "security", "serviceSpecificData": {**SECURITY, "monitoringType": "cloud"}},
            "monitoringType must be one of the following values: professional_monitoring",
        ),
        (
            {"category": "security", "serviceSpecificData": {**SECURITY, "installationType": "robot"}},
            "installationType must be one of the following values: professional, diy",
        ),
    ],
)
def test_create_offer_validation_errors_are_400_with_a_message_list(api: httpx.Client, changes, message):
    response = api.post("/provider/offers", json=offer_body(**changes))
    assert response.status_code == 400
    body = response.json()
    assert body["statusCode"] == 400
    assert body["error"] == "Bad Request"
    assert isinstance(body["message"], list)
    assert any(message in line for line in body["message"]), body["message"]
    assert api.get("/provider/offers").json() == []


def test_create_offer_requires_name_category_and_sku(api: httpx.Client):
    response = api.post("/provider/offers", json={"description": "nothing else"})
    assert response.status_code == 400
    assert {"name should not be empty", "category should not be empty", "sku should not be empty"} <= set(
        response.json()["message"]
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"monthlyPrice": None, "pricingType": "variable"},
        {"category": "security", "serviceSpecificData": SECURITY},
        {"category": "energy", "serviceSpecificData": {"anything": "goes"}},
        {
            "status": "active",
            "serviceSpecificData": {**INTERNET, "connectionType": "5g_home", "dataCap": 1024},
        },
    ],
)
def test_valid_variants_are_accepted(api: httpx.Client, changes):
    assert api.post("/provider/offers", json=offer_body(**changes)).status_code == 201


def test_duplicate_sku_is_409(api: httpx.Client):
    assert api.post("/provider/offers", json=offer_body()).status_code == 201
    response = api.post("/provider/offers", json=offer_body(name="Other"))
    assert response.status_code == 409
    assert response.json()["statusCode"] == 409
    assert len(api.get("/provider/offers").json()) == 1


# -- offers: read, update, delete ------------------------------------------------------------------


def test_patch_changes_only_the_given_fields_and_bumps_updated_at(api: httpx.Client):
    created = api.post("/provider/offers", json=offer_body(description="old", metadata={"a": 1})).json()
    response = api.patch(
        f"/provider/offers/{created['id']}", json={"monthlyPrice": 49.99, "status": "active"}
    )
    assert response.status_code == 200
    updated = response.json()
    assert updated["monthlyPrice"] == 49.99
    assert updated["status"] == "active"
    unchanged = {k: v for k, v in created.items() if k not in ("monthlyPrice", "status", "updatedAt")}
    assert {k: updated[k] for k in unchanged} == unchanged
    assert updated["updatedAt"] > created["updatedAt"]
    assert api.get(f"/provider/offers/{created['id']}").json() == updated


def test_patch_validates_like_create_and_leaves_the_offer_unchanged_on_error(api: httpx.Client):
    created = api.post("/provider/offers", json=offer_body()).json()
    for bad in (
        {"status": "gone"},
        {"status": None},
        {"name": ""},
        {"serviceSpecificData": {"connectionType": "fiber"}},  # validated against the stored category
    ):
        assert api.patch(f"/provider/offers/{created['id']}", json=bad).status_code == 400, bad
    assert api.get(f"/provider/offers/{created['id']}").json() == created


def test_patch_sku_conflicts_only_with_other_offers(api: httpx.Client):
    first = api.post("/provider/offers", json=offer_body(sku="A")).json()
    second = api.post("/provider/offers", json=offer_body(sku="B")).json()
    assert api.patch(f"/provider/offers/{second['id']}", json={"sku": "A"}).status_code == 409
    assert api.patch(f"/provider/offers/{first['id']}", json={"sku": "A"}).status_code == 200
    assert api.patch(f"/provider/offers/{second['id']}", json={"sku": "C"}).json()["sku"] == "C"


def test_unknown_offer_is_404_for_get_patch_delete(api: httpx.Client):
    for method in ("GET", "PATCH", "DELETE"):
        response = api.request(
            method, "/provider/offers/nope", json={"name": "x"} if method == "PATCH" else None
        )
        assert response.status_code == 404, method
        assert response.json()["statusCode"] == 404


def test_delete_is_204_then_the_offer_is_gone(api: httpx.Client, offergrid_fake: OffergridFake):
    offer = offergrid_fake.add_offer(sku="DEL-1")
    response = api.delete(f"/provider/offers/{offer['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert api.get(f"/provider/offers/{offer['id']}").status_code == 404
    assert offer["id"] not in offergrid_fake.offers
    # The SKU is free again
    assert api.post("/provider/offers", json=offer_body(sku="DEL-1")).status_code == 201


def test_seeded_offers_keep_skus_unique(offergrid_fake: OffergridFake):
    offergrid_fake.add_offer(sku="S-1")
    with pytest.raises(ValueError, match="S-1"):
        offergrid_fake.add_offer(sku="S-1")


# -- orders --------------------------------------------------------------------------------------


def test_order_items_have_the_documented_shape(api: httpx.Client, offergrid_fake: OffergridFake):
    offer = offergrid_fake.add_offer(name="Fiber 1000")
    item = offergrid_fake.add_order_item(offerId=offer["id"], metadata={"unitNumber": "4B"})
    fetched = api.get(f"/provider/orders/{item['id']}").json()
    assert fetched == item
    assert fetched["offerName"] == "Fiber 1000"
    assert fetched["status"] == "pending"
    assert set(fetched) >= {
        "id", "orderId", "offerId", "offerName", "status", "createdAt", "customerInfo",
        "serviceAddress", "notes", "metadata", "providerNotes", "scheduledFor",
    }  # fmt: skip
    assert set(fetched["customerInfo"]) == {"fullName", "email", "phone"}
    assert set(fetched["serviceAddress"]) == {"street", "city", "state", "zipCode", "country"}
    assert api.get("/provider/orders/item-unknown").status_code == 404


def test_list_orders_filters_by_status_and_rejects_unknown_status(
    api: httpx.Client, offergrid_fake: OffergridFake
):
    pending = offergrid_fake.add_order_item()
    accepted = offergrid_fake.add_order_item(status="accepted")
    assert [i["id"] for i in api.get("/provider/orders").json()] == [pending["id"], accepted["id"]]
    assert [i["id"] for i in api.get("/provider/orders", params={"status": "accepted"}).json()] == [
        accepted["id"]
    ]
    assert api.get("/provider/orders", params={"status": "active"}).json() == []
    for bad in ({"status": "open"}, {"status": ""}, {"status": ["pending", "accepted"]}):
        response = api.get("/provider/orders", params=bad)
        assert response.status_code == 400, bad
        assert "status must be one of the following values" in response.json()["message"][0]


def test_status_patch_sets_notes_schedule_merges_metadata_and_keeps_history(
    api: httpx.Client, offergrid_fake: OffergridFake
):
    item = offergrid_fake.add_order_item(metadata={"unitNumber": "4B"})
    response = api.patch(
        f"/provider/orders/{item['id']}/status",
        json={
            "status": "scheduled",
            "providerNotes": "Tuesday",
            "scheduledFor": "2025-01-15T10:00:00Z",
            "metadata": {"workOrderId": "wo-1"},
        },
    )
    assert response.status_code == 200
    updated = response.json()
    assert updated["status"] == "scheduled"
    assert updated["providerNotes"] == "Tuesday"
    assert updated["scheduledFor"] == "2025-01-15T10:00:00Z"
    assert updated["metadata"] == {"unitNumber": "4B", "workOrderId": "wo-1"}
    assert updated["customerInfo"] == item["customerInfo"]
    [change] = offergrid_fake.history(item["id"])
    assert (change["from"], change["to"], change["providerNotes"]) == ("pending", "scheduled", "Tuesday")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "status should not be empty"),
        ({"status": "done"}, "status must be one of the following values: pending, submitted_to_provider"),
        ({"status": "scheduled", "scheduledFor": "next tuesday"}, "scheduledFor must be a valid ISO 8601"),
        ({"status": "scheduled", "scheduledFor": 1736935200}, "scheduledFor must be a valid ISO 8601"),
        ({"status": "accepted", "providerNotes": 7}, "providerNotes must be a string"),
        ({"status": "accepted", "metadata": "x"}, "metadata must be an object"),
    ],
)
def test_status_patch_validation(api: httpx.Client, offergrid_fake: OffergridFake, body, message):
    item = offergrid_fake.add_order_item()
    response = api.patch(f"/provider/orders/{item['id']}/status", json=body)
    assert response.status_code == 400
    assert any(message in line for line in response.json()["message"])
    assert offergrid_fake.order_items[item["id"]]["status"] == "pending"


def test_status_patch_on_unknown_item_is_404(api: httpx.Client):
    assert api.patch("/provider/orders/item-x/status", json={"status": "accepted"}).status_code == 404


ALLOWED = [
    ("pending", "submitted_to_provider"),
    ("pending", "accepted"),
    ("submitted_to_provider", "accepted"),
    ("accepted", "scheduled"),
    ("accepted", "in_progress"),
    ("scheduled", "in_progress"),
    ("in_progress", "completed"),
    ("completed", "active"),
    ("pending", "rejected"),
    ("submitted_to_provider", "rejected"),
    ("accepted", "cancelled"),
    ("scheduled", "cancelled"),
    ("in_progress", "cancelled"),
    ("in_progress", "failed"),
]
REFUSED = [
    ("accepted", "pending"),
    ("scheduled", "accepted"),
    ("accepted", "rejected"),
    ("pending", "cancelled"),
    ("pending", "failed"),
    ("scheduled", "failed"),
    ("completed", "cancelled"),
    ("accepted", "accepted"),
    ("rejected", "accepted"),
    ("cancelled", "in_progress"),
    ("failed", "completed"),
    ("active", "completed"),
]


@pytest.mark.parametrize(("current", "target"), ALLOWED)
def test_lifecycle_allows_documented_transitions(
    api: httpx.Client, offergrid_fake: OffergridFake, current, target
):
    item = offergrid_fake.add_order_item(status=current)
    response = api.patch(f"/provider/orders/{item['id']}/status", json={"status": target})
    assert response.status_code == 200
    assert response.json()["status"] == target


@pytest.mark.parametrize(("current", "target"), REFUSED)
def test_lifecycle_refuses_other_transitions_with_422(
    api: httpx.Client, offergrid_fake: OffergridFake, current, target
):
    item = offergrid_fake.add_order_item(status=current)
    response = api.patch(f"/provider/orders/{item['id']}/status", json={"status": target})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "Unprocessable Entity"
    assert current in body["message"]
    assert "transition" in body["message"]
    assert offergrid_fake.order_items[item["id"]]["status"] == current
    assert offergrid_fake.history(item["id"]) == []


def test_terminal_status_message_names_it_terminal(api: httpx.Client, offergrid_fake: OffergridFake):
    item = offergrid_fake.add_order_item(status="rejected")
    response = api.patch(f"/provider/orders/{item['id']}/status", json={"status": "accepted"})
    assert "terminal" in response.json()["message"]


def test_lifecycle_enforcement_can_be_switched_off(offergrid_fake_factory: OffergridFakeFactory):
    fake = offergrid_fake_factory(enforce_lifecycle=False)
    item = fake.add_order_item(status="cancelled")
    with client_for(fake) as client:
        assert (
            client.patch(f"/provider/orders/{item['id']}/status", json={"status": "pending"}).status_code
            == 200
        )


def test_set_order_item_status_bypasses_lifecycle_and_is_recorded(offergrid_fake: OffergridFake):
    item = offergrid_fake.add_order_item(status="accepted")
    assert offergrid_fake.set_order_item_status(item["id"], "cancelled")["status"] == "cancelled"
    assert offergrid_fake.history(item["id"])[0]["source"] == "fake"
    with pytest.raises(ValueError, match="status must be one of"):
        offergrid_fake.add_order_item(status="open")


# -- lists ---------------------------------------------------------------------------------------


def _collect(client: httpx.Client, path: str, style: str, params: dict[str, str] | None = None) -> list[str]:
    ids: list[str] = []
    query: dict[str, str] = dict(params or {})
    for _ in range(50):
        body = client.get(path, params=query).raise_for_status().json()
        if style == "envelope-cursor":
            ids += [item["id"] for item in body["data"]]
            if body["nextCursor"] is None:
                return ids
            query["cursor"] = body["nextCursor"]
        else:
            ids += [item["id"] for item in body["items"]]
            if body["page"] >= body["totalPages"]:
                return ids
            query["page"] = str(body["page"] + 1)
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize("style", ["envelope-cursor", "envelope-page"])
@pytest.mark.parametrize("count", [0, 4, 5])
def test_envelopes_page_through_everything(offergrid_fake_factory: OffergridFakeFactory, style, count):
    fake = offergrid_fake_factory(list_style=style, page_size=2)
    expected = [fake.add_offer()["id"] for _ in range(count)]
    with client_for(fake) as client:
        assert _collect(client, "/provider/offers", style) == expected
        first = client.get("/provider/offers").json()
    assert len(first["data" if style == "envelope-cursor" else "items"]) == min(count, 2)


@pytest.mark.parametrize("style", ["envelope-cursor", "envelope-page"])
def test_envelopes_page_filtered_orders(offergrid_fake_factory: OffergridFakeFactory, style):
    fake = offergrid_fake_factory(list_style=style, page_size=2)
    expected = []
    for n in range(7):
        item = fake.add_order_item(status="pending" if n % 2 == 0 else "accepted")
        if item["status"] == "pending":
            expected.append(item["id"])
    with client_for(fake) as client:
        assert _collect(client, "/provider/orders", style, {"status": "pending"}) == expected


def test_page_envelope_shape_and_bad_page_params(offergrid_fake_factory: OffergridFakeFactory):
    fake = offergrid_fake_factory(list_style="envelope-page", page_size=2)
    for _ in range(3):
        fake.add_offer()
    with client_for(fake) as client:
        assert client.get("/provider/offers", params={"page": "2"}).json()["totalPages"] == 2
        assert client.get("/provider/offers", params={"page": "3"}).json()["items"] == []
        assert client.get("/provider/offers", params={"page": "0"}).status_code == 400
        assert client.get("/provider/offers", params={"page": "two"}).status_code == 400


def test_unpaged_envelopes_hold_everything_and_bad_cursor_is_400(
    offergrid_fake_factory: OffergridFakeFactory,
):
    fake = offergrid_fake_factory(list_style="envelope-cursor")
    for _ in range(3):
        fake.add_offer()
    with client_for(fake) as client:
        body = client.get("/provider/offers").json()
        assert len(body["data"]) == 3
        assert body["nextCursor"] is None
        assert client.get("/provider/offers", params={"cursor": "!!garbage"}).status_code == 400


def test_bad_list_configuration_is_refused():
    with pytest.raises(ValueError, match="bare array"):
        OffergridFake(page_size=2)
    with pytest.raises(ValueError, match="list_style"):
        OffergridFake(list_style="xml")


# -- faults ----------------------------------------------------------------------------------------


def test_status_fault_matches_path_and_method_then_runs_out(api: httpx.Client, offergrid_fake: OffergridFake):
    offergrid_fake.inject_fault(
        "status", times=2, status=503, retry_after=2, method="GET", path="/provider/orders"
    )
    assert api.get("/provider/offers").status_code == 200  # other path
    assert (
        api.patch("/provider/orders/x/status", json={"status": "accepted"}).status_code == 404
    )  # other method
    for _ in range(2):
        response = api.get("/provider/orders")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "2"
        assert response.json() == {
            "statusCode": 503,
            "message": "Service Unavailable",
            "error": "Service Unavailable",
        }
    assert api.get("/provider/orders").status_code == 200
    assert [call.fault for call in offergrid_fake.calls_matching("GET", "/provider/orders")] == [
        "status",
        "status",
        None,
    ]


def test_faults_are_consumed_first_in_first_out(api: httpx.Client, offergrid_fake: OffergridFake):
    offergrid_fake.inject_fault("status", status=500)
    offergrid_fake.inject_fault("status", status=502, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")
    first, second, third = (api.get("/provider/offers") for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (500, 502, 200)
    assert "retry-after" not in first.headers
    assert second.headers["retry-after"] == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert offergrid_fake.pending_faults() == []


def test_rate_limit_fault_is_429_with_retry_after(api: httpx.Client, offergrid_fake: OffergridFake):
    offergrid_fake.inject_fault("rate_limit")
    offergrid_fake.inject_fault("rate_limit", retry_after=0.25)
    first, second = api.get("/provider/offers"), api.get("/provider/offers")
    assert (first.status_code, first.headers["retry-after"]) == (429, "1")
    assert (second.status_code, second.headers["retry-after"]) == (429, "0.25")
    assert first.json()["message"] == "Too Many Requests"


def test_slow_fault_delays_the_normal_answer(offergrid_fake: OffergridFake):
    # Margins a loaded machine cannot eat: an answer 5 s late, a client that waits 0.5 s for it
    offergrid_fake.inject_fault("slow", delay=5.0, path="/provider/offers")
    with client_for(offergrid_fake, timeout=0.5) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            impatient.get("/provider/offers")
        # The fault is spent: the next request is answered normally (not 5 s late)
        assert impatient.get("/provider/offers", timeout=4.0).status_code == 200
    offergrid_fake.inject_fault("slow", delay=0.2)
    with client_for(offergrid_fake) as patient:
        response = patient.get("/provider/offers")
    assert response.status_code == 200
    assert response.elapsed.total_seconds() >= 0.19


def test_drop_fault_closes_without_answer_and_is_recorded(api: httpx.Client, offergrid_fake: OffergridFake):
    offergrid_fake.inject_fault("drop", method="POST")
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/provider/offers", json=offer_body())
    assert offergrid_fake.offers == {}
    assert api.post("/provider/offers", json=offer_body()).status_code == 201
    dropped = offergrid_fake.calls_matching("POST")[0]
    assert (dropped.status, dropped.fault) == (None, "drop")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"kind": "explode"}, "unknown fault kind"), ({"kind": "status", "times": 0}, "times"),
     ({"kind": "status", "status": 42}, "status"), ({"kind": "slow", "delay": -1}, "delay")],
)  # fmt: skip
def test_bad_fault_arguments_are_refused(offergrid_fake: OffergridFake, kwargs, message):
    kind = kwargs.pop("kind")
    with pytest.raises(ValueError, match=message):
        offergrid_fake.inject_fault(kind, **kwargs)


# -- call log ------------------------------------------------------------------------------------


def test_calls_are_recorded_without_the_api_key(offergrid_fake: OffergridFake):
    secret_key = "sk-live-do-not-store-me"
    offergrid_fake.add_api_key(secret_key)
    with client_for(offergrid_fake, secret_key) as client:
        client.post("/provider/offers", params={"dry": "1"}, json=offer_body())
        client.get("/provider/orders", params={"status": "pending"})
    with client_for(offergrid_fake, "bad-key") as bad:
        bad.get("/provider/offers/abc")
    post, get, refused = offergrid_fake.calls
    assert (post.method, post.path, post.query, post.status, post.api_key_valid) == (
        "POST", "/provider/offers", {"dry": ["1"]}, 201, True,
    )  # fmt: skip
    assert post.body == offer_body()
    assert (get.query, get.body) == ({"status": ["pending"]}, None)
    assert (refused.status, refused.api_key_valid, refused.path) == (401, False, "/provider/offers/abc")
    assert post.at <= get.at <= refused.at
    everything = repr(offergrid_fake.calls) + repr(vars(offergrid_fake)) + repr(offergrid_fake.state())
    assert secret_key not in everything
    assert "bad-key" not in everything
    assert offergrid_fake.status_counts[401] == 1


def test_calls_matching_and_clear_calls(api: httpx.Client, offergrid_fake: OffergridFake):
    api.get("/provider/offers")
    api.get("/provider/orders")
    api.post("/provider/offers", json={})
    assert len(offergrid_fake.calls_matching(method="get")) == 2
    assert [c.method for c in offergrid_fake.calls_matching(path_prefix="/provider/offers")] == [
        "GET",
        "POST",
    ]
    assert len(offergrid_fake.calls_matching("POST", "/provider/orders")) == 0
    offergrid_fake.clear_calls()
    assert offergrid_fake.calls == []


def test_default_request_logging_is_silent(api: httpx.Client, capfd: pytest.CaptureFixture[str]):
    api.get("/provider/offers")
    api.get("/nowhere")
    captured = capfd.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_verbose_logging_never_shows_the_key(offergrid_fake_factory: OffergridFakeFactory, capfd):
    fake = offergrid_fake_factory(verbose=True)
    with client_for(fake) as client:
        client.get("/provider/offers", params={"status": "x"})
    err = capfd.readouterr().err
    assert "GET /provider/offers?status=x" in err
    assert TEST_API_KEY not in err


def test_reset_forgets_state_but_keeps_keys(api: httpx.Client, offergrid_fake: OffergridFake):
    offergrid_fake.add_offer()
    offergrid_fake.add_order_item()
    offergrid_fake.inject_fault("drop")
    offergrid_fake.reset()
    assert (offergrid_fake.offers, offergrid_fake.order_items, offergrid_fake.calls) == ({}, {}, [])
    assert api.get("/provider/offers").status_code == 200  # no fault left, key still valid


def test_stopped_fake_refuses_connections(offergrid_fake_factory: OffergridFakeFactory):
    fake = offergrid_fake_factory()
    with client_for(fake) as client:
        assert client.get("/provider/offers").status_code == 200
        fake.stop()
        with pytest.raises(httpx.TransportError):
            client.get("/provider/offers")
    with pytest.raises(RuntimeError):
        _ = fake.base_url


def test_chunked_request_bodies_are_read(api: httpx.Client):
    body = json.dumps(offer_body()).encode()
    response = api.post(
        "/provider/offers", content=iter([body[:10], body[10:]]), headers={"content-type": "application/json"}
    )
    assert response.status_code == 201
    assert response.json()["sku"] == offer_body()["sku"]
