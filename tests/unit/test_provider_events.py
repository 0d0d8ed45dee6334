"""The provider's `workorder.status_changed` EventBridge event -> an Offergrid status update."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from offergrid_integration.contract import dedup_key_part
from offergrid_integration.offergrid.models import OrderItemStatus
from offergrid_integration.orders.provider_events import (
    InvalidProviderEvent,
    ProviderEventReason,
    WorkOrderStatus,
    is_provider_event,
    parse_provider_event,
)

EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.fixture
def event() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / "eventbridge_workorder_status_changed.json").read_text())
    return loaded


def with_detail(event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(event)
    for key, value in changes.items():
        if value is None:
            changed["detail"].pop(key, None)
        else:
            changed["detail"][key] = value
    return changed


def test_sample_event_maps_to_a_scheduled_update(event: dict[str, Any]) -> None:
    # Given the sample event (scheduled, with appointment, notes, work order and technician ids)
    change = parse_provider_event(event)

    # Then every documented field lands where Decision 9 says
    assert change.item_id == "item-456-def"
    assert change.target_status is OrderItemStatus.SCHEDULED
    assert change.to_status_update().to_wire() == {
        "status": "scheduled",
        "providerNotes": "Installation booked; the technician will call 30 minutes before arrival.",
        "scheduledFor": "2026-12-01T09:00:00Z",
        "metadata": {"workOrderId": "WO-2026-000123", "technicianId": "tech-042"},
    }
    assert change.dedup_key == (
        "workorder.status_changed:item-456-def:scheduled:7bf73129-1428-4cd3-a780-95db273d1602"
    )


@pytest.mark.parametrize("status", ["in_progress", "completed", "failed", "active"])
def test_other_statuses_map_one_to_one_without_a_date(event: dict[str, Any], status: str) -> None:
    change = parse_provider_event(with_detail(event, status=status, appointmentDate=None))
    wire = change.to_status_update().to_wire()
    assert wire["status"] == status
    assert "scheduledFor" not in wire
    assert wire["metadata"] == {"workOrderId": "WO-2026-000123", "technicianId": "tech-042"}


def test_scheduled_for_is_sent_only_with_scheduled(event: dict[str, Any]) -> None:
    # A stale appointment date on an in_progress event is not a reschedule.
    change = parse_provider_event(with_detail(event, status="in_progress"))
    assert "scheduledFor" not in change.to_status_update().to_wire()


def test_scheduled_without_appointment_is_a_permanent_error(event: dict[str, Any]) -> None:
    with pytest.raises(InvalidProviderEvent) as caught:
        parse_provider_event(with_detail(event, appointmentDate=None))
    assert caught.value.problem is ProviderEventReason.SCHEDULED_WITHOUT_DATE


@pytest.mark.parametrize(
    "changes",
    [
        {"offergridItemId": None},
        {"offergridItemId": ""},
        {"status": "teleported"},
        {"status": None},
        {"appointmentDate": "next tuesday"},
    ],
)
def test_invalid_details_are_refused(event: dict[str, Any], changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidProviderEvent) as caught:
        parse_provider_event(with_detail(event, **changes))
    assert caught.value.problem is ProviderEventReason.INVALID_DETAIL


def test_other_detail_types_and_non_events_are_refused(event: dict[str, Any]) -> None:
    other = {**event, "detail-type": "workorder.created"}
    with pytest.raises(InvalidProviderEvent) as caught:
        parse_provider_event(other)
    assert caught.value.problem is ProviderEventReason.WRONG_DETAIL_TYPE
    with pytest.raises(InvalidProviderEvent) as caught:
        parse_provider_event({"event": "order.created"})
    assert caught.value.problem is ProviderEventReason.NOT_AN_EVENT
    no_id = {key: value for key, value in event.items() if key != "id"}
    with pytest.raises(InvalidProviderEvent):
        parse_provider_event(no_id)
    assert is_provider_event(event)
    assert not is_provider_event({"event": {}, "dedupKey": "x"})


def test_lenient_status_spelling_and_optional_fields(event: dict[str, Any]) -> None:
    change = parse_provider_event(
        with_detail(event, status="In-Progress", id=None, technicianId=None, notes=None, appointmentDate=None)
    )
    assert change.status is WorkOrderStatus.IN_PROGRESS
    assert change.to_status_update().to_wire() == {"status": "in_progress"}


def test_naive_appointment_is_taken_as_utc(event: dict[str, Any]) -> None:
    change = parse_provider_event(with_detail(event, appointmentDate="2026-12-01T09:00:00"))
    assert change.scheduled_for == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_dedup_key_is_item_target_status_and_source_event(event: dict[str, Any]) -> None:
    first = parse_provider_event(event)
    assert parse_provider_event(copy.deepcopy(event)).dedup_key == first.dedup_key
    other_status = parse_provider_event(with_detail(event, status="in_progress", appointmentDate=None))
    other_event = parse_provider_event({**event, "id": "another-event-id"})
    other_item = parse_provider_event(with_detail(event, offergridItemId="item-999"))
    keys = {first.dedup_key, other_status.dedup_key, other_event.dedup_key, other_item.dedup_key}
    assert len(keys) == 4
    # The longest id (128 characters, docs/decisions.md#12) percent-encoded still gives a bounded key
    long_item = parse_provider_event(with_detail(event, offergridItemId="\u00e9" * 128))
    assert len(long_item.dedup_key) <= 256
    assert long_item.dedup_key.endswith(":scheduled")


def test_dedup_key_segments_are_encoded_like_webhook_keys(event: dict[str, Any]) -> None:
    # An item id holding the ':' separator cannot collide with another item + status combination
    change = parse_provider_event({**with_detail(event, offergridItemId="item:1"), "id": "evt/2"})
    assert change.dedup_key == (
        f"workorder.status_changed:{dedup_key_part('item:1')}:scheduled:{dedup_key_part('evt/2')}"
    )
    assert change.dedup_key == "workorder.status_changed:item%3A1:scheduled:evt%2F2"
