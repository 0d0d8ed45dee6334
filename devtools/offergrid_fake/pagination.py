"""List responses in the shapes a client must cope with (docs/decisions.md#5).

- "array": a bare JSON array holding everything (the shape the docs imply).
- "envelope-cursor": `{"data": [...], "nextCursor": "..." | null}`, next page with `?cursor=`.
- "envelope-page": `{"items": [...], "page": n, "totalPages": m}`, next page with `?page=`.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any, Final, Literal

ListStyle = Literal["array", "envelope-cursor", "envelope-page"]
LIST_STYLES: Final = ("array", "envelope-cursor", "envelope-page")


class PageError(ValueError):
    """A bad `cursor` or `page` query parameter (answered with 400)."""


def check_list_config(style: str, page_size: int | None) -> None:
    if style not in LIST_STYLES:
        raise ValueError(f"list_style must be one of {', '.join(LIST_STYLES)}")
    if page_size is not None and page_size < 1:
        raise ValueError("page_size must be positive or None")
    if style == "array" and page_size is not None:
        raise ValueError("a bare array cannot be paged: use an envelope list_style with page_size")


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        label, _, number = text.partition(":")
        offset = int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise PageError("cursor is invalid") from error
    if label != "offset" or offset < 0:
        raise PageError("cursor is invalid")
    return offset


def paginate(
    items: list[dict[str, Any]], style: str, page_size: int | None, query: dict[str, list[str]]
) -> Any:
    if style == "array":
        return items
    size = page_size or max(len(items), 1)
    if style == "envelope-cursor":
        cursors = query.get("cursor", [])
        offset = decode_cursor(cursors[-1]) if cursors and cursors[-1] else 0
        end = offset + size
        return {"data": items[offset:end], "nextCursor": encode_cursor(end) if end < len(items) else None}
    pages = query.get("page", [])
    try:
        page = int(pages[-1]) if pages else 1
    except ValueError as error:
        raise PageError("page must be an integer number") from error
    if page < 1:
        raise PageError("page must not be less than 1")
    start = (page - 1) * size
    return {
        "items": items[start : start + size],
        "page": page,
        "totalPages": max(1, math.ceil(len(items) / size)),
    }
