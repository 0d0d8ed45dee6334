"""The one internal event model: what the ingress queues and the processor and the sweep consume.

Offergrid sends two payload shapes (docs/offergrid-api.md, Webhooks): flat
`{"event", "orderId", "itemId", "offerId", "timestamp"}` and nested `{"event", "data": {...}}`.
`OffergridEvent.from_payload` normalises both to one model; fields we do not know are kept in
`extra`, unknown event types are kept too (Decision 2). What is queued for the order processor
(`QueuedMessage`, its dedup key) is the orders package's contract: `orders/queue.py`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

from offergrid_integration.identifiers import identifier_problem

EVENT_TYPE_MAX_LENGTH: Final = 100
# Printable ASCII without spaces: every real event type fits, and the value is then safe as an SQS
# message attribute and a log field whatever a sender puts there.
_EVENT_TYPE_PATTERN: Final = r"^[!-~]{1," + str(EVENT_TYPE_MAX_LENGTH) + r"}$"
_EVENT_TYPE_RE: Final = re.compile(_EVENT_TYPE_PATTERN)
# Offergrid's payloads nest two or three levels (envelope, data, metadata). A body nested hundreds of
# levels deep is hostile: pydantic refuses to serialise it and the stdlib recurses on it.
MAX_JSON_DEPTH: Final = 32


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


_ID_FIELDS: Final = {"orderId": "order_id", "itemId": "item_id", "offerId": "offer_id"}
_KNOWN_FIELDS: Final = frozenset({"event", *_ID_FIELDS, "reason", "timestamp"})

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
