"""A JSON Lines catalog; a last line without a line break is cut short (docs/decisions.md#15) unless a
manifest vouches for the bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from offergrid_integration.catalog.mapping import RawRow, RowError
from offergrid_integration.catalog.sources.check import (
    CUT_ROW,
    CatalogCheck,
    CatalogItem,
    attributed,
    ends_a_line,
    lines,
    skus_in_text,
    skus_in_value,
)


def parse_json_lines(
    texts: Iterator[str], sku_field: str | None, check: CatalogCheck
) -> Iterator[CatalogItem]:
    for number, line in enumerate(lines(texts), start=1):
        if not line.strip():
            continue
        if not ends_a_line(line) and not check.vouches_for_the_end():
            check.cut(f"line {number}, the last, has no line break after it")
            yield RowError(number, None, CUT_ROW, cut=True)
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            reason = f"line is not valid JSON: {exc.args[0]}"
            yield attributed(RowError(number, None, reason), _skus_in_broken_line(line, sku_field))
            continue
        if isinstance(item, dict):
            yield RawRow(number, item)
        else:
            reason = f"line is not a JSON object ({type(item).__name__})"
            yield attributed(RowError(number, None, reason), skus_in_value(item, sku_field))


def _skus_in_broken_line(line: str, sku_field: str | None) -> list[str]:
    """A line with one object and something after it (a trailing comma) names its SKU for certain;
    otherwise the `"sku": ...` values in its text."""
    if sku_field is None:
        return []
    try:
        item, _ = json.JSONDecoder().raw_decode(line.strip())
    except ValueError:
        return skus_in_text(line, sku_field)
    return skus_in_value(item, sku_field) or skus_in_text(line, sku_field)
