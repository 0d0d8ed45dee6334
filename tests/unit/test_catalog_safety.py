"""Catalog safety (issue #11, docs/decisions.md#13): row errors name their SKU, unattributable rows and
truncated catalogs remove nothing, the default mapping follows the guide, planning stays compact."""

from __future__ import annotations

import gc
import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from offergrid_integration.catalog.mapping import (
    CatalogMapping,
    DesiredOffer,
    RawRow,
    RowError,
    default_mapping,
)
from offergrid_integration.catalog.plan import (
    ChangeKind,
    MissingOfferPolicy,
    index_offers_by_sku,
    plan_offer_changes,
)
from offergrid_integration.catalog.report import RunStatus
from offergrid_integration.catalog.service import SyncDependencies, SyncOptions, run_offer_sync
from offergrid_integration.catalog.sources import CatalogFormat, FileCatalogSource, parse_catalog
from offergrid_integration.catalog.state import InMemorySyncState
from offergrid_integration.offergrid.models import Offer, OfferCreate, OfferUpdate

HEADER = "sku,productName,type,price,isActive,description"


def product(sku: str, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "sku": sku,
        "productName": f"Product {sku}",
        "type": "television",
        "price": 10,
        "isActive": True,
        "description": "A product",
    }
    row.update(overrides)
    return row


def offer(sku: str, status: str = "active", **fields: Any) -> Offer:
    body = {"id": f"id-{sku}", "sku": sku, "name": f"Product {sku}", "category": "television"}
    return Offer.model_validate(body | {"status": status} | fields)


def desired(sku: str) -> DesiredOffer:
    fields = {"sku": sku, "name": f"Product {sku}", "category": "television", "status": "active"}
    return DesiredOffer(sku=sku, fields=fields, row=1)


# --- 1. an unreadable row names its SKU ------------------------------------------------------------------
def only_error(data: str | bytes, catalog_format: CatalogFormat) -> RowError:
    raw = data.encode() if isinstance(data, str) else data
    parsed = parse_catalog(raw, catalog_format)
    (error,) = parsed.errors
    return error


def test_csv_row_with_an_extra_cell_names_its_sku_from_the_first_cell() -> None:
    text = f"{HEADER}\nOK-1,One,tv,10,true,fine\nTV-9,Nine,tv,10,true,Sports, movies and news\n"

    error = only_error(text, CatalogFormat.CSV)

    assert (error.row, error.sku) == (3, "TV-9")
    assert "7 cells" in error.reason


def test_csv_extra_cell_before_the_sku_column_protects_every_cell_that_may_be_the_sku() -> None:
    text = "productName,sku,type,price\nFiber, 300 Mbps,NET-300,internet,10\n"

    error = only_error(text, CatalogFormat.CSV)

    assert error.sku is None
    assert error.candidates == ("300 Mbps", "NET-300")
    assert error.attributable
    assert "NET-300" in error.protects


def test_csv_cell_over_the_field_size_limit_names_its_sku() -> None:
    huge = "x" * 200_000  # over csv's default field-size limit (131,072)
    text = f'{HEADER}\nTV-BIG,Big,tv,10,true,"{huge}"\nOK-1,One,tv,10,true,fine\n'

    parsed = parse_catalog(text.encode(), CatalogFormat.CSV)

    (error,) = parsed.errors
    assert (error.row, error.sku) == (2, "TV-BIG")
    assert "field larger than field limit" in error.reason
    assert [row.fields["sku"] for row in parsed.rows] == ["OK-1"]


def test_json_lines_line_with_a_trailing_comma_names_its_sku() -> None:
    line = json.dumps(product("TV-7")) + ","
    text = json.dumps(product("OK-1")) + "\n" + line + "\n"

    error = only_error(text, CatalogFormat.JSONL)

    assert (error.row, error.sku) == (2, "TV-7")
    assert "not valid JSON" in error.reason


def test_json_lines_line_that_breaks_inside_names_the_sku_it_shows() -> None:
    error = only_error('{"sku": "TV-8", "price": , "type": "tv"}\n', CatalogFormat.JSONL)
    assert error.sku == "TV-8"


@pytest.mark.parametrize(
    "element",
    [json.dumps(product("TV-5")), [product("TV-5")]],
    ids=["double-encoded string", "list around the object"],
)
def test_json_array_element_that_is_not_an_object_names_its_sku(element: Any) -> None:
    document = json.dumps([product("OK-1"), element])

    error = only_error(document, CatalogFormat.JSON)

    assert (error.row, error.sku) == (2, "TV-5")
    assert "row is not an object" in error.reason


def test_json_array_element_without_any_sku_is_unattributable() -> None:
    parsed = parse_catalog(json.dumps([product("OK-1"), 42, "call sales"]).encode(), CatalogFormat.JSON)

    assert [(error.row, error.attributable) for error in parsed.errors] == [(2, False), (3, False)]


def test_the_streamed_json_array_reads_elements_across_chunk_boundaries() -> None:
    from offergrid_integration.catalog.sources import iter_catalog

    document = json.dumps([product(f"S-{n}", price=n + 0.5) for n in range(50)] + [12345]).encode()
    chunks = [document[i : i + 7] for i in range(0, len(document), 7)]  # splits numbers and strings

    items = list(iter_catalog(chunks, CatalogFormat.JSON))

    assert [item.fields["price"] for item in items if isinstance(item, RawRow)] == [
        n + 0.5 for n in range(50)
    ]
    assert isinstance(items[-1], RowError)
    assert "(int)" in items[-1].reason  # 12345 read whole, not cut at a chunk boundary


# --- 1 and 2. the plan: protected SKUs, unattributable rows, the removal guard ---------------------------
def test_an_unattributable_row_stops_every_removal_but_not_creates_or_updates() -> None:
    current = index_offers_by_sku([offer("KEEP", monthlyPrice=1), offer("GONE")]).by_sku
    wanted = [DesiredOffer("KEEP", {"sku": "KEEP", "monthlyPrice": 2}, 1), desired("NEW")]

    diff = plan_offer_changes(wanted, current, unattributable_rows=1)

    assert [(c.kind, c.sku) for c in diff.writes] == [(ChangeKind.UPDATE, "KEEP"), (ChangeKind.CREATE, "NEW")]
    assert [(c.kind, c.sku) for c in diff.refused] == [(ChangeKind.DEACTIVATE, "GONE")]
    assert diff.refused_reason is not None
    assert "name no SKU" in diff.refused_reason
    assert diff.counts()["refused"] == 1


def test_a_truncated_catalog_removes_nothing() -> None:
    # Given 50 live offers and a catalog cut to its first row
    current = index_offers_by_sku([offer(f"SKU-{n:02d}") for n in range(50)]).by_sku

    diff = plan_offer_changes([desired("SKU-00")], current)

    # Then the 49 deactivations are refused (max(5, 10 % of 50) = 5), and named
    assert diff.missing == []
    assert len(diff.refused) == 49
    assert (diff.live_offers, diff.removal_allowance) == (50, 5)
    assert diff.refused_reason is not None
    assert "max(5, 10 % of 50 live offers) = 5" in diff.refused_reason
    assert diff.removal_token


@pytest.mark.parametrize(("live", "removed", "allowed"), [(50, 5, True), (50, 6, False), (200, 20, True)])
def test_the_guard_allows_max_5_or_10_percent_of_the_live_offers(
    live: int, removed: int, allowed: bool
) -> None:
    current = index_offers_by_sku([offer(f"SKU-{n:03d}") for n in range(live)]).by_sku
    wanted = [desired(f"SKU-{n:03d}") for n in range(removed, live)]

    diff = plan_offer_changes(wanted, current)

    assert (len(diff.missing), len(diff.refused)) == ((removed, 0) if allowed else (0, removed))


def test_the_guard_counts_only_live_offers_and_covers_every_policy() -> None:
    # 20 active + 80 inactive offers: 10 % of the 20 live ones is 2, so the floor of 5 applies
    offers = [offer(f"A-{n:02d}") for n in range(20)] + [offer(f"I-{n:02d}", "inactive") for n in range(80)]
    current = index_offers_by_sku(offers).by_sku
    wanted = [desired(f"A-{n:02d}") for n in range(20)] + [desired(f"I-{n:02d}") for n in range(74)]

    deleted = plan_offer_changes(wanted, current, MissingOfferPolicy.DELETE)
    archived = plan_offer_changes(wanted, current, MissingOfferPolicy.ARCHIVE)

    assert deleted.live_offers == 20
    assert [len(deleted.refused), len(archived.refused)] == [6, 6]
    assert {c.kind for c in deleted.refused} == {ChangeKind.DELETE}


def test_the_dry_runs_token_confirms_exactly_that_list_for_one_run() -> None:
    from offergrid_integration.catalog.plan import RemovalGuard

    current = index_offers_by_sku([offer(f"SKU-{n:02d}") for n in range(50)]).by_sku
    token = plan_offer_changes([desired("SKU-00")], current).removal_token

    confirmed = plan_offer_changes([desired("SKU-00")], current, guard=RemovalGuard(confirm=token))
    changed = plan_offer_changes(
        [desired("SKU-00"), desired("SKU-01")], current, guard=RemovalGuard(confirm=token)
    )

    assert len(confirmed.missing) == 49
    assert confirmed.removals_confirmed
    assert changed.missing == []
    assert len(changed.refused) == 48  # another list: refused again


# --- 3, 4, 5. the default mapping follows the guide ----------------------------------------------------
@pytest.fixture(scope="module")
def mapping() -> CatalogMapping:
    return default_mapping()


def test_a_product_without_is_active_is_not_put_on_sale(mapping: CatalogMapping) -> None:
    row = product("TV-1")
    del row["isActive"]
    assert mapping.map_row(RawRow(1, row)).fields["status"] == "inactive"


@pytest.mark.parametrize("pricing", ["variable", "custom", "Variable"])
def test_price_may_be_missing_for_variable_or_custom_pricing(mapping: CatalogMapping, pricing: str) -> None:
    row = product("EN-1", type="energy", pricingType=pricing)
    del row["price"]

    fields = mapping.map_row(RawRow(1, row)).fields

    assert fields["pricingType"] == pricing.lower()
    assert fields["monthlyPrice"] is None
    OfferCreate.model_validate(dict(fields))  # a body Offergrid accepts


@pytest.mark.parametrize("pricing", ["fixed", "tiered", None])
def test_price_is_required_otherwise(mapping: CatalogMapping, pricing: str | None) -> None:
    row = product("EN-1", price="", pricingType=pricing)

    error = mapping.map_one(RawRow(4, row))

    assert isinstance(error, RowError)
    assert (error.sku, "monthlyPrice (price): is required" in error.reason) == ("EN-1", True)


def test_pricing_type_is_mapped_and_checked(mapping: CatalogMapping) -> None:
    assert mapping.map_row(RawRow(1, product("A", pricingType="tiered"))).fields["pricingType"] == "tiered"
    error = mapping.map_one(RawRow(1, product("A", pricingType="per-minute")))
    assert isinstance(error, RowError)
    assert "pricingType (pricingType): unknown value" in error.reason


def test_only_documented_service_fields_are_mapped_by_default(mapping: CatalogMapping) -> None:
    # Given a television row with the old invented columns and its own serviceSpecificData object
    row = product("TV-1", channelCount=75, includesDvr=True)
    row["serviceSpecificData"] = {"channels": 75, "dvrHours": 50}

    fields = mapping.map_row(RawRow(1, row)).fields

    # Then the object is passed through as given and the invented columns are not read
    assert fields["serviceSpecificData"] == {"channels": 75, "dvrHours": 50}


def test_service_specific_data_as_json_in_a_csv_cell(mapping: CatalogMapping) -> None:
    header = "sku,productName,type,price,isActive,serviceSpecificData\n"
    text = header + 'EN-1,Green,energy,9,true,"{""tariff"": ""green""}"\n'
    bad = header + "EN-2,Green,energy,9,true,{not json\n"

    (row,) = parse_catalog(text.encode(), CatalogFormat.CSV).rows
    (bad_row,) = parse_catalog(bad.encode(), CatalogFormat.CSV).rows

    assert mapping.map_row(row).fields["serviceSpecificData"] == {"tariff": "green"}
    error = mapping.map_one(bad_row)
    assert isinstance(error, RowError)
    assert error.sku == "EN-2"
    assert "JSON object" in error.reason


def test_the_invented_names_live_in_the_commented_sample_mapping() -> None:
    from offergrid_integration.catalog.mapping import load_mapping

    path = Path(__file__).resolve().parents[2] / "samples" / "mapping-example.json"
    example = load_mapping(path.read_text(encoding="utf-8"))

    fields = example.map_row(RawRow(1, product("TV-1", channelCount="75", includesDvr="yes"))).fields

    assert fields["serviceSpecificData"] == {"channelCount": 75, "includesDvr": True}
    assert "not Offergrid's" in (example.document.comment or "")


# --- 6. planning memory ---------------------------------------------------------------------------------
class _Listing:
    """Offergrid's listing as the client yields it: one `Offer` model at a time, built as it is asked
    for (the client parses each listed element into a model and lets it go)."""

    def __init__(self, count: int) -> None:
        self.count = count

    def list_offers(self) -> Iterator[Offer]:
        for n in range(self.count):
            fields = default_mapping().map_row(RawRow(n, _bench_product(n))).fields
            yield Offer.model_validate({"id": f"00000000-0000-4000-8000-{n:012d}", **fields})

    def create_offer(self, offer: OfferCreate) -> Offer:  # a dry run writes nothing
        raise AssertionError("dry run")

    def update_offer(self, offer_id: str, changes: OfferUpdate) -> Offer:
        raise AssertionError("dry run")

    def delete_offer(self, offer_id: str) -> None:
        raise AssertionError("dry run")


def _bench_product(n: int) -> dict[str, Any]:
    return product(
        f"SKU-{n:06d}",
        type="internet",
        price=round(19.99 + n % 80, 2),
        description=f"Internet plan number {n}, with the features customers ask for most.",
        minBandwidth=100,
        maxBandwidth=100 * (1 + n % 10),
        connectionType="fiber",
        dataCap=None,
    )


def test_planning_costs_at_most_1_kb_per_offer(tmp_path: Path) -> None:
    # Given a 10,000-product catalog file and as many offers listed, all equal
    count = 10_000
    path = tmp_path / "catalog.jsonl"
    path.write_text("".join(json.dumps(_bench_product(n)) + "\n" for n in range(count)))
    deps = SyncDependencies(
        source=FileCatalogSource(path),
        mapping=default_mapping(),
        client=_Listing(count),
        state=InMemorySyncState(),
    )
    # When a dry run plans it, with every allocation traced
    gc.collect()
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        report = run_offer_sync(deps, SyncOptions(dry_run=True))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Then it planned them all, and its peak memory stayed under 1 KB per offer
    assert report.status is RunStatus.DRY_RUN
    assert report.planned["unchanged"] == count
    per_offer = (peak - baseline) / count
    assert per_offer < 1024, f"{per_offer:.0f} bytes per offer"


def test_the_planner_keeps_the_oldest_of_two_offers_with_one_sku_whatever_the_listing_order() -> None:
    from offergrid_integration.catalog.plan import OfferPlanner

    newer = offer("D", monthlyPrice=1, createdAt="2026-02-01T00:00:00Z").model_copy(update={"id": "newer"})
    older = offer("D", monthlyPrice=1, createdAt="2026-01-01T00:00:00Z").model_copy(update={"id": "older"})
    plans = []
    for listing in ([newer, older], [older, newer]):
        planner = OfferPlanner(owned_fields=["sku", "monthlyPrice"])
        planner.add_desired(DesiredOffer("D", {"sku": "D", "monthlyPrice": 2}, 1))
        for listed in listing:
            planner.add_offer(listed)
        plans.append((planner.finish(), planner.duplicate_ids))

    for diff, duplicates in plans:
        assert [(c.kind, c.offer_id, dict(c.body)) for c in diff.writes] == [
            (ChangeKind.UPDATE, "older", {"monthlyPrice": 2})
        ]
        assert duplicates == {"D": ["newer"]}
