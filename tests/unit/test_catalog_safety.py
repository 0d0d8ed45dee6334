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

from offergrid_integration.catalog.apply import SyncDependencies, SyncOptions, run_offer_sync
from offergrid_integration.catalog.mapping import (
    CatalogMapping,
    DesiredOffer,
    NeededColumns,
    RawRow,
    RowError,
    default_mapping,
)
from offergrid_integration.catalog.plan import ChangeKind, MissingOfferPolicy
from offergrid_integration.catalog.report import RunStatus
from offergrid_integration.catalog.sources import CatalogFormat, FileCatalogSource
from offergrid_integration.catalog.state import InMemorySyncState
from offergrid_integration.offergrid.models import Offer, OfferCreate, OfferUpdate
from tests.fixtures.catalog import parse, plan

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
    parsed = parse(raw, catalog_format)
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

    parsed = parse(text.encode(), CatalogFormat.CSV)

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
    parsed = parse(json.dumps([product("OK-1"), 42, "call sales"]).encode(), CatalogFormat.JSON)

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
    current = [offer("KEEP", monthlyPrice=1), offer("GONE")]
    wanted = [DesiredOffer("KEEP", {"sku": "KEEP", "monthlyPrice": 2}, 1), desired("NEW")]

    diff = plan(wanted, current, unattributable_rows=1)

    assert [(c.kind, c.sku) for c in diff.writes] == [(ChangeKind.UPDATE, "KEEP"), (ChangeKind.CREATE, "NEW")]
    assert [(c.kind, c.sku) for c in diff.refused] == [(ChangeKind.DEACTIVATE, "GONE")]
    assert diff.refused_reason is not None
    assert "name no SKU" in diff.refused_reason
    assert diff.counts()["refused"] == 1


def test_a_truncated_catalog_removes_nothing() -> None:
    # Given 50 live offers and a catalog cut to its first row
    current = [offer(f"SKU-{n:02d}") for n in range(50)]

    diff = plan([desired("SKU-00")], current)

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
    current = [offer(f"SKU-{n:03d}") for n in range(live)]
    wanted = [desired(f"SKU-{n:03d}") for n in range(removed, live)]

    diff = plan(wanted, current)

    assert (len(diff.missing), len(diff.refused)) == ((removed, 0) if allowed else (0, removed))


def test_the_guard_counts_only_live_offers_and_covers_every_policy() -> None:
    # 20 active + 80 inactive offers: 10 % of the 20 live ones is 2, so the floor of 5 applies
    offers = [offer(f"A-{n:02d}") for n in range(20)] + [offer(f"I-{n:02d}", "inactive") for n in range(80)]
    current = offers
    wanted = [desired(f"A-{n:02d}") for n in range(20)] + [desired(f"I-{n:02d}") for n in range(74)]

    deleted = plan(wanted, current, MissingOfferPolicy.DELETE)
    archived = plan(wanted, current, MissingOfferPolicy.ARCHIVE)

    assert deleted.live_offers == 20
    assert [len(deleted.refused), len(archived.refused)] == [6, 6]
    assert {c.kind for c in deleted.refused} == {ChangeKind.DELETE}


def test_the_dry_runs_token_confirms_exactly_that_list_for_one_run() -> None:
    from offergrid_integration.catalog.guard import RemovalGuard

    current = [offer(f"SKU-{n:02d}") for n in range(50)]
    token = plan([desired("SKU-00")], current).removal_token

    confirmed = plan([desired("SKU-00")], current, guard=RemovalGuard(confirm=token))
    changed = plan([desired("SKU-00"), desired("SKU-01")], current, guard=RemovalGuard(confirm=token))

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
    assert mapping.map_one(RawRow(1, row)).fields["status"] == "inactive"


@pytest.mark.parametrize("pricing", ["variable", "custom", "Variable"])
def test_price_may_be_missing_for_variable_or_custom_pricing(mapping: CatalogMapping, pricing: str) -> None:
    row = product("EN-1", type="energy", pricingType=pricing)
    del row["price"]

    fields = mapping.map_one(RawRow(1, row)).fields

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
    assert mapping.map_one(RawRow(1, product("A", pricingType="tiered"))).fields["pricingType"] == "tiered"
    error = mapping.map_one(RawRow(1, product("A", pricingType="per-minute")))
    assert isinstance(error, RowError)
    assert "pricingType (pricingType): unknown value" in error.reason


def test_only_documented_service_fields_are_mapped_by_default(mapping: CatalogMapping) -> None:
    # Given a television row with the old invented columns and its own serviceSpecificData object
    row = product("TV-1", channelCount=75, includesDvr=True)
    row["serviceSpecificData"] = {"channels": 75, "dvrHours": 50}

    fields = mapping.map_one(RawRow(1, row)).fields

    # Then the object is passed through as given and the invented columns are not read
    assert fields["serviceSpecificData"] == {"channels": 75, "dvrHours": 50}


def test_service_specific_data_as_json_in_a_csv_cell(mapping: CatalogMapping) -> None:
    header = "sku,productName,type,price,isActive,serviceSpecificData\n"
    text = header + 'EN-1,Green,energy,9,true,"{""tariff"": ""green""}"\n'
    bad = header + "EN-2,Green,energy,9,true,{not json\n"

    (row,) = parse(text.encode(), CatalogFormat.CSV).rows
    (bad_row,) = parse(bad.encode(), CatalogFormat.CSV).rows

    assert mapping.map_one(row).fields["serviceSpecificData"] == {"tariff": "green"}
    error = mapping.map_one(bad_row)
    assert isinstance(error, RowError)
    assert error.sku == "EN-2"
    assert "JSON object" in error.reason


def test_the_invented_names_live_in_the_commented_sample_mapping() -> None:
    from offergrid_integration.catalog.mapping import load_mapping

    path = Path(__file__).resolve().parents[2] / "samples" / "mapping-example.json"
    example = load_mapping(path.read_text(encoding="utf-8"))

    fields = example.map_one(RawRow(1, product("TV-1", channelCount="75", includesDvr="yes"))).fields

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
            fields = default_mapping().map_one(RawRow(n, _bench_product(n))).fields
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


# --- issue #21: an offer leaves sale through one guard (docs/decisions.md#15) ----------------------------
def test_a_status_flip_of_a_live_offer_counts_against_the_guard_and_keeps_its_other_fields() -> None:
    # Given 20 live offers, 6 of which the catalog turns inactive (2 with a new price too)
    current = [offer(f"S-{n:02d}", monthlyPrice=1) for n in range(20)]
    wanted = [
        DesiredOffer(
            f"S-{n:02d}",
            {
                "sku": f"S-{n:02d}",
                "monthlyPrice": 2 if n < 2 else 1,
                "status": "inactive" if n < 6 else "active",
            },
            n + 1,
        )
        for n in range(20)
    ]

    diff = plan(wanted, current)

    # Then the 6 flips are over max(5, 10 % of 20) = 5: refused, as deactivations, with their token
    assert [(c.kind, c.sku, dict(c.body)) for c in diff.refused] == [
        (ChangeKind.DEACTIVATE, f"S-{n:02d}", {"status": "inactive"}) for n in range(6)
    ]
    assert diff.leaving_sale == 6
    assert diff.refused_reason is not None
    assert "6 offers would leave sale" in diff.refused_reason
    # And the new prices of the refused rows are still written, without their status
    assert [(c.sku, dict(c.body)) for c in diff.updates] == [
        ("S-00", {"monthlyPrice": 2}),
        ("S-01", {"monthlyPrice": 2}),
    ]


def test_the_token_confirms_refused_status_flips_and_they_are_made_in_one_patch() -> None:
    from offergrid_integration.catalog.guard import RemovalGuard

    current = [offer(f"S-{n:02d}", monthlyPrice=1) for n in range(6)]
    wanted = [
        DesiredOffer(f"S-{n:02d}", {"sku": f"S-{n:02d}", "monthlyPrice": 3, "status": "inactive"}, n)
        for n in range(6)
    ]
    token = plan(wanted, current).removal_token

    diff = plan(wanted, current, guard=RemovalGuard(confirm=token))

    assert diff.removals_confirmed
    assert diff.refused == []
    assert {dict(c.body)["status"] for c in diff.updates} == {"inactive"}
    assert len(diff.updates) == 6


@pytest.mark.parametrize(
    ("listed", "target", "leaves"),
    [
        ("active", "archived", ChangeKind.ARCHIVE),
        ("active", "draft", ChangeKind.DEACTIVATE),
        ("inactive", "archived", None),  # not on sale before: nothing leaves sale
        ("draft", "inactive", None),
        ("inactive", "active", None),
    ],
)
def test_only_a_live_offer_leaves_sale(listed: str, target: str, leaves: ChangeKind | None) -> None:
    current = [offer("S-1", listed)]
    wanted = [DesiredOffer("S-1", {"sku": "S-1", "status": target}, 1)]

    diff = plan(wanted, current, catalog_problems=["the catalog looks cut short"])

    assert [c.kind for c in diff.refused] == ([leaves] if leaves else [])
    assert [dict(c.body) for c in diff.updates] == ([] if leaves else [{"status": target}])


def test_a_catalog_that_cannot_be_trusted_takes_nothing_off_sale_but_still_updates_and_creates() -> None:
    current = [offer("KEEP", monthlyPrice=1), offer("GONE"), offer("FLIP")]
    wanted = [
        DesiredOffer("KEEP", {"sku": "KEEP", "monthlyPrice": 2}, 1),
        DesiredOffer("FLIP", {"sku": "FLIP", "status": "inactive"}, 2),
        desired("NEW"),
    ]

    diff = plan(wanted, current, catalog_problems=["no row of the catalog has isActive"])

    assert [(c.kind, c.sku) for c in diff.writes] == [(ChangeKind.UPDATE, "KEEP"), (ChangeKind.CREATE, "NEW")]
    assert [(c.kind, c.sku) for c in diff.refused] == [
        (ChangeKind.DEACTIVATE, "GONE"),
        (ChangeKind.DEACTIVATE, "FLIP"),
    ]
    assert diff.refused_reason is not None
    assert "no row of the catalog has isActive" in diff.refused_reason
    assert diff.catalog_problems == ["no row of the catalog has isActive"]


def test_a_cut_row_protects_nothing_and_blocks_every_removal() -> None:
    from offergrid_integration.catalog.plan import OfferPlanner

    planner = OfferPlanner()
    planner.add_desired(desired("SKU-1"))
    planner.reject(RowError(3, None, "cut", cut=True))
    for listed in (offer("SKU-1"), offer("SKU-2"), offer("SKU-29")):
        planner.add_offer(listed)

    diff = planner.finish()

    assert diff.missing == []
    assert [c.sku for c in diff.refused] == ["SKU-2", "SKU-29"]
    assert diff.unattributable_rows == 0  # a cut is its own problem, not a row naming no SKU
    assert diff.catalog_problems == ["the catalog ends inside row 3"]


def test_the_default_mapping_needs_the_columns_that_decide_an_offer() -> None:
    mapping = default_mapping()
    assert mapping.needed_sources == ("sku", "productName", "type", "price", "isActive")

    columns = NeededColumns(mapping.needed_sources)
    assert columns.absent == []  # no row seen: nothing to say
    columns.see(RawRow(1, {"sku": "A", "productName": "x", "type": "tv", "price": ""}))
    columns.see(RawRow(2, {"sku": "B", "isActive": None}))  # a key with no value is a key
    assert columns.absent == []
    columns = NeededColumns(mapping.needed_sources)
    columns.see(RawRow(1, product("A") | {"isActive": None} | {"price": 1}))
    columns.see(RawRow(2, {k: v for k, v in product("B").items() if k != "isActive"}))
    assert columns.absent == []


def test_a_nested_needed_source_is_looked_up_by_its_path() -> None:
    columns = NeededColumns(["pricing.monthly", "sku"])
    columns.see(RawRow(1, {"sku": "A", "pricing": {"yearly": 1}}))
    assert columns.absent == ["pricing.monthly"]
    columns.see(RawRow(2, {"sku": "B", "pricing": {"monthly": None}}))
    assert columns.absent == []


# --- a catalog is complete (docs/decisions.md#15) -------------------------------------------------------
def read_checked(data: bytes, catalog_format: CatalogFormat) -> tuple[Any, Any]:
    from offergrid_integration.catalog.sources import CatalogCheck

    check = CatalogCheck()
    return parse(data, catalog_format, check=check), check


CSV_ROWS = f"{HEADER}\nTV-1,One,tv,10,true,a\nSKU-29,Two,tv,10,true,b\n"


@pytest.mark.parametrize(
    "text",
    [
        CSV_ROWS[: CSV_ROWS.rindex("SKU-29") + len("SKU-2")],  # cut inside the SKU: "SKU-2"
        CSV_ROWS.removesuffix("\n"),  # whole-looking, but no line break at the end
        CSV_ROWS.removesuffix("10,true,b\n") + "\n",  # fewer cells than the header
        CSV_ROWS.removesuffix("b\n") + '"an open quote\n',  # the text ends inside a quoted cell
    ],
    ids=["cut inside the sku", "no final line break", "fewer cells", "inside quotes"],
)
def test_the_last_csv_row_of_a_cut_export_is_not_read_and_names_no_sku(text: str) -> None:
    parsed, check = read_checked(text.encode(), CatalogFormat.CSV)

    assert [row.fields["sku"] for row in parsed.rows] == ["TV-1"]
    (error,) = parsed.errors
    assert (error.row, error.sku, error.candidates, error.cut) == (3, None, (), True)
    assert check.truncated is not None
    assert "row 3" in check.truncated
    assert "line break" in check.truncated  # what to do
    assert "manifest" in check.truncated


def test_a_short_row_inside_the_csv_is_read_as_before() -> None:
    text = f"{HEADER}\nTV-1,One,tv,10\nTV-2,Two,tv,10,true,b\n"

    parsed, check = read_checked(text.encode(), CatalogFormat.CSV)

    assert [row.fields.get("isActive") for row in parsed.rows] == [None, "true"]
    assert (parsed.errors, check.problems) == ([], [])


def test_a_csv_cut_inside_its_header_is_cut() -> None:
    parsed, check = read_checked(b"sku,productName,ty", CatalogFormat.CSV)
    assert (parsed.rows, parsed.errors) == ([], [])
    assert check.truncated is not None


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        ('{"sku": "A"}\n{"sku": "B"}', ["A"]),  # whole JSON, but no line break: it may be all there is
        ('{"sku": "A"}\n{"sku": "SKU-2', ["A"]),
    ],
)
def test_the_last_json_line_without_a_line_break_is_not_read(text: str, rows: list[str]) -> None:
    parsed, check = read_checked(text.encode(), CatalogFormat.JSONL)

    assert [row.fields["sku"] for row in parsed.rows] == rows
    assert [(e.row, e.sku, e.cut) for e in parsed.errors] == [(2, None, True)]
    assert check.truncated is not None


def test_a_blank_last_line_without_a_line_break_is_no_cut() -> None:
    parsed, check = read_checked(b'{"sku": "A"}\n  ', CatalogFormat.JSONL)
    assert ([row.fields["sku"] for row in parsed.rows], parsed.errors, check.problems) == (["A"], [], [])


@pytest.mark.parametrize(
    ("text", "rows", "cut_row"),
    [
        ('[{"sku": "A"}, {"sku": "B"}', ["A", "B"], None),  # not closed after a whole element
        ('[{"sku": "A"}, {"sku": "B"},', ["A", "B"], None),
        ('[{"sku": "A"}, {"sku": "SKU-2', ["A"], 2),  # the text ends inside element 2
        ('[{"sku": "A"}, {"sku": "B", "isActive": tr', ["A"], 2),
        ("[", [], None),
    ],
)
def test_an_unclosed_json_array_is_cut_and_its_whole_elements_are_read(
    text: str, rows: list[str], cut_row: int | None
) -> None:
    parsed, check = read_checked(text.encode(), CatalogFormat.JSON)

    assert [row.fields["sku"] for row in parsed.rows] == rows
    assert [(e.row, e.sku, e.cut) for e in parsed.errors] == ([(cut_row, None, True)] if cut_row else [])
    assert check.truncated is not None
    assert check.rows == len(rows) + (1 if cut_row else 0)


@pytest.mark.parametrize("catalog_format", [CatalogFormat.CSV, CatalogFormat.JSONL, CatalogFormat.JSON])
def test_a_whole_export_is_no_cut(catalog_format: CatalogFormat) -> None:
    parsed, check = read_checked(export(catalog_format, ["A", "B"]), catalog_format)

    assert [row.fields["sku"] for row in parsed.rows] == ["A", "B"]
    assert (parsed.errors, check.problems, check.rows) == ([], [], 2)


def export(catalog_format: CatalogFormat, skus: list[str]) -> bytes:
    products = [product(sku) for sku in skus]
    if catalog_format is CatalogFormat.JSON:
        return json.dumps(products).encode()
    if catalog_format is CatalogFormat.JSONL:
        return "".join(json.dumps(p) + "\n" for p in products).encode()
    return (
        HEADER
        + "\n"
        + "".join(
            ",".join(str(p[c]).lower() if isinstance(p[c], bool) else str(p[c]) for c in HEADER.split(","))
            + "\n"
            for p in products
        )
    ).encode()
