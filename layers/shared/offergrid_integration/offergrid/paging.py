"""Listings: every page of an Offergrid list, whatever its envelope, its elements read one by one, and an
end to every listing (docs/decisions.md#5, #10 and #18; the conventions read:
docs/architecture.md#listings-offergridpagingpy).

A listing that cannot end well (a page seen twice, "more" without a way there, short of its stated total,
over the page budget) raises `UnexpectedResponseError`, never a silent partial list.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx
from pydantic import ValidationError

from offergrid_integration.offergrid.errors import UnexpectedResponseError
from offergrid_integration.offergrid.models import OffergridResponse, validation_problems

# Where an answer keeps its elements and its paging fields: the top level, or one or two levels down
# (`{data, meta: {page, ...}}`, `{data, meta: {pagination: {...}}}`).
LIST_KEYS: Final = ("data", "items", "offers", "orders")
PAGING_OBJECTS: Final = ("meta", "pagination", "paging", "page_info", "pageInfo", "page")
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
_MAX_ID_SHOWN: Final = 128

type Params = dict[str, str]
# One page asked for with a query: its JSON body, the URL of its `Link: <...>; rel="next"` header
# (None without one), and its HTTP status (for the error, if the page is refused).
type FetchPage = Callable[[Params], tuple[Any, str | None, int]]

_log = logging.getLogger("offergrid_integration.offergrid.client")  # one logger for the client's words


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
    total: int | None = None
    if isinstance(body, list):
        items = body
        following = _link_params(next_link, base) if next_link else None
    elif isinstance(body, dict):
        found = next((body[key] for key in LIST_KEYS if isinstance(body.get(key), list)), None)
        if found is None:
            raise ValueError(f"no list under any of {', '.join(LIST_KEYS)}")
        items, places = found, _places(body)
        total = _first(places, TOTAL_KEYS, _as_int)
        following = _next_params(items, params, base, places, next_link, total)
    else:
        raise ValueError(f"expected a JSON array or object, got {type(body).__name__}")
    if following is None and total is not None and listed + len(items) < total:
        raise ValueError(
            f"the envelope says there are {total} elements but the listing holds {listed + len(items)} "
            "and names no way to the next page"
        )
    return Page(items, following)


def _next_params(
    items: list[Any],
    params: Mapping[str, str],
    base: Mapping[str, str],
    places: list[dict[str, Any]],
    next_link: str | None,
    total: int | None,
) -> Params | None:
    """The query of the page after `items` by the first convention the envelope follows, or None."""
    for place in places:
        links = place.get("links")
        if isinstance(links, dict) and (link := _href(links.get("next"))):
            return _link_params(link, base)
    if next_link:
        return _link_params(next_link, base)
    cursor = _first(places, CURSOR_KEYS, _href)
    if cursor is not None:
        if cursor.startswith(("http://", "https://", "/", "?")):
            return _link_params(cursor, base)
        return {**params, "cursor": cursor}

    has_more = _first(places, HAS_MORE_KEYS, _as_bool)
    page_object = next((p["page"] for p in places if isinstance(p.get("page"), dict)), None)
    if page_object is not None:
        return _json_api_next(items, params, page_object, has_more)

    page = _first(places, PAGE_KEYS, _as_int)
    total_pages = _first(places, TOTAL_PAGES_KEYS, _as_int)
    if page is not None or total_pages is not None:
        current = page if page is not None else _int_param(params, "page", 1)
        if total_pages is not None:
            more = current < total_pages
        else:
            more = has_more if has_more is not None else bool(items)
        return {**params, "page": str(current + 1)} if more else None

    offset = _first(places, OFFSET_KEYS, _as_int)
    limit = _first(places, LIMIT_KEYS, _as_int)
    if offset is not None or limit is not None:
        start = offset if offset is not None else _int_param(params, "offset", 0)
        end = start + len(items)
        if total is not None:
            more = end < total
        elif has_more is not None:
            more = has_more
        else:
            more = bool(items) and (limit is None or len(items) >= limit)
        if not more:
            return None
        following = {**params, "offset": str(end)}
        if limit is not None and limit > 0:
            following["limit"] = str(limit)
        return following
    if has_more:
        # Stripe's way: the last element's id, and the next page number for servers that count pages.
        following = {**params, "page": str(_int_param(params, "page", 1) + 1)}
        last_id = _text(items[-1].get("id")) if items and isinstance(items[-1], dict) else None
        if last_id is not None:
            following["starting_after"] = last_id
        return following
    return None


def _json_api_next(
    items: list[Any], params: Mapping[str, str], page: dict[str, Any], has_more: bool | None
) -> Params | None:
    """The next page of JSON:API's page-number strategy (`meta.page`: `number`, `size`, `total` counting
    elements), asked for with `?page[number]=&page[size]=`."""
    number = _as_int(page.get("number"))
    if number is None:
        number = _int_param(params, "page[number]", 1)
    size = _as_int(page.get("size"))
    if size is not None and size < 1:
        size = None
    total_pages = _first([page], TOTAL_PAGES_KEYS, _as_int)
    total = _first([page], TOTAL_KEYS, _as_int)
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
    following = {**params, "page[number]": str(number + 1)}
    if size is not None:
        following["page[size]"] = str(size)
    return following


def follow_listing[M: OffergridResponse](
    fetch: FetchPage,
    model: type[M],
    params: Mapping[str, str],
    *,
    path: str,
    max_pages: int,
    on_unreadable: Callable[[], None],
) -> Iterator[list[M]]:
    """Every page of `path?params`, one `fetch` per page, each checked before its readable elements are
    handed out; an unreadable element is skipped, logged and reported to `on_unreadable`."""
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
        read = [_element(model, raw, path, listed + position) for position, raw in enumerate(page.items, 1)]
        for _ in range(read.count(None)):
            on_unreadable()
        listed += len(page.items)
        yield [element for element in read if element is not None]
        if page.next is None:
            return
        query = page.next
    raise _unexpected(f"the listing needs more than {max_pages} pages (its page budget)", path, None)


def _element[M: OffergridResponse](model: type[M], raw: Any, path: str, position: int) -> M | None:
    """One listed element, or None when it cannot be read (logged with its position and id)."""
    try:
        parsed = model.model_validate(raw)
    except ValidationError as exc:
        ident = _text(raw.get("id")) if isinstance(raw, dict) else None
        problems = validation_problems(exc)
        _log.warning(
            "offergrid list element %d of GET %s skipped: unreadable %s (%s)",
            *(position, path, model.__name__, problems),
            extra={"path": path, "position": position, "model": model.__name__, "problems": problems}
            | {"elementId": None if ident is None else ident[:_MAX_ID_SHOWN]},
        )
        return None
    if parsed.unreadable_fields:
        fields = list(parsed.unreadable_fields)
        _log.info(
            "offergrid list element %d of GET %s: unreadable optional fields left out: %s",
            *(position, path, ", ".join(fields)),
            extra={"path": path, "position": position, "unreadableFields": fields},
        )
    return parsed


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
            inner for place in level for key in PAGING_OBJECTS if isinstance(inner := place.get(key), dict)
        ]
        places += level
    return places


def _first[T](
    places: list[dict[str, Any]], keys: tuple[str, ...], read: Callable[[Any], T | None]
) -> T | None:
    """The first value `read` accepts under any of `keys`, place by place."""
    return next(
        (value for place in places for key in keys if (value := read(place.get(key))) is not None), None
    )


def _as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _as_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    """A non-empty string or number (not a bool) as text."""
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) and str(value) else None


def _href(value: Any) -> str | None:
    """A next-page pointer: a non-empty string or number, or `{"href": ...}` (JSON:API, HAL)."""
    return _text(value.get("href") if isinstance(value, dict) else value)


def _int_param(params: Mapping[str, str], name: str, default: int) -> int:
    try:
        return int(params.get(name, default))
    except ValueError:
        return default


def _link_params(link: str, base: Mapping[str, str]) -> Params:
    """The query of the page a next link points at: the link's own query over the listing's filters."""
    return {**base, **dict(httpx.URL(link).params)}
