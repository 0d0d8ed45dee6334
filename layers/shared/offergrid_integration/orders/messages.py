"""What arrives on the orders queue, parsed into one typed message, and dispatched to its use case.

Two body shapes share the queue:

- the ingress/sweep envelope (`webhooks.events.QueuedMessage` JSON): `{"event": {...},
  "dedupKey", "receivedAt", "source", "correlationId"}`; the dedup key is the envelope's (or, when
  absent, the `dedupKey` message attribute);
- a raw EventBridge event delivered by the rule on the provider's bus (`detail-type`
  `workorder.status_changed`); its dedup key is item + target status + event id (Decision 3).

A body that is neither is a `MalformedMessage` (permanent: it is logged and counted, not retried).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import ValidationError

from offergrid_integration.identifiers import identifier_problem
from offergrid_integration.offergrid.client import OffergridClient
from offergrid_integration.orders.processing import (
    RECONCILE_CANCEL,
    RECONCILE_OPEN,
    FailureReason,
    OrderOutcome,
    OutcomeKind,
    Ports,
    handle_order_cancelled,
    handle_order_created,
    handle_reconcile_cancel,
    handle_reconcile_open,
    handle_status_change,
    record_permanent_failure,
)
from offergrid_integration.orders.provider_events import (
    STATUS_CHANGED_DETAIL_TYPE,
    InvalidProviderEvent,
    ProviderStatusChange,
    is_provider_event,
    parse_provider_event,
)
from offergrid_integration.webhooks.events import EventType, OffergridEvent, QueuedMessage

__all__ = ["MalformedMessage", "OrdersMessage", "dispatch", "parse_queue_message"]

DEDUP_KEY_ATTRIBUTE: Final = "dedupKey"


class MalformedMessage(ValueError):
    """The body is not a message we can act on. Carries a reason code, never the body."""

    def __init__(self, failure: FailureReason, detail: str, *, item_id: str | None = None) -> None:
        super().__init__(f"{failure.value}: {detail}")
        self.failure = failure
        self.detail = detail
        self.item_id = item_id


@dataclass(frozen=True)
class OrdersMessage:
    kind: str  # the event type or detail-type
    dedup_key: str
    source: str  # "webhook" | "sweep" | "reconcile" | "provider" | "eventbridge"
    correlation_id: str | None = None
    event: OffergridEvent | None = None
    change: ProviderStatusChange | None = None


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
    return OrdersMessage(
        kind=envelope.event.event,
        dedup_key=envelope.dedup_key,
        source=envelope.source,
        correlation_id=envelope.correlation_id,
        event=envelope.event,
    )


def _provider_message(payload: dict[str, Any]) -> OrdersMessage:
    detail_type = payload.get("detail-type")
    if detail_type != STATUS_CHANGED_DETAIL_TYPE:
        # Not ours to act on (a rule routing more than it should): keep it visible, do not loop.
        kind = detail_type if isinstance(detail_type, str) else "eventbridge"
        event_id = payload.get("id")
        return OrdersMessage(kind=kind[:100], dedup_key=f"eventbridge:{event_id}", source="eventbridge")
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
    return OrdersMessage(
        kind=STATUS_CHANGED_DETAIL_TYPE,
        dedup_key=change.dedup_key,
        source="provider",
        correlation_id=change.source_event_id,
        change=change,
    )


def dispatch(message: OrdersMessage, *, ports: Ports, client: OffergridClient) -> OrderOutcome:
    """Run the use case for `message`. Transient errors propagate; permanent ones are an OrderOutcome."""
    if message.change is not None:
        return handle_status_change(message.change, ports=ports, client=client, dedup_key=message.dedup_key)
    event = message.event
    if event is not None and event.known_type is EventType.ORDER_CREATED:
        return handle_order_created(event, ports=ports, client=client, dedup_key=message.dedup_key)
    if event is not None and event.known_type is EventType.ORDER_CANCELLED:
        return handle_order_cancelled(event, ports=ports, client=client, dedup_key=message.dedup_key)
    if event is not None and message.source == "reconcile" and event.event == RECONCILE_OPEN:
        return handle_reconcile_open(event, ports=ports, client=client, dedup_key=message.dedup_key)
    if event is not None and message.source == "reconcile" and event.event == RECONCILE_CANCEL:
        return handle_reconcile_cancel(event, ports=ports, client=client, dedup_key=message.dedup_key)
    # Decision 2: unknown event types are kept and logged, never failed.
    return OrderOutcome(OutcomeKind.IGNORED, f"no handler for {message.kind!r}")


def record_malformed(error: MalformedMessage, *, ports: Ports) -> OrderOutcome:
    """A permanent failure for a message we could not parse (recorded on the item when we know it)."""
    if error.item_id:
        return record_permanent_failure(
            ports,
            item_id=error.item_id,
            order_id=None,
            failure=error.failure,
            detail=error.detail,
            dedup_key=None,
        )
    return OrderOutcome(OutcomeKind.PERMANENT_FAILURE, error.detail, (), error.failure)
