"""The orders queue's wire format without pydantic: the body, its attributes, the dedup key.

`orders/queue.py` is the contract (`QueuedMessage`, the pydantic model the processor parses the
body into); this module is what that contract writes, shared by `QueuedMessage.to_json` and the
webhook ingress. The ingress queues a `WebhookMessage` built from a `webhooks.payload.WebhookEvent`
(already checked against every rule of the model), so its cold start never imports pydantic; the
body is byte for byte the one `QueuedMessage` writes for the same event.

Dedup keys (Decision 3) come from what the event is about, never from when it was sent nor from a
message id, so a redelivered webhook and the pending-order sweep finding the same item agree.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, Protocol
from urllib.parse import quote

from offergrid_integration.webhooks.payload import EventType, WebhookEvent, known_event_type

__all__ = [
    "MAX_DEDUP_KEY_LENGTH",
    "MessageFields",
    "MessageSource",
    "QueuePort",
    "QueueSendError",
    "WebhookMessage",
    "dedup_key_from_wire",
    "dedup_key_part",
    "format_timestamp",
    "message_attributes",
    "message_body",
    "utc_from_epoch",
    "webhook_message",
]

MAX_DEDUP_KEY_LENGTH: Final = 256
_HASH_HEX_LENGTH: Final = 32  # 128 bits of SHA-256: collision-free for any realistic volume

# "reconcile": a repair queued by the scheduled reconciliation (orders/reconcile.py).
MessageSource = Literal["webhook", "sweep", "provider", "reconcile"]


def dedup_key_from_wire(event: Mapping[str, Any]) -> str:
    """Decision 3: the idempotency key of an event in its wire form (`OffergridEvent.model_dump(
    mode="json")`, `WebhookEvent.wire()`), readable and deterministic.

    - `order.created`   -> `order.created:<itemId>`
    - `order.cancelled` -> `order.cancelled:<orderId>` or `order.cancelled:<orderId>:<itemId>`
    - anything else (unknown types, or a known type without the ids it needs) ->
      `<event>:sha256:<hash of the canonical event without its timestamp>`

    Ids are percent-encoded (`:` and non-ASCII) so keys are unambiguous ASCII. The event's own
    `timestamp` is left out of the hash: it may be the send time, and a redelivery must map to the
    same key. Keys longer than `MAX_DEDUP_KEY_LENGTH` (absurd ids) fall back to the hash form.
    """
    event_type: str = event["event"]
    order_id: str | None = event.get("orderId")
    item_id: str | None = event.get("itemId")
    key: str | None = None
    match known_event_type(event_type):
        case EventType.ORDER_CREATED if item_id is not None:
            key = f"{event_type}:{dedup_key_part(item_id)}"
        case EventType.ORDER_CANCELLED if order_id is not None:
            key = f"{event_type}:{dedup_key_part(order_id)}"
            if item_id is not None:
                key += f":{dedup_key_part(item_id)}"
        case _:  # another type, or one of the above without its id: the content hash below
            key = None
    if key is None or len(key) > MAX_DEDUP_KEY_LENGTH:
        key = f"{event_type}:sha256:{_canonical_hash(event)}"
    return key


def dedup_key_part(identifier: str) -> str:
    """An identifier as one dedup-key segment: percent-encoded, so no id can contain the ':'
    separator and two different ids never give the same key (shared with provider status events)."""
    return quote(identifier, safe="-_.~")


def _canonical_hash(event: Mapping[str, Any]) -> str:
    canonical = json.dumps(
        {name: value for name, value in event.items() if name != "timestamp"},
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


class MessageFields(Protocol):
    """What a queued message carries besides its event (`QueuedMessage`, `WebhookMessage`)."""

    @property
    def dedup_key(self) -> str: ...
    @property
    def received_at(self) -> datetime: ...
    @property
    def source(self) -> MessageSource: ...
    @property
    def correlation_id(self) -> str | None: ...


def message_body(event: Mapping[str, Any], message: MessageFields) -> str:
    """The queue body of `message`, its event in wire form: compact, ASCII-only JSON (a valid SQS
    body whatever characters the payload holds)."""
    document = {
        "event": event,
        "dedupKey": message.dedup_key,
        "receivedAt": format_timestamp(message.received_at),
        "source": message.source,
        "correlationId": message.correlation_id,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=True)


def message_attributes(event_type: str, message: MessageFields) -> dict[str, str]:
    """SQS String attributes, so consumers and queue tooling can route without parsing the body."""
    attributes = {
        "dedupKey": message.dedup_key,
        "eventType": event_type,
        "receivedAt": format_timestamp(message.received_at),
        "source": message.source,
    }
    if message.correlation_id:
        attributes["correlationId"] = message.correlation_id
    return attributes


@dataclass(frozen=True, slots=True)
class WebhookMessage:
    """What the ingress queues for one webhook: the body and attributes `QueuedMessage` would give."""

    event: WebhookEvent
    dedup_key: str
    received_at: datetime
    source: MessageSource
    correlation_id: str | None = None

    def to_json(self) -> str:
        return message_body(self.event.wire(), self)

    def message_attributes(self) -> dict[str, str]:
        return message_attributes(self.event.event, self)


def webhook_message(
    event: WebhookEvent, *, received_at: datetime, source: MessageSource, correlation_id: str | None = None
) -> WebhookMessage:
    if received_at.tzinfo is None:  # as QueuedMessage refuses it
        raise ValueError("receivedAt must carry a time zone")
    return WebhookMessage(
        event=event,
        dedup_key=dedup_key_from_wire(event.wire()),
        received_at=received_at.astimezone(UTC),
        source=source,
        correlation_id=correlation_id,
    )


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
