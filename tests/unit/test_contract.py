"""The orders queue's contract: the normalised event, the queued message, the dedup keys (Decisions 2, 3)."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError, replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from offergrid_integration.contract import (
    EventType,
    InvalidEnvelope,
    InvalidEventPayload,
    OffergridEvent,
    PayloadReason,
    QueuedMessage,
    dedup_key_for,
    format_timestamp,
    normalise_payload,
    queued_message_for_order_item,
    utc_from_epoch,
)

FLAT_CREATED = {
    "event": "order.created",
    "orderId": "order-123-abc",
    "itemId": "item-456-def",
    "offerId": "offer-789-ghi",
    "timestamp": "2026-11-27T14:30:00.000Z",
}
NESTED_CREATED = {
    "event": "order.created",
    "data": {
        "orderId": "order-123-abc",
        "itemId": "item-456-def",
        "offerId": "offer-789-ghi",
        "timestamp": "2026-11-27T14:30:00.000Z",
    },
}
RECEIVED = datetime(2026, 11, 27, 14, 30, 5, 123000, tzinfo=UTC)


# --- normalisation --------------------------------------------------------------------------------------
def test_flat_and_nested_shapes_normalise_to_the_same_event():
    flat = normalise_payload(FLAT_CREATED)
    nested = normalise_payload(NESTED_CREATED)
    assert flat == nested
    assert flat.event == "order.created"
    assert (flat.order_id, flat.item_id, flat.offer_id) == ("order-123-abc", "item-456-def", "offer-789-ghi")
    assert flat.timestamp == "2026-11-27T14:30:00.000Z"
    assert flat.known_type is EventType.ORDER_CREATED
    assert flat.extra == {}


def test_cancellation_keeps_its_reason():
    event = normalise_payload(
        {"event": "order.cancelled", "data": {"orderId": "o-1", "reason": "customer moved"}}
    )
    assert (event.known_type, event.order_id, event.item_id, event.reason) == (
        EventType.ORDER_CANCELLED,
        "o-1",
        None,
        "customer moved",
    )


def test_unknown_fields_are_kept_in_extra_from_both_levels():
    event = normalise_payload(
        {"event": "order.created", "deliveryId": "d-1", "data": {"itemId": "i-1", "priority": 2}}
    )
    assert event.extra == {"deliveryId": "d-1", "priority": 2}


def test_nested_fields_win_over_envelope_and_envelope_event_wins():
    event = normalise_payload(
        {"event": "order.created", "itemId": "outer", "data": {"event": "spoofed", "itemId": "inner"}}
    )
    assert (event.event, event.item_id) == ("order.created", "inner")


def test_a_non_object_data_is_just_an_extra_field():
    event = normalise_payload({"event": "order.created", "itemId": "i-1", "data": [1, 2]})
    assert event.extra == {"data": [1, 2]}
    assert event.item_id == "i-1"


def test_unknown_event_types_are_accepted():
    event = normalise_payload({"event": "offer.ordered", "offerId": "of-1"})
    assert event.known_type is None
    assert event.offer_id == "of-1"


def test_numeric_ids_become_strings_and_empty_ids_none():
    event = normalise_payload({"event": "order.created", "orderId": 42, "itemId": "", "offerId": None})
    assert (event.order_id, event.item_id, event.offer_id) == ("42", None, None)


def test_structured_reason_and_numeric_timestamp_are_kept_as_text():
    event = normalise_payload(
        {"event": "order.cancelled", "orderId": "o", "reason": {"code": "X", "n": 1}, "timestamp": 1700000000}
    )
    assert event.reason == '{"code":"X","n":1}'
    assert event.timestamp == "1700000000"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ([FLAT_CREATED], PayloadReason.NOT_OBJECT),
        ("order.created", PayloadReason.NOT_OBJECT),
        (None, PayloadReason.NOT_OBJECT),
        (42, PayloadReason.NOT_OBJECT),
        ({"orderId": "o"}, PayloadReason.EVENT_MISSING),
        ({"data": {"event": "order.created"}}, PayloadReason.EVENT_MISSING),
        ({"event": None}, PayloadReason.EVENT_INVALID),
        ({"event": 7}, PayloadReason.EVENT_INVALID),
        ({"event": ""}, PayloadReason.EVENT_INVALID),
        ({"event": "order created"}, PayloadReason.EVENT_INVALID),
        ({"event": "order.créé"}, PayloadReason.EVENT_INVALID),
        ({"event": "x" * 101}, PayloadReason.EVENT_INVALID),
        ({"event": "order.created", "itemId": {"id": 1}}, PayloadReason.FIELD_INVALID),
        ({"event": "order.created", "orderId": ["o"]}, PayloadReason.FIELD_INVALID),
        ({"event": "order.created", "itemId": True}, PayloadReason.FIELD_INVALID),
        ({"event": "order.created", "timestamp": {"t": 1}}, PayloadReason.FIELD_INVALID),
    ],
)
def test_invalid_payloads_raise_with_a_reason(payload: object, reason: PayloadReason):
    with pytest.raises(InvalidEventPayload) as excinfo:
        normalise_payload(payload)
    assert excinfo.value.reason is reason
    assert isinstance(excinfo.value, ValueError)


def test_event_type_of_exactly_the_maximum_length_is_accepted():
    assert normalise_payload({"event": "x" * 100}).event == "x" * 100


def test_the_model_itself_refuses_an_invalid_event_type_and_is_frozen():
    with pytest.raises(InvalidEventPayload, match="event_invalid"):
        OffergridEvent(event="has space")
    event = normalise_payload(FLAT_CREATED)
    with pytest.raises(FrozenInstanceError):
        event.item_id = "other"  # type: ignore[misc]


# --- dedup keys (Decision 3) -------------------------------------------------------------------------------
def test_order_created_key_is_event_and_item():
    assert dedup_key_for(normalise_payload(FLAT_CREATED)) == "order.created:item-456-def"


def test_order_created_key_ignores_order_offer_timestamp_and_extras():
    redelivered = {**FLAT_CREATED, "orderId": "other", "timestamp": "2030-01-01T00:00:00Z", "retry": 3}
    assert dedup_key_for(normalise_payload(redelivered)) == "order.created:item-456-def"


def test_order_cancelled_key_is_event_order_and_item_if_any():
    with_item = {"event": "order.cancelled", "orderId": "order-1", "itemId": "item-1", "reason": "a"}
    without_item = {"event": "order.cancelled", "orderId": "order-1", "reason": "b"}
    assert dedup_key_for(normalise_payload(with_item)) == "order.cancelled:order-1:item-1"
    assert dedup_key_for(normalise_payload(without_item)) == "order.cancelled:order-1"


def test_cancellation_reason_does_not_change_the_key():
    a = {"event": "order.cancelled", "orderId": "order-1", "reason": "a"}
    b = {"event": "order.cancelled", "orderId": "order-1", "reason": "b"}
    assert dedup_key_for(normalise_payload(a)) == dedup_key_for(normalise_payload(b))


def test_unknown_event_key_is_event_and_a_stable_hash_of_the_payload():
    payload = {"event": "offer.ordered", "offerId": "of-1", "count": 2, "timestamp": "2026-01-01T00:00:00Z"}
    key = dedup_key_for(normalise_payload(payload))
    prefix, digest = key.rsplit(":", 1)
    assert prefix == "offer.ordered:sha256"
    assert len(digest) == 32
    assert all(char in "0123456789abcdef" for char in digest)
    # Same content in another key order and shape, another send time: same key
    reordered = {
        "timestamp": "2027-05-05T00:00:00Z",
        "data": {"count": 2, "offerId": "of-1"},
        "event": "offer.ordered",
    }
    assert dedup_key_for(normalise_payload(reordered)) == key
    # Different content: different key
    assert dedup_key_for(normalise_payload({**payload, "count": 3})) != key


def test_unknown_event_hash_is_a_fixed_value():
    # Pinned: the processor's idempotency records outlive deployments, so the hash must not drift.
    key = dedup_key_for(normalise_payload({"event": "offer.ordered", "offerId": "of-1"}))
    assert key == "offer.ordered:sha256:" + _expected_hash(
        {
            "event": "offer.ordered",
            "orderId": None,
            "itemId": None,
            "offerId": "of-1",
            "reason": None,
            "extra": {},
        }
    )


def _expected_hash(document: dict[str, object]) -> str:
    import hashlib

    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def test_known_event_without_its_ids_falls_back_to_the_hash_form():
    key = dedup_key_for(normalise_payload({"event": "order.created", "orderId": "o-1"}))
    assert key.startswith("order.created:sha256:")
    key = dedup_key_for(normalise_payload({"event": "order.cancelled", "itemId": "i-1"}))
    assert key.startswith("order.cancelled:sha256:")


def test_ids_are_percent_encoded_so_keys_stay_unambiguous_ascii():
    a = normalise_payload({"event": "order.cancelled", "orderId": "a:b"})
    b = normalise_payload({"event": "order.cancelled", "orderId": "a", "itemId": "b"})
    assert dedup_key_for(a) == "order.cancelled:a%3Ab"
    assert dedup_key_for(b) == "order.cancelled:a:b"
    assert dedup_key_for(normalise_payload({"event": "order.created", "itemId": "é 1"})) == (
        "order.created:%C3%A9%201"
    )


def test_long_percent_encoded_ids_fall_back_to_a_bounded_key():
    # 128 characters is the longest id (docs/decisions.md#12); percent-encoded, 128 emoji are 1,536.
    key = dedup_key_for(normalise_payload({"event": "order.created", "itemId": "\U0001f600" * 128}))
    assert key.startswith("order.created:sha256:")
    assert len(key) < 100


# --- queued message -------------------------------------------------------------------------------------
def test_queued_message_round_trips_through_json():
    message = QueuedMessage.for_event(
        normalise_payload({**FLAT_CREATED, "note": "Müller ✓ \ud800"}),
        received_at=RECEIVED,
        source="webhook",
        correlation_id="req-1",
    )
    body = message.to_json()
    # Compact UTF-8, not \u escapes; the lone surrogate written as U+FFFD (docs/decisions.md#17)
    assert '"note":"Müller ✓ \ufffd"' in body
    body.encode("utf-8")
    assert QueuedMessage.from_json(body) == replace(
        message, event=replace(message.event, extra={"note": "Müller ✓ \ufffd"})
    )
    document = json.loads(body)
    assert document["dedupKey"] == "order.created:item-456-def"
    assert document["receivedAt"] == "2026-11-27T14:30:05.123Z"
    assert document["source"] == "webhook"
    assert document["correlationId"] == "req-1"
    assert document["event"]["itemId"] == "item-456-def"
    assert document["event"]["extra"] == {"note": "Müller ✓ \ufffd"}


def test_message_attributes_carry_key_type_time_and_correlation():
    message = QueuedMessage.for_event(
        normalise_payload(FLAT_CREATED),
        received_at=RECEIVED,
        source="webhook",
        correlation_id="req-1",
    )
    assert message.message_attributes() == {
        "dedupKey": "order.created:item-456-def",
        "eventType": "order.created",
        "receivedAt": "2026-11-27T14:30:05.123Z",
        "source": "webhook",
        "correlationId": "req-1",
    }


def test_message_attributes_omit_a_missing_correlation_id():
    message = QueuedMessage.for_event(normalise_payload(FLAT_CREATED), received_at=RECEIVED, source="webhook")
    assert "correlationId" not in message.message_attributes()


def test_received_at_must_be_aware_and_is_stored_in_utc():
    naive = RECEIVED.replace(tzinfo=None)
    with pytest.raises(InvalidEnvelope, match="receivedAt"):
        QueuedMessage.for_event(normalise_payload(FLAT_CREATED), received_at=naive, source="webhook")
    paris = RECEIVED.astimezone(timezone(timedelta(hours=1)))
    message = QueuedMessage.for_event(normalise_payload(FLAT_CREATED), received_at=paris, source="webhook")
    assert message.received_at == RECEIVED
    assert message.received_at.tzinfo is UTC


def test_source_is_a_closed_set():
    with pytest.raises(InvalidEnvelope, match="source"):
        QueuedMessage.for_event(
            normalise_payload(FLAT_CREATED),
            received_at=RECEIVED,
            source="elsewhere",  # type: ignore[arg-type]
        )


def test_time_helpers():
    assert format_timestamp(utc_from_epoch(0)) == "1970-01-01T00:00:00.000Z"
    assert utc_from_epoch(1.5).tzinfo is UTC


# --- the sweep's message ---------------------------------------------------------------------------------
def test_sweep_message_for_an_order_item_shares_the_webhooks_dedup_key():
    # Given the webhook for the item and the sweep finding the same item by listing
    webhook = QueuedMessage.for_event(normalise_payload(FLAT_CREATED), received_at=RECEIVED, source="webhook")
    sweep = queued_message_for_order_item(
        item_id="item-456-def",
        order_id="order-123-abc",
        offer_id="offer-789-ghi",
        created_at="2026-11-27T14:29:00Z",
        received_at=RECEIVED + timedelta(hours=1),
        correlation_id="sweep-run-1",
    )
    # Then they carry the same key, so the processor decides the item once
    assert sweep.dedup_key == webhook.dedup_key == "order.created:item-456-def"
    assert sweep.source == "sweep"
    assert sweep.event.known_type is EventType.ORDER_CREATED
    assert (sweep.event.order_id, sweep.event.offer_id) == ("order-123-abc", "offer-789-ghi")
    assert QueuedMessage.from_json(sweep.to_json()) == sweep
