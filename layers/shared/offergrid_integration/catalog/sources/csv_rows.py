"""A CSV catalog with a header row (docs/decisions.md#8); row N is the record's first line.

Cut short (docs/decisions.md#15) when the file ends inside quotes or, without a manifest, with no final
line break or too few cells. Too many cells (an unquoted comma) name every SKU candidate.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from offergrid_integration.catalog.mapping import RawRow, RowError
from offergrid_integration.catalog.sources.check import (
    CUT_ROW,
    MAX_CANDIDATE_CHARS,
    CatalogCheck,
    CatalogItem,
    CatalogReadError,
    attributed,
    ends_a_line,
    sku_text,
)
from offergrid_integration.catalog.sources.check import lines as physical_lines


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


def parse_csv(texts: Iterator[str], sku_field: str | None, check: CatalogCheck) -> Iterator[CatalogItem]:
    recording = _RecordingLines(physical_lines(texts))
    reader = csv.reader(recording)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise CatalogReadError(f"catalog CSV header is unreadable: {exc}") from None
    columns = [name.strip() for name in header]
    if not any(columns):
        raise CatalogReadError("catalog CSV has an empty header row")
    if _cut_short(recording.current, None, 0, check):
        check.cut("the header row, the only one, has no line break after it")
    width = max(index for index, name in enumerate(columns) if name) + 1
    sku_column = columns.index(sku_field) if sku_field in columns else None
    records = _csv_records(reader, recording)
    record = next(records, None)
    while record is not None:
        following = next(records, None)
        if following is None and _cut_short(record.lines, record.cells, width, check):
            check.cut(f"row {record.start}, the last, is not whole")
            yield RowError(record.start, None, CUT_ROW, cut=True)
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
    """Whether the last record is cut short (the rule in the module docstring)."""
    if not lines:
        return False
    if _ends_inside_quotes("".join(lines)):
        return True
    short = cells is not None and len(cells) < width
    return (short or not ends_a_line(lines[-1])) and not check.vouches_for_the_end()


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
        return attributed(error, _csv_candidates(_leading_cells(raw, sku_column), sku_column, 0))
    cells = record.cells
    if len(cells) > len(columns):
        extra = len(cells) - len(columns)
        reason = f"row has {len(cells)} cells but the header has {len(columns)} columns"
        return attributed(RowError(record.start, None, reason), _csv_candidates(cells, sku_column, extra))
    return RawRow(record.start, {name: cell for name, cell in zip(columns, cells, strict=False) if name})


def _csv_candidates(cells: list[str], sku_column: int | None, extra: int) -> list[str]:
    """The cells that may be the SKU: a comma before the SKU column shifts it right, one after leaves it."""
    if sku_column is None:
        return []
    shift = extra if sku_column > 0 else 0
    found = (sku_text(cell) for cell in cells[sku_column : sku_column + shift + 1])
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
        cells.append(cell[: MAX_CANDIDATE_CHARS + 1])
        if comma < 0:
            break
        position = comma + 1
    return cells
