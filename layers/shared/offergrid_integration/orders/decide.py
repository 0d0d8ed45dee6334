"""`order.created`: decide every order item once (docs/order-state-machine.md).

The item is read in full (`steps`, docs/decisions.md#16); still pending/submitted_to_provider, it is
accepted (PATCH `accepted`, providerNotes saying when the customer will be contacted, a work order
opened) or rejected (the reason in providerNotes) by the coverage rules; otherwise it was decided
elsewhere. Crash safety: the intended decision is saved before the PATCH, so a retry that finds the
item already in that status finishes the work instead of deciding again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from offergrid_integration.contract import OffergridEvent
from offergrid_integration.observability import logger
from offergrid_integration.offergrid.models import OrderItem, OrderItemStatus, StatusUpdate
from offergrid_integration.orders.lifecycle import AFTER_ACCEPTANCE, is_decidable, parse_status
from offergrid_integration.orders.ports import (
    Decision,
    FailureReason,
    OrderOutcome,
    OutcomeKind,
    RecordConflict,
    work_order_id_for,
)
from offergrid_integration.orders.steps import (
    fetch_item,
    for_decision,
    new_work_order,
    patch_status,
    record_for,
)

if TYPE_CHECKING:
    from offergrid_integration.orders.ports import OrderItemsApi, OrderRecord, Ports


def acceptance_notes(contact_by: datetime, hours: int, work_order_id: str) -> str:
    return (
        f"Accepted. We will contact the customer within {hours} hours "
        f"(by {contact_by:%Y-%m-%d %H:%M} UTC) to schedule the service. Reference {work_order_id}."
    )


def handle_order_created(
    event: OffergridEvent, *, ports: Ports, client: OrderItemsApi, dedup_key: str | None = None
) -> OrderOutcome:
    item_id = event.item_id
    if not item_id:
        return OrderOutcome(
            OutcomeKind.PERMANENT_FAILURE, "order.created without itemId", (), FailureReason.MALFORMED_MESSAGE
        )
    fetched = fetch_item(client, ports, item_id, event.order_id, dedup_key, full=True)
    if isinstance(fetched, OrderOutcome):
        return fetched
    item = fetched
    now = ports.now()
    record = record_for(ports, item, now)
    status = parse_status(item.status)

    if record.decision is Decision.CANCELLED or _order_cancelled(ports, record):
        return _keep_cancelled(ports, record, item, dedup_key, "the order was cancelled before we decided")
    if record.decision is None and record.intended_decision is not None:
        # A retry after a crash (or a lost race) between our PATCH and recording it: finish, do not
        # decide again. An accepted item may have moved on meanwhile (fulfilment heard of it).
        if record.intended_decision is Decision.ACCEPTED and status in AFTER_ACCEPTANCE:
            return _finish_accept(ports, record, item, dedup_key, resumed=True)
        if record.intended_decision is Decision.ACCEPTED and status is OrderItemStatus.CANCELLED:
            record.decision = Decision.ACCEPTED
            return _keep_cancelled(ports, record, item, dedup_key, "accepted, then cancelled on Offergrid")
        if record.intended_decision is Decision.REJECTED and status is OrderItemStatus.REJECTED:
            return _finish_reject(ports, record, record.decision_reason or "rejected", dedup_key)
        if record.decision_in_flight(now):
            # Another worker (the webhook and the sweep, say) is deciding this item right now.
            raise RecordConflict(f"order record {item_id!r} has a decision in flight")
    if record.decision is Decision.ACCEPTED and status is OrderItemStatus.CANCELLED:
        # Cancelled at Offergrid after our acceptance: the work order must not stay open.
        return _keep_cancelled(ports, record, item, dedup_key, "accepted, then cancelled on Offergrid")
    if not is_decidable(item.status):
        detail = f"item is already {item.status}"
        if record.decision is None:
            record.decision = Decision.DECIDED_ELSEWHERE
            record.decision_reason = detail
        record.add_history(now, "skipped", status=str(item.status), detail=detail, dedup_key=dedup_key)
        ports.orders.save(record)
        return OrderOutcome(OutcomeKind.ALREADY_DECIDED, detail, (item_id,))

    verdict = ports.serviceability.check(for_decision(item))
    if verdict.serviceable:
        return _accept(client, ports, record, item, dedup_key)
    return _reject(client, ports, record, verdict.reason, dedup_key)


def _order_cancelled(ports: Ports, record: OrderRecord) -> bool:
    """Whether the item's whole order was cancelled (without itemId) before we decided the item."""
    if record.decision is not None or record.order_id is None:
        return False
    if record.order_cancelled_at is not None:
        return True
    return any(other.order_cancelled_at is not None for other in ports.orders.find_by_order(record.order_id))


def _keep_cancelled(
    ports: Ports, record: OrderRecord, item: OrderItem, dedup_key: str | None, detail: str
) -> OrderOutcome:
    """The item is cancelled on our side: make sure no work order stays open (or ever opens)."""
    now = ports.now()
    ports.work_orders.cancel(work_order_id_for(item.id), item_id=item.id, reason="cancelled", at=now)
    if record.decision is None:
        record.decision = Decision.CANCELLED
        record.decision_reason = detail
    record.intended_decision = None
    record.cancelled_at = record.cancelled_at or now
    record.add_history(now, "skipped", status=str(item.status), detail=detail, dedup_key=dedup_key)
    ports.orders.save(record)
    return OrderOutcome(OutcomeKind.ALREADY_DECIDED, detail, (item.id,))


def _accept(
    client: OrderItemsApi, ports: Ports, record: OrderRecord, item: OrderItem, dedup_key: str | None
) -> OrderOutcome:
    now = ports.now()
    work_order_id = work_order_id_for(item.id)
    contact_by = now + timedelta(hours=ports.contact_within_hours)
    record.intended_decision = Decision.ACCEPTED
    record.decision_deadline = ports.decision_deadline(now)
    record.work_order_id = work_order_id
    record.add_history(now, "accepting", status=str(item.status), dedup_key=dedup_key)
    record = ports.orders.save(record)
    update = StatusUpdate(
        status=OrderItemStatus.ACCEPTED,
        provider_notes=acceptance_notes(contact_by, ports.contact_within_hours, work_order_id),
        metadata={"workOrderId": work_order_id, "contactBy": contact_by.isoformat().replace("+00:00", "Z")},
    )
    with _released_on_error(ports, record):
        patched = patch_status(client, ports, record, update, dedup_key)
        if isinstance(patched, OrderOutcome):
            return patched
        record.offergrid_status = patched
        return _finish_accept(ports, record, item, dedup_key, resumed=False, contact_by=contact_by)


@contextmanager
def _released_on_error(ports: Ports, record: OrderRecord) -> Iterator[None]:
    """A decision that fails here (transiently: it will be retried) is no longer in flight: clear
    its deadline so a cancellation or the retry need not wait for this invocation's end. The intent
    itself stays, so the retry finishes a PATCH that landed instead of deciding again. Best effort:
    a crash leaves the deadline, which then simply passes."""
    try:
        yield
    except Exception:
        record.decision_deadline = None
        try:
            ports.orders.save(record)
        except Exception:  # the original error is the one worth reporting
            logger.info("could not release an in-flight decision", extra={"itemId": record.item_id})
        raise


def _finish_accept(
    ports: Ports,
    record: OrderRecord,
    item: OrderItem,
    dedup_key: str | None,
    *,
    resumed: bool,
    contact_by: datetime | None = None,
) -> OrderOutcome:
    now = ports.now()
    work_order_id = record.work_order_id or work_order_id_for(item.id)
    stored = ports.work_orders.open(new_work_order(ports, item, work_order_id, now, contact_by=contact_by))
    if not stored.is_open:
        # A cancellation got to the work order first (it stored a tombstone): nothing was announced.
        # Retried, the message finds the record cancelled and keeps it so.
        raise RecordConflict(f"item {item.id!r} was cancelled while being accepted")
    reason = f"serviceable; work order {work_order_id}"
    record.decision = Decision.ACCEPTED
    record.decision_reason = reason
    record.intended_decision = None
    record.decision_deadline = None
    record.work_order_id = work_order_id
    if is_decidable(record.offergrid_status or OrderItemStatus.PENDING):
        record.offergrid_status = OrderItemStatus.ACCEPTED.value
    detail = "resumed after an interruption" if resumed else None
    record.add_history(now, "accepted", status=record.offergrid_status, detail=detail, dedup_key=dedup_key)
    ports.orders.save(record)
    return OrderOutcome(OutcomeKind.ACCEPTED, reason, (item.id,))


def _reject(
    client: OrderItemsApi, ports: Ports, record: OrderRecord, reason: str, dedup_key: str | None
) -> OrderOutcome:

    now = ports.now()
    record.intended_decision = Decision.REJECTED
    record.decision_deadline = ports.decision_deadline(now)
    record.decision_reason = reason
    record.add_history(now, "rejecting", status=record.offergrid_status, detail=reason, dedup_key=dedup_key)
    record = ports.orders.save(record)
    with _released_on_error(ports, record):
        patched = patch_status(
            client,
            ports,
            record,
            StatusUpdate(status=OrderItemStatus.REJECTED, provider_notes=reason),
            dedup_key,
        )
        if isinstance(patched, OrderOutcome):
            return patched
        return _finish_reject(ports, record, reason, dedup_key)


def _finish_reject(ports: Ports, record: OrderRecord, reason: str, dedup_key: str | None) -> OrderOutcome:
    record.decision = Decision.REJECTED
    record.decision_reason = reason
    record.intended_decision = None
    record.decision_deadline = None
    record.offergrid_status = OrderItemStatus.REJECTED.value
    record.add_history(
        ports.now(), "rejected", status=record.offergrid_status, detail=reason, dedup_key=dedup_key
    )
    ports.orders.save(record)
    return OrderOutcome(OutcomeKind.REJECTED, reason, (record.item_id,))
