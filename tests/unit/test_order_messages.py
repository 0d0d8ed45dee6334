"""The orders-queue message kinds (issue 14): one model discriminated on kind, one registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offergrid_integration.contract import (
    RECONCILE_CANCEL,
    RECONCILE_OPEN,
    EventType,
    OffergridEvent,
    QueuedMessage,
    utc_from_epoch,
)
from offergrid_integration.orders.messages import (
    EVENT_USE_CASES,
    EventMessage,
    StatusChangeMessage,
    UnhandledMessage,
    parse_queue_message,
)

EVENTS = Path(__file__).resolve().parents[2] / "events"


def _queued(event_type: str, source: str) -> str:
    event = OffergridEvent(event=event_type, order_id="order-1", item_id="item-1")
    return QueuedMessage.for_event(event, received_at=utc_from_epoch(1_796_000_000), source=source).to_json()  # type: ignore[arg-type]


def test_every_event_type_and_repair_has_a_use_case() -> None:
    assert set(EVENT_USE_CASES) == {*EventType, RECONCILE_OPEN, RECONCILE_CANCEL}


@pytest.mark.parametrize("event_type", list(EventType))
@pytest.mark.parametrize("source", ["webhook", "sweep"])
def test_a_known_event_type_is_an_event_message(event_type: EventType, source: str) -> None:
    message = parse_queue_message(_queued(event_type.value, source))
    assert isinstance(message, EventMessage)
    assert (message.kind, message.source, message.event.item_id) == (event_type.value, source, "item-1")


@pytest.mark.parametrize("kind", [RECONCILE_OPEN, RECONCILE_CANCEL])
def test_a_repair_acts_only_from_the_reconciliation(kind: str) -> None:
    assert isinstance(parse_queue_message(_queued(kind, "reconcile")), EventMessage)
    # a webhook cannot order a repair: kept and logged under its kind, never run
    from_webhook = parse_queue_message(_queued(kind, "webhook"))
    assert isinstance(from_webhook, UnhandledMessage)
    assert from_webhook.kind == kind


def test_an_unknown_event_type_is_unhandled_under_its_own_kind() -> None:
    message = parse_queue_message(_queued("offer.ordered", "webhook"))
    assert isinstance(message, UnhandledMessage)
    assert message.kind == "offer.ordered"


def test_the_providers_status_change_is_a_status_change_message() -> None:
    body = json.dumps(json.loads((EVENTS / "eventbridge_workorder_status_changed.json").read_text()))
    message = parse_queue_message(body)
    assert isinstance(message, StatusChangeMessage)
    assert message.kind == "workorder.status_changed"
    assert message.dedup_key == message.change.dedup_key
