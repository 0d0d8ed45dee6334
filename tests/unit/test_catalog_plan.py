"""The plan (OfferPlanner): create / update only what differs / unchanged / missing, deterministic."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offergrid_integration.catalog.mapping import DesiredOffer
from offergrid_integration.catalog.plan import ChangeKind, MissingOfferPolicy, OfferPlanner, canonical
from offergrid_integration.offergrid.models import Offer
from tests.fixtures.catalog import plan


def desired(sku: str, **fields: Any) -> DesiredOffer:
    body: dict[str, Any] = {"sku": sku, "name": f"Offer {sku}", "category": "television", "status": "active"}
    body.update(fields)
    return DesiredOffer(sku=sku, fields=body, row=1)


def offer(sku: str | None, offer_id: str | None = None, **fields: Any) -> Offer:
    body: dict[str, Any] = {"id": offer_id or f"id-{sku}", "sku": sku, "name": f"Offer {sku}"}
    body.update({"category": "television", "status": "active"} | fields)
    return Offer.model_validate(body)


def by_sku(*offers: Offer) -> list[Offer]:
    """Offergrid's listing: the planner indexes it by SKU."""
    return list(offers)


def test_new_sku_is_created_with_the_catalog_fields() -> None:
    diff = plan([desired("A", monthlyPrice=10)], {})

    (change,) = diff.writes
    assert change.kind is ChangeKind.CREATE
    assert change.offer_id is None
    assert change.body["monthlyPrice"] == 10


def test_update_carries_only_the_fields_that_differ() -> None:
    current = by_sku(offer("A", monthlyPrice=10, description="old", name="Offer A"))

    diff = plan([desired("A", monthlyPrice=12.5, description="old")], current)

    (change,) = diff.writes
    assert change.kind is ChangeKind.UPDATE
    assert change.offer_id == "id-A"
    assert dict(change.body) == {"monthlyPrice": 12.5}
    assert dict(change.before) == {"monthlyPrice": 10}


@pytest.mark.parametrize(
    ("catalog", "offergrid"), [(59.9, 59.90), (100, 100.0), (0.1 + 0.2, 0.30000000000000004)]
)
def test_numbers_compare_normalised(catalog: Any, offergrid: Any) -> None:
    diff = plan([desired("A", monthlyPrice=catalog)], by_sku(offer("A", monthlyPrice=offergrid)))
    assert diff.writes == []
    assert diff.unchanged == ["A"]


def test_canonical_values() -> None:
    assert canonical(59.9) == canonical(59.90) == canonical(5.99e1)
    assert canonical(100) == canonical(100.0)
    assert canonical(-0.0) == canonical(0)
    assert canonical({"b": 1, "a": None}) == canonical({"b": 1.0})
    assert canonical(59.9) != canonical(59.91)


def test_service_data_key_order_and_null_vs_absent_cause_no_write() -> None:
    current = by_sku(
        offer(
            "N",
            category="internet",
            serviceSpecificData={"connectionType": "fiber", "maxBandwidth": 300.0, "minBandwidth": 300},
        )
    )
    wanted = desired(
        "N",
        category="internet",
        serviceSpecificData={
            "minBandwidth": 300,
            "maxBandwidth": 300,
            "connectionType": "fiber",
            "dataCap": None,
        },
    )

    diff = plan([wanted], current)

    assert diff.writes == []


def test_service_data_change_sends_the_whole_object_keeping_unowned_keys() -> None:
    current = by_sku(
        offer("T", serviceSpecificData={"channelCount": 75, "includesDvr": True, "handAdded": "keep me"})
    )

    diff = plan([desired("T", serviceSpecificData={"channelCount": 80, "includesDvr": True})], current)

    (change,) = diff.writes
    assert dict(change.body) == {
        "serviceSpecificData": {"channelCount": 80, "includesDvr": True, "handAdded": "keep me"}
    }


@pytest.mark.parametrize(
    ("policy", "status", "expected_kind", "expected_body"),
    [
        (MissingOfferPolicy.INACTIVE, "active", ChangeKind.DEACTIVATE, {"status": "inactive"}),
        (MissingOfferPolicy.ARCHIVE, "inactive", ChangeKind.ARCHIVE, {"status": "archived"}),
        (MissingOfferPolicy.DELETE, "active", ChangeKind.DELETE, {}),
    ],
)
def test_missing_offer_policies(
    policy: MissingOfferPolicy, status: str, expected_kind: ChangeKind, expected_body: dict[str, str]
) -> None:
    diff = plan([desired("KEEP")], by_sku(offer("KEEP"), offer("GONE", status=status)), policy)

    (change,) = diff.missing
    assert (change.kind, change.sku, dict(change.body)) == (expected_kind, "GONE", expected_body)


@pytest.mark.parametrize(
    ("policy", "status"),
    [
        (MissingOfferPolicy.IGNORE, "active"),
        (MissingOfferPolicy.INACTIVE, "inactive"),
        (MissingOfferPolicy.INACTIVE, "archived"),
        (MissingOfferPolicy.INACTIVE, "draft"),
        (MissingOfferPolicy.ARCHIVE, "archived"),
    ],
)
def test_missing_offer_already_in_policy_state_needs_no_write(
    policy: MissingOfferPolicy, status: str
) -> None:
    diff = plan([desired("KEEP")], by_sku(offer("KEEP"), offer("GONE", status=status)), policy)

    assert diff.writes == []
    assert diff.missing_untouched == ["GONE"]


def test_never_delete_by_default() -> None:
    diff = plan([desired("KEEP")], by_sku(offer("KEEP"), offer("GONE")))
    assert [change.kind for change in diff.writes] == [ChangeKind.DEACTIVATE]


def test_offer_of_an_invalid_row_is_neither_updated_nor_missing() -> None:
    diff = plan([desired("OK")], by_sku(offer("OK"), offer("BROKEN-ROW")), protected_skus=["BROKEN-ROW"])
    assert diff.writes == []
    assert diff.skipped_invalid == ["BROKEN-ROW"]


def test_empty_catalog_never_deactivates_everything() -> None:
    diff = plan([], by_sku(offer("A"), offer("B")))

    assert diff.writes == []
    assert diff.missing_guarded is True
    assert diff.missing_untouched == ["A", "B"]


def test_partial_run_only_touches_its_scope() -> None:
    current = by_sku(offer("A", monthlyPrice=1), offer("B"), offer("C"))

    diff = plan([desired("A", monthlyPrice=2)], current, scope=["A", "B"])

    assert [(change.kind, change.sku) for change in diff.writes] == [
        (ChangeKind.UPDATE, "A"),
        (ChangeKind.DEACTIVATE, "B"),
    ]


def test_offers_without_sku_and_duplicates_are_indexed_apart() -> None:
    planner = OfferPlanner()
    planner.add_desired(desired("D", monthlyPrice=2))
    for listed in (
        offer(None, "no-sku"),
        offer("D", "newer", createdAt="2026-02-01T00:00:00Z"),
        offer("D", "older", createdAt="2026-01-01T00:00:00Z"),
    ):
        planner.add_offer(listed)

    diff = planner.finish()

    assert planner.without_sku == ["no-sku"]
    assert [(change.kind, change.offer_id) for change in diff.writes] == [(ChangeKind.UPDATE, "older")]
    assert planner.duplicate_ids == {"D": ["newer"]}


def test_writes_are_in_a_deterministic_order() -> None:
    current = by_sku(offer("U2", monthlyPrice=1), offer("U1", monthlyPrice=1), offer("M2"), offer("M1"))
    wanted = [desired("C2"), desired("U2", monthlyPrice=2), desired("C1"), desired("U1", monthlyPrice=2)]

    first = plan(wanted, current)
    second = plan(list(reversed(wanted)), list(reversed(current)))

    order = [(change.kind.value, change.sku) for change in first.writes]
    assert order == [
        ("update", "U1"),
        ("update", "U2"),
        ("create", "C1"),
        ("create", "C2"),
        ("deactivate", "M1"),
        ("deactivate", "M2"),
    ]
    assert order == [(change.kind.value, change.sku) for change in second.writes]
    (u1, _, *_) = first.writes
    assert (dict(u1.before), dict(u1.body)) == ({"monthlyPrice": 1.0}, {"monthlyPrice": 2})


# --- property: applying the plan converges (a second plan is empty) -----------------------------------
_prices = st.one_of(st.integers(0, 500), st.decimals(0, 500, places=2).map(float))
_catalog_entry = st.fixed_dictionaries(
    {
        "monthlyPrice": _prices,
        "status": st.sampled_from(["active", "inactive"]),
        "description": st.sampled_from(["a", "b", "c"]),
        "serviceSpecificData": st.fixed_dictionaries(
            {"channelCount": st.integers(0, 300), "includesDvr": st.booleans()}
        ),
    }
)


def _apply_to(current: dict[str, dict[str, Any]], writes: list[Any]) -> dict[str, dict[str, Any]]:
    """Apply writes to plain offers the way Offergrid does (PATCH replaces the given top-level fields)."""
    state = copy.deepcopy(current)
    for change in writes:
        if change.kind is ChangeKind.CREATE:
            state[change.sku] = {"id": f"new-{change.sku}", **change.body}
        elif change.kind is ChangeKind.DELETE:
            del state[change.sku]
        else:
            state[change.sku].update(copy.deepcopy(dict(change.body)))
    return state


@settings(max_examples=60, deadline=None)
@given(
    catalog=st.dictionaries(st.sampled_from(["A", "B", "C", "D"]), _catalog_entry, max_size=4),
    existing=st.dictionaries(st.sampled_from(["B", "C", "D", "E"]), _catalog_entry, max_size=4),
    policy=st.sampled_from(list(MissingOfferPolicy)),
)
def test_a_second_plan_after_applying_the_first_is_empty(
    catalog: dict[str, dict[str, Any]], existing: dict[str, dict[str, Any]], policy: MissingOfferPolicy
) -> None:
    wanted = [desired(sku, **fields) for sku, fields in catalog.items()]
    current = {
        sku: {"id": f"id-{sku}", "sku": sku, "name": f"Offer {sku}", **f} for sku, f in existing.items()
    }

    first = plan(wanted, by_sku(*map(Offer.model_validate, current.values())), policy)
    after = _apply_to(current, first.writes)
    second = plan(wanted, by_sku(*map(Offer.model_validate, after.values())), policy)

    assert second.writes == []
    # and every catalog SKU now holds the catalog's values
    for offer_wanted in wanted:
        for name, value in offer_wanted.fields.items():
            assert canonical(after[offer_wanted.sku][name]) == canonical(value)
