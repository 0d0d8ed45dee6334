"""Offer sync figures: API calls vs the naive documented sync, a no-change run, plan time and memory.

    .venv/bin/python benchmarks/bench_sync.py [--offers 10000] [--changed 0.01] [--plan-offers 50000]

Prints figures, asserts nothing:

1. A catalog of `--offers` products against the Offergrid fake already holding them, with
   `--changed` of them changed (half new prices, a quarter new products, a quarter withdrawn):
   the API calls this sync makes (one listing + only the needed writes) vs the naive documented
   sync ("for each product: find the offer by SKU, PATCH it if found, else POST"; the API has no SKU
   filter, so finding one means listing the offers: one list call per product, then one write).
   The naive count is computed from the same catalog (2 calls per product, a list call counted once
   even when the list is paged): running 20,000 calls for real at 100/min would take over 3 hours.
   Its per-product cost is then measured for real on a 100-product sample to check the formula.
2. The same sync run again right after: listing calls only.
3. Plan time and peak memory for `--plan-offers` offers (stream the catalog from its file, map each
   row into the planner's compact per-SKU state, parse the listing into `Offer` models and compare
   each as it arrives, plan with 1 % changed), goals < 5 s and < 256 MB; the listing answered in one
   page, as the figure before issue #11 was measured (the whole listing parsed at once).
4. The same for `--large-offers` (200,000) offers with the listing in pages of 1,000 (the client
   holds one page at a time): the line `plan 200,000 offers: <seconds> s, <MB> MB peak RSS`, goal
   under the sync function's 512 MB, and the memory per offer (goal <= 1 KB).
5. A first import (issue 21): `--import-offers` (2,000) new products into an empty Offergrid with no
   orders at all, the sync on the budget's background lane as deployed, once on the in-process
   budget and once on the shared DynamoDB budget (moto, `mock_aws`), at `--import-scale`: the
   calls per fake minute from its first request to its last (goal >= 90 of the 100 allowed: the
   background lane uses the orders' reserve while they are idle) and the 429s (goal 0).

The fake runs with time_scale=60 (a minute passes in a second) and the documented limits
(100/min, 10,000/h); the client's rate budget runs on the same compressed clock.
"""

# ruff: noqa: E402 - the repo root and the layer are put on sys.path before the imports below
from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (str(ROOT), str(ROOT / "layers" / "shared")):
    if path not in sys.path:
        sys.path.insert(0, path)

from devtools.offergrid_fake import OffergridFake
from offergrid_integration.catalog.apply import SyncDependencies, SyncOptions, run_offer_sync
from offergrid_integration.catalog.mapping import CatalogMapping, RawRow, RowError, default_mapping
from offergrid_integration.catalog.plan import OfferPlanner
from offergrid_integration.catalog.sources import (
    CatalogCheck,
    CatalogFormat,
    CatalogItem,
    FileCatalogSource,
    iter_catalog,
)
from offergrid_integration.catalog.state import InMemorySyncState
from offergrid_integration.clock import ScaledClock
from offergrid_integration.observability import logger
from offergrid_integration.offergrid.client import OffergridClient
from offergrid_integration.offergrid.models import Offer, OfferCreate, OfferUpdate
from offergrid_integration.ratelimit import DynamoDBRateBudget, InProcessRateBudget, Lane, RateBudget

API_KEY = "test-api-key"
TIME_SCALE = 60.0
PLAN_TIME_GOAL_S = 5.0
PLAN_MEMORY_GOAL_MB = 256.0
FUNCTION_MEMORY_MB = 512.0
PER_OFFER_GOAL_BYTES = 1024.0
IMPORT_GOAL_PER_MINUTE = 90.0
LARGE_PAGE_SIZE = 1_000
RATIO_GOAL = 50.0
NAIVE_SAMPLE = 100


# --- data ------------------------------------------------------------------------------------------
def product(n: int) -> dict[str, Any]:
    """A realistic Decision 8 product; the category cycles through the four the sample uses."""
    kind = ("internet", "television", "security", "energy")[n % 4]
    row: dict[str, Any] = {
        "sku": f"SKU-{n:06d}",
        "productName": f"{kind.title()} plan {n}",
        "type": kind,
        "price": round(19.99 + (n % 80), 2),
        "isActive": n % 17 != 0,
        "description": f"{kind.title()} plan number {n}, with the features customers ask for most.",
    }
    if kind == "internet":
        row |= {
            "minBandwidth": 100,
            "maxBandwidth": 100 * (1 + n % 10),
            "connectionType": "fiber",
            "dataCap": None,
        }
    elif kind == "security":
        row |= {"monitoringType": "hybrid", "installationType": "diy", "equipmentIncluded": "Hub, 2 sensors"}
    elif kind == "television":  # categories Offergrid documents no fields for: the row's own object
        row["serviceSpecificData"] = {"channelCount": 50 + n % 150, "includesDvr": n % 2 == 0}
    else:
        row["serviceSpecificData"] = {
            "energyType": "electricity",
            "renewablePercent": n % 101,
            "contractMonths": 12,
        }
    return row


def fields_of(mapping: CatalogMapping, row: dict[str, Any]) -> dict[str, Any]:
    offer = mapping.map_one(RawRow(0, row))
    if isinstance(offer, RowError):
        raise ValueError(f"benchmark row invalid: {offer.reason}")
    return dict(offer.fields)


def catalog_and_offers(count: int, changed: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(catalog rows, Offergrid offers as the API returns them): `count` products, of which `changed`
    differ from Offergrid: half have a new price, a quarter are new products (no offer yet); as many
    offers as another quarter belong to withdrawn products (live in Offergrid, gone from the catalog)."""
    mapping = default_mapping()
    rows = [product(n) for n in range(count)]
    n_changed = round(count * changed)
    repriced, new = n_changed // 2, n_changed // 4
    withdrawn = n_changed - repriced - new
    offers: list[dict[str, Any]] = []
    for n, row in enumerate(rows):
        if repriced <= n < repriced + new:
            continue
        fields = fields_of(mapping, row)
        if n < repriced:
            fields["monthlyPrice"] = round(fields["monthlyPrice"] + 5, 2)
        offers.append({"id": str(uuid.uuid4()), **fields, "createdAt": "2026-01-01T00:00:00.000Z"})
    for n in range(withdrawn):
        row = product(10 * count + n) | {"isActive": True}
        offers.append(
            {"id": str(uuid.uuid4()), **fields_of(mapping, row), "createdAt": "2026-01-01T00:00:00.000Z"}
        )
    return rows, offers


class MemorySource:
    description = "in-memory benchmark catalog"

    def __init__(self, data: bytes) -> None:
        self._data = data

    def rows(
        self, sku_field: str | None = "sku", *, check: CatalogCheck | None = None
    ) -> Iterator[CatalogItem]:
        return iter_catalog([self._data], CatalogFormat.JSON, sku_field, check)


def seeded_fake(offers: list[dict[str, Any]], **options: Any) -> OffergridFake:
    fake = OffergridFake(api_keys=(API_KEY,), time_scale=TIME_SCALE, **options)
    for offer in offers:  # straight into the state: add_offer checks SKU uniqueness in O(n)
        fake.offers[offer["id"]] = json.loads(json.dumps(offer))
    return fake.start()


def client_for(fake: OffergridFake, clock: ScaledClock, budget: RateBudget | None = None) -> OffergridClient:
    return OffergridClient(
        base_url=fake.base_url,
        api_key=lambda *, force_refresh=False: API_KEY,
        rate_budget=budget if budget is not None else InProcessRateBudget(clock=clock),
        clock=clock,
        # Clock seconds: 600 on a 60x clock is 10 real seconds, enough to serialise 10,000 offers.
        timeout=600.0,
    )


def sync_dependencies(
    rows: list[dict[str, Any]], client: OffergridClient, clock: ScaledClock
) -> SyncDependencies:
    """The sync of `rows` (the catalog file's JSON, in memory) through `client`, with a fresh state."""
    return SyncDependencies(
        source=MemorySource(json.dumps(rows).encode()),
        mapping=default_mapping(),
        client=client,
        state=InMemorySyncState(clock),
        clock=clock,
    )


# --- 1 and 2: calls -------------------------------------------------------------------------------
def sync_calls(rows: list[dict[str, Any]], offers: list[dict[str, Any]]) -> None:
    clock = ScaledClock(TIME_SCALE)
    fake = seeded_fake(offers)
    try:
        with client_for(fake, clock) as client:
            deps = sync_dependencies(rows, client, clock)
            started = time.perf_counter()
            report = run_offer_sync(deps, SyncOptions())
            elapsed = time.perf_counter() - started
            calls = len(fake.calls)
            by_kind = _calls_by_kind(fake)
            naive = 2 * len(rows)
            ratio = naive / calls
            print(f"catalog: {len(rows)} products; Offergrid before: {len(offers)} offers")
            print(f"plan: {report.planned}")
            print(f"this sync: {calls} calls ({by_kind}) in {elapsed:.1f} s real")
            print(
                f"naive: {naive} calls (computed: {len(rows)} products x (1 list + 1 PATCH/POST); "
                f"not run: {naive} calls at 100/min is {naive / 100 / 60:.1f} h)"
            )
            print(f"sync: {calls} calls vs naive {naive} calls ({ratio:.0f}x fewer)")
            print(f"  goal >= {RATIO_GOAL:.0f}x fewer: {'met' if ratio >= RATIO_GOAL else 'NOT met'}")

            fake.clear_calls()
            again = run_offer_sync(deps, SyncOptions())
            listing_only = all(
                call.method == "GET" and call.path == "/provider/offers" for call in fake.calls
            )
            print(
                f"no-change run: {len(fake.calls)} calls ({_calls_by_kind(fake)}); "
                f"listing only: {listing_only}; writes {again.wrote}"
            )
    finally:
        fake.stop()


def _calls_by_kind(fake: OffergridFake) -> str:
    counts: dict[str, int] = {}
    for call in fake.calls:
        counts[call.method] = counts.get(call.method, 0) + 1
    return ", ".join(f"{method} {count}" for method, count in sorted(counts.items()))


def paged_no_change(count: int) -> None:
    """The no-change run against a paged listing (Decision 5): still listing calls only, one per page."""
    rows, offers = catalog_and_offers(count, 0.0)
    clock = ScaledClock(TIME_SCALE)
    fake = seeded_fake(offers, list_style="envelope-cursor", page_size=500)
    try:
        with client_for(fake, clock) as client:
            deps = sync_dependencies(rows, client, clock)
            report = run_offer_sync(deps, SyncOptions())
        print(
            f"no-change run, listing paged 500 per page: {len(fake.calls)} calls ({_calls_by_kind(fake)}); "
            f"writes {report.wrote}"
        )
    finally:
        fake.stop()


def naive_sample(rows: list[dict[str, Any]], offers: list[dict[str, Any]]) -> None:
    """The documented sync for real, on the first NAIVE_SAMPLE products: calls per product."""
    sample = rows[:NAIVE_SAMPLE]
    skus = {row["sku"] for row in sample}
    clock = ScaledClock(TIME_SCALE)
    fake = seeded_fake([offer for offer in offers if offer["sku"] in skus])
    mapping = default_mapping()
    try:
        with client_for(fake, clock) as client:
            for row in sample:
                fields = fields_of(mapping, row)
                found = next((o for o in client.list_offers() if o.sku == fields["sku"]), None)
                if found is None:
                    client.create_offer(OfferCreate.model_validate(fields))
                else:
                    client.update_offer(found.id, OfferUpdate.model_validate(fields))
        per_product = len(fake.calls) / len(sample)
        print(
            f"naive pattern run for real on {len(sample)} products: {len(fake.calls)} calls "
            f"({_calls_by_kind(fake)}), {per_product:.2f} per product (the formula uses 2)"
        )
    finally:
        fake.stop()


# --- 3 and 4: plan time and memory -------------------------------------------------------------------
def plan_pipeline(catalog_path: str, listing_path: str) -> tuple[dict[str, float], dict[str, int]]:
    """What the sync does up to its plan: the catalog streamed from its file into the planner, then the
    listing's pages (one JSON array per line of `listing_path`), each parsed as the client parses a
    response body and each element validated into an `Offer` and compared as it arrives."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    mapping = default_mapping()
    planner = OfferPlanner(owned_fields=mapping.owned_fields)
    for item in FileCatalogSource(catalog_path, CatalogFormat.JSON).rows(mapping.sku_source):
        mapped = item if isinstance(item, RowError) else mapping.map_one(item)
        if isinstance(mapped, RowError):
            planner.reject(mapped)
        else:
            planner.add_desired(mapped)
    timings["read + map catalog"] = time.perf_counter() - started

    started = time.perf_counter()
    with open(listing_path, "rb") as pages:
        for page in pages:
            for raw in json.loads(page):
                planner.add_offer(Offer.model_validate(raw))
            del page
    timings["parse listing + compare"] = time.perf_counter() - started

    started = time.perf_counter()
    diff = planner.finish()
    timings["plan"] = time.perf_counter() - started
    return timings, diff.counts()


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM (Linux) belongs to the process's own memory map, so unlike
    `ru_maxrss` it does not carry the high-water mark of the parent that forked it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def plan_child(catalog_path: str, listing_path: str, traced: bool) -> None:
    """In a fresh interpreter: time the pipeline and its peak RSS (then, if asked, tracemalloc's peak)."""
    logger.setLevel("WARNING")
    Offer.model_validate({"id": "warm-up"})  # imports and pydantic's lazy set-up belong to the baseline
    gc.collect()
    rss_before = peak_rss_mb()
    timings, counts = plan_pipeline(catalog_path, listing_path)
    rss_after = peak_rss_mb()
    traced_peak = None
    if traced:
        gc.collect()
        tracemalloc.start()
        plan_pipeline(catalog_path, listing_path)
        traced_peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    result = {
        "timings": timings,
        "counts": counts,
        "rss_before_mb": rss_before,
        "rss_mb": rss_after,
        "traced_peak_mb": traced_peak,
        "inputs_mb": (Path(catalog_path).stat().st_size + Path(listing_path).stat().st_size) / 2**20,
    }
    print(json.dumps(result))


def run_plan_child(count: int, page_size: int | None, *, traced: bool) -> dict[str, Any]:
    rows, offers = catalog_and_offers(count, 0.01)
    with tempfile.TemporaryDirectory() as folder:
        catalog_path, listing_path = Path(folder, "catalog.json"), Path(folder, "listing.jsonl")
        catalog_path.write_text(json.dumps(rows))
        size = page_size or len(offers)
        with listing_path.open("w") as listing:
            for start in range(0, len(offers), size):
                listing.write(json.dumps(offers[start : start + size]) + "\n")
        del rows, offers
        command = [sys.executable, __file__, "--plan-child", str(catalog_path), str(listing_path)]
        child = subprocess.run(  # noqa: S603 - our own interpreter and script
            [*command, *(["--traced"] if traced else [])], capture_output=True, text=True, check=True
        )
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


def plan_figures(count: int) -> None:
    result = run_plan_child(count, None, traced=True)
    timings: dict[str, float] = result["timings"]
    total = sum(timings.values())
    print(f"plan for {count} offers (1 % changed, listing in one page): {result['counts']}")
    for name, seconds in timings.items():
        print(f"  {name}: {seconds:.2f} s")
    print(
        f"  plan time, catalog file and listing to plan: {total:.2f} s "
        f"(goal < {PLAN_TIME_GOAL_S:.0f} s: {'met' if total < PLAN_TIME_GOAL_S else 'NOT met'})"
    )
    rss = result["rss_mb"]
    verdict = "met" if rss < PLAN_MEMORY_GOAL_MB else "NOT met"
    print(
        f"  peak memory: max RSS {rss:.0f} MB of a fresh process (interpreter + imports "
        f"{result['rss_before_mb']:.0f} MB; goal < {PLAN_MEMORY_GOAL_MB:.0f} MB: {verdict}); "
        f"{result['traced_peak_mb']:.0f} MB allocated by the pipeline at its peak (tracemalloc); "
        f"{_per_offer(result, count, goal=False)}, the listing's one page of {count:,} offers included"
    )


def large_plan_figures(count: int) -> None:
    result = run_plan_child(count, LARGE_PAGE_SIZE, traced=False)
    total = sum(result["timings"].values())
    rss = result["rss_mb"]
    print(f"plan {count:,} offers: {total:.1f} s, {rss:.0f} MB peak RSS")
    verdict = "met" if rss < FUNCTION_MEMORY_MB else "NOT met"
    print(
        f"  (1 % changed: {result['counts']}; catalog file streamed, listing in pages of "
        f"{LARGE_PAGE_SIZE:,}; interpreter + imports {result['rss_before_mb']:.0f} MB; "
        f"goal < {FUNCTION_MEMORY_MB:.0f} MB: {verdict}; {_per_offer(result, count)})"
    )


def _per_offer(result: dict[str, Any], count: int, *, goal: bool = True) -> str:
    """Peak RSS above the interpreter and imports, per offer (the issue #11 figure: 2.7 KB before)."""
    per_offer = (result["rss_mb"] - result["rss_before_mb"]) * 2**20 / count
    if not goal:
        return f"{per_offer:.0f} bytes per offer"
    verdict = "met" if per_offer <= PER_OFFER_GOAL_BYTES else "NOT met"
    return f"{per_offer:.0f} bytes per offer (goal <= {PER_OFFER_GOAL_BYTES:.0f}: {verdict})"


# --- 5: a first import with no orders -----------------------------------------------------------------
def first_import(count: int, scale: float, shared: bool) -> None:
    """`count` new products into an empty Offergrid, the sync on the background lane, no orders."""
    import boto3
    from moto import mock_aws

    rows = [product(n) for n in range(count)]
    clock = ScaledClock(scale)
    with mock_aws(), OffergridFake(api_keys=(API_KEY,), clock=clock, per_minute=100, per_hour=10_000) as fake:
        budget: RateBudget
        if shared:
            dynamodb = boto3.client("dynamodb", region_name="eu-west-1")
            dynamodb.create_table(
                TableName="rate-limit",
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            )
            budget = DynamoDBRateBudget(
                "rate-limit", "import", clock=clock, client=dynamodb, lane=Lane.BACKGROUND
            )
        else:
            budget = InProcessRateBudget(clock=clock, lane=Lane.BACKGROUND)
        with client_for(fake, clock, budget) as client:
            deps = sync_dependencies(rows, client, clock)
            started = time.perf_counter()
            report = run_offer_sync(deps, SyncOptions())
            elapsed = time.perf_counter() - started
        calls = fake.calls
        minutes = (calls[-1].at - calls[0].at) / 60
        per_minute = len(calls) / minutes
        rate_limited = sum(1 for call in calls if call.status == 429)
        verdict = "met" if per_minute >= IMPORT_GOAL_PER_MINUTE and rate_limited == 0 else "NOT met"
        which = "shared DynamoDB budget (moto)" if shared else "in-process budget"
        goal = f"goal >= {IMPORT_GOAL_PER_MINUTE:.0f}/min, no 429: {verdict}"
        print(
            f"first import, {which}: {len(calls)} calls ({_calls_by_kind(fake)}) in {minutes:.1f} fake min "
            f"= {per_minute:.1f} calls/min, 429s {rate_limited}; wrote {report.wrote} "
            f"({elapsed:.0f} s real; {goal})"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--offers", type=int, default=10_000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--plan-offers", type=int, default=50_000)
    parser.add_argument("--large-offers", type=int, default=200_000)
    parser.add_argument("--import-offers", type=int, default=2_000, help="first import: new products")
    parser.add_argument("--import-scale", type=float, default=10.0, help="first import: clock speed-up")
    parser.add_argument(
        "--only", choices=["calls", "plan", "import"], help="run one part: 1-2, 3-4 or 5 (default all)"
    )
    parser.add_argument("--plan-child", nargs=2, metavar=("CATALOG", "LISTING"), help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.plan_child:
        catalog_path, listing_path = args.plan_child
        plan_child(catalog_path, listing_path, traced=args.traced)
        return
    logger.setLevel("WARNING")

    if args.only in (None, "calls"):
        limits = "limits 100/min and 10,000/h, the client's budget on the same clock"
        print(
            f"== offer sync: {args.offers} offers, {args.changed:.0%} changed "
            f"(fake time_scale={TIME_SCALE:g}, {limits}) =="
        )
        rows, offers = catalog_and_offers(args.offers, args.changed)
        sync_calls(rows, offers)
        naive_sample(rows, offers)
        paged_no_change(args.offers)
    if args.only in (None, "plan"):
        print(f"\n== plan time and peak memory: {args.plan_offers} offers ==")
        plan_figures(args.plan_offers)
        print(f"\n== plan time and peak memory: {args.large_offers:,} offers ==")
        large_plan_figures(args.large_offers)
    if args.only in (None, "import"):
        print(
            f"\n== first import: {args.import_offers:,} new offers, no orders (clock x{args.import_scale:g}, "
            "fake at 100/min and 10,000/h) =="
        )
        for shared in (False, True):
            first_import(args.import_offers, args.import_scale, shared)


if __name__ == "__main__":
    main()
