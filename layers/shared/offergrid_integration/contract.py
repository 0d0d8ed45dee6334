"""The orders queue's contract, one implementation: the event types, the normalised event, the queued
envelope and its dedup key, written by the webhook, the sweep and the reconciliation, read by the
processor. Stdlib only (the webhook's cold start).

Offergrid sends flat `{"event", "orderId", ...}` and nested `{"event", "data": {...}}` payloads
(docs/offergrid-api.md); `normalise_payload` makes one `OffergridEvent` of both, keeping unknown fields
in `extra` and unknown event types too (Decision 2). The body is compact UTF-8 JSON (Decision 17).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, Literal, get_args
from urllib.parse import quote

from offergrid_integration.identifiers import identifier_problem
from offergrid_integration.text import json_text

EVENT_TYPE_MAX_LENGTH: Final = 100
# Printable ASCII without spaces: every real event type fits, and the value is then safe as an SQS
# attribute and a log field. `fullmatch`: Python's `$` also matches before a final newline.
_EVENT_TYPE_RE: Final = re.compile(r"[!-~]{1," + str(EVENT_TYPE_MAX_LENGTH) + r"}")
# Offergrid nests two or three levels; hundreds of levels are hostile (the stdlib recurses on them).
MAX_JSON_DEPTH: Final = 32
# Ours, never Offergrid's: the deploy check's event type (the pre-traffic hook, `make smoke`), unknown
# to the processor on purpose (docs/decisions.md#2).
DEPLOY_CHECK_EVENT: Final = "offergrid-integration.deploy-check"
MAX_DEDUP_KEY_LENGTH: Final = 256
_HASH_HEX_LENGTH: Final = 32  # 128 bits of SHA-256: collision-free for any realistic volume
# JSON may hold these raw; SQS refuses them. The writer never puts a lone surrogate or raw C0 in a body.
_SQS_REFUSED_RAW: Final = {0xFFFE: "\\ufffe", 0xFFFF: "\\uffff"}


class EventType(StrEnum):
    """The Offergrid event types we act on; any other is queued and counted, never refused. Adding one:
    docs/architecture.md, "Add an event type"."""

    ORDER_CREATED = "order.created"
    ORDER_CANCELLED = "order.cancelled"


# The repairs the reconciliation queues (acted on only from source "reconcile").
RECONCILE_OPEN: Final = "reconcile.open_work_order"
RECONCILE_CANCEL: Final = "reconcile.cancel_work_order"

# "replay": an archived delivery queued again by `replay archive` (the webhook's event and dedup key).
MessageSource = Literal["webhook", "sweep", "provider", "reconcile", "replay"]
_SOURCES: Final = frozenset(get_args(MessageSource))


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

    def __init__(self, reason: PayloadReason, detail: str, *, field: str = "body") -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.field = field  # the wire name of the field at fault


class InvalidEnvelope(ValueError):
    """A queue body that is not an envelope this contract writes. Names the fields, never a value."""

    def __init__(self, fields: list[str]) -> None:
        self.fields = sorted(set(fields)) or ["body"]
        super().__init__(f"not an orders-queue envelope: {', '.join(self.fields[:5])}")


def _require_event_type(value: object) -> None:
    if not isinstance(value, str) or _EVENT_TYPE_RE.fullmatch(value) is None:
        raise InvalidEventPayload(
            PayloadReason.EVENT_INVALID,
            f"'event' must be 1-{EVENT_TYPE_MAX_LENGTH} printable ASCII characters",
            field="event",
        )


# --- the normalised event -------------------------------------------------------------------------------
_ID_FIELDS: Final = {"orderId": "order_id", "itemId": "item_id", "offerId": "offer_id"}
_TEXT_FIELDS: Final = {"reason": "reason", "timestamp": "timestamp"}


@dataclass(frozen=True, slots=True)
class OffergridEvent:
    """A normalised Offergrid event (also built by the sweep and the reconciliation). Constructing one
    checks the event type and the ids, so no producer can queue what the processor refuses."""

    event: str
    order_id: str | None = None
    item_id: str | None = None
    offer_id: str | None = None
    reason: str | None = None
    timestamp: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require_event_type(self.event)
        for wire_name, name in _ID_FIELDS.items():
            value = getattr(self, name)
            # An id that slipped past an older ingress is malformed, never a DynamoDB retry loop.
            if value is not None and (problem := identifier_problem(value)) is not None:
                raise InvalidEventPayload(
                    PayloadReason.FIELD_INVALID, f"'{wire_name}' {problem}", field=wire_name
                )

    @property
    def known_type(self) -> EventType | None:
        return EventType(self.event) if self.event in EventType else None

    def wire(self) -> dict[str, Any]:
        """The event as the queue body carries it: camelCase, every field, non-finite floats as null."""
        return {
            "event": self.event,
            "orderId": self.order_id,
            "itemId": self.item_id,
            "offerId": self.offer_id,
            "reason": self.reason,
            "timestamp": self.timestamp,
            "extra": json_mode(self.extra),
        }

    @classmethod
    def from_wire(cls, document: object, *, at: str = "event") -> OffergridEvent:
        """The event of a queue body (`wire()`'s form, strictly); `InvalidEnvelope` naming bad fields."""
        if not isinstance(document, Mapping):
            raise InvalidEnvelope([at])
        bad = [
            f"{at}.{name}" for name in document if name not in {"event", "extra", *_ID_FIELDS, *_TEXT_FIELDS}
        ]
        values: dict[str, Any] = {}
        for wire_name, name in {**_ID_FIELDS, **_TEXT_FIELDS}.items():
            value = document.get(wire_name)
            if value is not None and not isinstance(value, str):
                bad.append(f"{at}.{wire_name}")
            values[name] = value
        extra = document.get("extra", {})
        if not isinstance(extra, dict):
            bad.append(f"{at}.extra")
        if not isinstance(document.get("event"), str):
            bad.append(f"{at}.event")
        if bad:
            raise InvalidEnvelope(bad)
        try:
            return cls(event=document["event"], extra=extra, **values)
        except InvalidEventPayload as exc:
            raise InvalidEnvelope([f"{at}.{exc.field}"]) from None


def normalise_payload(payload: object) -> OffergridEvent:
    """Normalise a parsed webhook body (flat or `data`-nested); `InvalidEventPayload` if not one. The
    fields of `data` win over same-named top-level ones; a `data` that is not an object is an unknown
    field like any other."""
    if not isinstance(payload, Mapping):
        raise InvalidEventPayload(PayloadReason.NOT_OBJECT, "body is not a JSON object")
    if json_depth_exceeds(payload, MAX_JSON_DEPTH):
        raise InvalidEventPayload(PayloadReason.TOO_DEEP, f"nested deeper than {MAX_JSON_DEPTH} levels")
    if "event" not in payload:
        raise InvalidEventPayload(PayloadReason.EVENT_MISSING, "no 'event' field")
    event = payload["event"]
    _require_event_type(event)  # before the ids: a bad type is refused as such whatever the ids

    fields: dict[str, Any] = {key: value for key, value in payload.items() if key != "event"}
    data = fields.get("data")
    if isinstance(data, Mapping):
        del fields["data"]
        fields.update(data)
        fields.pop("event", None)  # the envelope's event type is the one that counts

    order_id, item_id, offer_id = (_identifier(name, fields.pop(name, None)) for name in _ID_FIELDS)
    return OffergridEvent(
        event=event,
        order_id=order_id,
        item_id=item_id,
        offer_id=offer_id,
        reason=_reason(fields.pop("reason", None)),
        timestamp=_timestamp(fields.pop("timestamp", None)),
        extra=fields,
    )


def _identifier(name: str, value: object) -> str | None:
    """Offergrid's id as text (a number becomes its digits, "" none); the rules: `OffergridEvent`."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise InvalidEventPayload(PayloadReason.FIELD_INVALID, f"'{name}' must be a string", field=name)
    return value


def _reason(value: object) -> str | None:
    """A structured reason is still worth keeping for whoever reads the cancellation: as JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _timestamp(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise InvalidEventPayload(
        PayloadReason.FIELD_INVALID, "'timestamp' must be a string or a number", field="timestamp"
    )


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
    """Parsed JSON, but for floats JSON cannot hold (`1e400` parses to infinity), which become None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: json_mode(child) for key, child in value.items()}
    if isinstance(value, list):
        return [json_mode(child) for child in value]
    return value


# --- the dedup key (Decision 3) ---------------------------------------------------------------------------
def dedup_key_for(event: OffergridEvent) -> str:
    """The idempotency key of `event` (Decision 3), from what it is about, never when it was sent, so a
    redelivery and the sweep finding the same item agree: `order.created:<itemId>`,
    `order.cancelled:<orderId>[:<itemId>]`, else (or over `MAX_DEDUP_KEY_LENGTH`)
    `<event>:sha256:<hash of the canonical event without its timestamp>`. Ids are percent-encoded."""
    key: str | None = None
    match event.known_type:
        case EventType.ORDER_CREATED if event.item_id is not None:
            key = f"{event.event}:{dedup_key_part(event.item_id)}"
        case EventType.ORDER_CANCELLED if event.order_id is not None:
            key = f"{event.event}:{dedup_key_part(event.order_id)}"
            if event.item_id is not None:
                key += f":{dedup_key_part(event.item_id)}"
    if key is None or len(key) > MAX_DEDUP_KEY_LENGTH:
        wire = {name: value for name, value in event.wire().items() if name != "timestamp"}
        canonical = json.dumps(wire, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        key = f"{event.event}:sha256:{hashlib.sha256(canonical.encode()).hexdigest()[:_HASH_HEX_LENGTH]}"
    return key


def dedup_key_part(identifier: str) -> str:
    """An identifier as one dedup-key segment (also the provider's status events'): no ':' left in it."""
    return quote(identifier, safe="-_.~")


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and `Z`: `2026-11-27T14:41:00.123Z`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# --- the queued envelope -----------------------------------------------------------------------------------
_ENVELOPE_FIELDS: Final = frozenset({"event", "dedupKey", "receivedAt", "source", "correlationId"})


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """The body of one orders-queue message: one normalised event and how to deduplicate it."""

    event: OffergridEvent
    dedup_key: str
    received_at: datetime
    source: MessageSource
    correlation_id: str | None = None

    def __post_init__(self) -> None:
        bad = []
        if self.received_at.tzinfo is None:  # a time without a zone is no time at all
            bad.append("receivedAt")
        if self.source not in _SOURCES:
            bad.append("source")
        # Every key we write is printable ASCII; one with a control character or a lone surrogate (a
        # hand-made message) could never key an idempotency record: malformed, not a retry loop.
        if not (0 < len(self.dedup_key) <= MAX_DEDUP_KEY_LENGTH + 50 and self.dedup_key.isprintable()):
            bad.append("dedupKey")
        if bad:
            raise InvalidEnvelope(bad)
        object.__setattr__(self, "received_at", self.received_at.astimezone(UTC))

    @classmethod
    def for_event(
        cls,
        event: OffergridEvent,
        *,
        received_at: datetime,
        source: MessageSource,
        correlation_id: str | None = None,
    ) -> QueuedMessage:
        return cls(event, dedup_key_for(event), received_at, source, correlation_id)

    def to_json(self) -> str:
        """Compact JSON as SQS takes it whatever the payload holds (UTF-8 text, lone surrogates as
        U+FFFD, U+FFFE/U+FFFF escaped)."""
        body = json_text(
            {
                "event": self.event.wire(),
                "dedupKey": self.dedup_key,
                "receivedAt": format_timestamp(self.received_at),
                "source": self.source,
                "correlationId": self.correlation_id,
            }
        )
        if "\ufffe" in body or "\uffff" in body:  # a search, not a per-character pass, in the usual case
            body = body.translate(_SQS_REFUSED_RAW)
        return body

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

    @classmethod
    def from_json(cls, body: str | bytes) -> QueuedMessage:
        try:
            document = json.loads(body)
        except ValueError:
            raise InvalidEnvelope(["body"]) from None
        return cls.from_wire(document)

    @classmethod
    def from_wire(cls, document: object) -> QueuedMessage:
        """The envelope of a parsed queue body, as strictly as `to_json` writes it; `InvalidEnvelope`."""
        if not isinstance(document, Mapping):
            raise InvalidEnvelope(["body"])
        bad = [name for name in document if name not in _ENVELOPE_FIELDS]
        event: OffergridEvent | None = None
        try:
            event = OffergridEvent.from_wire(document.get("event"))
        except InvalidEnvelope as exc:
            bad += exc.fields
        received_at = _received_at(document.get("receivedAt"))  # ISO 8601 with a zone, as written
        if received_at is None:
            bad.append("receivedAt")
        correlation_id = document.get("correlationId")
        if correlation_id is not None and not isinstance(correlation_id, str):
            bad.append("correlationId")
        dedup_key, source = document.get("dedupKey"), document.get("source")
        for name, value in (("dedupKey", dedup_key), ("source", source)):
            if not isinstance(value, str):
                bad.append(name)
        if bad or event is None or received_at is None:
            raise InvalidEnvelope(bad)
        return cls(event, str(dedup_key), received_at, source, correlation_id)  # type: ignore[arg-type]


def _received_at(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


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
    """What the pending-order sweep queues for an item found by listing (Decision 7): the
    `order.created` event the webhook would have carried, so the same dedup key."""
    event = OffergridEvent(
        EventType.ORDER_CREATED.value,
        order_id=order_id,
        item_id=item_id,
        offer_id=offer_id,
        timestamp=created_at,
    )
    return QueuedMessage.for_event(
        event, received_at=received_at, source=source, correlation_id=correlation_id
    )
