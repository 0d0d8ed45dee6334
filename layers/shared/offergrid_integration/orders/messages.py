"""What arrives on the orders queue, parsed into one typed message (`OrdersMessage`).

Two body shapes share the queue: the envelope of `contract.QueuedMessage` (the ingress, the sweep,
the reconciliation; its dedup key the envelope's or, when absent, the `dedupKey` attribute), and a
raw EventBridge event from the rule on the provider's bus (`detail-type` `workorder.status_changed`;
its dedup key item + target status + event id, Decision 3).

The message's `kind` (the event type or detail-type) picks its class: an `EventMessage` for the
Offergrid event types we act on and the reconciliation's repairs (only from source `reconcile`), a
`StatusChangeMessage` for the provider's status change, an `UnhandledMessage` for anything else
(Decision 2: kept, logged, never failed). `orders.registry` runs the use case of each kind. A body
that is neither shape is a `MalformedMessage` (permanent: logged and counted, not retried).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from offergrid_integration.contract import (
    RECONCILE_CANCEL,
    RECONCILE_OPEN,
    EventType,
    InvalidEnvelope,
    OffergridEvent,
    QueuedMessage,
    dedup_key_part,
)
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


@dataclass(frozen=True, slots=True, kw_only=True)
class _Message:
    kind: str  # the event type or detail-type
    dedup_key: str
    source: str  # "webhook" | "sweep" | "reconcile" | "provider" | "eventbridge"
    correlation_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventMessage(_Message):
    """An Offergrid event we act on (from a webhook or the sweep), or a reconciliation repair."""

    event: OffergridEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusChangeMessage(_Message):
    """The provider's `workorder.status_changed` (EventBridge)."""

    kind: str = STATUS_CHANGED_DETAIL_TYPE
    change: ProviderStatusChange


@dataclass(frozen=True, slots=True, kw_only=True)
class UnhandledMessage(_Message):
    """A kind nothing acts on (an unknown event type, an EventBridge event routed to us by mistake)."""

    event: OffergridEvent | None = None


OrdersMessage = EventMessage | StatusChangeMessage | UnhandledMessage


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
        envelope = QueuedMessage.from_wire(payload)
    except InvalidEnvelope as exc:
        raise MalformedMessage(FailureReason.MALFORMED_MESSAGE, str(exc)) from None
    kind, source = envelope.event.event, envelope.source
    fields = {"kind": kind, "dedup_key": envelope.dedup_key, "source": source}
    if kind in EVENT_KINDS or (kind in REPAIR_KINDS and source == "reconcile"):
        return EventMessage(**fields, correlation_id=envelope.correlation_id, event=envelope.event)
    return UnhandledMessage(**fields, correlation_id=envelope.correlation_id, event=envelope.event)


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
