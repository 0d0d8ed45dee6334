"""A JSON catalog: a top-level array (streamed) or an object holding it (read whole). The element the text
ends inside is a cut row (docs/decisions.md#15).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, Final

from offergrid_integration.catalog.mapping import RawRow, RowError
from offergrid_integration.catalog.sources.check import (
    MAX_ROW_CHARS,
    CatalogCheck,
    CatalogItem,
    CatalogReadError,
    attributed,
    skus_in_value,
)

ENVELOPE_KEYS: Final = ("products", "items", "offers", "data")
_CUT_ELEMENT: Final = (
    "the catalog ends inside this element (cut short), or is not JSON from here on: nothing of it or "
    "after it is read, not even its SKU"
)
_WHITESPACE: Final = re.compile(r"[ \t\r\n]*")


def parse_json(texts: Iterator[str], sku_field: str | None, check: CatalogCheck) -> Iterator[CatalogItem]:
    buffer = ""
    for text in texts:
        buffer += text
        if buffer.strip():
            break
    if buffer.lstrip()[:1] == "[":
        yield from _stream_array(buffer, texts, sku_field, check)
        return
    try:
        document = json.loads("".join([buffer, *texts]))
    except ValueError as exc:
        raise CatalogReadError(f"catalog is not valid JSON: {exc}") from None
    if isinstance(document, dict):
        products = next((document[key] for key in ENVELOPE_KEYS if isinstance(document.get(key), list)), None)
        if products is None:
            raise CatalogReadError(f"catalog object has no product list under {', '.join(ENVELOPE_KEYS)}")
        document = products
    if not isinstance(document, list):
        raise CatalogReadError("catalog must be a JSON array of products")
    for number, item in enumerate(document, start=1):
        yield json_element(number, item, sku_field)


def json_element(number: int, item: Any, sku_field: str | None) -> CatalogItem:
    if isinstance(item, dict):
        return RawRow(number, item)
    reason = f"row is not an object ({type(item).__name__})"
    return attributed(RowError(number, None, reason), skus_in_value(item, sku_field))


def _stream_array(
    buffer: str, texts: Iterator[str], sku_field: str | None, check: CatalogCheck
) -> Iterator[CatalogItem]:
    """The elements of a top-level array, decoded one at a time from a growing buffer."""
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
            yield json_element(number, item, sku_field)
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
