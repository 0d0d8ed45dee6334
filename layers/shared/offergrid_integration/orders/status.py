"""`workorder.status_changed`: push the provider's work-order status to Offergrid.

Checked against the lifecycle (no regression, no move out of a terminal status, no PATCH of the
current status) and only for items we accepted (docs/decisions.md#11).
"""

from __future__ import annotations

from offergrid_integration.offergrid.models import OrderItem
from offergrid_integration.orders.lifecycle import (
    AFTER_ACCEPTANCE,
    InvalidTransition,
    check_transition,
    parse_status,
)
from offergrid_integration.orders.ports import FailureReason, OrderItemsApi, OrderOutcome, OutcomeKind, Ports
from offergrid_integration.orders.provider_events import ProviderStatusChange
from offergrid_integration.orders.records import Decision, OrderRecord
from offergrid_integration.orders.steps import fetch_item, patch_status, record_for, record_permanent_failure

__all__ = ["handle_status_change"]


def handle_status_change(
    change: ProviderStatusChange, *, ports: Ports, client: OrderItemsApi, dedup_key: str | None = None
) -> OrderOutcome:
    dedup_key = dedup_key or change.dedup_key
    fetched = fetch_item(client, ports, change.item_id, None, dedup_key)
    if isinstance(fetched, OrderOutcome):
        return fetched
    item = fetched
    now = ports.now()
    record = record_for(ports, item, now)
    if change.work_order_id and not record.work_order_id:
        record.work_order_id = change.work_order_id
    target = change.target_status

    if not _accepted_by_us(record, item):
        return record_permanent_failure(
            ports,
            item_id=item.id,
            order_id=item.order_id,
            failure=FailureReason.ITEM_NOT_ACCEPTED,
            detail=f"{target.value} for an item we did not accept (it is {item.status}; "
            f"our decision: {record.decision.value if record.decision else 'none'})",
            dedup_key=dedup_key,
            status=str(item.status),
        )
    if parse_status(item.status) is target:
        record.add_history(now, "status_unchanged", status=target.value, dedup_key=dedup_key)
        ports.orders.save(record)
        return OrderOutcome(OutcomeKind.STATUS_UNCHANGED, f"item is already {target.value}", (item.id,))
    try:
        check_transition(item.status, target)
    except InvalidTransition as exc:
        return record_permanent_failure(
            ports,
            item_id=item.id,
            order_id=item.order_id,
            failure=FailureReason.INVALID_TRANSITION,
            detail=f"{exc.current} -> {exc.target} ({exc.problem.value})",
            dedup_key=dedup_key,
            status=str(item.status),
        )
    patched = patch_status(client, ports, record, change.to_status_update(), dedup_key)
    if isinstance(patched, OrderOutcome):
        return patched
    record.offergrid_status = patched
    record.add_history(
        now, "status_pushed", status=record.offergrid_status, detail=change.notes, dedup_key=dedup_key
    )
    ports.orders.save(record)
    return OrderOutcome(OutcomeKind.STATUS_PUSHED, f"{item.status} -> {target.value}", (item.id,))


def _accepted_by_us(record: OrderRecord, item: OrderItem) -> bool:
    """docs/decisions.md#11: fulfilment statuses are pushed only for items we accepted (recorded, or
    our accept PATCH landed and its work order is being opened right now)."""
    if record.decision is Decision.ACCEPTED:
        return True
    return (
        record.decision is None
        and record.intended_decision is Decision.ACCEPTED
        and parse_status(item.status) in AFTER_ACCEPTANCE
    )
