"""The reconciliation's repairs (`orders.reconcile` queues them; docs/order-state-machine.md): open
the missing work order of an item in provider work, cancel the open one of an item whose work ended
at Offergrid. Both re-check on fresh state (the reconciler's view is minutes old), never PATCH.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Final

from offergrid_integration.contract import OffergridEvent
from offergrid_integration.offergrid.models import OrderItem, OrderItemStatus
from offergrid_integration.orders.lifecycle import PROVIDER_WORK, WORK_ENDED, parse_status
from offergrid_integration.orders.ports import (
    Decision,
    FailureReason,
    OrderOutcome,
    OutcomeKind,
    RecordConflict,
    WorkOrderReader,
    work_order_id_for,
)
from offergrid_integration.orders.steps import fetch_item, new_work_order, record_for

if TYPE_CHECKING:
    from offergrid_integration.orders.ports import OrderItemsApi, OrderRecord, Ports

ADOPTED_REASON: Final = "accepted at Offergrid outside this integration; adopted by reconciliation"
RESUMED_REASON: Final = "serviceable; our acceptance's work order opened by reconciliation"


def _repair_target(
    event: OffergridEvent, ports: Ports, client: OrderItemsApi, dedup_key: str | None
) -> tuple[OrderItem, OrderRecord, datetime] | OrderOutcome:
    """The item a repair is about, read afresh, with our record of it; `RecordConflict` while a
    decision on it is in flight (the repair is retried after it)."""
    if not event.item_id:
        return OrderOutcome(
            OutcomeKind.PERMANENT_FAILURE, "repair without itemId", (), FailureReason.MALFORMED_MESSAGE
        )
    # A full read (docs/decisions.md#16): a repair may write the item's work order from it.
    fetched = fetch_item(client, ports, event.item_id, event.order_id, dedup_key, full=True)
    if isinstance(fetched, OrderOutcome):
        return fetched
    now = ports.now()
    record = record_for(ports, fetched, now)
    if record.decision_in_flight(now):
        raise RecordConflict(f"order record {fetched.id!r} has a decision in flight; repair after it")
    return fetched, record, now


def handle_reconcile_open(
    event: OffergridEvent, *, ports: Ports, client: OrderItemsApi, dedup_key: str | None = None
) -> OrderOutcome:
    """Open the missing work order of an item Offergrid shows in provider work, if that still holds,
    no decision is in flight, and our record does not say cancelled or rejected (that drift is
    reported, never repaired). An item accepted by hand is *adopted*: its record becomes `accepted`,
    so fulfilment statuses may be pushed for it (docs/decisions.md#11)."""
    target = _repair_target(event, ports, client, dedup_key)
    if isinstance(target, OrderOutcome):
        return target
    item, record, now = target
    status = parse_status(item.status)
    if status not in PROVIDER_WORK:
        return _no_repair(ports, record, f"item is {item.status} now: no work order needed", dedup_key)
    if record.decision in (Decision.CANCELLED, Decision.REJECTED) or record.order_cancelled_at is not None:
        return _no_repair(
            ports, record, f"our record says {record.decision or 'order cancelled'}: not reopened", dedup_key
        )
    work_order_id = record.work_order_id or work_order_id_for(item.id)
    existing = (
        ports.work_orders.get(work_order_id) if isinstance(ports.work_orders, WorkOrderReader) else None
    )
    if existing is not None and not existing.is_open:
        return _no_repair(ports, record, f"work order {work_order_id} was cancelled: not reopened", dedup_key)
    if existing is None:
        stored = ports.work_orders.open(new_work_order(ports, item, work_order_id, now))
        if not stored.is_open:  # a cancellation wrote its tombstone meanwhile: retried, it is seen
            raise RecordConflict(f"item {item.id!r} was cancelled while its work order was repaired")
    if record.decision is not Decision.ACCEPTED:
        ours = record.intended_decision is Decision.ACCEPTED  # our accept landed, its work order did not
        record.decision = Decision.ACCEPTED
        record.decision_reason = RESUMED_REASON if ours else ADOPTED_REASON
    record.intended_decision = None
    record.decision_deadline = None
    record.work_order_id = work_order_id
    detail = "work order already open" if existing is not None else f"work order {work_order_id} opened"
    record.add_history(now, "reconciled_open", status=str(item.status), detail=detail, dedup_key=dedup_key)
    ports.orders.save(record)
    if existing is not None:
        return OrderOutcome(OutcomeKind.NOTHING_TO_REPAIR, detail, (item.id,))
    return OrderOutcome(OutcomeKind.WORK_ORDER_OPENED, detail, (item.id,))


def handle_reconcile_cancel(
    event: OffergridEvent, *, ports: Ports, client: OrderItemsApi, dedup_key: str | None = None
) -> OrderOutcome:
    """Cancel (and announce) the open work order of an item Offergrid shows cancelled, or rejected or
    failed without our fulfilment having pushed that status. Never PATCHes Offergrid."""
    target = _repair_target(event, ports, client, dedup_key)
    if isinstance(target, OrderOutcome):
        return target
    item, record, now = target
    status = parse_status(item.status)
    if status not in WORK_ENDED or (status is not OrderItemStatus.CANCELLED and record.pushed(status)):
        return _no_repair(ports, record, f"item is {item.status} now: work order kept", dedup_key)
    reason = event.reason or f"{item.status} at Offergrid"
    cancelled = ports.work_orders.cancel(work_order_id_for(item.id), item_id=item.id, reason=reason, at=now)
    record.intended_decision = None
    record.decision_deadline = None
    if status is OrderItemStatus.CANCELLED:
        record.cancelled_at = record.cancelled_at or now
        if record.decision is None:
            record.decision = Decision.CANCELLED
            record.decision_reason = reason
    detail = "work order cancelled" if cancelled is not None else "no opened work order"
    record.add_history(now, "reconciled_cancel", status=str(item.status), detail=detail, dedup_key=dedup_key)
    ports.orders.save(record)
    if cancelled is None:
        return OrderOutcome(OutcomeKind.NOTHING_TO_REPAIR, detail, (item.id,))
    return OrderOutcome(OutcomeKind.WORK_ORDER_CANCELLED, detail, (item.id,))


def _no_repair(ports: Ports, record: OrderRecord, detail: str, dedup_key: str | None) -> OrderOutcome:
    record.add_history(
        ports.now(), "reconcile_skipped", status=record.offergrid_status, detail=detail, dedup_key=dedup_key
    )
    ports.orders.save(record)
    return OrderOutcome(OutcomeKind.NOTHING_TO_REPAIR, detail, (record.item_id,))
