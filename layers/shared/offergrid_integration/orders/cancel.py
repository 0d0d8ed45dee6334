"""`order.cancelled`: cancel the items of an order (by itemId, else our records and Offergrid's
listings by orderId: docs/decisions.md#4) and their work orders, PATCHing `cancelled` only where the
lifecycle allows it. A decision in flight is a `RecordConflict`: retried after it lands, the
cancellation then cancels the decided item.
"""

from __future__ import annotations

from typing import Final

from offergrid_integration.contract import OffergridEvent
from offergrid_integration.offergrid.models import OrderItem, OrderItemStatus, StatusUpdate
from offergrid_integration.orders.lifecycle import allowed_targets, is_decidable, parse_status
from offergrid_integration.orders.ports import (
    Decision,
    FailureReason,
    OrderItemsApi,
    OrderOutcome,
    OutcomeKind,
    Ports,
    RecordConflict,
    work_order_id_for,
)
from offergrid_integration.orders.steps import (
    MAX_NOTES,
    fetch_item,
    patch_status,
    record_for,
)

# The item statuses a cancellation without itemId looks for at Offergrid (docs/decisions.md#4): the
# ones that can still be cancelled or decided. Older items need nothing.
CANCELLABLE_LISTING: Final = (
    OrderItemStatus.PENDING,
    OrderItemStatus.SUBMITTED_TO_PROVIDER,
    OrderItemStatus.ACCEPTED,
    OrderItemStatus.SCHEDULED,
    OrderItemStatus.IN_PROGRESS,
)


def handle_order_cancelled(
    event: OffergridEvent, *, ports: Ports, client: OrderItemsApi, dedup_key: str | None = None
) -> OrderOutcome:
    if not event.item_id and not event.order_id:
        return OrderOutcome(
            OutcomeKind.PERMANENT_FAILURE,
            "order.cancelled without orderId or itemId",
            (),
            FailureReason.MALFORMED_MESSAGE,
        )
    targets = _items_to_cancel(event, ports, client)
    if not targets:
        return OrderOutcome(OutcomeKind.NOTHING_TO_CANCEL, f"no items of order {event.order_id} are ours")
    whole_order = event.item_id is None
    results = [
        _cancel_item(item_id, event, ports, client, dedup_key, listed, whole_order=whole_order)
        for item_id, listed in targets
    ]
    summary = "; ".join(
        f"{item_id}: {done}" for (item_id, _), (done, _) in zip(targets, results, strict=True)
    )
    cancelled = tuple(item_id for (item_id, _), (_, ok) in zip(targets, results, strict=True) if ok)
    if not cancelled:
        return OrderOutcome(OutcomeKind.NOTHING_TO_CANCEL, summary)
    return OrderOutcome(OutcomeKind.CANCELLED, summary, cancelled)


def _items_to_cancel(
    event: OffergridEvent, ports: Ports, client: OrderItemsApi
) -> list[tuple[str, OrderItem | None]]:
    """docs/decisions.md#4: the itemId; else every item of the order, in our records and at Offergrid
    (whose webhook may not have come yet: each status that can still be cancelled or decided, every
    page). A listed item comes with its listed state (not fetched again); the others with None."""
    if event.item_id:
        return [(event.item_id, None)]
    assert event.order_id is not None
    targets: dict[str, OrderItem | None] = {
        record.item_id: None for record in ports.orders.find_by_order(event.order_id)
    }
    for status in CANCELLABLE_LISTING:
        for item in client.list_orders(status):
            if item.order_id == event.order_id:
                targets[item.id] = item
    return sorted(targets.items())


def _cancellation_notes(reason: str | None) -> str:
    return f"Cancelled: {reason}"[:MAX_NOTES] if reason else "Cancelled at the customer's request."


def _cancel_item(
    item_id: str,
    event: OffergridEvent,
    ports: Ports,
    client: OrderItemsApi,
    dedup_key: str | None,
    listed: OrderItem | None = None,
    *,
    whole_order: bool = False,
) -> tuple[str, bool]:
    """Cancel one item; returns what was done and whether it is now cancelled. Its work order is
    cancelled only with the item (one Offergrid cannot cancel keeps it)."""
    if listed is None:
        fetched = fetch_item(client, ports, item_id, event.order_id, dedup_key)
        if isinstance(fetched, OrderOutcome):
            return f"not cancelled ({fetched.reason})", False
        listed = fetched
    item = listed
    now = ports.now()
    record = record_for(ports, item, now)
    if record.decision_in_flight(now):
        raise RecordConflict(f"order record {item_id!r} has a decision in flight; cancel after it")

    status = parse_status(item.status)
    if status is OrderItemStatus.CANCELLED:
        done = "already cancelled on Offergrid"
    elif status is not None and OrderItemStatus.CANCELLED in allowed_targets(status):
        patched = patch_status(
            client,
            ports,
            record,
            StatusUpdate(status=OrderItemStatus.CANCELLED, provider_notes=_cancellation_notes(event.reason)),
            dedup_key,
        )
        if isinstance(patched, OrderOutcome):
            return f"not cancelled ({patched.reason})", False
        record.offergrid_status = patched
        done = "cancelled"
    elif is_decidable(item.status):
        # Offergrid has no pending -> cancelled edge: record it so we never accept the item later.
        done = "cancelled before our decision (no status change on Offergrid)"
    else:
        done = f"not changed on Offergrid: {item.status} cannot become cancelled"
        record.add_history(
            now, "not_cancelled", status=record.offergrid_status, detail=done, dedup_key=dedup_key
        )
        ports.orders.save(record)
        return done, False
    # Always, by the item's own work-order id: a work order not opened yet gets a tombstone, so an
    # acceptance racing this cancellation can never open it afterwards.
    ports.work_orders.cancel(work_order_id_for(item_id), item_id=item_id, reason=event.reason, at=now)
    if record.decision is None:
        record.decision = Decision.CANCELLED
        record.decision_reason = event.reason or "cancelled"
    record.intended_decision = None
    record.decision_deadline = None
    record.cancelled_at = record.cancelled_at or now
    if whole_order:
        record.order_cancelled_at = record.order_cancelled_at or now
    record.add_history(now, "cancelled", status=record.offergrid_status, detail=done, dedup_key=dedup_key)
    ports.orders.save(record)
    return done, True
