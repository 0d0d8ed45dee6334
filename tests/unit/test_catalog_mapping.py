"""The declarative catalog mapping: Decision 8 rows -> offer fields; bad rows -> RowError, never a stop."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from offergrid_integration.catalog import mapping as mapping_module
from offergrid_integration.catalog.mapping import (
    CatalogMapping,
    DesiredOffer,
    MappingError,
    RawRow,
    default_mapping,
    load_mapping,
)
from offergrid_integration.catalog.sources import CatalogFormat
from offergrid_integration.offergrid.models import Offer
from tests.fixtures.catalog import dry_run, map_all, parse

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def _internet(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "sku": "NET-1",
        "productName": "Fiber 1",
        "type": "internet",
        "price": 49.99,
        "isActive": True,
        "description": "Fast",
        "minBandwidth": 300,
        "maxBandwidth": 300,
        "connectionType": "fiber",
        "dataCap": None,
    }
    row.update(overrides)
    return row


@pytest.fixture(scope="module")
def mapping() -> CatalogMapping:
    return default_mapping()


def test_default_mapping_produces_the_offergrid_fields(mapping: CatalogMapping) -> None:
    offer = mapping.map_one(RawRow(1, _internet()))

    assert offer.sku == "NET-1"
    assert offer.fields == {
        "sku": "NET-1",
        "name": "Fiber 1",
        "category": "internet",
        "monthlyPrice": 49.99,
        "status": "active",
        "description": "Fast",
        "serviceSpecificData": {
            "minBandwidth": 300,
            "maxBandwidth": 300,
            "connectionType": "fiber",
            "dataCap": None,
        },
    }
    assert offer.create_body().to_wire()["serviceSpecificData"]["connectionType"] == "fiber"


def test_security_fields_and_inactive_status(mapping: CatalogMapping) -> None:
    row = {
        "sku": "SEC-1",
        "productName": "Pro",
        "type": "Home_Security",  # mapped type, case-insensitive
        "price": "44.99",
        "isActive": "no",
        "monitoringType": "professional",
        "installationType": "DIY",
        "equipmentIncluded": "Hub",
    }

    offer = mapping.map_one(RawRow(3, row))

    assert offer.fields["category"] == "security"
    assert offer.fields["status"] == "inactive"
    assert offer.fields["monthlyPrice"] == 44.99
    assert offer.fields["serviceSpecificData"] == {
        "monitoringType": "professional_monitoring",
        "installationType": "diy",
        "equipmentIncluded": "Hub",
    }


def test_missing_optional_field_is_not_owned_but_nullable_one_is_null(mapping: CatalogMapping) -> None:
    # Given a row without description (optional) and an empty dataCap cell (nullable: no cap)
    row = _internet(dataCap="")
    del row["description"]

    offer = mapping.map_one(RawRow(1, row))

    assert "description" not in offer.fields
    assert offer.fields["serviceSpecificData"]["dataCap"] is None


def test_missing_is_active_is_inactive(mapping: CatalogMapping) -> None:
    # Issue #11 case 3 (was: defaults to active): the guide's `isActive ? 'active' : 'inactive'`.
    row = _internet()
    del row["isActive"]
    assert mapping.map_one(RawRow(1, row)).fields["status"] == "inactive"


@pytest.mark.parametrize(
    ("overrides", "reason_part"),
    [
        ({"sku": ""}, "sku (sku): is required"),
        ({"type": "mobile"}, "category (type): unknown value 'mobile'"),
        ({"price": -1}, "below the minimum 0"),
        ({"price": "12,50"}, "must be a number"),
        ({"price": True}, "got a boolean"),
        ({"isActive": "maybe"}, "must be a boolean"),
        (
            {"connectionType": "carrier-pigeon"},
            "serviceSpecificData.connectionType (connectionType): unknown",
        ),
        ({"maxBandwidth": None}, "serviceSpecificData.maxBandwidth (maxBandwidth): is required"),
        ({"minBandwidth": 500, "maxBandwidth": 100}, "minBandwidth 500 is above maxBandwidth 100"),
        ({"productName": {"en": "x"}}, "must be a string, got dict"),
    ],
)
def test_invalid_rows_are_reported_with_row_number_sku_and_reason(
    mapping: CatalogMapping, overrides: dict[str, object], reason_part: str
) -> None:
    result = map_all(mapping, [RawRow(1, _internet(sku="OK-1")), RawRow(7, _internet(**overrides))])

    assert [offer.sku for offer in result.offers] == ["OK-1"]
    assert len(result.errors) == 1
    error = result.errors[0]
    assert error.row == 7
    assert reason_part in error.reason
    assert error.sku == (None if overrides.get("sku") == "" else "NET-1")


def test_every_problem_of_a_row_is_reported_at_once(mapping: CatalogMapping) -> None:
    result = map_all(mapping, [RawRow(2, _internet(price="free", isActive="perhaps"))])

    (error,) = result.errors
    assert "monthlyPrice (price)" in error.reason
    assert "status (isActive)" in error.reason


def test_duplicate_sku_keeps_the_first_row(mapping: CatalogMapping) -> None:
    report = dry_run(mapping, [RawRow(1, _internet(price=10)), RawRow(2, _internet(price=20))])

    assert [(change["kind"], change["body"]["monthlyPrice"]) for change in report.plan] == [("create", 10)]
    assert report.rows_valid == 1
    assert report.row_errors[0]["row"] == 2
    assert "duplicate sku (first on row 1)" in report.row_errors[0]["reason"]


def test_invalid_skus_protect_offers_and_only_restricts(mapping: CatalogMapping) -> None:
    rows = [
        RawRow(1, _internet(sku="A")),
        RawRow(2, _internet(sku="B", price="x")),
        RawRow(3, _internet(sku="C")),
    ]
    listed = [_listed(mapping, sku) for sku in "ABCD"]

    # The invalid row's SKU, and only it, is protected: D (absent) leaves sale, B (invalid) does not
    report = dry_run(mapping, rows, listed)
    assert [(change["kind"], change["sku"]) for change in report.plan] == [("deactivate", "D")]
    assert [error["sku"] for error in report.row_errors] == ["B"]

    # A partial run over B and C reads only their rows: C is planned, B's error reported
    only = dry_run(mapping, rows, skus=["B", "C"])
    assert [(change["kind"], change["sku"]) for change in only.plan] == [("create", "C")]
    assert [error["sku"] for error in only.row_errors] == ["B"]


def _listed(mapping: CatalogMapping, sku: str) -> Offer:
    offer = mapping.map_one(RawRow(1, _internet(sku=sku)))
    assert isinstance(offer, DesiredOffer)
    return Offer.model_validate({"id": f"00000000-0000-4000-8000-{ord(sku):012d}", **offer.fields})


def test_sample_catalog_json_and_csv_map_to_the_same_offers(mapping: CatalogMapping) -> None:
    from_json = map_all(mapping, parse((SAMPLES / "catalog.json").read_bytes(), CatalogFormat.JSON).rows)
    from_csv = map_all(mapping, parse((SAMPLES / "catalog.csv").read_bytes(), CatalogFormat.CSV).rows)

    assert from_json.errors == []
    assert from_csv.errors == []
    assert len(from_json.offers) == 12
    assert {offer.fields["category"] for offer in from_json.offers} == {
        "internet",
        "television",
        "security",
        "energy",
    }
    # CSV cells are strings: the same catalog must give the same (normalised) fields.
    from offergrid_integration.catalog.plan import canonical

    assert [canonical(dict(o.fields)) for o in from_csv.offers] == [
        canonical(dict(o.fields)) for o in from_json.offers
    ]


def test_custom_mapping_with_constants_nested_paths_and_lists() -> None:
    mapping = load_mapping(
        {
            "fields": {
                "sku": {"from": "code"},
                "name": {"from": "title.en", "required": True},
                "category": {"value": "energy"},
                "pricingType": {"value": "variable"},
                "monthlyPrice": {"from": "price", "type": "number", "nullable": True},
                "keyFeatures": {"from": "features", "type": "stringList"},
            },
            "serviceSpecificData": {"energy": {"contractMonths": {"from": "term", "type": "integer"}}},
        }
    )

    offer = mapping.map_one(
        RawRow(
            1, {"code": "E-1", "title": {"en": "Green"}, "features": "100% renewable | no fees", "term": "12"}
        )
    )

    assert offer.fields == {
        "sku": "E-1",
        "name": "Green",
        "category": "energy",
        "pricingType": "variable",
        "monthlyPrice": None,
        "keyFeatures": ["100% renewable", "no fees"],
        "serviceSpecificData": {"contractMonths": 12},
    }


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "not JSON"),
        ("[]", "must be a JSON object"),
        ({"fields": {"sku": {"from": "sku"}, "name": {"from": "n"}}}, "fields must map category"),
        (
            {
                "fields": {
                    "sku": {"from": "s"},
                    "name": {"from": "n"},
                    "category": {"from": "t"},
                    "bogus": {"from": "b"},
                }
            },
            "not writable offer fields: bogus",
        ),
        (
            {
                "fields": {
                    "sku": {"from": "s"},
                    "name": {"from": "n"},
                    "category": {"from": "t", "values": {"x": "phones"}},
                }
            },
            "unknown categories: phones",
        ),
        (
            {
                "fields": {
                    "sku": {"from": "s", "value": "x"},
                    "name": {"from": "n"},
                    "category": {"from": "t"},
                }
            },
            "exactly one of 'from'",
        ),
    ],
)
def test_a_bad_mapping_document_is_a_mapping_error(document: object, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        load_mapping(document if isinstance(document, str) else json.dumps(document))


def test_default_mapping_is_read_and_validated_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the shipped document is loaded through load_mapping (counted)
    default_mapping.cache_clear()
    loads: list[object] = []
    real_load = mapping_module.load_mapping

    def counting_load(document: str | bytes | Mapping[str, Any]) -> CatalogMapping:
        loads.append(document)
        return real_load(document)

    monkeypatch.setattr(mapping_module, "load_mapping", counting_load)
    # When the default mapping is asked for on every run
    first, second = default_mapping(), default_mapping()
    # Then it was read and validated once, and every run shares it
    assert first is second
    assert len(loads) == 1
