"""Where the provider's catalog comes from: the `CatalogSource` port and its adapters.

- `S3CatalogSource` (the default): a CRM export dropped in S3, `s3://bucket/key`.
- `HttpsCatalogSource`: the CRM's own HTTPS endpoint, with an API key read from Secrets Manager.
- `FileCatalogSource`: a local file (the CLI, tests).

Formats (`CatalogFormat`): a JSON array (or an object holding the array under `products`, `items`,
`offers` or `data`), JSON Lines, or CSV with a header row (Decision 8 column names). `auto` picks by
the file extension or content type. Row numbers are where a person editing the file finds the row:
the position in a JSON array (1-based), the line in JSON Lines, the line in CSV (the header is line 1).

A row that cannot even be read (a JSON Lines line that is not JSON, an array element that is not an
object) is a `RowError` like any invalid row. A catalog that cannot be read at all (missing object,
not JSON, too big) is a `CatalogReadError`: the run stops before planning, so nothing is deactivated
because of a broken export.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol
from urllib.parse import urlsplit

import httpx

from offergrid_integration.catalog.mapping import RawRow, RowError
from offergrid_integration.s3 import S3ReadError, parse_s3_uri
from offergrid_integration.s3 import read_s3_object as _read_s3_object

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "MAX_CATALOG_BYTES",
    "CatalogFormat",
    "CatalogReadError",
    "CatalogSource",
    "FileCatalogSource",
    "HttpsCatalogSource",
    "ParsedCatalog",
    "S3CatalogSource",
    "detect_format",
    "new_s3_client",
    "parse_catalog",
    "read_s3_object",
]

MAX_CATALOG_BYTES: Final = 200 * 1024 * 1024
ENVELOPE_KEYS: Final = ("products", "items", "offers", "data")
HTTPS_TIMEOUT_SECONDS: Final = 30.0


class CatalogFormat(StrEnum):
    AUTO = "auto"
    JSON = "json"
    JSONL = "jsonl"
    CSV = "csv"


class CatalogReadError(Exception):
    """The catalog cannot be read at all (no row can be trusted): the run stops."""


@dataclass(slots=True)
class ParsedCatalog:
    rows: list[RawRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


class CatalogSource(Protocol):
    """Reads the whole catalog once per run."""

    @property
    def description(self) -> str:
        """Where the catalog comes from, for logs and reports (never a credential)."""
        ...

    def read(self) -> ParsedCatalog: ...


# ---------------------------------------------------------------------------------------------------
# Formats (pure)
# ---------------------------------------------------------------------------------------------------
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


def parse_catalog(data: bytes, catalog_format: CatalogFormat) -> ParsedCatalog:
    if catalog_format is CatalogFormat.AUTO:
        raise ValueError("resolve CatalogFormat.AUTO with detect_format() first")
    try:
        text = data.decode("utf-8-sig")  # Excel writes a BOM
    except UnicodeDecodeError as exc:
        raise CatalogReadError(f"catalog is not UTF-8 text (byte {exc.start})") from None
    match catalog_format:
        case CatalogFormat.JSON:
            return _parse_json(text)
        case CatalogFormat.JSONL:
            return _parse_json_lines(text)
        case _:
            return _parse_csv(text)


def _parse_json(text: str) -> ParsedCatalog:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise CatalogReadError(f"catalog is not valid JSON: {exc}") from None
    if isinstance(document, dict):
        products = next((document[key] for key in ENVELOPE_KEYS if isinstance(document.get(key), list)), None)
        if products is None:
            raise CatalogReadError(f"catalog object has no product list under {', '.join(ENVELOPE_KEYS)}")
        document = products
    if not isinstance(document, list):
        raise CatalogReadError("catalog must be a JSON array of products")
    parsed = ParsedCatalog()
    for number, item in enumerate(document, start=1):
        if isinstance(item, dict):
            parsed.rows.append(RawRow(number, item))
        else:
            parsed.errors.append(RowError(number, None, f"row is not an object ({type(item).__name__})"))
    return parsed


def _parse_json_lines(text: str) -> ParsedCatalog:
    parsed = ParsedCatalog()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            parsed.errors.append(RowError(number, None, f"line is not valid JSON: {exc.args[0]}"))
            continue
        if isinstance(item, dict):
            parsed.rows.append(RawRow(number, item))
        else:
            parsed.errors.append(RowError(number, None, f"line is not a JSON object ({type(item).__name__})"))
    return parsed


def _parse_csv(text: str) -> ParsedCatalog:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return ParsedCatalog()
    except csv.Error as exc:
        raise CatalogReadError(f"catalog CSV header is unreadable: {exc}") from None
    columns = [name.strip() for name in header]
    if not any(columns):
        raise CatalogReadError("catalog CSV has an empty header row")
    parsed = ParsedCatalog()
    line = reader.line_num
    while True:
        start = line + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            parsed.errors.append(RowError(start, None, f"unreadable CSV row: {exc}"))
            line = reader.line_num
            continue
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(columns):
            parsed.errors.append(
                RowError(start, None, f"row has {len(cells)} cells but the header has {len(columns)} columns")
            )
            continue
        values = {name: cell for name, cell in zip(columns, cells, strict=False) if name}
        parsed.rows.append(RawRow(start, values))
    return parsed


# ---------------------------------------------------------------------------------------------------
# Adapters
# ---------------------------------------------------------------------------------------------------
def new_s3_client(endpoint_url: str | None = None) -> S3Client:
    """A boto3 S3 client (`endpoint_url`: the local stack). Build one per runtime and pass it on."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url or None)


def read_s3_object(uri: str, s3_client: S3Client | None = None, max_bytes: int = MAX_CATALOG_BYTES) -> bytes:
    """The bytes of an S3 object (catalog or mapping document); `CatalogReadError` if unreadable.
    (`offergrid_integration.s3.read_s3_object` with the catalog's error type.)"""
    try:
        return _read_s3_object(uri, s3_client, max_bytes=max_bytes)
    except S3ReadError as exc:
        raise CatalogReadError(str(exc)) from None


class S3CatalogSource:
    def __init__(
        self,
        uri: str,
        catalog_format: CatalogFormat = CatalogFormat.AUTO,
        *,
        s3_client: S3Client | None = None,
    ) -> None:
        parse_s3_uri(uri)
        self._uri = uri
        self._format = detect_format(uri) if catalog_format is CatalogFormat.AUTO else catalog_format
        self._s3 = s3_client

    @property
    def description(self) -> str:
        return self._uri

    def read(self) -> ParsedCatalog:
        if self._s3 is None:  # none given: one of its own, kept for the next reads
            self._s3 = new_s3_client()
        return parse_catalog(read_s3_object(self._uri, self._s3), self._format)


class FileCatalogSource:
    def __init__(self, path: str | Path, catalog_format: CatalogFormat = CatalogFormat.AUTO) -> None:
        self._path = Path(path)
        auto = catalog_format is CatalogFormat.AUTO
        self._format = detect_format(self._path.name) if auto else catalog_format

    @property
    def description(self) -> str:
        return str(self._path)

    def read(self) -> ParsedCatalog:
        try:
            data = self._path.read_bytes()
        except OSError as exc:
            raise CatalogReadError(f"cannot read {self._path}: {exc.strerror}") from None
        return parse_catalog(data, self._format)


class HttpsCatalogSource:
    """GET the catalog from the provider's CRM. The API key (read from Secrets Manager by the caller's
    `api_key` callable) goes in `api_key_header`; `Authorization` gets a `Bearer` scheme."""

    def __init__(
        self,
        url: str,
        catalog_format: CatalogFormat = CatalogFormat.AUTO,
        *,
        api_key: Callable[[], str] | None = None,
        api_key_header: str = "x-api-key",
        timeout: float = HTTPS_TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
        max_bytes: int = MAX_CATALOG_BYTES,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "https" and parts.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError("the catalog URL must use https")
        self._url = url
        self._format = catalog_format
        self._api_key = api_key
        self._header = api_key_header
        self._timeout = timeout
        self._transport = transport
        self._max_bytes = max_bytes

    @property
    def description(self) -> str:
        parts = urlsplit(self._url)
        return f"{parts.scheme}://{parts.netloc}{parts.path}"  # no query: it might carry a token

    def read(self) -> ParsedCatalog:
        headers = {"accept": "application/json, text/csv, application/x-ndjson"}
        if self._api_key is not None:
            key = self._api_key()
            headers[self._header] = f"Bearer {key}" if self._header.lower() == "authorization" else key
        try:
            with httpx.Client(transport=self._transport, timeout=self._timeout) as client:
                response = client.get(self._url, headers=headers)
        except httpx.HTTPError as exc:
            raise CatalogReadError(f"cannot read {self.description}: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise CatalogReadError(f"cannot read {self.description}: HTTP {response.status_code}")
        if len(response.content) > self._max_bytes:
            raise CatalogReadError(f"{self.description} is over the {self._max_bytes} byte limit")
        catalog_format = self._format
        if catalog_format is CatalogFormat.AUTO:
            catalog_format = detect_format(self._url, response.headers.get("content-type"))
        return parse_catalog(response.content, catalog_format)
