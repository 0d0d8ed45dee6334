"""Catalog formats (JSON array / JSON Lines / CSV) and the S3 and HTTPS adapters."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from offergrid_integration.catalog.sources import (
    CatalogCheck,
    CatalogFormat,
    CatalogReadError,
    FileCatalogSource,
    HttpsCatalogSource,
    ManifestStatus,
    S3CatalogSource,
    detect_format,
)
from offergrid_integration.secrets import Secret, parse_api_key
from tests.fixtures.catalog import collect, parse


def test_json_array_rows_are_numbered_by_position() -> None:
    parsed = parse(json.dumps([{"sku": "A"}, 42, {"sku": "B"}]).encode(), CatalogFormat.JSON)

    assert [(row.number, row.fields["sku"]) for row in parsed.rows] == [(1, "A"), (3, "B")]
    assert [(error.row, error.reason) for error in parsed.errors] == [(2, "row is not an object (int)")]


def test_json_envelope_is_accepted() -> None:
    parsed = parse(b'{"products": [{"sku": "A"}], "exportedAt": "2026-11-27"}', CatalogFormat.JSON)
    assert [row.fields["sku"] for row in parsed.rows] == ["A"]


@pytest.mark.parametrize("document", [b"{broken", b'"text"', b'{"meta": 1}'])
def test_unreadable_json_stops_the_run(document: bytes) -> None:
    with pytest.raises(CatalogReadError):
        parse(document, CatalogFormat.JSON)


def test_json_lines_bad_line_is_a_row_error_with_its_line_number() -> None:
    text = b'{"sku": "A"}\n\n{"sku": \n{"sku": "C"}\n[1]\n'

    parsed = parse(text, CatalogFormat.JSONL)

    assert [(row.number, row.fields["sku"]) for row in parsed.rows] == [(1, "A"), (4, "C")]
    assert [error.row for error in parsed.errors] == [3, 5]


def test_csv_rows_are_numbered_by_line_with_bom_and_multiline_cells() -> None:
    text = (
        '\ufeffsku,productName,description\r\nA,One,"two\nlines"\r\n,,\r\nB,Two,plain\r\nC,Three,x,extra\r\n'
    ).encode()

    parsed = parse(text, CatalogFormat.CSV)

    assert [(row.number, row.fields["sku"]) for row in parsed.rows] == [(2, "A"), (5, "B")]
    assert parsed.rows[0].fields["description"] == "two\nlines"
    assert [(error.row, "4 cells" in error.reason) for error in parsed.errors] == [(6, True)]


def test_not_utf8_is_unreadable() -> None:
    with pytest.raises(CatalogReadError, match="not UTF-8"):
        parse(b"sku\n\xff\xfe", CatalogFormat.CSV)


@pytest.mark.parametrize(
    ("name", "content_type", "expected"),
    [
        ("s3://b/export/catalog.csv", None, CatalogFormat.CSV),
        ("catalog.ndjson", None, CatalogFormat.JSONL),
        ("https://crm.example.com/api/products?x=1", "text/csv; charset=utf-8", CatalogFormat.CSV),
        ("https://crm.example.com/api/products", "application/json", CatalogFormat.JSON),
        ("catalog", None, CatalogFormat.JSON),
    ],
)
def test_detect_format(name: str, content_type: str | None, expected: CatalogFormat) -> None:
    assert detect_format(name, content_type) is expected


def test_file_source_reads_and_reports_missing_files(tmp_path) -> None:
    path = tmp_path / "catalog.jsonl"
    path.write_text('{"sku": "A"}\n')

    assert [row.fields for row in collect(FileCatalogSource(path).rows()).rows] == [{"sku": "A"}]
    with pytest.raises(CatalogReadError, match="cannot read"):
        collect(FileCatalogSource(tmp_path / "absent.json").rows())


def test_s3_source_reads_the_object_and_names_a_missing_one(aws) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="catalog", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="catalog", Key="export/products.csv", Body=b"sku,productName\nA,One\n")

    parsed = collect(S3CatalogSource("s3://catalog/export/products.csv").rows())

    assert [(row.number, dict(row.fields)) for row in parsed.rows] == [
        (2, {"sku": "A", "productName": "One"})
    ]
    with pytest.raises(CatalogReadError, match="NoSuchKey"):
        collect(S3CatalogSource("s3://catalog/export/missing.json").rows())


def test_s3_source_rejects_a_bad_uri() -> None:
    with pytest.raises(ValueError, match="s3://bucket/key"):
        S3CatalogSource("s3://only-bucket")


def test_https_source_sends_the_crm_key_from_secrets_manager(aws) -> None:
    # Given the CRM key in Secrets Manager, and a CRM answering CSV only to that key
    boto3.client("secretsmanager").create_secret(
        Name="crm-key", SecretString='{"apiKey": "crm-test-key-123"}'
    )
    seen: list[httpx.Request] = []

    def crm(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers.get("authorization") != "Bearer crm-test-key-123":
            return httpx.Response(401)
        if request.url.path != "/export":
            return httpx.Response(404)
        return httpx.Response(200, text="sku,productName\nA,One\n", headers={"content-type": "text/csv"})

    source = HttpsCatalogSource(
        "https://crm.example.com/export?token=abc",
        api_key=Secret("crm-key", parse_api_key),
        api_key_header="Authorization",
        transport=httpx.MockTransport(crm),
    )

    # When it is read
    check = CatalogCheck()
    parsed = collect(source.rows(check=check))

    # Then the key went in the header, the format came from the content type, and the description
    # (logged, reported) carries no query string
    assert [dict(row.fields) for row in parsed.rows] == [{"sku": "A", "productName": "One"}]
    # And the manifest was looked for beside it, with the same key (404: there is none)
    assert [str(request.url) for request in seen] == [
        "https://crm.example.com/export.manifest.json?token=abc",
        "https://crm.example.com/export?token=abc",
    ]
    assert check.manifest is ManifestStatus.ABSENT
    assert check.problems == []
    assert source.description == "https://crm.example.com/export"


def test_https_source_error_status_is_unreadable() -> None:
    source = HttpsCatalogSource(
        "https://crm.example.com/export", transport=httpx.MockTransport(lambda _: httpx.Response(503))
    )
    with pytest.raises(CatalogReadError, match="HTTP 503"):
        collect(source.rows())


def test_https_source_refuses_plain_http() -> None:
    with pytest.raises(ValueError, match="https"):
        HttpsCatalogSource("http://crm.example.com/export")


# ---------------------------------------------------------------------------------------------------
# One chooser for the sync and the CLI
# ---------------------------------------------------------------------------------------------------
def test_the_source_is_chosen_by_the_location_scheme(tmp_path: Path) -> None:
    from offergrid_integration.catalog.sources import (
        FileCatalogSource,
        HttpsCatalogSource,
        S3CatalogSource,
        open_catalog_source,
    )

    assert isinstance(open_catalog_source("s3://bucket/catalog.json"), S3CatalogSource)
    assert isinstance(open_catalog_source("https://crm.example.com/catalog.csv"), HttpsCatalogSource)
    local = tmp_path / "catalog.json"
    assert isinstance(open_catalog_source(str(local), allow_files=True), FileCatalogSource)
    # A Lambda never reads its own file system as a catalog: a path is refused unless the CLI allows it.
    with pytest.raises(ValueError, match=r"s3:// or https://"):
        open_catalog_source(str(local))


# ---------------------------------------------------------------------------------------------------
# The manifest beside the catalog (docs/decisions.md#15): absent, matched, not matching, unreadable
# ---------------------------------------------------------------------------------------------------
CATALOG = b"sku,productName\nA,One\nB,Two"  # no final line break: only a manifest vouches for row B


def manifest_of(data: bytes, rows: int) -> bytes:
    return json.dumps({"rows": rows, "sha256": hashlib.sha256(data).hexdigest()}).encode()


MANIFESTS: dict[str, tuple[bytes | None, ManifestStatus, list[str]]] = {
    # name: (manifest bytes or None for none, the check's verdict, the rows read)
    "absent": (None, ManifestStatus.ABSENT, ["A"]),
    "matched": (manifest_of(CATALOG, 2), ManifestStatus.MATCHED, ["A", "B"]),
    "other rows": (manifest_of(CATALOG, 3), ManifestStatus.MISMATCH, ["A", "B"]),
    "other bytes": (manifest_of(CATALOG + b"\nC,Three\n", 2), ManifestStatus.MISMATCH, ["A"]),
    "not json": (b"rows=2", ManifestStatus.UNREADABLE, ["A"]),
    "no sha256": (b'{"rows": 2}', ManifestStatus.UNREADABLE, ["A"]),
}


def assert_checked(source: Any, name: str) -> None:
    _, status, rows = MANIFESTS[name]
    check = CatalogCheck()

    parsed = collect(source.rows(check=check))

    assert [row.fields["sku"] for row in parsed.rows] == rows
    assert check.manifest is status
    # Only a manifest that matches vouches for the last row (no line break after it); any other
    # manifest is a problem that keeps every offer on sale
    if status is ManifestStatus.MATCHED:
        assert check.problems == []
    elif status is ManifestStatus.ABSENT:
        assert check.problems == [check.truncated]
    else:
        assert check.manifest_problem is not None
        assert check.manifest_problem in check.problems
        assert "nothing is taken off sale" in check.manifest_problem.lower()


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_s3_source_checks_the_manifest_beside_the_object(aws: None, name: str) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="catalog", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="catalog", Key="export/products.csv", Body=CATALOG)
    manifest = MANIFESTS[name][0]
    if manifest is not None:
        s3.put_object(Bucket="catalog", Key="export/products.csv.manifest.json", Body=manifest)

    assert_checked(S3CatalogSource("s3://catalog/export/products.csv"), name)


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_file_source_checks_the_manifest_beside_the_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / "products.csv"
    path.write_bytes(CATALOG)
    manifest = MANIFESTS[name][0]
    if manifest is not None:
        (tmp_path / "products.csv.manifest.json").write_bytes(manifest)

    assert_checked(FileCatalogSource(path), name)


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_https_source_checks_the_manifest_at_the_url_plus_manifest_json(name: str) -> None:
    manifest = MANIFESTS[name][0]

    def crm(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/export/products.csv":
            return httpx.Response(200, content=CATALOG)
        if request.url.path == "/export/products.csv.manifest.json" and manifest is not None:
            assert request.url.params["token"] == "abc"  # the catalog URL's query, kept
            return httpx.Response(200, content=manifest, headers={"content-type": "application/json"})
        return httpx.Response(404)

    source = HttpsCatalogSource(
        "https://crm.example.com/export/products.csv?token=abc", transport=httpx.MockTransport(crm)
    )
    assert_checked(source, name)


@pytest.mark.parametrize("status", [403, 500, 503])
def test_a_manifest_the_crm_will_not_answer_for_keeps_every_offer_on_sale(status: int) -> None:
    def crm(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(".manifest.json"):
            return httpx.Response(status)
        return httpx.Response(200, content=b"sku\nA\n", headers={"content-type": "text/csv"})

    source = HttpsCatalogSource(
        "https://crm.example.com/export?token=secret-token", transport=httpx.MockTransport(crm)
    )
    check = CatalogCheck()

    parsed = collect(source.rows(check=check))

    assert [row.fields["sku"] for row in parsed.rows] == ["A"]
    assert check.manifest is ManifestStatus.UNREADABLE
    assert check.manifest_problem is not None
    assert f"HTTP {status}" in check.manifest_problem
    assert "secret-token" not in check.manifest_problem  # the query may carry a token: never in a report


def test_a_manifest_that_matches_lets_a_last_row_with_fewer_cells_count(tmp_path: Path) -> None:
    data = b"sku,productName,description\nA,One,x\nB,Two\n"  # an exporter that leaves empty cells out
    path = tmp_path / "products.csv"
    path.write_bytes(data)
    (tmp_path / "products.csv.manifest.json").write_bytes(manifest_of(data, 2))
    check = CatalogCheck()

    parsed = collect(FileCatalogSource(path).rows(check=check))

    assert [row.fields["sku"] for row in parsed.rows] == ["A", "B"]
    assert (check.manifest, check.problems) == (ManifestStatus.MATCHED, [])


def test_a_manifest_never_vouches_for_a_cell_left_open(tmp_path: Path) -> None:
    data = b'sku,productName\nA,One\nB,"Two\n'
    path = tmp_path / "products.csv"
    path.write_bytes(data)
    (tmp_path / "products.csv.manifest.json").write_bytes(manifest_of(data, 2))
    check = CatalogCheck()

    parsed = collect(FileCatalogSource(path).rows(check=check))

    assert [(e.row, e.cut) for e in parsed.errors] == [(3, True)]
    assert check.manifest is ManifestStatus.MATCHED
    assert check.truncated is not None
