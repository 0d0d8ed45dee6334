"""The one internal event model: what the ingress queues and the processor and the sweep consume.

Offergrid sends two payload shapes (docs/offergrid-api.md, Webhooks): flat
`{"event", "orderId", "itemId", "offerId", "timestamp"}` and nested `{"event", "data": {...}}`.
`OffergridEvent.from_payload` normalises both to one model; fields we do not know are kept in
`extra`, unknown event types are kept too (Decision 2). `QueuedMessage` is the SQS message body:
the event, its dedup key, when and from where we got it, and the correlation id.

Dedup keys (Decision 3) come from what the event is about, never from when it was sent nor from a
message id, so a redelivered webhook and the pending-order sweep finding the same item agree.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from offergrid_integration.identifiers import identifier_problem

EVENT_TYPE_MAX_LENGTH: Final = 100
# Printable ASCII without spaces: every real event type fits, and the value is then safe as an SQS
# message attribute and a log field whatever a sender puts there.
_EVENT_TYPE_PATTERN: Final = r"^[!-~]{1," + str(EVENT_TYPE_MAX_LENGTH) + r"}$"
_EVENT_TYPE_RE: Final = re.compile(_EVENT_TYPE_PATTERN)
MAX_DEDUP_KEY_LENGTH: Final = 256
# Offergrid's payloads nest two or three levels (envelope, data, metadata). A body nested hundreds of
# levels deep is hostile: pydantic refuses to serialise it and the stdlib recurses on it.
MAX_JSON_DEPTH: Final = 32
_HASH_HEX_LENGTH: Final = 32  # 128 bits of SHA-256: collision-free for any realistic volume


class EventType(StrEnum):
    """The event types we act on. `offer.ordered` (announced by Offergrid, payload undocumented) and
    anything else is an unknown type: queued with a content-hash key and counted, never refused."""

    ORDER_CREATED = "order.created"
    ORDER_CANCELLED = "order.cancelled"


class PayloadReason(StrEnum):
    """Why a body is not a webhook we can queue; the values form the `Reason` metric dimension."""

    NOT_JSON = "body_not_json"
    NOT_OBJECT = "body_not_object"
    EVENT_MISSING = "event_missing"
    EVENT_INVALID = "event_invalid"  # not a string, empty, too long, or not printable ASCII
    FIELD_INVALID = "field_invalid"  # an id that breaks docs/decisions.md#12, a timestamp of no usable type
    TOO_DEEP = "body_too_deep"  # nested deeper than MAX_JSON_DEPTH: no webhook needs it


class InvalidEventPayload(ValueError):
    """The body is not a normalisable webhook (400). Carries a reason code, never the body."""

    def __init__(self, reason: PayloadReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason


# "reconcile": a repair queued by the scheduled reconciliation (orders/reconcile.py).
MessageSource = Literal["webhook", "sweep", "provider", "reconcile"]

_ID_FIELDS: Final = {"orderId": "order_id", "itemId": "item_id", "offerId": "offer_id"}
_KNOWN_FIELDS: Final = frozenset({"event", *_ID_FIELDS, "reason", "timestamp"})

_MODEL_CONFIG: Final = ConfigDict(
    frozen=True,
    extra="forbid",
    validate_by_name=True,
    validate_by_alias=True,
    serialize_by_alias=True,
)


class OffergridEvent(BaseModel):
    """A normalised Offergrid webhook event (also built by the sweep for an order item it found)."""

    model_config = _MODEL_CONFIG

    event: Annotated[str, Field(pattern=_EVENT_TYPE_PATTERN)]
    order_id: str | None = Field(default=None, alias="orderId")
    item_id: str | None = Field(default=None, alias="itemId")
    offer_id: str | None = Field(default=None, alias="offerId")
    reason: str | None = None
    timestamp: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

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
        try:
            return EventType(self.event)
        except ValueError:
            return None

    @classmethod
    def from_payload(cls, payload: object) -> OffergridEvent:
        """Normalise a parsed webhook body (flat or `data`-nested); `InvalidEventPayload` if not one.

        In the nested shape the fields of `data` win over same-named top-level ones (the top level
        is the envelope). A `data` that is not an object is an unknown field like any other.
        """
        if not isinstance(payload, Mapping):
            raise InvalidEventPayload(PayloadReason.NOT_OBJECT, "body is not a JSON object")
        if json_depth_exceeds(payload, MAX_JSON_DEPTH):
            raise InvalidEventPayload(PayloadReason.TOO_DEEP, f"nested deeper than {MAX_JSON_DEPTH} levels")
        if "event" not in payload:
            raise InvalidEventPayload(PayloadReason.EVENT_MISSING, "no 'event' field")
        event = payload["event"]
        if not isinstance(event, str) or not _EVENT_TYPE_RE.match(event):
            raise InvalidEventPayload(
                PayloadReason.EVENT_INVALID,
                f"'event' must be 1-{EVENT_TYPE_MAX_LENGTH} printable ASCII characters",
            )

        fields: dict[str, Any] = {key: value for key, value in payload.items() if key != "event"}
        data = fields.get("data")
        if isinstance(data, Mapping):
            del fields["data"]
            fields.update(data)
            fields.pop("event", None)  # the envelope's event type is the one that counts

        normalised: dict[str, Any] = {"event": event}
        for wire_name, attribute in _ID_FIELDS.items():
            normalised[attribute] = _identifier(wire_name, fields.pop(wire_name, None))
        normalised["reason"] = _reason(fields.pop("reason", None))
        normalised["timestamp"] = _timestamp(fields.pop("timestamp", None))
        normalised["extra"] = fields
        return cls.model_validate(normalised)


def _identifier(name: str, value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidEventPayload(PayloadReason.FIELD_INVALID, f"'{name}' must be a string")
    problem = identifier_problem(value)
    if problem is not None:
        raise InvalidEventPayload(PayloadReason.FIELD_INVALID, f"'{name}' {problem}")
    return value


def json_depth_exceeds(value: object, limit: int) -> bool:
    """Whether parsed JSON nests more than `limit` containers deep (iterative: no recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, Mapping):
            children: Any = current.values()
        elif isinstance(current, list):
            children = current
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _reason(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    # A structured reason is still worth keeping for whoever reads the cancellation.
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _timestamp(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise InvalidEventPayload(PayloadReason.FIELD_INVALID, "'timestamp' must be a string or a number")


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

    model_config = _MODEL_CONFIG

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
