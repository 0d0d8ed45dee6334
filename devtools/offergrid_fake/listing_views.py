"""Per-item listing views: what `GET /provider/orders` shows for one order item, whatever its GET says.

Offergrid documents an order item's shape for a GET only; a listing may show each item as a summary
(`serviceAddress: {}`, `{city, state}`, nulls, wrong types, extra fields) while its GET holds the
full item. A test sets the element a listing shows for one item (`OffergridFake.set_listing_view`,
or `PUT /_fake/orders/{itemId}/listing-view {"view": {...}}`), or leaves the item out of listings
(`"view": null`); `clear_listing_view` (`DELETE`) shows it as the answers mode says again. A view
is shown verbatim, in place of the item (its status still decides which listings hold it, and a
view never changes the item itself: GETs and PATCHes see the item).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

__all__ = ["HIDDEN", "check_view", "listed_elements"]

# The view of an item that listings leave out.
HIDDEN: Final = None


def check_view(view: object) -> dict[str, Any] | None:
    """A view to store: a JSON object (shown as is) or None (the item left out of listings)."""
    if view is HIDDEN:
        return None
    if not isinstance(view, Mapping):
        raise ValueError("a listing view is a JSON object, or null to leave the item out of listings")
    return copy.deepcopy(dict(view))


def listed_elements(
    items: Iterable[tuple[str, dict[str, Any]]],
    views: Mapping[str, dict[str, Any] | None],
    default: Callable[[dict[str, Any]], dict[str, Any]],
) -> list[dict[str, Any]]:
    """The elements a listing of `items` (item id, item) holds: an item's view when it has one
    (None: left out), else `default(item)` (the answers mode's element: the item, or its summary)."""
    elements: list[dict[str, Any]] = []
    for item_id, item in items:
        if item_id not in views:
            elements.append(default(item))
        elif (view := views[item_id]) is not None:
            elements.append(copy.deepcopy(view))
    return elements
