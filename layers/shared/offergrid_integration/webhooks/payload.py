"""A webhook body normalised without pydantic: the rules of `OffergridEvent.from_payload`, run once.

Offergrid sends two payload shapes (docs/offergrid-api.md, Webhooks): flat
`{"event", "orderId", "itemId", "offerId", "timestamp"}` and nested `{"event", "data": {...}}`.
`normalise_payload` checks a parsed body and returns `WebhookEvent`, the normalised event as plain
data; `InvalidEventPayload` (with a `PayloadReason`) if it is not a webhook we can queue. Fields we
do not know are kept in `extra`, unknown event types are kept too (Decision 2).

The ingress queues a `WebhookEvent` as it is (`orders/wire.py` writes the queue body); the
processor, the sweep and the reconciliation use the pydantic model built from the same fields
(`webhooks/events.OffergridEvent`). Every rule the model enforces is checked here first, so the two
cannot disagree: the webhook's cold start imports no pydantic.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from offergrid_integration.identifiers import identifier_problem

EVENT_TYPE_MAX_LENGTH: Final = 100
# Printable ASCII without spaces: every real event type fits, and the value is then safe as an SQS
# message attribute and a log field whatever a sender puts there. The whole value must match
# (`fullmatch`: Python's `$` also matches before a final newline). The processor's model checks
# the same function, so an event type the ingress queued is never malformed there.
_EVENT_TYPE_RE: Final = re.compile(r"[!-~]{1," + str(EVENT_TYPE_MAX_LENGTH) + r"}")
# Offergrid's payloads nest two or three levels (envelope, data, metadata). A body nested hundreds of
# levels deep is hostile: pydantic refuses to serialise it and the stdlib recurses on it.
MAX_JSON_DEPTH: Final = 32
# Ours, never Offergrid's: the event type of the deploy check's signed delivery (the pre-traffic hook,
# `make smoke`). Unknown to the processor on purpose (docs/decisions.md#2: queued, kept, never acted
# on); the ingress archives it apart from Offergrid's deliveries and leaves it out of `WebhookVerified`.
DEPLOY_CHECK_EVENT: Final = "offergrid-integration.deploy-check"


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


ID_FIELDS: Final = {"orderId": "order_id", "itemId": "item_id", "offerId": "offer_id"}


def is_event_type(value: object) -> bool:
    """Whether `value` is a usable event type (known or not): the one rule of both sides."""
    return isinstance(value, str) and _EVENT_TYPE_RE.fullmatch(value) is not None


def known_event_type(event: str) -> EventType | None:
    try:
        return EventType(event)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A normalised webhook event as plain data (the fields of `OffergridEvent`, already valid)."""

    event: str
    order_id: str | None = None
    item_id: str | None = None
    offer_id: str | None = None
    reason: str | None = None
    timestamp: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def known_type(self) -> EventType | None:
        return known_event_type(self.event)

    def wire(self) -> dict[str, Any]:
        """The event as the queue body carries it: what `OffergridEvent.model_dump(mode="json")`
        gives (camelCase, every field, a float JSON cannot hold as null)."""
        return {
            "event": self.event,
            "orderId": self.order_id,
            "itemId": self.item_id,
            "offerId": self.offer_id,
            "reason": self.reason,
            "timestamp": self.timestamp,
            "extra": json_mode(self.extra),
        }


def normalise_payload(payload: object) -> WebhookEvent:
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
    if not is_event_type(event):
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

    order_id, item_id, offer_id = (_identifier(name, fields.pop(name, None)) for name in ID_FIELDS)
    return WebhookEvent(
        event=event,
        order_id=order_id,
        item_id=item_id,
        offer_id=offer_id,
        reason=_reason(fields.pop("reason", None)),
        timestamp=_timestamp(fields.pop("timestamp", None)),
        extra=fields,
    )


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


def json_mode(value: Any) -> Any:
    """Parsed JSON as pydantic's JSON mode dumps it: unchanged, but for floats JSON cannot hold
    (`1e400` parses to infinity), which become None. The depth is bounded (`MAX_JSON_DEPTH`)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: json_mode(child) for key, child in value.items()}
    if isinstance(value, list):
        return [json_mode(child) for child in value]
    return value


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
