"""Listings: every page of an Offergrid list, whatever its envelope, and an end to every listing
(docs/decisions.md#5 and #18; the conventions read: docs/architecture.md#listings-offergridpagingpy).

A listing that cannot end well (a page seen twice, "more" without a way there, short of its stated total,
over `MAX_PAGES`) raises `UnexpectedResponseError`, never a silent partial list.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

from offergrid_integration.offergrid.errors import UnexpectedResponseError

# --- where an answer keeps its elements and its paging fields -----------------------------------
LIST_KEYS: Final = ("data", "items", "offers", "orders")
# Where an envelope may keep its paging fields besides its top level, one level further down too
# (`{data, meta: {page, ...}}`, `{data, meta: {pagination: {...}}}`).
PAGING_OBJECTS: Final = ("meta", "pagination", "paging", "page_info", "pageInfo")
LINKS_KEY: Final = "links"
CURSOR_KEYS: Final = ("nextCursor", "next_cursor", "next_page_url", "nextPageUrl", "cursor", "next")
PAGE_KEYS: Final = ("page", "currentPage", "current_page")
TOTAL_PAGES_KEYS: Final = (
    "totalPages",
    "total_pages",
    "pages",
    "pageCount",
    "page_count",
    "lastPage",
    "last_page",
)
HAS_MORE_KEYS: Final = ("hasMore", "has_more", "hasNextPage", "has_next_page")
TOTAL_KEYS: Final = ("total", "totalCount", "total_count", "totalItems", "total_items")
OFFSET_KEYS: Final = ("offset", "skip")
LIMIT_KEYS: Final = ("limit", "pageSize", "page_size", "perPage", "per_page")
# JSON:API's page object (`meta.page`): `{number, size, total}`, `total` counting elements.
PAGE_OBJECT_KEY: Final = "page"
PAGE_NUMBER_KEY: Final = "number"
PAGE_SIZE_KEY: Final = "size"

# --- how the next page is asked for -------------------------------------------------------------
CURSOR_PARAM: Final = "cursor"
PAGE_PARAM: Final = "page"
OFFSET_PARAM: Final = "offset"
LIMIT_PARAM: Final = "limit"
STARTING_AFTER_PARAM: Final = "starting_after"
PAGE_NUMBER_PARAM: Final = "page[number]"
PAGE_SIZE_PARAM: Final = "page[size]"

type Params = dict[str, str]
# One page asked for with a query: its JSON body, the URL of its `Link: <...>; rel="next"` header
# (None without one), and its HTTP status (for the error, if the page is refused).
type FetchPage = Callable[[Params], tuple[Any, str | None, int]]


@dataclass(frozen=True)
class Page:
    """One list answer read: its elements, and the query of the next page (None on the last)."""

    items: list[Any]
    next: Params | None


def parse_page(
    body: Any,
    params: Mapping[str, str],
    *,
    next_link: str | None = None,
    base_params: Mapping[str, str] | None = None,
    listed: int = 0,
) -> Page:
    """One list answer -> its elements and the query of the next page, or ValueError.

    `base_params` (the listing's filters) are kept when a link gives the next query; `listed` counts the
    elements of earlier pages, so a last page short of a stated `total` is a ValueError.
    """
    base = params if base_params is None else base_params
    if isinstance(body, list):
        return _checked(body, _link_params(next_link, base) if next_link else None, None, listed)
    if not isinstance(body, dict):
        raise ValueError(f"expected a JSON array or object, got {type(body).__name__}")
    items = next((body[key] for key in LIST_KEYS if isinstance(body.get(key), list)), None)
    if items is None:
        raise ValueError(f"no list under any of {', '.join(LIST_KEYS)}")
    places = _places(body)

    def find(keys: tuple[str, ...], accept: Callable[[Any], bool]) -> Any:
        return next((place[key] for place in places for key in keys if accept(place.get(key))), None)

    total = find(TOTAL_KEYS, _is_int)
    return _checked(items, _next_params(items, params, base, places, find, next_link), total, listed)


def _next_params(
    items: list[Any],
    params: Mapping[str, str],
    base: Mapping[str, str],
    places: list[dict[str, Any]],
    find: Callable[[tuple[str, ...], Callable[[Any], bool]], Any],
    next_link: str | None,
) -> Params | None:
    """The query of the page after `items` by the first convention the envelope follows, or None."""
    for place in places:
        links = place.get(LINKS_KEY)
        if isinstance(links, dict) and (link := _href(links.get("next"))):
            return _link_params(link, base)
    if next_link:
        return _link_params(next_link, base)
    cursor = find(CURSOR_KEYS, lambda v: _href(v) is not None)
    if cursor is not None:
        text = _href(cursor) or ""
        if text.startswith(("http://", "https://", "/", "?")):
            return _link_params(text, base)
        return {**params, CURSOR_PARAM: text}

    has_more = find(HAS_MORE_KEYS, lambda v: isinstance(v, bool))
    page_object = next((p[PAGE_OBJECT_KEY] for p in places if isinstance(p.get(PAGE_OBJECT_KEY), dict)), None)
    if page_object is not None:
        return _json_api_next(items, params, page_object, has_more)

    page = find(PAGE_KEYS, _is_int)
    total_pages = find(TOTAL_PAGES_KEYS, _is_int)
    if page is not None or total_pages is not None:
        current = page if page is not None else _int_param(params, PAGE_PARAM, 1)
        if total_pages is not None:
            more = current < total_pages
        elif has_more is not None:
            more = has_more
        else:
            more = bool(items)
        return {**params, PAGE_PARAM: str(current + 1)} if more else None

    total = find(TOTAL_KEYS, _is_int)
    offset = find(OFFSET_KEYS, _is_int)
    limit = find(LIMIT_KEYS, _is_int)
    if offset is not None or limit is not None:
        start = offset if offset is not None else _int_param(params, OFFSET_PARAM, 0)
        end = start + len(items)
        if total is not None:
            more = end < total
        elif has_more is not None:
            more = has_more
        else:
            more = bool(items) and (limit is None or len(items) >= limit)
        if not more:
            return None
        following = {**params, OFFSET_PARAM: str(end)}
        if limit is not None and limit > 0:
            following[LIMIT_PARAM] = str(limit)
        return following
    if has_more:
        following = {**params, PAGE_PARAM: str(_int_param(params, PAGE_PARAM, 1) + 1)}
        last_id = _element_id(items[-1]) if items else None
        if last_id is not None:
            following[STARTING_AFTER_PARAM] = last_id
        return following
    return None


def _json_api_next(
    items: list[Any], params: Mapping[str, str], page: dict[str, Any], has_more: bool | None
) -> Params | None:
    """The next page of JSON:API's page-number strategy: `?page[number]=&page[size]=`."""
    number = _as_int(page.get(PAGE_NUMBER_KEY))
    if number is None:
        number = _int_param(params, PAGE_NUMBER_PARAM, 1)
    size = _as_int(page.get(PAGE_SIZE_KEY))
    if size is not None and size < 1:
        size = None
    total_pages = next((_as_int(page[key]) for key in TOTAL_PAGES_KEYS if _is_int(page.get(key))), None)
    total = next((_as_int(page[key]) for key in TOTAL_KEYS if _is_int(page.get(key))), None)
    if total_pages is not None:
        more = number < total_pages
    elif total is not None and size is not None:
        more = number * size < total
    elif has_more is not None:
        more = has_more
    elif size is not None:
        more = len(items) >= size
    else:
        more = bool(items)
    if not more:
        return None
    following = {**params, PAGE_NUMBER_PARAM: str(number + 1)}
    if size is not None:
        following[PAGE_SIZE_PARAM] = str(size)
    return following


def _checked(items: list[Any], following: Params | None, total: int | None, listed: int) -> Page:
    """The page, unless it is the last one and the listing holds fewer elements than it states."""
    if following is None and total is not None and listed + len(items) < total:
        raise ValueError(
            f"the envelope says there are {total} elements but the listing holds {listed + len(items)} "
            "and names no way to the next page"
        )
    return Page(items, following)


def follow_listing(
    fetch: FetchPage, params: Mapping[str, str], *, path: str, max_pages: int
) -> Iterator[list[Any]]:
    """Every page's elements of `path?params`, one `fetch` per page, each checked before it is handed out."""
    if max_pages < 1:
        raise ValueError("max_pages must be at least 1")
    base = dict(params)
    query = dict(params)
    pointers = {_marker(query)}
    contents: set[str] = set()
    listed = 0
    for _ in range(max_pages):
        body, next_link, status = fetch(query)
        try:
            page = parse_page(body, query, next_link=next_link, base_params=base, listed=listed)
        except ValueError as exc:
            raise _unexpected(f"unexpected list response: {exc}", path, status) from None
        digest = _digest(page.items)
        if digest in contents:
            raise _unexpected("the listing does not advance: a page was answered twice", path, status)
        contents.add(digest)
        if page.next is not None:
            marker = _marker(page.next)
            if marker in pointers:
                raise _unexpected("the listing does not advance: a next-page pointer repeats", path, status)
            pointers.add(marker)
        listed += len(page.items)
        yield page.items
        if page.next is None:
            return
        query = page.next
    raise _unexpected(f"the listing needs more than {max_pages} pages (its page budget)", path, None)


def _unexpected(message: str, path: str, status: int | None) -> UnexpectedResponseError:
    return UnexpectedResponseError(message, status_code=status, method="GET", path=path)


def _marker(params: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(params.items()))


def _digest(items: list[Any]) -> str:
    """What a page held, as a fingerprint: two pages with the same elements have the same one."""
    text = json.dumps(items, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _places(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The envelope and its paging objects, two levels deep (`meta`, `meta.pagination`, `meta.page`)."""
    places = [body]
    level = [body]
    for _ in range(2):
        level = [
            inner
            for place in level
            for key in (*PAGING_OBJECTS, PAGE_OBJECT_KEY)
            if isinstance(inner := place.get(key), dict)
        ]
        places += level
    return places


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _href(value: Any) -> str | None:
    """A next-page pointer: a non-empty string or number, or `{"href": ...}` (JSON:API, HAL)."""
    if isinstance(value, dict):
        value = value.get("href")
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
        return str(value)
    return None


def _element_id(element: Any) -> str | None:
    ident = element.get("id") if isinstance(element, dict) else None
    return str(ident) if isinstance(ident, str | int) and not isinstance(ident, bool) and str(ident) else None


def _int_param(params: Mapping[str, str], name: str, default: int) -> int:
    try:
        return int(params.get(name, default))
    except ValueError:
        return default


def _link_params(link: str, base: Mapping[str, str]) -> Params:
    """The query of the page a next link points at: the link's own query over the listing's filters."""
    return {**base, **dict(httpx.URL(link).params)}
