"""The steps the order use cases share: read the item, keep our record of it, PATCH its status,
record a permanent failure, and the work order an accepted item gets.

Errors: transient ones (`TransientError`: connection, 408/429/5xx, rate budget, a record conflict)
propagate so the message is retried, and so do 401/403 (a wrong key or role: configuration).
Permanent ones (404, other 4xx) are recorded on the order record and returned as an `OrderOutcome`
with a `failure`, so the message is not retried.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from offergrid_integration.errors import TransientError
from offergrid_integration.observability import logger
from offergrid_integration.offergrid.errors import (
    APIStatusError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    UnprocessableEntityError,
)
from offergrid_integration.offergrid.models import OrderItem, OrderItemStatus, StatusUpdate
from offergrid_integration.orders.lifecycle import parse_status
from offergrid_integration.orders.ports import FailureReason, OrderItemsApi, OrderOutcome, OutcomeKind, Ports
from offergrid_integration.orders.records import OrderRecord
from offergrid_integration.orders.workorders import WorkOrder

__all__ = [
    "MAX_NOTES",
    "already_in_status",
    "decision_in_flight",
    "fetch_item",
    "new_record",
    "new_work_order",
    "patch_status",
    "permanent_reason",
    "record_for",
    "record_permanent_failure",
]

MAX_NOTES: Final = 1_000


def permanent_reason(err: APIStatusError, *, on_transition: bool = False) -> FailureReason | None:
    """The failure reason when `err` is permanent for this message, None when it is transient.

    401/403 are not retryable for one request but mean a wrong key or role: a configuration
    problem. Treating them as transient keeps the messages (retries, then the DLQ and its alarm)
    instead of dropping every order until someone notices.
    """
    if isinstance(err, TransientError | AuthenticationError | PermissionDeniedError):
        return None
    if isinstance(err, NotFoundError):
        return FailureReason.ITEM_NOT_FOUND
    if on_transition and isinstance(err, UnprocessableEntityError | ConflictError):
        return FailureReason.INVALID_TRANSITION
    return FailureReason.REQUEST_REJECTED


def new_record(
    item_id: str, order_id: str | None, now: datetime, *, offer_id: str | None = None
) -> OrderRecord:
    return OrderRecord(item_id=item_id, order_id=order_id, offer_id=offer_id, created_at=now, updated_at=now)


def record_for(ports: Ports, item: OrderItem, now: datetime) -> OrderRecord:
    record = ports.orders.get(item.id) or new_record(item.id, item.order_id, now, offer_id=item.offer_id)
    record.order_id = record.order_id or item.order_id
    record.offergrid_status = str(item.status)
    return record


def record_permanent_failure(
    ports: Ports,
    *,
    item_id: str,
    order_id: str | None,
    failure: FailureReason,
    detail: str,
    dedup_key: str | None,
    status: str | None = None,
) -> OrderOutcome:
    now = ports.now()
    record = ports.orders.get(item_id) or new_record(item_id, order_id, now)
    record.last_failure = f"{failure.value}: {detail}"[:MAX_NOTES]
    if status is not None:
        record.offergrid_status = status
    record.add_history(
        now, "permanent_failure", status=status, detail=record.last_failure, dedup_key=dedup_key
    )
    ports.orders.save(record)
    return OrderOutcome(OutcomeKind.PERMANENT_FAILURE, detail, (item_id,), failure)


def fetch_item(
    client: OrderItemsApi, ports: Ports, item_id: str, order_id: str | None, dedup_key: str | None
) -> OrderItem | OrderOutcome:
    try:
        return client.get_order_item(item_id)
    except APIStatusError as err:
        failure = permanent_reason(err)
        if failure is None:
            raise
        return record_permanent_failure(
            ports,
            item_id=item_id,
            order_id=order_id,
            failure=failure,
            detail=f"GET order item failed: {err.status_code} {err.message}",
            dedup_key=dedup_key,
        )


def patch_status(
    client: OrderItemsApi,
    ports: Ports,
    record: OrderRecord,
    update: StatusUpdate,
    dedup_key: str | None,
) -> str | OrderOutcome:
    """PATCH the status and return the item's status after it; a permanent refusal is recorded (on
    `record`) and returned as an OrderOutcome.

    Any 2xx means applied (docs/decisions.md#10): an answer without the item (204, an empty or
    message-only 200) leaves the item in the target status. A 409/422 may answer the client's retry
    of a PATCH that Offergrid applied but whose answer was lost: the item is re-read, and if it has
    the target status the PATCH counts as applied.
    """
    try:
        answered = client.update_order_item_status(record.item_id, update)
        return update.status.value if answered is None else str(answered.status)
    except APIStatusError as err:
        if isinstance(err, ConflictError | UnprocessableEntityError):
            current = already_in_status(client, record.item_id, update.status)
            if current is not None:
                logger.info(
                    "status PATCH refused but the item already has that status: treated as applied",
                    extra={"itemId": record.item_id, "status": update.status.value, "code": err.status_code},
                )
                return str(current.status)
        failure = permanent_reason(err, on_transition=True)
        if failure is None:
            raise
        now = ports.now()
        detail = f"PATCH {update.status.value} refused: {err.status_code} {err.message}"[:MAX_NOTES]
        record.intended_decision = None
        record.last_failure = f"{failure.value}: {detail}"
        record.add_history(
            now, "permanent_failure", status=record.offergrid_status, detail=detail, dedup_key=dedup_key
        )
        ports.orders.save(record)
        return OrderOutcome(OutcomeKind.PERMANENT_FAILURE, detail, (record.item_id,), failure)


def already_in_status(client: OrderItemsApi, item_id: str, target: OrderItemStatus) -> OrderItem | None:
    """The item re-read, if it has the `target` status; None if not or it cannot be read for good."""
    try:
        item = client.get_order_item(item_id)
    except APIStatusError as err:
        if permanent_reason(err) is None:
            raise
        return None
    return item if parse_status(item.status) is target else None


def decision_in_flight(record: OrderRecord, now: datetime) -> bool:
    """An accept/reject was started (intent saved) by an invocation that may still be running: its
    PATCH may not have landed yet, or it has and the work order is not open yet."""
    if record.intended_decision is None or record.decision is not None or record.decision_deadline is None:
        return False
    return now < record.decision_deadline


def new_work_order(
    ports: Ports, item: OrderItem, work_order_id: str, now: datetime, *, contact_by: datetime | None = None
) -> WorkOrder:
    """The work order fulfilment acts on for an accepted item (what the customer needs done)."""
    return WorkOrder(
        work_order_id=work_order_id,
        item_id=item.id,
        order_id=item.order_id,
        offer_id=item.offer_id,
        offer_name=item.offer_name,
        customer=item.customer_info.to_wire() if item.customer_info else None,
        service_address=item.service_address.to_wire() if item.service_address else None,
        order_notes=item.notes,
        contact_by=contact_by or now + timedelta(hours=ports.contact_within_hours),
        created_at=now,
    )
