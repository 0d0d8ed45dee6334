"""The one registry of order use cases: which use case runs each kind of orders-queue message.

Adding an event type: a member of `contract.EventType`, one use-case module with its
`handle_...` function, one line in `EVENT_USE_CASES`, one sample event (docs/architecture.md,
"Add an event type").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Protocol

from offergrid_integration.contract import RECONCILE_CANCEL, RECONCILE_OPEN, EventType, OffergridEvent
from offergrid_integration.orders.cancel import handle_order_cancelled
from offergrid_integration.orders.decide import handle_order_created
from offergrid_integration.orders.messages import EventMessage, OrdersMessage, StatusChangeMessage
from offergrid_integration.orders.ports import OrderItemsApi, OrderOutcome, OutcomeKind, Ports
from offergrid_integration.orders.repairs import handle_reconcile_cancel, handle_reconcile_open
from offergrid_integration.orders.status import handle_status_change

__all__ = ["EVENT_USE_CASES", "EventUseCase", "dispatch"]


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
