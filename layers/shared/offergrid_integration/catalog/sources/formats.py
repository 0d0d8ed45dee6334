"""A catalog's bytes to its rows, streamed, so a run never holds the export, its rows and the plan at once."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from enum import StrEnum
from typing import Any, Final
from urllib.parse import urlsplit

from offergrid_integration.catalog.sources.check import (
    MANIFEST_SUFFIX,
    CatalogCheck,
    CatalogItem,
    CatalogReadError,
    decode,
)
from offergrid_integration.catalog.sources.csv_rows import parse_csv
from offergrid_integration.catalog.sources.json_array import parse_json
from offergrid_integration.catalog.sources.json_lines import parse_json_lines

MAX_CATALOG_BYTES: Final = 200 * 1024 * 1024
CHUNK_BYTES: Final = 1024 * 1024


class CatalogFormat(StrEnum):
    AUTO = "auto"  # by the file extension, else the content type
    JSON = "json"
    JSONL = "jsonl"
    CSV = "csv"


def detect_format(name: str, content_type: str | None = None) -> CatalogFormat:
    """The format implied by a file name / URL path, else by a content type; JSON when unsure."""
    lowered = urlsplit(name).path.lower() if "://" in name else name.lower()
    if lowered.endswith(".csv"):
        return CatalogFormat.CSV
    if lowered.endswith((".jsonl", ".ndjson")):
        return CatalogFormat.JSONL
    if lowered.endswith(".json"):
        return CatalogFormat.JSON
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind in ("text/csv", "application/csv"):
        return CatalogFormat.CSV
    if kind in ("application/x-ndjson", "application/jsonl", "application/x-jsonlines"):
        return CatalogFormat.JSONL
    return CatalogFormat.JSON


def iter_catalog(
    chunks: Iterable[bytes],
    catalog_format: CatalogFormat,
    sku_field: str | None = "sku",
    check: CatalogCheck | None = None,
) -> Iterator[CatalogItem]:
    """The rows (and row errors) of a catalog arriving as byte chunks; `check` learns what judges it whole."""
    if catalog_format is CatalogFormat.AUTO:
        raise ValueError("resolve CatalogFormat.AUTO with detect_format() first")
    return _counted(chunks, catalog_format, sku_field, check if check is not None else CatalogCheck())


def _counted(
    chunks: Iterable[bytes], catalog_format: CatalogFormat, sku_field: str | None, check: CatalogCheck
) -> Iterator[CatalogItem]:
    text = decode(check.hashed(chunks))
    match catalog_format:
        case CatalogFormat.JSON:
            items = parse_json(text, sku_field, check)
        case CatalogFormat.JSONL:
            items = parse_json_lines(text, sku_field, check)
        case _:
            items = parse_csv(text, sku_field, check)
    for item in items:
        check.rows += 1
        yield item
    check.settle()


def limited(chunks: Iterable[bytes], max_bytes: int, where: str) -> Iterator[bytes]:
    """`chunks`, or `CatalogReadError` once they add up to more than `max_bytes`."""
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            raise CatalogReadError(f"{where} is over the {max_bytes} byte limit")
        yield chunk


def chunks_of(stream: Any, max_bytes: int, where: str) -> Iterator[bytes]:
    """The chunks of a binary stream (`read(n)`), at most `max_bytes` in all."""
    return limited(iter(lambda: bytes(stream.read(CHUNK_BYTES)), b""), max_bytes, where)


class StoredCatalog(ABC):
    """A catalog stored as an object or a file at `description`, its manifest beside it
    (`<description>.manifest.json`); a subclass opens each."""

    def __init__(self, location: str, catalog_format: CatalogFormat) -> None:
        self.description = location
        self._format = detect_format(location) if catalog_format is CatalogFormat.AUTO else catalog_format

    def rows(
        self, sku_field: str | None = "sku", *, check: CatalogCheck | None = None
    ) -> Iterator[CatalogItem]:
        check = check if check is not None else CatalogCheck()
        check.read_manifest(self.description + MANIFEST_SUFFIX, self._manifest)
        with self._open() as stream:
            chunks = chunks_of(stream, MAX_CATALOG_BYTES, self.description)
            yield from iter_catalog(chunks, self._format, sku_field, check)

    @abstractmethod
    def _manifest(self) -> bytes | None:
        """The manifest's bytes (None: there is none); `ManifestUnreadable` when it cannot be read."""

    @abstractmethod
    def _open(self) -> AbstractContextManager[Any]:
        """The catalog as a binary stream (`read(n)`); `CatalogReadError` when it cannot be read."""
