"""The orders queue's contract: the message the ingress, the sweep and the reconciliation queue, its
dedup key, and the queue as a port (the order processor is the one consumer).

`QueuedMessage` is the SQS message body: one normalised event (`webhooks.events.OffergridEvent`),
its dedup key, when and from where we got it, and the correlation id. Dedup keys (Decision 3) come
from what the event is about, never from when it was sent nor from a message id, so a redelivered
webhook and the pending-order sweep finding the same item agree.

No boto3 here (domain modules never import it); `sqs_queue.SqsQueue` is the adapter. What the
model writes (body, attributes, dedup key) is `wire.py`, which the webhook ingress uses without
pydantic.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Final

from pydantic import BaseModel, Field, field_serializer, field_validator

from offergrid_integration.orders.wire import (
    MAX_DEDUP_KEY_LENGTH,
    MessageSource,
    QueuePort,
    QueueSendError,
    dedup_key_from_wire,
    dedup_key_part,
    format_timestamp,
    message_attributes,
    message_body,
    utc_from_epoch,
)
from offergrid_integration.webhooks.events import MODEL_CONFIG, EventType, OffergridEvent

__all__ = [
    "MAX_DEDUP_KEY_LENGTH",
    "RECONCILE_CANCEL",
    "RECONCILE_OPEN",
    "MessageSource",
    "QueuePort",
    "QueueSendError",
    "QueuedMessage",
    "build_queued_message",
    "dedup_key_for",
    "dedup_key_part",
    "format_timestamp",
    "queued_message_for_order_item",
    "send_queued_message",
    "utc_from_epoch",
]

# The event types of the repair messages the reconciliation queues (acted on only from source
# "reconcile": a webhook cannot order a repair).
RECONCILE_OPEN: Final = "reconcile.open_work_order"
RECONCILE_CANCEL: Final = "reconcile.cancel_work_order"


def dedup_key_for(event: OffergridEvent) -> str:
    """Decision 3: the idempotency key of `event` (the rules: `wire.dedup_key_from_wire`)."""
    return dedup_key_from_wire(event.model_dump(mode="json"))


class QueuedMessage(BaseModel):
    """The body of one orders-queue message: one normalised event and how to deduplicate it."""

    model_config = MODEL_CONFIG

    event: OffergridEvent
    dedup_key: str = Field(alias="dedupKey", min_length=1, max_length=MAX_DEDUP_KEY_LENGTH + 50)
    received_at: datetime = Field(alias="receivedAt")
    source: MessageSource
    correlation_id: str | None = Field(default=None, alias="correlationId")

    @field_validator("dedup_key")
    @classmethod
    def _printable_key(cls, value: str) -> str:
        # Every key we write is printable ASCII; one holding a control character or a lone surrogate
        # (a hand-made message) could never key an idempotency record: malformed, not a retry loop.
        if not value.isprintable():
            raise ValueError("dedupKey must be printable text")
        return value

    @field_validator("received_at")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("receivedAt must carry a time zone")
        return value.astimezone(UTC)

    @field_serializer("received_at")
    def _serialise_received_at(self, value: datetime) -> str:
        return format_timestamp(value)

    def to_json(self) -> str:
        """Compact UTF-8 JSON as SQS takes it, whatever characters the payload holds (`wire.message_body`)."""
        return message_body(self.event.model_dump(mode="json"), self)

    @classmethod
    def from_json(cls, body: str | bytes) -> QueuedMessage:
        # `json.loads`, not `model_validate_json`: pydantic's parser refuses `\ud800`-style escapes
        # of lone surrogates, which a sender may legitimately put in a string we keep in `extra`.
        return cls.model_validate(json.loads(body))

    def message_attributes(self) -> dict[str, str]:
        """SQS String attributes, so consumers and queue tooling can route without parsing the body."""
        return message_attributes(self.event.event, self)


def build_queued_message(
    event: OffergridEvent,
    *,
    received_at: datetime,
    source: MessageSource,
    correlation_id: str | None = None,
) -> QueuedMessage:
    return QueuedMessage(
        event=event,
        dedupKey=dedup_key_for(event),
        receivedAt=received_at,
        source=source,
        correlationId=correlation_id,
    )


def queued_message_for_order_item(
    *,
    item_id: str,
    order_id: str | None,
    offer_id: str | None,
    received_at: datetime,
    created_at: str | None = None,
    correlation_id: str | None = None,
    source: MessageSource = "sweep",
) -> QueuedMessage:
    """What the pending-order sweep queues for an item found by listing (Decision 7).

    It is the `order.created` event the webhook would have carried, so its dedup key
    (`order.created:<itemId>`) is the webhook's and the processor decides the item only once.
    """
    event = OffergridEvent(
        event=EventType.ORDER_CREATED.value,
        order_id=order_id,
        item_id=item_id,
        offer_id=offer_id,
        timestamp=created_at,
    )
    return build_queued_message(event, received_at=received_at, source=source, correlation_id=correlation_id)


def send_queued_message(queue: QueuePort, message: QueuedMessage) -> str | None:
    """Send `message` as the orders queue expects it: JSON body plus its String attributes."""
    return queue.send(message.to_json(), message.message_attributes())
