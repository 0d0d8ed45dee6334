"""Where the provider's catalog comes from: the `CatalogSource` port and its adapters.

- `S3CatalogSource` (the default): a CRM export dropped in S3, `s3://bucket/key`.
- `HttpsCatalogSource`: the CRM's own HTTPS endpoint, with an API key read from Secrets Manager.
- `FileCatalogSource`: a local file (the CLI, tests).

Formats (`CatalogFormat`): a JSON array (or an object holding the array under `products`, `items`,
`offers` or `data`), JSON Lines, or CSV with a header row (Decision 8 column names). `auto` picks by
the file extension or content type. Row numbers are where a person editing the file finds the row:
the position in a JSON array (1-based), the line in JSON Lines, the line in CSV (the header is line 1).

Catalogs are streamed (`CatalogSource.rows()`): the bytes are read in chunks and each row is handed
on as soon as it is parsed, so a run never holds the raw export, every parsed row and the plan at
once (a JSON object envelope is the exception: it is parsed whole). `read()` collects the same rows
into a `ParsedCatalog` (tests, small catalogs).

A row that cannot even be read is a `RowError` like any invalid row, and names its SKU whenever the
raw row still shows it (docs/decisions.md#13; `sku_field` is the mapping's SKU source): a CSV row with
more cells than the header (an unquoted comma: the SKU column's cell and, when the shift may have
reached it, the cells after it are its `candidates`), a CSV cell over the field-size limit, a JSON
Lines line that is not JSON (a trailing comma: the SKU is read from the raw text), an array element
that is not an object (a JSON string holding the object, a list around it). A catalog that cannot be
read at all (missing object, not JSON, too big) is a `CatalogReadError`: the run stops before
planning, so nothing is deactivated because of a broken export.

A catalog is complete (docs/decisions.md#15), and `CatalogCheck` says when it is not: an export the
text ends inside (CSV / JSON Lines: no line break after the last row, a last CSV row with fewer cells
than the header or inside a quoted cell; JSON: an array that is not closed) is cut short, and the row
it ends inside is a `RowError(cut=True)` whose SKU is never used (`SKU-29` cut to `SKU-2` names
another product). An optional manifest beside the catalog (`<location>.manifest.json`: row count and
SHA-256 of the bytes, `CatalogManifest`) must match, and when it does it vouches for a last row
without a line break. The plan takes nothing off sale from a catalog with such a problem.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import urlsplit

import httpx

from offergrid_integration import aws
from offergrid_integration.catalog.mapping import RawRow, RowError
from offergrid_integration.config import http_url
from offergrid_integration.s3 import S3ReadError, parse_s3_uri
from offergrid_integration.s3 import read_s3_object as _read_s3_object

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "MANIFEST_SUFFIX",
    "MAX_CATALOG_BYTES",
    "CatalogCheck",
    "CatalogFormat",
    "CatalogItem",
    "CatalogManifest",
    "CatalogReadError",
    "CatalogSource",
    "FileCatalogSource",
    "HttpsCatalogSource",
    "ManifestStatus",
    "ParsedCatalog",
    "S3CatalogSource",
    "detect_format",
    "iter_catalog",
    "open_catalog_source",
    "parse_catalog",
    "read_s3_object",
]

MAX_CATALOG_BYTES: Final = 200 * 1024 * 1024
ENVELOPE_KEYS: Final = ("products", "items", "offers", "data")
HTTPS_TIMEOUT_SECONDS: Final = 30.0
CHUNK_BYTES: Final = 1024 * 1024
# One physical line (CSV, JSON Lines) or one JSON array element longer than this is not a catalog row.
MAX_ROW_CHARS: Final = 16 * 1024 * 1024
_MAX_CANDIDATE_CHARS: Final = 1024  # a recovered SKU longer than this is no SKU
# The manifest an export job may write beside the catalog: `<catalog key or path>.manifest.json`.
MANIFEST_SUFFIX: Final = ".manifest.json"
MAX_MANIFEST_BYTES: Final = 64 * 1024
MANIFEST_HELP: Final = "docs/runbooks/offer-sync.md#catalog-manifest"
_SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")
_LINE_END: Final = re.compile(r"\r\n|\r|\n")
_CUT_ROW: Final = "the catalog ends inside this row (cut short): nothing of it is read, not even its SKU"
_CUT_ELEMENT: Final = (
    "the catalog ends inside this element (cut short), or is not JSON from here on: nothing of it or "
    "after it is read, not even its SKU"
)
_WHITESPACE: Final = re.compile(r"[ \t\r\n]*")

type CatalogItem = RawRow | RowError


class CatalogFormat(StrEnum):
    AUTO = "auto"
    JSON = "json"
    JSONL = "jsonl"
    CSV = "csv"


class CatalogReadError(Exception):
    """The catalog cannot be read at all (no row can be trusted): the run stops."""


class ManifestStatus(StrEnum):
    ABSENT = "absent"  # no manifest beside the catalog: nothing to compare
    MATCHED = "matched"  # the catalog read has the manifest's row count and SHA-256
    MISMATCH = "mismatch"  # it does not: the export is incomplete, changed, or still being written
    UNREADABLE = "unreadable"  # a manifest is there (or may be) but cannot be read


@dataclass(frozen=True, slots=True)
class CatalogManifest:
    """What the export job says it wrote: `{"rows": <products>, "sha256": "<hex of the catalog bytes>"}`
    (other keys are ignored). Rows are what the sync reads as rows: CSV records after the header, JSON
    Lines lines, array elements; blank lines are no rows."""

    rows: int
    sha256: str

    @classmethod
    def parse(cls, data: bytes) -> CatalogManifest:
        """The manifest in `data`; `ValueError` saying what is wrong."""
        try:
            document = json.loads(data)
        except ValueError:
            raise ValueError("not JSON") from None
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        rows, sha256 = document.get("rows"), document.get("sha256")
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
            raise ValueError('"rows" must be the number of rows, an integer >= 0')
        if not isinstance(sha256, str) or not _SHA256_HEX.fullmatch(sha256.strip().lower()):
            raise ValueError('"sha256" must be the 64 hex digits of the SHA-256 of the catalog bytes')
        return cls(rows, sha256.strip().lower())


@dataclass(slots=True)
class CatalogCheck:
    """What one read found about the catalog as a whole (docs/decisions.md#15), filled in by
    `CatalogSource.rows(check=...)` and final once its rows are exhausted: how many rows it held, where
    it looks cut short, and what its manifest says. `problems`: why the catalog cannot be trusted to
    take any offer off sale this run (an empty list: nothing against it)."""

    rows: int = 0
    sha256: str | None = None
    truncated: str | None = None
    manifest: ManifestStatus = ManifestStatus.ABSENT
    manifest_problem: str | None = None
    expected: CatalogManifest | None = None
    manifest_location: str | None = None
    _digest: Any = field(default=None, repr=False)

    @property
    def problems(self) -> list[str]:
        return [problem for problem in (self.truncated, self.manifest_problem) if problem]

    def expect(self, manifest: CatalogManifest | None, where: str) -> None:
        """The manifest found at `where`, beside the catalog (None: there is none)."""
        self.expected = manifest
        self.manifest_location = where if manifest is not None else None

    def unreadable_manifest(self, where: str, problem: str) -> None:
        self.manifest = ManifestStatus.UNREADABLE
        self.manifest_location = where
        self.manifest_problem = (
            f"the manifest {where} cannot be read ({problem}): nothing is taken off sale until it can "
            f"(fix or remove it; {MANIFEST_HELP})"
        )

    def cut(self, where: str, *, lines: bool = True) -> None:
        """The catalog ends where it should not (`where`: the row or place; `lines`: a format of lines,
        CSV or JSON Lines, whose exporter may simply not end its last line)."""
        if self.truncated is not None:
            return
        advice = "Have the export written again or put the previous version back"
        if lines:
            advice += (
                "; an exporter that never ends its last line with a line break (or leaves out empty "
                "trailing cells) must write them, or write a manifest"
            )
        self.truncated = (
            f"the catalog looks cut short ({where}): nothing is taken off sale. {advice} ({MANIFEST_HELP})"
        )

    def vouches_for_the_end(self) -> bool:
        """Whether a manifest vouches for every byte read (called once the last byte is read): then a
        last row with no line break after it, or with fewer cells than the header, is as written."""
        if self.expected is None or self._digest is None:
            return False
        return bool(self._digest.hexdigest() == self.expected.sha256)

    def _hashed(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        self._digest = digest = hashlib.sha256()
        for chunk in chunks:
            digest.update(chunk)
            yield chunk

    def _settle(self) -> None:
        self.sha256 = self._digest.hexdigest() if self._digest is not None else None
        expected = self.expected
        if expected is None or self.manifest is ManifestStatus.UNREADABLE:
            return
        if (self.rows, self.sha256) == (expected.rows, expected.sha256):
            self.manifest = ManifestStatus.MATCHED
            return
        self.manifest = ManifestStatus.MISMATCH
        self.manifest_problem = (
            f"the catalog does not match its manifest {self.manifest_location}: the manifest says "
            f"{expected.rows} rows, SHA-256 {expected.sha256[:12]}..., the catalog read has {self.rows} "
            f"rows, SHA-256 {(self.sha256 or '')[:12]}...: it is incomplete, was changed after the "
            f"manifest, or is still being written. Nothing is taken off sale ({MANIFEST_HELP})"
        )


@dataclass(slots=True)
class ParsedCatalog:
    rows: list[RawRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @classmethod
    def collect(cls, items: Iterable[CatalogItem]) -> ParsedCatalog:
        parsed = cls()
        for item in items:
            (parsed.errors if isinstance(item, RowError) else parsed.rows).append(item)  # type: ignore[arg-type]
        return parsed


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
        `check` is filled in with what the read found about the catalog as a whole (its manifest
        included), final once the rows are exhausted."""
        ...


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


def parse_catalog(
    data: bytes,
    catalog_format: CatalogFormat,
    sku_field: str | None = "sku",
    check: CatalogCheck | None = None,
) -> ParsedCatalog:
    """The whole catalog in memory (tests, small catalogs); `iter_catalog` streams it."""
    return ParsedCatalog.collect(iter_catalog([data], catalog_format, sku_field, check))


def iter_catalog(
    chunks: Iterable[bytes],
    catalog_format: CatalogFormat,
    sku_field: str | None = "sku",
    check: CatalogCheck | None = None,
) -> Iterator[CatalogItem]:
    """The rows of a catalog arriving as byte chunks, one at a time, in file order; `check` (see
    `CatalogCheck`) learns the row count, the SHA-256 of the bytes and where the text looks cut."""
    if catalog_format is CatalogFormat.AUTO:
        raise ValueError("resolve CatalogFormat.AUTO with detect_format() first")
    return _checked(chunks, catalog_format, sku_field, check if check is not None else CatalogCheck())


def _checked(
    chunks: Iterable[bytes], catalog_format: CatalogFormat, sku_field: str | None, check: CatalogCheck
) -> Iterator[CatalogItem]:
    text = _decode(check._hashed(chunks))
    match catalog_format:
        case CatalogFormat.JSON:
            items = _parse_json(text, sku_field, check)
        case CatalogFormat.JSONL:
            items = _parse_json_lines(text, sku_field, check)
        case _:
            items = _parse_csv(text, sku_field, check)
    for item in items:
        check.rows += 1
        yield item
    check._settle()


def _decode(chunks: Iterable[bytes]) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8-sig")()  # Excel writes a BOM
    offset = 0
    try:
        for chunk in chunks:
            text = decoder.decode(chunk)
            offset += len(chunk)
            if text:
                yield text
    except UnicodeDecodeError as exc:
        raise CatalogReadError(f"catalog is not UTF-8 text (byte {offset + exc.start})") from None
    try:
        tail = decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise CatalogReadError("catalog ends inside a UTF-8 character: cut short, or not UTF-8") from None
    if tail:
        yield tail


def _ends_a_line(line: str) -> bool:
    return line.endswith(("\n", "\r"))


def _lines(texts: Iterable[str]) -> Iterator[str]:
    """Physical lines with their endings (`\\n`, `\\r\\n` or `\\r`), as `open(newline="")` gives them."""
    pending = ""
    for text in texts:
        buffer = pending + text if pending else text
        start = 0
        for match in _LINE_END.finditer(buffer):
            if match.end() == len(buffer) and match.group() == "\r":
                break  # a "\r\n" may be split between two chunks
            yield buffer[start : match.end()]
            start = match.end()
        pending = buffer[start:]
        if len(pending) > MAX_ROW_CHARS:
            raise CatalogReadError(f"catalog has a line longer than {MAX_ROW_CHARS} characters")
    if pending:
        yield pending


# --- JSON ----------------------------------------------------------------------------------------------
def _parse_json(texts: Iterator[str], sku_field: str | None, check: CatalogCheck) -> Iterator[CatalogItem]:
    buffer = ""
    for text in texts:
        buffer += text
        if buffer.strip():
            break
    first = buffer.lstrip()[:1]
    if first == "[":
        yield from _stream_json_array(buffer, texts, sku_field, check)
        return
    document = _load_whole(buffer, texts)
    if isinstance(document, dict):
        products = next((document[key] for key in ENVELOPE_KEYS if isinstance(document.get(key), list)), None)
        if products is None:
            raise CatalogReadError(f"catalog object has no product list under {', '.join(ENVELOPE_KEYS)}")
        document = products
    if not isinstance(document, list):
        raise CatalogReadError("catalog must be a JSON array of products")
    for number, item in enumerate(document, start=1):
        yield _json_element(number, item, sku_field)


def _load_whole(buffer: str, texts: Iterator[str]) -> Any:
    parts = [buffer, *texts]
    try:
        return json.loads("".join(parts))
    except ValueError as exc:
        raise CatalogReadError(f"catalog is not valid JSON: {exc}") from None


def _stream_json_array(
    buffer: str, texts: Iterator[str], sku_field: str | None, check: CatalogCheck
) -> Iterator[CatalogItem]:
    """The elements of a top-level JSON array, decoded one at a time from a growing buffer. An array
    the text ends inside is cut short (`check.cut`): the elements read whole are rows, an element the
    text ends inside is a cut row (nothing of it is used)."""
    decoder = json.JSONDecoder()
    position = buffer.index("[") + 1
    done = False

    def more() -> bool:
        nonlocal buffer, position, done
        if done:
            return False
        chunk = next(texts, None)
        if chunk is None:
            done = True
            return False
        buffer = buffer[position:] + chunk
        position = 0
        return True

    def skip_space() -> str:
        nonlocal position
        while True:
            position = _WHITESPACE.match(buffer, position).end()  # type: ignore[union-attr]
            if position < len(buffer):
                return buffer[position]
            if not more():
                return ""

    def fail(problem: str) -> CatalogReadError:
        return CatalogReadError(f"catalog is not valid JSON: {problem} (element {number + 1})")

    number = 0
    if skip_space() == "]":
        position += 1
    else:
        while True:
            if not skip_space():
                check.cut(f"the JSON array is not closed after element {number}", lines=False)
                return
            while True:
                try:
                    item, end = decoder.raw_decode(buffer, position)
                except ValueError as exc:
                    if len(buffer) - position > MAX_ROW_CHARS:
                        raise fail(str(exc)) from None
                    if not more():  # the text ends inside this element (or is not JSON from here on)
                        where = f"the text ends inside element {number + 1} of the JSON array"
                        check.cut(where + ", or is not JSON from there on", lines=False)
                        yield RowError(number + 1, None, _CUT_ELEMENT, cut=True)
                        return
                    continue
                if end == len(buffer) and more():  # a number may go on in the next chunk
                    continue
                break
            position = end
            number += 1
            yield _json_element(number, item, sku_field)
            separator = skip_space()
            position += 1
            if separator == "]":
                break
            if not separator:
                check.cut(f"the JSON array is not closed after element {number}", lines=False)
                return
            if separator != ",":
                raise fail("expected ',' or ']' after an element")
    if skip_space():
        raise fail("extra data after the array")


def _json_element(number: int, item: Any, sku_field: str | None) -> CatalogItem:
    if isinstance(item, dict):
        return RawRow(number, item)
    reason = f"row is not an object ({type(item).__name__})"
    return _attributed(RowError(number, None, reason), _skus_in_value(item, sku_field))


def _skus_in_value(value: Any, sku_field: str | None, depth: int = 0) -> list[str]:
    """SKUs in a value that should have been a product object: a JSON string holding the object
    (double-encoded export), or a list around it."""
    if sku_field is None or depth > 3:
        return []
    if isinstance(value, dict):
        sku = _lookup_path(value, sku_field)
        return [text] if (text := _sku_text(sku)) else []
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            return _skus_in_value(json.loads(value), sku_field, depth + 1)
        except ValueError:
            return _skus_in_text(value, sku_field)
    if isinstance(value, list):
        return [sku for element in value[:100] for sku in _skus_in_value(element, sku_field, depth + 1)]
    return []


def _lookup_path(row: dict[str, Any], path: str) -> Any:
    if path in row:
        return row[path]
    current: Any = row
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current


def _sku_text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text if text and len(text) <= _MAX_CANDIDATE_CHARS else None


def _skus_in_text(text: str, sku_field: str | None) -> list[str]:
    """The values of `"<sku field>": ...` in JSON text that does not parse (a trailing comma...)."""
    if sku_field is None:
        return []
    key = re.escape(json.dumps(sku_field.rsplit(".", 1)[-1]))
    found: list[str] = []
    for match in re.finditer(key + r'\s*:\s*("(?:[^"\\\n]|\\.)*"|-?\d+)', text):
        try:
            value = json.loads(match.group(1))
        except ValueError:
            continue
        if (sku := _sku_text(value)) and sku not in found:
            found.append(sku)
    return found


def _attributed(error: RowError, skus: list[str]) -> RowError:
    distinct = list(dict.fromkeys(skus))
    if len(distinct) == 1:
        return RowError(error.row, distinct[0], error.reason)
    return RowError(error.row, None, error.reason, tuple(distinct))


# --- JSON Lines ----------------------------------------------------------------------------------------
def _parse_json_lines(
    texts: Iterator[str], sku_field: str | None, check: CatalogCheck
) -> Iterator[CatalogItem]:
    for number, line in enumerate(_lines(texts), start=1):
        if not line.strip():
            continue
        if not _ends_a_line(line) and not check.vouches_for_the_end():
            check.cut(f"line {number}, the last, has no line break after it")
            yield RowError(number, None, _CUT_ROW, cut=True)
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            reason = f"line is not valid JSON: {exc.args[0]}"
            yield _attributed(RowError(number, None, reason), _skus_in_broken_line(line, sku_field))
            continue
        if isinstance(item, dict):
            yield RawRow(number, item)
        else:
            reason = f"line is not a JSON object ({type(item).__name__})"
            yield _attributed(RowError(number, None, reason), _skus_in_value(item, sku_field))


def _skus_in_broken_line(line: str, sku_field: str | None) -> list[str]:
    """A line with one object and something after it (a trailing comma) names its SKU for certain;
    otherwise the `"sku": ...` values in its text."""
    if sku_field is None:
        return []
    try:
        item, _ = json.JSONDecoder().raw_decode(line.strip())
    except ValueError:
        return _skus_in_text(line, sku_field)
    found = _skus_in_value(item, sku_field)
    return found or _skus_in_text(line, sku_field)


# --- CSV -----------------------------------------------------------------------------------------------
class _RecordingLines:
    """The lines fed to `csv.reader`, remembering those of the record being read (for row errors)."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self.current: list[str] = []

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.current.append(line)
        return line


@dataclass(frozen=True, slots=True)
class _CsvRecord:
    start: int  # its first line
    cells: list[str] | None  # None: `csv` could not read it (`problem` says why)
    lines: list[str]  # its physical lines, with their endings
    problem: str | None = None


def _parse_csv(texts: Iterator[str], sku_field: str | None, check: CatalogCheck) -> Iterator[CatalogItem]:
    lines = _RecordingLines(_lines(texts))
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise CatalogReadError(f"catalog CSV header is unreadable: {exc}") from None
    columns = [name.strip() for name in header]
    if not any(columns):
        raise CatalogReadError("catalog CSV has an empty header row")
    if _cut_short(lines.current, None, 0, check):
        check.cut("the header row, the only one, has no line break after it")
    width = max(index for index, name in enumerate(columns) if name) + 1
    sku_column = columns.index(sku_field) if sku_field in columns else None
    records = _csv_records(reader, lines)
    record = next(records, None)
    while record is not None:
        following = next(records, None)
        if following is None and _cut_short(record.lines, record.cells, width, check):
            check.cut(f"row {record.start}, the last, is not whole")
            yield RowError(record.start, None, _CUT_ROW, cut=True)
        else:
            yield _csv_item(record, columns, sku_column)
        record = following


def _csv_records(reader: Any, lines: _RecordingLines) -> Iterator[_CsvRecord]:
    """The records after the header that hold something (blank ones are no rows)."""
    line = reader.line_num
    while True:
        start = line + 1
        lines.current = []
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield _CsvRecord(start, None, lines.current, f"unreadable CSV row: {exc}")
        else:
            if any(cell.strip() for cell in cells):
                yield _CsvRecord(start, cells, lines.current)
        line = reader.line_num


def _cut_short(lines: list[str], cells: list[str] | None, width: int, check: CatalogCheck) -> bool:
    """Whether the last record of a CSV file is cut (docs/decisions.md#15): the file ends inside a quoted
    cell, or, unless a manifest vouches for the bytes, with no line break after it, or it has fewer cells
    than the header (`SKU-29` cut to `SKU-2` is a whole-looking cell)."""
    if not lines:
        return False
    if _ends_inside_quotes("".join(lines)):
        return True
    short = cells is not None and len(cells) < width
    return (short or not _ends_a_line(lines[-1])) and not check.vouches_for_the_end()


def _ends_inside_quotes(text: str) -> bool:
    """Whether CSV text ends inside a quoted cell (`csv` reads such a record without a word at the end
    of the input). A quote opens a quoted cell only at the start of a cell, as `csv` reads it."""
    inside = False
    cell_start = True
    index, size = 0, len(text)
    while index < size:
        char = text[index]
        if inside:
            if char == '"':
                if text.startswith('"', index + 1):
                    index += 2
                    continue
                inside = False
        elif char == '"' and cell_start:
            inside = True
            cell_start = False
        else:
            cell_start = char in ",\r\n"
        index += 1
    return inside


def _csv_item(record: _CsvRecord, columns: list[str], sku_column: int | None) -> CatalogItem:
    if record.cells is None:
        raw = record.lines[0] if record.lines else ""
        error = RowError(record.start, None, record.problem or "unreadable CSV row")
        return _attributed(error, _csv_candidates(_leading_cells(raw, sku_column), sku_column, 0))
    cells = record.cells
    if len(cells) > len(columns):
        extra = len(cells) - len(columns)
        reason = f"row has {len(cells)} cells but the header has {len(columns)} columns"
        return _attributed(RowError(record.start, None, reason), _csv_candidates(cells, sku_column, extra))
    return RawRow(record.start, {name: cell for name, cell in zip(columns, cells, strict=False) if name})


def _csv_candidates(cells: list[str], sku_column: int | None, extra: int) -> list[str]:
    """The cells that may be the SKU of a row with `extra` cells too many: an unquoted comma before the
    SKU column shifts it right by one cell per comma, one after it leaves it in place (so the first
    column's cell is the SKU for certain)."""
    if sku_column is None:
        return []
    shift = extra if sku_column > 0 else 0
    found = (_sku_text(cell) for cell in cells[sku_column : sku_column + shift + 1])
    return [sku for sku in found if sku]


def _leading_cells(line: str, last: int | None) -> list[str]:
    """The cells of a CSV line up to index `last` (quotes honoured, no size limit, each cut to a
    SKU's plausible length): enough to read the SKU of a row whose long cell made `csv` give up."""
    if last is None:
        return []
    cells: list[str] = []
    position, size = 0, len(line)
    while len(cells) <= last and position <= size:
        if line.startswith('"', position):
            end = position + 1
            parts: list[str] = []
            while end < size:
                quote = line.find('"', end)
                if quote < 0:
                    parts.append(line[end:])
                    end = size
                    break
                parts.append(line[end:quote])
                if line.startswith('"', quote + 1):
                    parts.append('"')
                    end = quote + 2
                    continue
                end = quote + 1
                break
            cell = "".join(parts)
            comma = line.find(",", end)
        else:
            comma = line.find(",", position)
            cell = line[position : comma if comma >= 0 else size].rstrip("\r\n")
        cells.append(cell[: _MAX_CANDIDATE_CHARS + 1])
        if comma < 0:
            break
        position = comma + 1
    return cells


def _chunks_of(stream: io.BufferedIOBase | Any, max_bytes: int, where: str) -> Iterator[bytes]:
    """Chunks of a binary stream (`read(n)`), at most `max_bytes` in all."""
    return _limited(iter(lambda: bytes(stream.read(CHUNK_BYTES)), b""), max_bytes, where)


# ---------------------------------------------------------------------------------------------------
# Adapters
# ---------------------------------------------------------------------------------------------------
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
        max_bytes: int = MAX_CATALOG_BYTES,
    ) -> None:
        parse_s3_uri(uri)
        self._uri = uri
        self._format = detect_format(uri) if catalog_format is CatalogFormat.AUTO else catalog_format
        self._s3 = s3_client
        self._max_bytes = max_bytes

    @property
    def description(self) -> str:
        return self._uri

    def read(self) -> ParsedCatalog:
        return ParsedCatalog.collect(self.rows())

    def rows(
        self, sku_field: str | None = "sku", *, check: CatalogCheck | None = None
    ) -> Iterator[CatalogItem]:
        from botocore.exceptions import BotoCoreError, ClientError

        s3 = self._s3 if self._s3 is not None else aws.clients().s3
        bucket, key = parse_s3_uri(self._uri)
        check = check if check is not None else CatalogCheck()
        manifest = self._uri + MANIFEST_SUFFIX

        def fetch_manifest() -> bytes | None:
            try:
                return _read_s3_object(manifest, s3, max_bytes=MAX_MANIFEST_BYTES)
            except S3ReadError as error:
                if error.problem == "NoSuchKey":
                    return None
                raise _ManifestUnreadable(error.problem) from None

        _expect_manifest(check, manifest, fetch_manifest)
        try:
            response = s3.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "ClientError")
            raise CatalogReadError(f"cannot read {self._uri}: {code}") from None
        except BotoCoreError as exc:
            raise CatalogReadError(f"cannot read {self._uri}: {type(exc).__name__}") from None
        size = response.get("ContentLength", 0)
        if size > self._max_bytes:
            raise CatalogReadError(
                f"cannot read {self._uri}: {size} bytes, over the {self._max_bytes} byte limit"
            )
        body = response["Body"]
        try:
            chunks = _chunks_of(body, self._max_bytes, self._uri)
            yield from iter_catalog(chunks, self._format, sku_field, check)
        except (ClientError, BotoCoreError, OSError) as exc:  # the connection dropped mid-object
            raise CatalogReadError(f"cannot read {self._uri}: {type(exc).__name__}") from None
        finally:
            body.close()


class FileCatalogSource:
    def __init__(self, path: str | Path, catalog_format: CatalogFormat = CatalogFormat.AUTO) -> None:
        self._path = Path(path)
        auto = catalog_format is CatalogFormat.AUTO
        self._format = detect_format(self._path.name) if auto else catalog_format

    @property
    def description(self) -> str:
        return str(self._path)

    def read(self) -> ParsedCatalog:
        return ParsedCatalog.collect(self.rows())

    def rows(
        self, sku_field: str | None = "sku", *, check: CatalogCheck | None = None
    ) -> Iterator[CatalogItem]:
        check = check if check is not None else CatalogCheck()
        manifest = self._path.with_name(self._path.name + MANIFEST_SUFFIX)

        def fetch_manifest() -> bytes | None:
            try:
                with manifest.open("rb") as handle:
                    return bytes(handle.read(MAX_MANIFEST_BYTES + 1))
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise _ManifestUnreadable(exc.strerror or type(exc).__name__) from None

        _expect_manifest(check, str(manifest), fetch_manifest)
        try:
            handle = self._path.open("rb")
        except OSError as exc:
            raise CatalogReadError(f"cannot read {self._path}: {exc.strerror}") from None
        with handle:
            chunks = _chunks_of(handle, MAX_CATALOG_BYTES, str(self._path))
            yield from iter_catalog(chunks, self._format, sku_field, check)


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
        try:
            self._url = http_url(url, allow_query=True)
        except ValueError as error:
            raise ValueError(f"the catalog URL {error}") from None
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
        return ParsedCatalog.collect(self.rows())

    @property
    def manifest_url(self) -> str:
        """The catalog URL with `.manifest.json` added to its path (its query kept)."""
        parts = urlsplit(self._url)
        return parts._replace(path=parts.path + MANIFEST_SUFFIX).geturl()

    def rows(
        self, sku_field: str | None = "sku", *, check: CatalogCheck | None = None
    ) -> Iterator[CatalogItem]:
        headers = {"accept": "application/json, text/csv, application/x-ndjson"}
        if self._api_key is not None:
            key = self._api_key()
            headers[self._header] = f"Bearer {key}" if self._header.lower() == "authorization" else key
        check = check if check is not None else CatalogCheck()
        try:
            with httpx.Client(transport=self._transport, timeout=self._timeout) as client:
                _expect_manifest(
                    check, self.description + MANIFEST_SUFFIX, lambda: self._fetch_manifest(client, headers)
                )
                yield from self._catalog(client, headers, sku_field, check)
        except httpx.HTTPError as exc:
            raise CatalogReadError(f"cannot read {self.description}: {type(exc).__name__}") from None

    def _fetch_manifest(self, client: httpx.Client, headers: dict[str, str]) -> bytes | None:
        """The manifest's bytes; None when the CRM answers 404 or 410 (it has none)."""
        try:
            with client.stream("GET", self.manifest_url, headers=headers) as response:
                if response.status_code in (404, 410):
                    return None
                if response.status_code != 200:
                    raise _ManifestUnreadable(f"HTTP {response.status_code}")
                data = b""
                for chunk in response.iter_bytes(MAX_MANIFEST_BYTES):
                    data += chunk
                    if len(data) > MAX_MANIFEST_BYTES:
                        break
                return data
        except httpx.HTTPError as exc:
            raise _ManifestUnreadable(type(exc).__name__) from None

    def _catalog(
        self, client: httpx.Client, headers: dict[str, str], sku_field: str | None, check: CatalogCheck
    ) -> Iterator[CatalogItem]:
        with client.stream("GET", self._url, headers=headers) as response:
            if response.status_code != 200:
                raise CatalogReadError(f"cannot read {self.description}: HTTP {response.status_code}")
            catalog_format = self._format
            if catalog_format is CatalogFormat.AUTO:
                catalog_format = detect_format(self._url, response.headers.get("content-type"))
            chunks = _limited(response.iter_bytes(CHUNK_BYTES), self._max_bytes, self.description)
            yield from iter_catalog(chunks, catalog_format, sku_field, check)


class _ManifestUnreadable(Exception):
    """A manifest may be there but cannot be read (no access, a server error, too big)."""


def _expect_manifest(check: CatalogCheck, where: str, fetch: Callable[[], bytes | None]) -> None:
    """Read the manifest beside the catalog (`fetch`: its bytes, None when there is none) into `check`."""
    try:
        data = fetch()
    except _ManifestUnreadable as error:
        check.unreadable_manifest(where, str(error))
        return
    if data is None:
        check.expect(None, where)
        return
    if len(data) > MAX_MANIFEST_BYTES:
        check.unreadable_manifest(where, f"over {MAX_MANIFEST_BYTES} bytes")
        return
    try:
        check.expect(CatalogManifest.parse(data), where)
    except ValueError as error:
        check.unreadable_manifest(where, str(error))


def _limited(chunks: Iterable[bytes], max_bytes: int, where: str) -> Iterator[bytes]:
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            raise CatalogReadError(f"{where} is over the {max_bytes} byte limit")
        yield chunk


# ---------------------------------------------------------------------------------------------------
# Choosing a source (the sync's runtime and the CLI alike)
# ---------------------------------------------------------------------------------------------------
def open_catalog_source(
    location: str,
    catalog_format: CatalogFormat = CatalogFormat.AUTO,
    *,
    s3_client: S3Client | None = None,
    api_key: Callable[[], str] | None = None,
    api_key_header: str = "x-api-key",
    allow_files: bool = False,
) -> CatalogSource:
    """The source for `location`, by its scheme: `s3://` (S3), `https://` (the provider's CRM; `http://`
    only for a local host), else a local file when `allow_files` (the CLI; never in Lambda)."""
    if location.startswith("s3://"):
        return S3CatalogSource(location, catalog_format, s3_client=s3_client)
    if location.startswith(("https://", "http://")):
        return HttpsCatalogSource(location, catalog_format, api_key=api_key, api_key_header=api_key_header)
    if allow_files:
        return FileCatalogSource(location, catalog_format)
    raise ValueError("the catalog location must be an s3:// or https:// URI")
