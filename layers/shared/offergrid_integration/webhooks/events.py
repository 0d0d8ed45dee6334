"""The one internal event model: what the ingress queues and the processor and the sweep consume.

Offergrid sends two payload shapes (docs/offergrid-api.md, Webhooks): flat
`{"event", "orderId", "itemId", "offerId", "timestamp"}` and nested `{"event", "data": {...}}`.
`OffergridEvent.from_payload` normalises both to one model; fields we do not know are kept in
`extra`, unknown event types are kept too (Decision 2). The normalisation itself is
`webhooks/payload.py` (no pydantic: the webhook ingress queues its result without building this
model). What is queued for the order processor (`QueuedMessage`, its dedup key) is the orders
package's contract: `orders/queue.py`.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

from offergrid_integration.identifiers import identifier_problem
from offergrid_integration.webhooks.payload import (
    EVENT_TYPE_MAX_LENGTH,
    MAX_JSON_DEPTH,
    EventType,
    InvalidEventPayload,
    PayloadReason,
    WebhookEvent,
    is_event_type,
    json_depth_exceeds,
    known_event_type,
    normalise_payload,
)

__all__ = [
    "EVENT_TYPE_MAX_LENGTH",
    "MAX_JSON_DEPTH",
    "MODEL_CONFIG",
    "EventType",
    "InvalidEventPayload",
    "OffergridEvent",
    "PayloadReason",
    "json_depth_exceeds",
]

# Shared by the queued message (orders/queue.py): frozen, strict about fields, camelCase on the wire.
MODEL_CONFIG: Final = ConfigDict(
    frozen=True,
    extra="forbid",
    validate_by_name=True,
    validate_by_alias=True,
    serialize_by_alias=True,
)


class OffergridEvent(BaseModel):
    """A normalised Offergrid webhook event (also built by the sweep for an order item it found)."""

    model_config = MODEL_CONFIG

    event: str
    order_id: str | None = Field(default=None, alias="orderId")
    item_id: str | None = Field(default=None, alias="itemId")
    offer_id: str | None = Field(default=None, alias="offerId")
    reason: str | None = None
    timestamp: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("event")
    @classmethod
    def _usable_event_type(cls, value: str) -> str:
        # The ingress's rule itself (webhooks.payload): what it queued is never malformed here.
        if not is_event_type(value):
            raise ValueError(f"event must be 1-{EVENT_TYPE_MAX_LENGTH} printable ASCII characters")
        return value

    @field_validator("order_id", "item_id", "offer_id")
    @classmethod
    def _usable_identifier(cls, value: str | None) -> str | None:
        # The processor validates queued envelopes with this model too: an id that slipped past an
        # older ingress is a malformed message there, never a DynamoDB or UnicodeEncodeError retry loop.
        if value is not None and (problem := identifier_problem(value)) is not None:
            raise ValueError(f"identifier {problem}")
        return value

    @property
    def known_type(self) -> EventType | None:
        return known_event_type(self.event)

    @classmethod
    def from_payload(cls, payload: object) -> OffergridEvent:
        """Normalise a parsed webhook body (flat or `data`-nested); `InvalidEventPayload` if not one
        (the rules: `webhooks.payload.normalise_payload`)."""
        return cls.from_webhook_event(normalise_payload(payload))

    @classmethod
    def from_webhook_event(cls, event: WebhookEvent) -> OffergridEvent:
        return cls.model_validate(
            {
                "event": event.event,
                "order_id": event.order_id,
                "item_id": event.item_id,
                "offer_id": event.offer_id,
                "reason": event.reason,
                "timestamp": event.timestamp,
                "extra": event.extra,
            }
        )
