"""List responses in every shape a client must cope with (docs/decisions.md#5 and #18).

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
- "meta-pagination": `{"data": [...], "meta": {"pagination": {"total", "count", "per_page",
  "current_page", "total_pages", "links": {"next"?, "previous"?}}}}` (Fractal, Laravel); `links` is
  `[]` when there is neither (PHP's empty array). Next page with `?page=&per_page=`.
- "jsonapi-page": `{"data": [...], "meta": {"page": {"number", "size", "total"}}}` and nothing else:
  the client builds `?page[number]=&page[size]=` itself (`total` counts elements, not pages).
- "has-more": `{"object": "list", "data": [...], "has_more": bool, "url"}` (Stripe): the next page
  starts after the id given in `?starting_after=`; a `?page=` is ignored, as such a server does.

Misbehaviours (`LIST_MISBEHAVIOURS`, the `Answers.list_misbehaviour` knob), for the tests of a client
that must end every listing; none applies to a bare array, which holds everything at once:
- "ignores-paging": every request is answered with the first page, envelope and all, while it says
  there is more (a server that drops the query).
- "repeats-page": a next page is answered with the elements of the page before it, under the
  envelope of the page asked for (an off-by-one in the server's query: the pointers advance, the
  elements do not).
- "more-without-a-way": the first page says how many elements there are (`total`) and gives no way
  to the next page.

Each paged style continues with its own query parameters (`CONTINUATIONS`); where two styles share
one (`page`, `page[number]`), the caller names the style of the listing the request belongs to
(the fake remembers which style answered the first page of each listing).
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

LIST_STYLES: Final = (
    "array",
    "envelope-cursor",
    "envelope-page",
    "meta-links",
    "offset",
    "link-header",
    "meta-pagination",
    "jsonapi-page",
    "has-more",
)
LIST_MISBEHAVIOURS: Final = ("ignores-paging", "repeats-page", "more-without-a-way")
# (style, a query parameter that marks a next page of it), first match first.
CONTINUATIONS: Final = (
    ("envelope-cursor", "cursor"),
    ("link-header", "after"),
    ("offset", "offset"),
    ("has-more", "starting_after"),
    ("meta-links", "page[number]"),
    ("jsonapi-page", "page[number]"),
    ("envelope-page", "page"),
    ("meta-pagination", "page"),
    ("meta-links", "page"),
)
PAGING_PARAMS: Final = (
    "cursor",
    "page",
    "page[number]",
    "page[size]",
    "per_page",
    "offset",
    "limit",
    "after",
    "starting_after",
)

# Styles that keep their paging fields in `meta`: their "more without a way" says its total there too.
_META_STYLES: Final = ("meta-links", "meta-pagination", "jsonapi-page")


class PageError(ValueError):
    """A bad `cursor`, `page`, `offset`, `after` or `starting_after` query parameter (answered 400)."""


def check_list_config(style: str, page_size: int | None) -> None:
    if style not in LIST_STYLES:
        raise ValueError(f"list_style must be one of {', '.join(LIST_STYLES)}")
    if page_size is not None and page_size < 1:
        raise ValueError("page_size must be positive or None")
    if style == "array" and page_size is not None:
        raise ValueError("a bare array cannot be paged: use an envelope list_style with page_size")


def check_misbehaviour(misbehaviour: str | None) -> None:
    if misbehaviour is not None and misbehaviour not in LIST_MISBEHAVIOURS:
        raise ValueError(f"list_misbehaviour must be None or one of {', '.join(LIST_MISBEHAVIOURS)}")


def continued_style(
    query: dict[str, list[str]], styles: tuple[str, ...], listing_style: str | None = None
) -> str | None:
    """The style of `styles` whose next-page parameter `query` carries; None for a first page.

    A parameter only one style reads (`cursor`, `after`, `offset`, `starting_after`) names it; one
    that several of `styles` read (`page`, `page[number]`) names `listing_style` (the style that
    answered this listing's first page) if it is one of them, else the first."""
    candidates = [(style, param) for style, param in CONTINUATIONS if style in styles and param in query]
    if not candidates:
        return None
    param = candidates[0][1]
    sharing = [style for style, other in candidates if other == param]
    return listing_style if listing_style in sharing else sharing[0]


def listing_key(path: str, query: dict[str, list[str]]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """What names one listing: its path and its filters (the query without paging parameters)."""
    filters = sorted(
        (key, value) for key, values in query.items() if key not in PAGING_PARAMS for value in values
    )
    return path, tuple(filters)


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


@dataclass(frozen=True)
class _Window:
    """Where a request asks a page to start (an element index) and how many elements it holds."""

    start: int
    size: int


def paginate(
    items: list[dict[str, Any]],
    style: str,
    page_size: int | None,
    query: dict[str, list[str]],
    path: str = "/",
    misbehaviour: str | None = None,
) -> tuple[Any, dict[str, str]]:
    """The body and headers of one page of `items` in `style`, for a request of `path?query`,
    misbehaving as `misbehaviour` says (see the module docstring)."""
    if style == "array":
        return items, {}
    window = _requested(items, style, page_size or max(len(items), 1), query)
    elements = items[window.start : window.start + window.size]
    if misbehaviour == "more-without-a-way" and len(items) > window.size:
        first = items[: window.size]
        if style in _META_STYLES:
            return {"data": first, "meta": {"total": len(items)}}, {}
        return {"data": first, "total": len(items)}, {}
    if misbehaviour == "ignores-paging":
        window = _Window(0, window.size)
        elements = items[: window.size]
    elif misbehaviour == "repeats-page" and window.start > 0:
        before = max(0, window.start - window.size)
        elements = items[before : before + window.size]
    return _render(items, style, window, elements, query, path)


def _requested(items: list[dict[str, Any]], style: str, size: int, query: dict[str, list[str]]) -> _Window:
    """The window a request of `style` asks for; the page size asked for is honoured up to `size`."""
    match style:
        case "envelope-cursor":
            return _Window(_cursor(query, "cursor"), size)
        case "link-header":
            return _Window(_cursor(query, "after"), size)
        case "offset":
            return _Window(
                _number(query, "offset", 0, minimum=0), min(_number(query, "limit", size, minimum=1), size)
            )
        case "has-more":
            return _Window(_after_id(items, query), min(_number(query, "limit", size, minimum=1), size))
        case "meta-links":
            page = _number(query, "page[number]", _number(query, "page", 1, minimum=1), minimum=1)
            return _Window((page - 1) * size, size)
        case "jsonapi-page":
            asked = min(_number(query, "page[size]", size, minimum=1), size)
            return _Window((_number(query, "page[number]", 1, minimum=1) - 1) * asked, asked)
        case "meta-pagination":
            asked = min(_number(query, "per_page", size, minimum=1), size)
            return _Window((_number(query, "page", 1, minimum=1) - 1) * asked, asked)
        case _:  # envelope-page
            return _Window((_number(query, "page", 1, minimum=1) - 1) * size, size)


def _render(
    items: list[dict[str, Any]],
    style: str,
    window: _Window,
    elements: list[dict[str, Any]],
    query: dict[str, list[str]],
    path: str,
) -> tuple[Any, dict[str, str]]:
    """One page in `style`: its envelope describes `window`, its elements are `elements`."""
    total = len(items)
    start, size = window.start, window.size
    end = start + size
    more = end < total
    page = start // size + 1
    total_pages = max(1, math.ceil(total / size))
    match style:
        case "envelope-cursor":
            return {"data": elements, "nextCursor": encode_cursor(end) if more else None}, {}
        case "link-header":
            headers = (
                {"Link": f'<{_url(path, query, {"after": encode_cursor(end)})}>; rel="next"'} if more else {}
            )
            return elements, headers
        case "offset":
            return {"data": elements, "total": total, "limit": size, "offset": start}, {}
        case "has-more":
            return {"object": "list", "data": elements, "has_more": more, "url": path}, {}
        case "meta-links":
            return {
                "data": elements,
                "meta": {"page": page, "totalPages": total_pages, "total": total, "pageSize": size},
                "links": {
                    "self": _url(path, query, {"page[number]": str(page), "page[size]": str(size)}),
                    "next": (
                        _url(path, query, {"page[number]": str(page + 1), "page[size]": str(size)})
                        if page < total_pages
                        else None
                    ),
                },
            }, {}
        case "jsonapi-page":
            return {"data": elements, "meta": {"page": {"number": page, "size": size, "total": total}}}, {}
        case "meta-pagination":
            links: dict[str, str] = {}
            if page > 1:
                links["previous"] = _url(path, query, {"page": str(page - 1), "per_page": str(size)})
            if page < total_pages:
                links["next"] = _url(path, query, {"page": str(page + 1), "per_page": str(size)})
            pagination: dict[str, Any] = {
                "total": total,
                "count": len(elements),
                "per_page": size,
                "current_page": page,
                "total_pages": total_pages,
                "links": links or [],
            }
            return {"data": elements, "meta": {"pagination": pagination}}, {}
        case _:  # envelope-page
            return {"items": elements, "page": page, "totalPages": total_pages}, {}


def _after_id(items: list[dict[str, Any]], query: dict[str, list[str]]) -> int:
    values = query.get("starting_after", [])
    if not values:
        return 0
    for index, item in enumerate(items):
        if item.get("id") == values[-1]:
            return index + 1
    raise PageError("starting_after names no listed element")


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
