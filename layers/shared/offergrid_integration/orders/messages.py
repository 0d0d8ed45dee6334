"""What arrives on the orders queue, parsed into one typed message (`OrdersMessage`).

Two body shapes share the queue:

- the ingress/sweep/reconciliation envelope (`orders.queue.QueuedMessage` JSON): `{"event": {...},
  "dedupKey", "receivedAt", "source", "correlationId"}`; the dedup key is the envelope's (or, when
  absent, the `dedupKey` message attribute);
- a raw EventBridge event delivered by the rule on the provider's bus (`detail-type`
  `workorder.status_changed`); its dedup key is item + target status + event id (Decision 3).

`OrdersMessage` is one pydantic model discriminated on `kind` (the event type or detail-type):
an `EventMessage` for the Offergrid event types we act on (`webhooks.events.EventType`) and the
reconciliation's repairs (only from source `reconcile`), a `StatusChangeMessage` for the
provider's status change, an `UnhandledMessage` for anything else (Decision 2: kept, logged, never
failed). `orders.registry` runs the use case of each kind.

A body that is neither shape is a `MalformedMessage` (permanent: it is logged and counted, not retried).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Tag, ValidationError

from offergrid_integration.errors import PermanentError
from offergrid_integration.identifiers import identifier_problem
from offergrid_integration.orders.ports import FailureReason
from offergrid_integration.orders.provider_events import (
    STATUS_CHANGED_DETAIL_TYPE,
    InvalidProviderEvent,
    ProviderStatusChange,
    is_provider_event,
    parse_provider_event,
)
from offergrid_integration.orders.queue import RECONCILE_CANCEL, RECONCILE_OPEN, QueuedMessage, dedup_key_part
from offergrid_integration.webhooks.events import EventType, OffergridEvent

__all__ = [
    "EventMessage",
    "MalformedMessage",
    "OrdersMessage",
    "StatusChangeMessage",
    "UnhandledMessage",
    "parse_queue_message",
]

DEDUP_KEY_ATTRIBUTE: Final = "dedupKey"
# Kinds that are an `EventMessage`: every Offergrid event type we know, and (from source
# "reconcile" only) the reconciliation's repairs.
EVENT_KINDS: Final = frozenset(EventType)
REPAIR_KINDS: Final = frozenset({RECONCILE_OPEN, RECONCILE_CANCEL})


class MalformedMessage(ValueError, PermanentError):
    """The body is not a message we can act on. Carries a reason code, never the body."""

    def __init__(self, failure: FailureReason, detail: str, *, item_id: str | None = None) -> None:
        super().__init__(f"{failure.value}: {detail}")
        self.failure = failure
        self.detail = detail
        self.item_id = item_id


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: str  # the event type or detail-type
    dedup_key: str
    source: str  # "webhook" | "sweep" | "reconcile" | "provider" | "eventbridge"
    correlation_id: str | None = None


class EventMessage(_Message):
    """An Offergrid event we act on (from a webhook or the sweep), or a reconciliation repair."""

    event: OffergridEvent


class StatusChangeMessage(_Message):
    """The provider's `workorder.status_changed` (EventBridge)."""

    # Built on first use (as the kinds below): an order's first message is mostly an `EventMessage`.
    model_config = ConfigDict(frozen=True, defer_build=True)

    kind: Literal["workorder.status_changed"] = STATUS_CHANGED_DETAIL_TYPE
    change: ProviderStatusChange


class UnhandledMessage(_Message):
    """A kind nothing acts on (an unknown event type, an EventBridge event routed to us by mistake)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    event: OffergridEvent | None = None


def _shape(value: Any) -> str:
    """The discriminator: which message a kind (and, for repairs, its source) makes."""
    fields = value if isinstance(value, Mapping) else vars(value)
    kind, source = fields.get("kind"), fields.get("source")
    if fields.get("change") is not None:
        return "status_change"
    if kind in EVENT_KINDS or (kind in REPAIR_KINDS and source == "reconcile"):
        return "event"
    return "unhandled"


OrdersMessage = Annotated[
    Annotated[EventMessage, Tag("event")]
    | Annotated[StatusChangeMessage, Tag("status_change")]
    | Annotated[UnhandledMessage, Tag("unhandled")],
    Discriminator(_shape),
]


def parse_queue_message(body: str, attributes: Mapping[str, str] | None = None) -> OrdersMessage:
    try:
        payload: Any = json.loads(body)
    except ValueError:
        raise MalformedMessage(FailureReason.MALFORMED_MESSAGE, "body is not JSON") from None
    if not isinstance(payload, dict):
        raise MalformedMessage(FailureReason.MALFORMED_MESSAGE, "body is not a JSON object")
    if is_provider_event(payload):
        return _provider_message(payload)
    if isinstance(payload.get("event"), dict) and "dedupKey" not in payload and attributes:
        # The key travels as a message attribute too; accept an envelope that only has it there.
        key = attributes.get(DEDUP_KEY_ATTRIBUTE)
        if key:
            payload = {**payload, "dedupKey": key}
    try:
        envelope = QueuedMessage.model_validate(payload)
    except ValidationError as exc:
        fields = sorted({".".join(str(part) for part in error["loc"]) or "body" for error in exc.errors()})
        raise MalformedMessage(
            FailureReason.MALFORMED_MESSAGE, f"not an orders-queue envelope: {', '.join(fields[:5])}"
        ) from None
    message: dict[str, Any] = {
        "kind": envelope.event.event,
        "dedup_key": envelope.dedup_key,
        "source": envelope.source,
        "correlation_id": envelope.correlation_id,
        "event": envelope.event,
    }
    # `OrdersMessage`'s discriminator picks the model (an envelope has no `change`: never a status
    # change); validated by that model directly, so the union's other models are not built for it.
    if _shape(message) == "event":
        return EventMessage.model_validate(message)
    return UnhandledMessage.model_validate(message)


def _provider_message(payload: dict[str, Any]) -> StatusChangeMessage | UnhandledMessage:
    detail_type = payload.get("detail-type")
    if detail_type != STATUS_CHANGED_DETAIL_TYPE:
        # Not ours to act on (a rule routing more than it should): keep it visible, do not loop.
        kind = detail_type if isinstance(detail_type, str) else "eventbridge"
        event_id = payload.get("id")
        if identifier_problem(event_id) is not None:  # it keys the idempotency record
            raise MalformedMessage(
                FailureReason.MALFORMED_MESSAGE, "an EventBridge event without a usable id"
            )
        return UnhandledMessage(
            kind=kind[:100], dedup_key=f"eventbridge:{dedup_key_part(str(event_id))}", source="eventbridge"
        )
    try:
        change = parse_provider_event(payload)
    except InvalidProviderEvent as exc:
        detail = payload.get("detail")
        item_id = detail.get("offergridItemId") if isinstance(detail, dict) else None
        raise MalformedMessage(
            FailureReason.INVALID_PROVIDER_EVENT,
            str(exc),
            # Recorded on the item only when the id could be a key at all (docs/decisions.md#12).
            item_id=item_id if identifier_problem(item_id) is None else None,
        ) from None
    return StatusChangeMessage(
        dedup_key=change.dedup_key,
        source="provider",
        correlation_id=change.source_event_id,
        change=change,
    )
