"""Catalog safety end to end (issue #11, docs/decisions.md#13): a bad or partial catalog never takes
products off sale. The catalog in S3 (moto), state in DynamoDB (moto), the Offergrid HTTP fake (paged
listing), the real sync, the real CLI and the function's own settings."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from devtools import offer_sync_cli
from devtools.offergrid_fake import OffergridFake
from functions.offer_sync.app import ScheduleInput, SyncRuntime
from offergrid_integration.catalog.report import RunStatus, SyncReport
from offergrid_integration.catalog.settings import SyncSettings
from offergrid_integration.clock import ScaledClock
from offergrid_integration.config import load_settings
from offergrid_integration.observability import logger
from tests.e2e.runbook_blocks import blocks
from tests.fixtures.offergrid_fake import TEST_API_KEY
from tests.integration.test_offer_sync import (
    STATE_TABLE,
    catalog,
    clock,
    fake,
    make_fake,
    offers_by_sku,
    state,
    sync,
    writes,
)

CSV_HEADER = "sku,productName,type,price,isActive,description"


class Metrics:
    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def add_metric(self, name: str, unit: str, value: float) -> None:
        self.values[name] = self.values.get(name, 0) + value


def live(fake: OffergridFake, *skus: str) -> dict[str, str]:
    """Offers on sale in Offergrid, equal to `product(sku)`: SKU -> offer id."""
    fields = {"category": "television", "status": "active", "monthlyPrice": 10}
    return {sku: fake.add_offer(sku=sku, name=f"Product {sku}", **fields)["id"] for sku in skus}


def product(sku: str) -> dict[str, Any]:
    return {"sku": sku, "productName": f"Product {sku}", "type": "television", "price": 10, "isActive": True}


def csv_row(sku: str) -> str:
    return f"{sku},Product {sku},television,10,true,A product"


# --- 1. an unreadable row never takes its product off sale -------------------------------------------
UNREADABLE_ROWS: dict[str, tuple[str, str]] = {
    # format: (catalog key, catalog text whose row for TV-BROKEN cannot be read)
    "csv extra cell": (
        "exports/catalog.csv",
        "\n".join([CSV_HEADER, csv_row("TV-OK"), "TV-BROKEN,Sports,television,10,true,Sports, movies"])
        + "\n",
    ),
    "csv cell over the field limit": (
        "exports/catalog.csv",
        "\n".join([CSV_HEADER, csv_row("TV-OK"), f'TV-BROKEN,Big,television,10,true,"{"x" * 200_000}"'])
        + "\n",
    ),
    "jsonl trailing comma": (
        "exports/catalog.jsonl",
        json.dumps(product("TV-OK")) + "\n" + json.dumps(product("TV-BROKEN")) + ",\n",
    ),
    "json element not an object": (
        "exports/catalog.json",
        json.dumps([product("TV-OK"), json.dumps(product("TV-BROKEN"))]),
    ),
}


@pytest.mark.parametrize("case", sorted(UNREADABLE_ROWS))
def test_an_unreadable_row_keeps_its_product_on_sale(
    case: str, fake: OffergridFake, catalog: Callable[..., str], sync: Callable[..., SyncReport]
) -> None:
    # Given both products on sale, and a catalog whose row for TV-BROKEN cannot be read
    ids = live(fake, "TV-OK", "TV-BROKEN")
    key, text = UNREADABLE_ROWS[case]

    report = sync(fake, catalog(text, key=key))

    # Then the row error names the SKU, and its offer is neither deactivated nor touched at all
    assert [(error["sku"]) for error in report.row_errors] == ["TV-BROKEN"]
    assert report.unattributable_rows == 0
    assert fake.offers[ids["TV-BROKEN"]]["status"] == "active"
    assert not any(call.path.endswith(ids["TV-BROKEN"]) for call in fake.calls)
    assert report.status is RunStatus.COMPLETE


def test_a_row_naming_no_sku_stops_every_removal_and_says_so(
    fake: OffergridFake,
    catalog: Callable[..., str],
    state: Any,
    clock: ScaledClock,
) -> None:
    # Given a withdrawn product still on sale, a changed price, a new product, and one row with no SKU
    ids = live(fake, "TV-GONE", "TV-OK")
    products: list[Any] = [product("TV-OK") | {"price": 12}, product("TV-NEW"), 42]
    metrics = Metrics()

    report = _run(fake, catalog(products), state, clock, metrics=metrics)

    # Then the update and the create happen, but nothing is taken off sale
    assert report.counts == {"create": 1, "update": 1}
    assert fake.offers[ids["TV-GONE"]]["status"] == "active"
    # And the report, the metric and the refused list say why
    assert report.unattributable_rows == 1
    assert [(r["kind"], r["sku"]) for r in report.removals_refused] == [("deactivate", "TV-GONE")]
    assert "name no SKU" in report.removal_guard["reason"]
    assert metrics.values["OfferSyncUnattributableRows"] == 1
    assert metrics.values["OfferSyncRemovalsRefused"] == 1
    assert "removals refused 1" in report.summary()


# --- 2. a truncated catalog never empties the shop ---------------------------------------------------
def test_a_catalog_cut_to_1_of_50_rows_deactivates_nothing(
    fake: OffergridFake, catalog: Callable[..., str], state: Any, clock: ScaledClock
) -> None:
    skus = [f"TV-{n:02d}" for n in range(50)]
    ids = live(fake, *skus)
    metrics = Metrics()

    report = _run(fake, catalog([product(skus[0])]), state, clock, metrics=metrics)

    assert writes(fake) == []
    assert all(fake.offers[offer_id]["status"] == "active" for offer_id in ids.values())
    assert report.status is RunStatus.COMPLETE
    assert report.refused == 49
    assert report.removal_guard["allowance"] == 5
    assert metrics.values["OfferSyncRemovalsRefused"] == 49


def test_removals_within_the_guard_still_happen(
    fake: OffergridFake, catalog: Callable[..., str], state: Any, clock: ScaledClock
) -> None:
    skus = [f"TV-{n:02d}" for n in range(50)]
    ids = live(fake, *skus)

    report = _run(fake, catalog([product(sku) for sku in skus[5:]]), state, clock)

    assert report.counts == {"deactivate": 5}
    assert [fake.offers[ids[sku]]["status"] for sku in skus[:6]] == ["inactive"] * 5 + ["active"]


def test_the_functions_guard_threshold_comes_from_its_environment(
    fake: OffergridFake, catalog: Callable[..., str], state: Any, clock: ScaledClock
) -> None:
    # Given SYNC_REMOVAL_GUARD_PERCENT=20 (template parameter OfferSyncRemovalGuardPercent)
    skus = [f"TV-{n:02d}" for n in range(50)]
    ids = live(fake, *skus)
    boto3.client("sqs").create_queue(QueueName="orders")
    settings = load_settings(
        SyncSettings,
        {
            "OFFERGRID_API_URL": fake.base_url,
            "OFFERGRID_API_KEY_SECRET": "unused",
            "CATALOG_SOURCE_URI": catalog([product(sku) for sku in skus[10:]]),
            "SYNC_STATE_TABLE": STATE_TABLE,
            "ORDERS_QUEUE_URL": boto3.client("sqs").get_queue_url(QueueName="orders")["QueueUrl"],
            "SYNC_REMOVAL_GUARD_PERCENT": "20",
        },
    )
    runtime = SyncRuntime(
        settings, clock=clock, api_key=lambda *, force_refresh=False: TEST_API_KEY, state=state
    )
    # When the function runs: 10 removals = 20 % of 50, allowed
    result = runtime.run(ScheduleInput(sweep=False))

    assert result["sync"]["counts"] == {"deactivate": 10}
    assert fake.offers[ids["TV-09"]]["status"] == "inactive"


def test_cli_dry_run_lists_the_refused_removals_and_one_apply_confirms_exactly_them(
    fake: OffergridFake, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given 20 offers on sale, and a catalog from which 12 are genuinely discontinued
    monkeypatch.setenv("OFFERGRID_API_KEY", TEST_API_KEY)
    skus = [f"TV-{n:02d}" for n in range(20)]
    ids = live(fake, *skus)
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps([product(sku) for sku in skus[12:]]))
    common = ["--catalog", str(path), "--api-url", fake.base_url, "--time-scale", "60"]

    # A scheduled-style apply refuses them (exit 1)
    code, text = _cli("apply", *common)
    assert code == 1
    assert "REFUSED 12 removals" in text
    assert writes(fake) == []

    # The dry run shows the list and the confirmation code
    code, text = _cli("plan", *common)
    assert code == 1
    assert all(f"deactivate {sku}" in text for sku in skus[:12])
    match = re.search(r"--allow-removals (\w+)", text)
    assert match is not None
    confirmation = match.group(1)

    # A wrong code confirms nothing
    code, text = _cli("apply", *common, "--allow-removals", "0123456789abcdef")
    assert (code, writes(fake)) == (1, [])

    # The right one makes exactly those removals, in that one run
    code, text = _cli("apply", *common, "--allow-removals", confirmation)
    assert code == 0, text
    assert [fake.offers[ids[sku]]["status"] for sku in skus] == ["inactive"] * 12 + ["active"] * 8

    # And it is spent: once the list differs (a new withdrawal), the same code is refused again
    path.write_text(json.dumps([product(sku) for sku in skus[13:]]))
    code, text = _cli("apply", *common, "--allow-removals", confirmation)
    assert code == 0  # one removal: within the guard, no code needed
    code, _ = _cli("plan", *common)
    assert code == 0


# --- 3, 4, 5. the default mapping follows the guide -------------------------------------------------
def test_products_without_is_active_or_with_variable_prices_are_created_as_the_guide_says(
    fake: OffergridFake, catalog: Callable[..., str], sync: Callable[..., SyncReport]
) -> None:
    no_flag = product("TV-NOFLAG")
    del no_flag["isActive"]
    variable = product("EN-VAR") | {"type": "energy", "pricingType": "variable"}
    del variable["price"]

    report = sync(fake, catalog([no_flag, variable]))

    assert report.row_errors == []
    created = offers_by_sku(fake)
    assert created["TV-NOFLAG"]["status"] == "inactive"
    assert (created["EN-VAR"]["pricingType"], created["EN-VAR"].get("monthlyPrice")) == ("variable", None)


def test_the_sample_csv_passes_service_data_of_undocumented_categories_as_given(
    fake: OffergridFake, catalog: Callable[..., str], sync: Callable[..., SyncReport]
) -> None:
    samples = Path(__file__).resolve().parents[2] / "samples"

    sync(fake, catalog((samples / "catalog.csv").read_text(), key="exports/catalog.csv"))

    offers = offers_by_sku(fake)
    assert offers["TV-ULTIMATE"]["serviceSpecificData"] == {"channelCount": 185, "includesDvr": True}
    assert offers["ENERGY-GREEN-24"]["serviceSpecificData"] == {
        "energyType": "electricity",
        "renewablePercent": 100,
        "contractMonths": 24,
    }


# --- issue #21: an offer leaves sale only within the guard, whatever the road (docs/decisions.md#15) --
ISSUE_21_HEADER = "sku,productName,type,price,isActive"


def export_csv(skus: list[str], *, is_active: bool = True) -> str:
    """The products of `live()` as a CSV export (with or without the `isActive` column)."""
    if is_active:
        return "".join(
            [ISSUE_21_HEADER + "\n", *(f"{sku},Product {sku},television,10,true\n" for sku in skus)]
        )
    header = ISSUE_21_HEADER.removesuffix(",isActive")
    return "".join([header + "\n", *(f"{sku},Product {sku},television,10\n" for sku in skus)])


def off_sale(fake: OffergridFake, ids: dict[str, str]) -> list[str]:
    """The SKUs of `ids` whose offer is no longer on sale (another status, or gone)."""
    return sorted(
        sku for sku, offer_id in ids.items() if fake.offers.get(offer_id, {}).get("status") != "active"
    )


def test_case1_an_export_without_its_is_active_column_takes_nothing_off_sale(
    fake: OffergridFake, catalog: Callable[..., str], state: Any, clock: ScaledClock
) -> None:
    # Given 20 offers on sale, and a CSV export of the same 20 SKUs that lost its isActive column
    skus = [f"TV-{n:02d}" for n in range(20)]
    ids = live(fake, *skus)
    metrics = Metrics()

    report = _run(
        fake,
        catalog(export_csv(skus, is_active=False), key="exports/catalog.csv"),
        state,
        clock,
        metrics=metrics,
    )

    # Then no offer leaves sale (on the unchanged code: 20 of 20 set inactive, "refused 0")
    gone = off_sale(fake, ids)
    assert gone == [], f"{len(gone)} of {len(skus)} set inactive, refused {report.refused}"
    # And the run says why, in the report, the refused list and the alarm's metric
    assert any("isActive" in problem for problem in report.catalog_problems)
    assert report.refused == 20
    assert metrics.values["OfferSyncCatalogIncomplete"] == 1
    assert metrics.values["OfferSyncRemovalsRefused"] == 20


def test_case1_status_flips_count_against_the_removal_guard(
    fake: OffergridFake, catalog: Callable[..., str], state: Any, clock: ScaledClock
) -> None:
    # Given 20 offers on sale, and an export (isActive column present) that says 12 are inactive,
    # 4 of them with a new price as well
    skus = [f"TV-{n:02d}" for n in range(20)]
    ids = live(fake, *skus)
    lines = [ISSUE_21_HEADER]
    for n, sku in enumerate(skus):
        price = 12 if n < 4 else 10
        lines.append(f"{sku},Product {sku},television,{price},{'false' if n < 12 else 'true'}")

    report = _run(fake, catalog("\n".join(lines) + "\n", key="exports/catalog.csv"), state, clock)

    # Then the 12 flips are over max(5, 10 % of 20): none is made, all are listed as refused ...
    gone = off_sale(fake, ids)
    assert gone == [], f"{len(gone)} of {len(skus)} set inactive, refused {report.refused}"
    assert [(r["kind"], r["sku"]) for r in report.removals_refused] == [
        ("deactivate", sku) for sku in skus[:12]
    ]
    # ... and the rest of those rows is still applied: the new prices
    prices = {sku: fake.offers[ids[sku]]["monthlyPrice"] for sku in skus[:5]}
    assert prices == {**dict.fromkeys(skus[:4], 12), skus[4]: 10}


def test_case1_status_flips_within_the_guard_happen_in_one_patch(
    fake: OffergridFake, catalog: Callable[..., str], state: Any, clock: ScaledClock
) -> None:
    skus = [f"TV-{n:02d}" for n in range(20)]
    ids = live(fake, *skus)
    lines = [ISSUE_21_HEADER]
    lines += [
        f"{sku},Product {sku},television,{12 if n < 5 else 10},{'false' if n < 5 else 'true'}"
        for n, sku in enumerate(skus)
    ]

    report = _run(fake, catalog("\n".join(lines) + "\n", key="exports/catalog.csv"), state, clock)

    assert off_sale(fake, ids) == skus[:5]
    assert report.refused == 0
    assert [call.body for call in fake.calls_matching("PATCH")] == [
        {"monthlyPrice": 12, "status": "inactive"}
    ] * 5


def test_case2_a_row_cut_mid_sku_protects_nothing_and_removes_nothing(
    fake: OffergridFake, catalog: Callable[..., str], state: Any, clock: ScaledClock
) -> None:
    # Given 30 offers on sale, SKU-0 ... SKU-29, and an export cut inside its last row: SKU-29 reads SKU-2
    skus = [f"SKU-{n}" for n in range(30)]
    ids = live(fake, *skus)
    text = export_csv(skus)
    cut = text.rindex("\nSKU-29,") + len("\nSKU-2")

    report = _run(fake, catalog(text[:cut], key="exports/catalog.csv"), state, clock)

    # Then SKU-29 stays on sale (on the unchanged code: deactivated, and the cut row "protected" SKU-2)
    gone = off_sale(fake, ids)
    assert gone == [], f"{len(gone)} of {len(skus)} set inactive: {gone}"
    # And the cut row names no SKU: it is reported as cut, and the run as incomplete
    (error,) = report.row_errors
    assert (error["row"], error["sku"]) == (31, None)
    assert "cut" in error["reason"]
    assert any("cut" in problem for problem in report.catalog_problems)


@pytest.mark.parametrize(("count", "kept"), [(100, 90), (6, 1)])
def test_case2_losing_whole_trailing_rows_takes_nothing_off_sale(
    count: int, kept: int, fake: OffergridFake, catalog: Callable[..., str], state: Any, clock: ScaledClock
) -> None:
    # Given `count` offers on sale, and an export that lost its last rows (cut just before a line break)
    skus = [f"SKU-{n:03d}" for n in range(count)]
    ids = live(fake, *skus)
    text = export_csv(skus[:kept]).removesuffix("\n")

    report = _run(fake, catalog(text, key="exports/catalog.csv"), state, clock)

    gone = off_sale(fake, ids)
    assert gone == [], f"{len(gone)} of {count} set inactive"
    # The last row has no line break after it: it may be cut, so it is not read either
    assert [error["row"] for error in report.row_errors] == [kept + 1]
    # (with no row read at all, the offers missing from the catalog are left alone without a refusal)
    assert report.refused + report.planned["missing_untouched"] == count - kept + 1


@pytest.mark.parametrize(("count", "kept"), [(100, 90), (6, 1)])
def test_case2_a_manifest_catches_rows_lost_at_a_line_break(
    count: int, kept: int, fake: OffergridFake, catalog: Callable[..., str], state: Any, clock: ScaledClock
) -> None:
    # Given an export job that wrote a manifest of its whole export, and an upload that lost the last
    # rows exactly at a line break (no other sign of a cut)
    skus = [f"SKU-{n:03d}" for n in range(count)]
    ids = live(fake, *skus)
    whole = export_csv(skus).encode()
    manifest = {"rows": count, "sha256": hashlib.sha256(whole).hexdigest()}
    catalog(json.dumps(manifest), key="exports/catalog.csv.manifest.json")

    report = _run(fake, catalog(export_csv(skus[:kept]), key="exports/catalog.csv"), state, clock)

    gone = off_sale(fake, ids)
    assert gone == [], f"{len(gone)} of {count} set inactive"
    assert report.catalog_manifest == "mismatch"
    assert any("manifest" in problem for problem in report.catalog_problems)


def write_manifest_as_the_runbook_says(language: str, catalog: Path, rows: int) -> None:
    """Run the export job's snippet of docs/runbooks/offer-sync.md#catalog-manifest (Python or shell)."""
    (block,) = [
        b for b in blocks() if b.path.name == "offer-sync.md" and b.info == (language, "export-manifest")
    ]
    if language == "python":
        namespace: dict[str, Any] = {}
        exec(compile(block.body, "offer-sync.md", "exec"), namespace)  # noqa: S102 - our own runbook
        namespace["write_manifest"](catalog, rows)
        return
    environment = {"PATH": os.environ["PATH"], "CATALOG": str(catalog), "ROWS": str(rows)}
    subprocess.run(["bash", "-euc", block.body], env=environment, cwd=catalog.parent, check=True, timeout=30)  # noqa: S603, S607


@pytest.mark.parametrize("language", ["python", "sh"])
def test_the_runbooks_manifest_snippet_writes_a_manifest_the_sync_checks(
    language: str,
    fake: OffergridFake,
    catalog: Callable[..., str],
    state: Any,
    clock: ScaledClock,
    tmp_path: Path,
) -> None:
    # Given 30 offers on sale, and an export job that writes its export, then the manifest as the runbook says
    skus = [f"SKU-{n:02d}" for n in range(30)]
    ids = live(fake, *skus)
    path = tmp_path / "catalog.csv"
    path.write_text(export_csv(skus))
    write_manifest_as_the_runbook_says(language, path, len(skus))
    manifest = (tmp_path / "catalog.csv.manifest.json").read_bytes()
    catalog(manifest, key="exports/catalog.csv.manifest.json")

    # When the sync reads that export: the manifest matches
    report = _run(fake, catalog(path.read_bytes(), key="exports/catalog.csv"), state, clock)
    assert (report.catalog_manifest, report.catalog_problems) == ("matched", [])

    # And when the upload lost the last 3 rows at a line break, and 3 is within the guard: nothing leaves sale
    report = _run(fake, catalog(export_csv(skus[:27]), key="exports/catalog.csv"), state, clock)
    assert report.catalog_manifest == "mismatch"
    assert off_sale(fake, ids) == []
    assert report.refused == 3


def test_the_cli_checks_a_local_catalog_and_its_manifest(
    fake: OffergridFake, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given 20 offers on sale and their export as a local file, cut: no line break after its last row
    monkeypatch.setenv("OFFERGRID_API_KEY", TEST_API_KEY)
    skus = [f"TV-{n:02d}" for n in range(20)]
    ids = live(fake, *skus)
    path = tmp_path / "catalog.csv"
    path.write_text(export_csv(skus[:18]).removesuffix("\n"))
    common = ["--catalog", str(path), "--api-url", fake.base_url, "--time-scale", "60"]

    # The CLI says the catalog is not trusted, exits 1, and takes nothing off sale
    code, text = _cli("apply", *common)
    assert code == 1
    assert "CATALOG NOT TRUSTED, nothing leaves sale: the catalog looks cut short (row 19, the last" in text
    assert "INVALID row 19 (sku ?)" in text
    assert off_sale(fake, ids) == []

    # With the export job's manifest beside it, the same bytes are whole: its last row is read
    write_manifest_as_the_runbook_says("python", path, 18)
    code, text = _cli("plan", *common)
    assert "CATALOG NOT TRUSTED" not in text
    assert "INVALID" not in text
    assert "REFUSED" not in text  # 2 removals: within the guard
    assert code == 0


# --- helpers ---------------------------------------------------------------------------------------
def _run(fake: OffergridFake, uri: str, state: Any, clock: ScaledClock, **kwargs: Any) -> SyncReport:
    from offergrid_integration.catalog.apply import SyncDependencies, SyncOptions, run_offer_sync
    from offergrid_integration.catalog.mapping import default_mapping
    from offergrid_integration.catalog.sources import S3CatalogSource
    from tests.integration.test_offer_sync import make_client

    with make_client(fake, clock) as client:
        deps = SyncDependencies(
            source=S3CatalogSource(uri),
            mapping=default_mapping(),
            client=client,
            state=state,
            clock=clock,
            metrics=kwargs.pop("metrics", None),
        )
        return run_offer_sync(deps, SyncOptions(**kwargs))


def _cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    level = logger.log_level
    code = offer_sync_cli.main(list(argv), out=out)
    assert logger.log_level == level
    return code, out.getvalue()


# The fixtures shared with test_offer_sync.py (imported above, used by name as test parameters).
__all__ = ["catalog", "clock", "fake", "make_fake", "state", "sync"]
