"""What a decision reads of an order item, and when a read holds all of it (docs/decisions.md#16,
`orders/steps.py`): content, not presence."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from offergrid_integration.offergrid.models import OrderItem
from offergrid_integration.orders.steps import (
    for_decision,
    is_full_read,
    missing_for_decision,
    new_work_order,
)


def item(**changes: Any) -> OrderItem:
    """A full read, with `changes` (a value `...` removes the key; dotted keys reach inside)."""
    data: dict[str, Any] = {
        "id": "item-1",
        "status": "pending",
        "orderId": "order-1",
        "offerId": "offer-1",
        "offerName": "Fiber 1000",
        "notes": None,
        "metadata": {"unitNumber": "4B"},
        "customerInfo": {"fullName": "Jane Doe", "email": "jane@example.com", "phone": "+1-555-0100"},
        "serviceAddress": {
            "street": "1 Main St",
            "city": "Boston",
            "state": "MA",
            "zipCode": "02134",
            "country": "US",
        },
    }
    for key, value in changes.items():
        *path, last = key.split(".")
        target = data
        for part in path:
            target = target[part]
        if value is ...:
            del target[last]
        else:
            target[last] = value
    return OrderItem.model_validate(data)


def test_a_complete_item_is_a_full_read() -> None:
    assert missing_for_decision(item()) == ()
    assert is_full_read(item())
    # What a decision does not read may be anything: absent, null, extra, another type
    assert is_full_read(item(metadata=None, createdAt=7, summary=True, **{"serviceAddress.geo": [1, 2]}))


@pytest.mark.parametrize(
    ("key", "value", "missing"),
    [
        ("serviceAddress", {}, "serviceAddress.street"),
        ("serviceAddress", None, "serviceAddress.city"),
        ("serviceAddress", ..., "serviceAddress.zipCode"),
        ("serviceAddress", {"city": "Boston", "state": "MA"}, "serviceAddress.street"),
        ("serviceAddress.street", "", "serviceAddress.street"),
        ("serviceAddress.street", "   ", "serviceAddress.street"),
        ("serviceAddress.state", None, "serviceAddress.state"),  # the rules may read it
        ("serviceAddress.country", ..., "serviceAddress.country"),  # the rules may read it
        ("serviceAddress.zipCode", 2134, "serviceAddress.zipCode"),  # its leading zero lost
        ("serviceAddress.zipCode", ["02134"], "serviceAddress.zipCode"),  # unreadable
        ("serviceAddress.city", True, "serviceAddress.city"),
        ("customerInfo", {}, "customerInfo.fullName"),
        ("customerInfo", {"fullName": "Jane Doe"}, "customerInfo.email"),
        ("customerInfo.phone", None, "customerInfo.phone"),  # the work order carries it
        ("customerInfo", "Jane Doe", "customerInfo"),  # another type: unreadable
        ("orderId", ..., "orderId"),
        ("offerId", 42, "offerId"),
        ("offerName", "", "offerName"),
        ("notes", ..., "notes"),  # a summary leaves it out; null says the item has none
        ("metadata", ["unitNumber", "4B"], "metadata"),  # unreadable: not a read to trust
    ],
)
def test_what_a_full_read_lacks_is_named(key: str, value: Any, missing: str) -> None:
    read = item(**{key: value})
    assert missing in missing_for_decision(read)
    assert not is_full_read(read)


def test_a_decision_and_a_work_order_read_only_the_documented_fields() -> None:
    read = item(**{"serviceAddress.geo": {"lat": 1}, "customerInfo.vip": True, "serviceAddress.state": ...})

    decided = for_decision(read)
    work_order = new_work_order_for(read)

    assert decided.service_address is not None
    assert decided.customer_info is not None
    assert decided.service_address.to_wire() == {
        "street": "1 Main St",
        "city": "Boston",
        "zipCode": "02134",
        "country": "US",
    }
    customer = {"fullName": "Jane Doe", "email": "jane@example.com", "phone": "+1-555-0100"}
    assert decided.customer_info.to_wire() == customer
    assert work_order.service_address == decided.service_address.to_wire()
    assert work_order.customer == customer
    # A GET without an address or a customer gives a work order without them, as before
    bare = OrderItem.model_validate({"id": "item-2", "status": "pending"})
    assert for_decision(bare).service_address is None
    assert (new_work_order_for(bare).customer, new_work_order_for(bare).service_address) == (None, None)


class _Ports:
    contact_within_hours = 24


def new_work_order_for(read: OrderItem) -> Any:
    return new_work_order(_Ports(), read, "WO-1", datetime(2026, 1, 1, tzinfo=UTC))  # type: ignore[arg-type]
