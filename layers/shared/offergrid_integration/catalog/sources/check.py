"""What every source and format shares: whether a catalog read is whole (docs/decisions.md#15: where it
looks cut short, its manifest, docs/runbooks/offer-sync.md#catalog-manifest), its text, and the SKU an
unreadable row still shows (docs/decisions.md#13; a cut row shows none, #15).
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from offergrid_integration.catalog.mapping import RawRow, RowError
from offergrid_integration.catalog.values import lookup

type CatalogItem = RawRow | RowError

MANIFEST_SUFFIX: Final = ".manifest.json"
MAX_MANIFEST_BYTES: Final = 64 * 1024
MANIFEST_HELP: Final = "docs/runbooks/offer-sync.md#catalog-manifest"
_SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")
# One physical line (CSV, JSON Lines) or one JSON array element longer than this is not a catalog row.
MAX_ROW_CHARS: Final = 16 * 1024 * 1024
MAX_CANDIDATE_CHARS: Final = 1024  # a recovered SKU longer than this is no SKU
CUT_ROW: Final = "the catalog ends inside this row (cut short): nothing of it is read, not even its SKU"
_LINE_END: Final = re.compile(r"\r\n|\r|\n")


class CatalogReadError(Exception):
    """The catalog cannot be read at all (no row can be trusted): the run stops before planning."""


class ManifestUnreadable(Exception):
    """A manifest may be there but cannot be read (no access, a server error, too big)."""


class ManifestStatus(StrEnum):
    ABSENT = "absent"
    MATCHED = "matched"
    MISMATCH = "mismatch"  # incomplete, changed, or still being written
    UNREADABLE = "unreadable"


@dataclass(frozen=True, slots=True)
class CatalogManifest:
    """`{"rows": <products>, "sha256": "<hex of the catalog bytes>"}` (other keys ignored). Rows are
    what the sync reads as rows: CSV records after the header, JSON Lines lines, array elements."""

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
    """What one read found about the catalog as a whole, final once its rows are exhausted.
    `problems`: why it cannot be trusted to take any offer off sale this run (empty: nothing)."""

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

    def read_manifest(self, where: str, fetch: Callable[[], bytes | None]) -> None:
        """Read the manifest beside the catalog (`fetch`: its bytes, None when there is none)."""
        try:
            data = fetch()
            if data is None:
                return
            if len(data) > MAX_MANIFEST_BYTES:
                raise ManifestUnreadable(f"over {MAX_MANIFEST_BYTES} bytes")
            self.expected = CatalogManifest.parse(data)
            self.manifest_location = where
        except (ManifestUnreadable, ValueError) as error:
            self.manifest = ManifestStatus.UNREADABLE
            self.manifest_location = where
            self.manifest_problem = (
                f"the manifest {where} cannot be read ({error}): nothing is taken off sale until it can "
                f"(fix or remove it; {MANIFEST_HELP})"
            )

    def cut(self, where: str, *, lines: bool = True) -> None:
        """The catalog ends where it should not; `lines`: a format of lines (CSV, JSON Lines), whose
        exporter may simply not end its last line."""
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
        """Whether a manifest vouches for every byte read (asked once the last byte is read)."""
        if self.expected is None or self._digest is None:
            return False
        return bool(self._digest.hexdigest() == self.expected.sha256)

    def hashed(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        self._digest = digest = hashlib.sha256()
        for chunk in chunks:
            digest.update(chunk)
            yield chunk

    def settle(self) -> None:
        """Compare what was read with the manifest (the rows are exhausted)."""
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


def decode(chunks: Iterable[bytes]) -> Iterator[str]:
    """UTF-8 text (a BOM, as Excel writes, dropped); `CatalogReadError` naming the first bad byte."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
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


def ends_a_line(line: str) -> bool:
    return line.endswith(("\n", "\r"))


def lines(texts: Iterable[str]) -> Iterator[str]:
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


def sku_text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text if text and len(text) <= MAX_CANDIDATE_CHARS else None


def skus_in_value(value: Any, sku_field: str | None, depth: int = 0) -> list[str]:
    """SKUs in a value that should have been a product object: a JSON string holding the object
    (a double-encoded export), or a list around it."""
    if sku_field is None or depth > 3:
        return []
    if isinstance(value, dict):
        return [text] if (text := sku_text(lookup(value, sku_field))) else []
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            return skus_in_value(json.loads(value), sku_field, depth + 1)
        except ValueError:
            return skus_in_text(value, sku_field)
    if isinstance(value, list):
        return [sku for element in value[:100] for sku in skus_in_value(element, sku_field, depth + 1)]
    return []


def skus_in_text(text: str, sku_field: str | None) -> list[str]:
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
        if (sku := sku_text(value)) and sku not in found:
            found.append(sku)
    return found


def attributed(error: RowError, skus: list[str]) -> RowError:
    """`error` naming its SKU: for certain when one value may be it, as candidates when several may."""
    distinct = list(dict.fromkeys(skus))
    if len(distinct) == 1:
        return RowError(error.row, distinct[0], error.reason)
    return RowError(error.row, None, error.reason, tuple(distinct))
