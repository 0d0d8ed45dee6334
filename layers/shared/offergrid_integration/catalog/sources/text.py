"""What the three formats share; an unreadable row names its SKU whenever the raw row still shows it
(docs/decisions.md#13), unless cut (#15).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any, Final

from offergrid_integration.catalog.mapping import RawRow, RowError
from offergrid_integration.catalog.sources.check import CatalogReadError
from offergrid_integration.catalog.values import lookup

type CatalogItem = RawRow | RowError

# One physical line (CSV, JSON Lines) or one JSON array element longer than this is not a catalog row.
MAX_ROW_CHARS: Final = 16 * 1024 * 1024
MAX_CANDIDATE_CHARS: Final = 1024  # a recovered SKU longer than this is no SKU
CUT_ROW: Final = "the catalog ends inside this row (cut short): nothing of it is read, not even its SKU"
_LINE_END: Final = re.compile(r"\r\n|\r|\n")


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
