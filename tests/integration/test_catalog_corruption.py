"""P1 (issue #21, docs/decisions.md#13 and #15): no corruption of a catalog export takes more offers
off sale than the removal guard allows.

A hostile world for the export: cut at any byte, a column dropped or renamed, a BOM, another encoding
(latin-1, UTF-16), a SKU written twice, with or without a manifest of the export as it was meant to
be. The effect is measured where it happens: the statuses of the offers in the Offergrid fake after a
real sync (catalog in S3 on moto), in both of the fake's answer modes.

`make test` runs the default profile (25 examples, derandomized: the same ones every run);
`make test-deep` (CATALOG_PROPERTIES_PROFILE=deep) runs 400 random ones.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.offergrid_fake import OffergridFake
from offergrid_integration.catalog.apply import SyncDependencies, SyncOptions, run_offer_sync
from offergrid_integration.catalog.guard import RemovalGuard
from offergrid_integration.catalog.mapping import default_mapping
from offergrid_integration.catalog.sources import MANIFEST_SUFFIX, S3CatalogSource
from offergrid_integration.catalog.state import InMemorySyncState
from offergrid_integration.clock import ScaledClock
from tests.integration.test_offer_sync import BUCKET, catalog, clock, fake, make_client, make_fake

PROFILES = {"default": {"max_examples": 25}, "deep": {"max_examples": 400}}
PROFILE_NAME = os.environ.get("CATALOG_PROPERTIES_PROFILE", "default")
PROFILE = PROFILES[PROFILE_NAME]

COLUMNS = ("sku", "productName", "type", "price", "isActive", "description")
FORMATS = {"csv": "exports/catalog.csv", "jsonl": "exports/catalog.jsonl", "json": "exports/catalog.json"}


# --- the export and its corruptions ------------------------------------------------------------------
def products(count: int, accents: bool) -> list[dict[str, Any]]:
    """The provider's catalog: SKU-0 ... SKU-<count-1> (SKU-2 is a prefix of SKU-29), all on sale."""
    name = "Télévision {}" if accents else "Television {}"
    return [
        {
            "sku": f"SKU-{n}",
            "productName": name.format(n),
            "type": "television",
            "price": 10,
            "isActive": True,
            "description": "Channels, films and sport",
        }
        for n in range(count)
    ]


def export(rows: list[dict[str, Any]], kind: str) -> bytes:
    """The bytes an export job writes (UTF-8, a line break after every line)."""
    if kind == "json":
        return (json.dumps(rows, ensure_ascii=False, indent=1) + "\n").encode()
    if kind == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()
    columns = list(dict.fromkeys(name for row in rows for name in row)) or list(COLUMNS)

    def cell(value: Any) -> str:
        text = str(value).lower() if isinstance(value, bool) else str(value)
        return f'"{text}"' if "," in text else text

    lines = [",".join(columns), *(",".join(cell(row.get(name, "")) for name in columns) for row in rows)]
    return "".join(line + "\n" for line in lines).encode()


@dataclass(frozen=True)
class Corruption:
    kind: str  # truncate, drop, rename, bom, encode, duplicate
    detail: Any = None

    def __str__(self) -> str:
        return f"{self.kind}({self.detail})" if self.detail is not None else self.kind


def corruptions() -> st.SearchStrategy[Corruption]:
    return st.one_of(
        st.builds(Corruption, st.just("truncate"), st.floats(0, 1, exclude_max=True)),  # where, of the length
        st.builds(Corruption, st.just("drop"), st.sampled_from(COLUMNS)),
        st.builds(Corruption, st.just("rename"), st.sampled_from(COLUMNS)),
        st.just(Corruption("bom")),
        st.builds(Corruption, st.just("encode"), st.sampled_from(["latin-1", "utf-16"])),
        st.builds(Corruption, st.just("duplicate"), st.tuples(st.integers(0, 99), st.integers(0, 99))),
    )


@dataclass
class Corrupted:
    data: bytes
    # Whether the export still looks whole while offers are missing from it: rows lost at a line break,
    # or a SKU written twice over another one. Without a manifest, those are indistinguishable from
    # a provider withdrawing the products: only the removal guard's count holds them.
    looks_whole: bool


def corrupt(rows: list[dict[str, Any]], kind: str, damage: list[Corruption]) -> Corrupted:
    rows = [dict(row) for row in rows]
    looks_whole = False
    for corruption in damage:
        if corruption.kind == "drop":
            for row in rows:
                row.pop(corruption.detail, None)
        elif corruption.kind == "rename":
            for row in rows:
                if corruption.detail in row:
                    row[corruption.detail.lower() + "_"] = row.pop(corruption.detail)
        elif corruption.kind == "duplicate":
            first, second = (n % len(rows) for n in corruption.detail)
            looks_whole = looks_whole or first != second
            rows[first]["sku"] = rows[second].get("sku", rows[first].get("sku"))
    # The export job writes another encoding (the last one drawn) or a BOM; the upload cuts it
    data = export(rows, kind)
    encodings = [corruption.detail for corruption in damage if corruption.kind == "encode"]
    if encodings:
        data = data.decode().encode(encodings[-1])
    if any(corruption.kind == "bom" for corruption in damage):
        data = b"\xef\xbb\xbf" + data
    for corruption in damage:
        if corruption.kind == "truncate":
            data = data[: math.floor(corruption.detail * len(data))]
            looks_whole = looks_whole or (kind != "json" and data.endswith(b"\n"))
    return Corrupted(data, looks_whole)


# --- the property ------------------------------------------------------------------------------------
@pytest.mark.slow
@given(
    count=st.integers(6, 30),
    kind=st.sampled_from(sorted(FORMATS)),
    accents=st.booleans(),
    damage=st.lists(corruptions(), min_size=1, max_size=2),
    with_manifest=st.booleans(),
)
@settings(
    **PROFILE,
    deadline=None,
    database=None,
    derandomize=PROFILE_NAME != "deep",
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_corruption_of_the_export_takes_more_offers_off_sale_than_the_guard_allows(
    fake: OffergridFake,
    catalog: Callable[..., str],
    clock: ScaledClock,
    seen: Counter[str],
    count: int,
    kind: str,
    accents: bool,
    damage: list[Corruption],
    with_manifest: bool,
) -> None:
    """P1. Effect guarded: an offer leaving sale (active -> anything else, or deleted). However the
    export is corrupted, one sync takes at most max(5, 10 %) of the live offers off sale, and none at all
    unless the corrupted export still looks whole (rows lost exactly at a line break, a SKU written over
    another) and no manifest of the real export says otherwise."""
    # Given `count` offers on sale, equal to the provider's catalog ...
    fake.reset()
    rows = products(count, accents)
    ids = {
        row["sku"]: fake.add_offer(
            sku=row["sku"],
            name=row["productName"],
            category="television",
            monthlyPrice=10,
            status="active",
            description=row["description"],
        )["id"]
        for row in rows
    }
    # ... and its export, corrupted on the way (with the export job's manifest of the real one beside it)
    whole = export(rows, kind)
    corrupted = corrupt(rows, kind, damage)
    key = FORMATS[kind]
    uri = catalog(corrupted.data, key=key)
    s3 = boto3.client("s3")
    if with_manifest:
        manifest = {"rows": count, "sha256": hashlib.sha256(whole).hexdigest()}
        s3.put_object(Bucket=BUCKET, Key=key + MANIFEST_SUFFIX, Body=json.dumps(manifest).encode())
    else:
        s3.delete_object(Bucket=BUCKET, Key=key + MANIFEST_SUFFIX)

    # When the sync runs
    with make_client(fake, clock) as client:
        deps = SyncDependencies(
            source=S3CatalogSource(uri),
            mapping=default_mapping(),
            client=client,
            state=InMemorySyncState(clock),
            clock=clock,
        )
        report = run_offer_sync(deps, SyncOptions())

    # Then at most the guard's allowance left sale, and none unless the export still looked whole
    left = sorted(
        sku for sku, offer_id in ids.items() if fake.offers.get(offer_id, {}).get("status") != "active"
    )
    allowance = RemovalGuard().allowance(count)
    story = (
        f"{kind}, {count} offers, {', '.join(map(str, damage))}, manifest {with_manifest}: {report.summary()}"
    )
    assert len(left) <= allowance, f"{len(left)} of {count} left sale: {story}"
    if with_manifest or not corrupted.looks_whole:
        assert left == [], f"{len(left)} of {count} left sale: {story}"
    seen.update(corruption.kind for corruption in damage)
    seen["left sale"] += len(left)
    seen["examples"] += 1


@pytest.fixture(scope="module")
def seen() -> Counter[str]:
    return Counter()


@pytest.fixture(scope="module", autouse=True)
def _every_corruption_was_tried(seen: Counter[str]) -> Any:
    yield
    print(f"P1 ({PROFILE_NAME}): {dict(sorted(seen.items()))}")
    if seen["examples"]:
        kinds = {"truncate", "drop", "rename", "bom", "encode", "duplicate"}
        assert kinds <= set(seen), f"corruptions never tried: {kinds - set(seen)}"


# The fixtures shared with test_offer_sync.py (imported above, used by name as test parameters).
__all__ = ["catalog", "clock", "fake", "make_fake"]
