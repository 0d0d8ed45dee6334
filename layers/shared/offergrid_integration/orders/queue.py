"""The orders queue's contract: the message the ingress, the sweep and the reconciliation queue, its
dedup key, and the queue as a port (the order processor is the one consumer).

`QueuedMessage` is the SQS message body: one normalised event (`webhooks.events.OffergridEvent`),
its dedup key, when and from where we got it, and the correlation id. Dedup keys (Decision 3) come
from what the event is about, never from when it was sent nor from a message id, so a redelivered
webhook and the pending-order sweep finding the same item agree.

No boto3 here (domain modules never import it); `sqs_queue.SqsQueue` is the adapter.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Final, Literal, Protocol
from urllib.parse import quote

from pydantic import BaseModel, Field, field_serializer, field_validator

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

MAX_DEDUP_KEY_LENGTH: Final = 256
_HASH_HEX_LENGTH: Final = 32  # 128 bits of SHA-256: collision-free for any realistic volume

# "reconcile": a repair queued by the scheduled reconciliation (orders/reconcile.py).
MessageSource = Literal["webhook", "sweep", "provider", "reconcile"]
# The event types of the repair messages the reconciliation queues (acted on only from source
# "reconcile": a webhook cannot order a repair).
RECONCILE_OPEN: Final = "reconcile.open_work_order"
RECONCILE_CANCEL: Final = "reconcile.cancel_work_order"


def dedup_key_for(event: OffergridEvent) -> str:
    """Decision 3: the idempotency key of `event`, readable and deterministic.

    - `order.created`   -> `order.created:<itemId>`
    - `order.cancelled` -> `order.cancelled:<orderId>` or `order.cancelled:<orderId>:<itemId>`
    - anything else (unknown types, or a known type without the ids it needs) ->
      `<event>:sha256:<hash of the canonical event without its timestamp>`

    Ids are percent-encoded (`:` and non-ASCII) so keys are unambiguous ASCII. The event's own
    `timestamp` is left out of the hash: it may be the send time, and a redelivery must map to the
    same key. Keys longer than `MAX_DEDUP_KEY_LENGTH` (absurd ids) fall back to the hash form.
    """
    key: str | None = None
    match event.known_type:
        case EventType.ORDER_CREATED if event.item_id is not None:
            key = f"{event.event}:{dedup_key_part(event.item_id)}"
        case EventType.ORDER_CANCELLED if event.order_id is not None:
            key = f"{event.event}:{dedup_key_part(event.order_id)}"
            if event.item_id is not None:
                key += f":{dedup_key_part(event.item_id)}"
        case _:
            pass
    if key is None or len(key) > MAX_DEDUP_KEY_LENGTH:
        key = f"{event.event}:sha256:{_canonical_hash(event)}"
    return key


def dedup_key_part(identifier: str) -> str:
    """An identifier as one dedup-key segment: percent-encoded, so no id can contain the ':'
    separator and two different ids never give the same key (shared with provider status events)."""
    return quote(identifier, safe="-_.~")


def _canonical_hash(event: OffergridEvent) -> str:
    canonical = json.dumps(
        event.model_dump(mode="json", exclude={"timestamp"}),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:_HASH_HEX_LENGTH]


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and `Z`: `2026-11-27T14:41:00.123Z`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class QueuedMessage(BaseModel):
    """The body of one orders-queue message: one normalised event and how to deduplicate it."""

    model_config = MODEL_CONFIG

    event: OffergridEvent
    dedup_key: str = Field(alias="dedupKey", min_length=1, max_length=MAX_DEDUP_KEY_LENGTH + 50)
    received_at: datetime = Field(alias="receivedAt")
    source: MessageSource
    correlation_id: str | None = Field(default=None, alias="correlationId")

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
        """Compact, ASCII-only JSON: a valid SQS body whatever characters the payload holds."""
        return json.dumps(self.model_dump(mode="json"), separators=(",", ":"), ensure_ascii=True)

    @classmethod
    def from_json(cls, body: str | bytes) -> QueuedMessage:
        # `json.loads`, not `model_validate_json`: pydantic's parser refuses `\ud800`-style escapes
        # of lone surrogates, which a sender may legitimately put in a string we keep in `extra`.
        return cls.model_validate(json.loads(body))

    def message_attributes(self) -> dict[str, str]:
        """SQS String attributes, so consumers and queue tooling can route without parsing the body."""
        attributes = {
            "dedupKey": self.dedup_key,
            "eventType": self.event.event,
            "receivedAt": format_timestamp(self.received_at),
            "source": self.source,
        }
        if self.correlation_id:
            attributes["correlationId"] = self.correlation_id
        return attributes


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


class QueueSendError(Exception):
    """The queue did not accept the message: nothing was stored, the sender must retry.

    Carries the service's error code (e.g. `AWS.SimpleQueueService.NonExistentQueue`), never the
    message body.
    """

    def __init__(self, code: str) -> None:
        super().__init__(f"queue rejected the message: {code}")
        self.code = code


class QueuePort(Protocol):
    def send(self, message_body: str, attributes: dict[str, str]) -> str | None:
        """Store one message (String attributes); return its id if the queue gives one.

        Raise `QueueSendError` when the message was not stored.
        """
        ...


def send_queued_message(queue: QueuePort, message: QueuedMessage) -> str | None:
    """Send `message` as the orders queue expects it: JSON body plus its String attributes."""
    return queue.send(message.to_json(), message.message_attributes())
