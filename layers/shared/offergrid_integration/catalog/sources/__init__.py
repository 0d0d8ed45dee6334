"""Where the provider's catalog comes from, streamed and judged whole or not (docs/decisions.md#15).

An unreadable catalog is a `CatalogReadError` and stops the run before planning, so nothing is taken off
sale for a broken export (docs/architecture.md#add-a-catalog-source).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

from offergrid_integration.catalog.sources.check import (
    MANIFEST_SUFFIX,
    CatalogCheck,
    CatalogItem,
    CatalogReadError,
    ManifestStatus,
)
from offergrid_integration.catalog.sources.formats import CatalogFormat, detect_format, iter_catalog
from offergrid_integration.catalog.sources.https import HttpsCatalogSource
from offergrid_integration.catalog.sources.local_file import FileCatalogSource
from offergrid_integration.catalog.sources.s3 import S3CatalogSource, read_s3_object

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "MANIFEST_SUFFIX",
    "CatalogCheck",
    "CatalogFormat",
    "CatalogItem",
    "CatalogReadError",
    "CatalogSource",
    "FileCatalogSource",
    "HttpsCatalogSource",
    "ManifestStatus",
    "S3CatalogSource",
    "detect_format",
    "iter_catalog",
    "open_catalog_source",
    "read_s3_object",
]


class CatalogSource(Protocol):
    """Reads the catalog once per run, row by row."""

    @property
    def description(self) -> str:
        """Where the catalog comes from, for logs and reports (never a credential)."""
        ...

    def rows(
        self, sku_field: str | None = "sku", *, check: CatalogCheck | None = None
    ) -> Iterator[CatalogItem]:
        """Every row (or row error) in file order; `CatalogReadError` when the catalog is unreadable.
        `check` learns what the read found about the catalog as a whole (its manifest included)."""
        ...


def open_catalog_source(
    location: str,
    catalog_format: CatalogFormat = CatalogFormat.AUTO,
    *,
    s3_client: S3Client | None = None,
    api_key: Callable[[], str] | None = None,
    api_key_header: str = "x-api-key",
    allow_files: bool = False,
) -> CatalogSource:
    """The source for `location`, by its scheme: `s3://`, `https://` (the provider's CRM; `http://`
    only for a local host), else a local file when `allow_files` (the CLI; never in Lambda)."""
    if location.startswith("s3://"):
        return S3CatalogSource(location, catalog_format, s3_client=s3_client)
    if location.startswith(("https://", "http://")):
        return HttpsCatalogSource(location, catalog_format, api_key=api_key, api_key_header=api_key_header)
    if allow_files:
        return FileCatalogSource(location, catalog_format)
    raise ValueError("the catalog location must be an s3:// or https:// URI")
