"""The orders queue's wire format without pydantic: the body, its attributes, the dedup key, the
size SQS counts, and the claim check that stands in for a body too large for it.

`orders/queue.py` is the contract (`QueuedMessage`, the pydantic model the processor parses the
body into); this module is what that contract writes, shared by `QueuedMessage.to_json` and the
webhook ingress. The ingress queues a `WebhookMessage` built from a `webhooks.payload.WebhookEvent`
(already checked against every rule of the model), so its cold start never imports pydantic; the
body is byte for byte the one `QueuedMessage` writes for the same event.

Dedup keys (Decision 3) come from what the event is about, never from when it was sent nor from a
message id, so a redelivered webhook and the pending-order sweep finding the same item agree.

The body is compact JSON in UTF-8 (docs/decisions.md#17): text from Offergrid as itself, not
`\\u`-escaped (which tripled Cyrillic text), lone surrogates as U+FFFD (`text.json_text`), and the
two characters SQS refuses that JSON may carry raw (U+FFFE, U+FFFF) escaped. A message SQS still
cannot hold (`sqs_message_size` over `SQS_MAX_MESSAGE_BYTES`) is kept in S3 and queued as a
`ClaimCheck` pointing at it (`sqs_queue.SqsQueue` decides, the processor's pipeline reads it back).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, Protocol
from urllib.parse import quote

from offergrid_integration.text import json_text
from offergrid_integration.webhooks.payload import EventType, WebhookEvent, known_event_type

__all__ = [
    "MAX_DEDUP_KEY_LENGTH",
    "SQS_MAX_MESSAGE_BYTES",
    "ClaimCheck",
    "ClaimCheckMissing",
    "ClaimCheckStore",
    "MessageFields",
    "MessageSource",
    "MessageTooLarge",
    "QueuePort",
    "QueueSendError",
    "WebhookMessage",
    "dedup_key_from_wire",
    "dedup_key_part",
    "format_timestamp",
    "message_attributes",
    "message_body",
    "sqs_message_size",
    "utc_from_epoch",
    "webhook_message",
]

MAX_DEDUP_KEY_LENGTH: Final = 256
# What SQS takes in one message (the orders queue's MaximumMessageSize, pinned in template.yaml): the
# body's UTF-8 bytes plus, per attribute, its name, data type and value. A message of exactly this
# size is taken.
SQS_MAX_MESSAGE_BYTES: Final = 262_144
_STRING_TYPE_BYTES: Final = len(b"String")
# JSON may hold these raw; SQS refuses them (its characters: #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD
# #x10000-#x10FFFF). The writer never puts a lone surrogate nor a raw C0 control in a body.
_SQS_REFUSED_RAW: Final = {0xFFFE: "\\ufffe", 0xFFFF: "\\uffff"}
_HASH_HEX_LENGTH: Final = 32  # 128 bits of SHA-256: collision-free for any realistic volume

# "reconcile": a repair queued by the scheduled reconciliation (orders/reconcile.py); "replay": an
# archived delivery queued again by `replay archive` (same event, same dedup key as the webhook's).
MessageSource = Literal["webhook", "sweep", "provider", "reconcile", "replay"]


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
    """The queue body of `message`, its event in wire form: compact JSON as SQS takes it, whatever
    characters the payload holds (UTF-8 text, lone surrogates as U+FFFD, U+FFFE/U+FFFF escaped)."""
    document = {
        "event": event,
        "dedupKey": message.dedup_key,
        "receivedAt": format_timestamp(message.received_at),
        "source": message.source,
        "correlationId": message.correlation_id,
    }
    body = json_text(document)
    if "\ufffe" in body or "\uffff" in body:  # a search, not a per-character pass, in the usual case
        body = body.translate(_SQS_REFUSED_RAW)
    return body


def sqs_message_size(message_body: str, attributes: Mapping[str, str]) -> int:
    """What SQS counts against its message limit: the body's UTF-8 bytes plus, per attribute sent
    (the adapter drops empty values), its name, its data type (`String`) and its value."""
    body_bytes = (
        len(message_body) if message_body.isascii() else len(message_body.encode("utf-8", "surrogatepass"))
    )
    return body_bytes + sum(
        len(name.encode()) + _STRING_TYPE_BYTES + len(value.encode("utf-8", "surrogatepass"))
        for name, value in attributes.items()
        if value
    )


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


class MessageTooLarge(QueueSendError):
    """Larger than the queue takes, and no claim-check store to keep it in: retrying cannot help."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__("MessageTooLarge")
        self.size = size
        self.limit = limit


# --- the claim check ---------------------------------------------------------------------------------
_CLAIM_CHECK_PREFIX: Final = '{"claimCheck":'


@dataclass(frozen=True, slots=True)
class ClaimCheck:
    """Where a queue body too large for SQS is kept: an S3 object. Queued in its place as
    `{"claimCheck":{"bucket":...,"key":...,"bytes":...}}`, with the message's own attributes."""

    bucket: str
    key: str
    size: int

    def to_json(self) -> str:
        return json.dumps(
            {"claimCheck": {"bucket": self.bucket, "key": self.key, "bytes": self.size}},
            separators=(",", ":"),
        )

    @classmethod
    def from_body(cls, body: str) -> ClaimCheck | None:
        """The claim check a queue body is, or None when it is a message itself."""
        if not body.startswith(_CLAIM_CHECK_PREFIX):
            return None
        try:
            pointer = json.loads(body)["claimCheck"]
            bucket, key, size = pointer["bucket"], pointer["key"], pointer["bytes"]
        except (ValueError, TypeError, KeyError):
            return None
        if not (
            isinstance(bucket, str) and bucket and isinstance(key, str) and key and isinstance(size, int)
        ):
            return None
        return cls(bucket, key, size)


class ClaimCheckMissing(LookupError):
    """The object a claim check points at is gone (expired, deleted): retrying cannot bring it back."""


class ClaimCheckStore(Protocol):
    """Where bodies too large for the queue are kept (`sqs_queue.S3ClaimChecks`)."""

    def put(self, message_body: str) -> ClaimCheck:
        """Keep `message_body`; raise `QueueSendError` when it was not kept."""
        ...

    def get(self, check: ClaimCheck) -> str:
        """The body `check` points at; `ClaimCheckMissing` when it is gone."""
        ...


class QueuePort(Protocol):
    def send(self, message_body: str, attributes: dict[str, str]) -> str | None:
        """Store one message (String attributes); return its id if the queue gives one.

        Raise `QueueSendError` when the message was not stored.
        """
        ...
