"""What arrives on the orders queue, parsed into one typed message, and the registry of use cases.

Two body shapes share the queue: `contract.QueuedMessage`'s envelope (the ingress, the sweep, the
reconciliation; its dedup key the envelope's, else the `dedupKey` attribute) and a raw EventBridge
event from the provider's bus (`workorder.status_changed`; dedup key item + target status + event
id, Decision 3). The `kind` picks the class: `EventMessage` (the Offergrid event types, and the
repairs from source `reconcile` only), `StatusChangeMessage`, else `UnhandledMessage` (Decision 2:
kept, logged, never failed). Neither shape: `MalformedMessage` (permanent: counted, not retried).
Adding an event type: a member of `contract.EventType`, a use case, its line in `EVENT_USE_CASES`
(docs/architecture.md, "Add an event type").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

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
from offergrid_integration.orders.cancel import handle_order_cancelled
from offergrid_integration.orders.decide import handle_order_created
from offergrid_integration.orders.ports import FailureReason, OrderItemsApi, OrderOutcome, OutcomeKind, Ports
from offergrid_integration.orders.provider_events import (
    STATUS_CHANGED_DETAIL_TYPE,
    InvalidProviderEvent,
    ProviderStatusChange,
    handle_status_change,
    is_provider_event,
    parse_provider_event,
)
from offergrid_integration.orders.repairs import handle_reconcile_cancel, handle_reconcile_open

DEDUP_KEY_ATTRIBUTE: Final = "dedupKey"
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


class EventUseCase(Protocol):
    """A use case for an event message: transient errors propagate, permanent ones are an outcome."""

    def __call__(
        self, event: OffergridEvent, *, ports: Ports, client: OrderItemsApi, dedup_key: str | None = None
    ) -> OrderOutcome: ...


EVENT_USE_CASES: Final[Mapping[str, EventUseCase]] = {
    EventType.ORDER_CREATED: handle_order_created,
    EventType.ORDER_CANCELLED: handle_order_cancelled,
    RECONCILE_OPEN: handle_reconcile_open,
    RECONCILE_CANCEL: handle_reconcile_cancel,
}


def dispatch(message: OrdersMessage, *, ports: Ports, client: OrderItemsApi) -> OrderOutcome:
    """Run the use case for `message`. Transient errors propagate; permanent ones are an OrderOutcome."""
    if isinstance(message, StatusChangeMessage):
        return handle_status_change(message.change, ports=ports, client=client, dedup_key=message.dedup_key)
    if isinstance(message, EventMessage) and (use_case := EVENT_USE_CASES.get(message.kind)) is not None:
        return use_case(message.event, ports=ports, client=client, dedup_key=message.dedup_key)
    # Decision 2: unknown event types are kept and logged, never failed.
    return OrderOutcome(OutcomeKind.IGNORED, f"no handler for {message.kind!r}")
