"""List responses in every shape a client must cope with (docs/decisions.md#5).

- "array": a bare JSON array holding everything (the shape the docs imply).
- "envelope-cursor": `{"data": [...], "nextCursor": "..." | null}`, next page with `?cursor=`.
- "envelope-page": `{"items": [...], "page": n, "totalPages": m}`, next page with `?page=`.
- "meta-links": `{"data": [...], "meta": {"page", "totalPages", "total", "pageSize"},
  "links": {"self", "next": url | null}}`; the next link uses `?page[number]=` (JSON:API style);
  `?page=` is read too.
- "offset": `{"data": [...], "total", "limit", "offset"}`, next page with `?offset=` (`?limit=`
  up to the page size is honoured).
- "link-header": a bare array, plus an RFC 8288 `Link: <...?after=...>; rel="next"` header while
  there is more.

Each paged style continues with its own query parameter (`CONTINUATION_PARAMS`), so a fake that
uses several styles in turn (`Answers.list_styles`) knows which one a next-page request belongs to.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any, Final
from urllib.parse import urlencode

LIST_STYLES: Final = ("array", "envelope-cursor", "envelope-page", "meta-links", "offset", "link-header")
CONTINUATION_PARAMS: Final = {
    "envelope-cursor": ("cursor",),
    "meta-links": ("page[number]",),
    "envelope-page": ("page",),
    "offset": ("offset",),
    "link-header": ("after",),
}
PAGING_PARAMS: Final = ("cursor", "page", "page[number]", "page[size]", "offset", "limit", "after")


class PageError(ValueError):
    """A bad `cursor`, `page`, `offset` or `after` query parameter (answered with 400)."""


def check_list_config(style: str, page_size: int | None) -> None:
    if style not in LIST_STYLES:
        raise ValueError(f"list_style must be one of {', '.join(LIST_STYLES)}")
    if page_size is not None and page_size < 1:
        raise ValueError("page_size must be positive or None")
    if style == "array" and page_size is not None:
        raise ValueError("a bare array cannot be paged: use an envelope list_style with page_size")


def continued_style(query: dict[str, list[str]], styles: tuple[str, ...]) -> str | None:
    """The style of `styles` whose next-page parameter `query` carries; None for a first page."""
    for style, params in CONTINUATION_PARAMS.items():
        if style in styles and any(param in query for param in params):
            return style
    if "page" in query and "meta-links" in styles:
        return "meta-links"
    return None


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
    items: list[dict[str, Any]],
    style: str,
    page_size: int | None,
    query: dict[str, list[str]],
    path: str = "/",
) -> tuple[Any, dict[str, str]]:
    """The body and headers of one page of `items` in `style`, for a request of `path?query`."""
    if style == "array":
        return items, {}
    size = page_size or max(len(items), 1)
    if style == "envelope-cursor":
        offset = _cursor(query, "cursor")
        end = offset + size
        return {"data": items[offset:end], "nextCursor": encode_cursor(end) if end < len(items) else None}, {}
    if style == "link-header":
        offset = _cursor(query, "after")
        end = offset + size
        headers = {}
        if end < len(items):
            headers["Link"] = f'<{_url(path, query, {"after": encode_cursor(end)})}>; rel="next"'
        return items[offset:end], headers
    if style == "offset":
        offset = _number(query, "offset", 0, minimum=0)
        limit = min(_number(query, "limit", size, minimum=1), size)
        return {
            "data": items[offset : offset + limit],
            "total": len(items),
            "limit": limit,
            "offset": offset,
        }, {}
    total_pages = max(1, math.ceil(len(items) / size))
    if style == "meta-links":
        page = _number(query, "page[number]", _number(query, "page", 1, minimum=1), minimum=1)
        start = (page - 1) * size
        return {
            "data": items[start : start + size],
            "meta": {"page": page, "totalPages": total_pages, "total": len(items), "pageSize": size},
            "links": {
                "self": _url(path, query, {"page[number]": str(page), "page[size]": str(size)}),
                "next": (
                    _url(path, query, {"page[number]": str(page + 1), "page[size]": str(size)})
                    if page < total_pages
                    else None
                ),
            },
        }, {}
    page = _number(query, "page", 1, minimum=1)
    start = (page - 1) * size
    return {"items": items[start : start + size], "page": page, "totalPages": total_pages}, {}


def _cursor(query: dict[str, list[str]], name: str) -> int:
    values = query.get(name, [])
    return decode_cursor(values[-1]) if values and values[-1] else 0


def _number(query: dict[str, list[str]], name: str, default: int, *, minimum: int) -> int:
    values = query.get(name, [])
    if not values:
        return default
    try:
        value = int(values[-1])
    except ValueError as error:
        raise PageError(f"{name} must be an integer number") from error
    if value < minimum:
        raise PageError(f"{name} must not be less than {minimum}")
    return value


def _url(path: str, query: dict[str, list[str]], paging: dict[str, str]) -> str:
    """`path` with the request's filters (paging parameters dropped) and the given paging ones."""
    pairs = [(key, value) for key, values in query.items() if key not in PAGING_PARAMS for value in values]
    return f"{path}?{urlencode([*pairs, *paging.items()])}"
