"""The order domain: decide every item once, handle cancellations, push the provider's status.

Three use cases, each taking the ports and an `OffergridClient` and returning an `Outcome`:

- `handle_order_created`: fetch the item; if it is still pending/submitted_to_provider, check
  serviceability, then accept (PATCH `accepted`, providerNotes saying when the customer will be
  contacted, open a work order) or reject (PATCH `rejected`, the reason in providerNotes); if it is
  not, record that it was decided elsewhere and stop.
- `handle_order_cancelled`: find the items (by itemId, else our records by orderId, else listing
  orders), cancel their work orders, record it, and PATCH `cancelled` only where the lifecycle
  allows it (never out of a terminal status, never twice).
- `handle_status_change`: push a provider work-order status to Offergrid, checked against the
  lifecycle (no regression, no move out of a terminal status, no PATCH of the current status).

Errors: transient ones (`err.retryable`: connection, 408/429/5xx, rate budget, serviceability
unavailable, a record conflict; and 401/403, which are configuration) propagate so the message is
retried. Permanent ones (404, other 4xx, an invalid transition, a malformed message) are recorded on
the order record and returned as an `Outcome` with a `failure`, so the message is not retried.

Crash safety: before the accept/reject PATCH the intended decision is saved on the record; a retry
that finds the item already in that status finishes the work (opens the work order, records the
decision) instead of deciding again. A PATCH refused with 409/422 is checked by re-reading the item:
if it already has the target status, our PATCH was applied and only its answer was lost (timeout,
dropped connection, 5xx after the write), so the work continues as if it had been answered. A
cancellation that finds a decision in flight (an intended decision on a still decidable item) is a
`RecordConflict`: retried once the decision has landed, it then cancels the decided item.
Idempotency keyed on the dedup key comes on top (the handler).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from offergrid_integration.clock import SYSTEM_CLOCK, Clock
from offergrid_integration.observability import logger
from offergrid_integration.offergrid.client import OffergridClient
from offergrid_integration.offergrid.errors import (
    APIStatusError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    UnprocessableEntityError,
)
from offergrid_integration.offergrid.models import OrderItem, OrderItemStatus, StatusUpdate
from offergrid_integration.orders.lifecycle import (
    InvalidTransition,
    allowed_targets,
    check_transition,
    is_decidable,
    parse_status,
)
from offergrid_integration.orders.provider_events import ProviderStatusChange
from offergrid_integration.orders.records import Decision, OrderRecord, OrderStore, RecordConflict
from offergrid_integration.orders.serviceability import ServiceabilityChecker
from offergrid_integration.orders.workorders import WorkOrder, WorkOrderSink, work_order_id_for
from offergrid_integration.webhooks.events import OffergridEvent

__all__ = [
    "DEFAULT_CONTACT_WITHIN_HOURS",
    "FailureReason",
    "Outcome",
    "OutcomeKind",
    "Ports",
    "handle_order_cancelled",
    "handle_order_created",
    "handle_status_change",
    "permanent_reason",
    "record_permanent_failure",
]

DEFAULT_CONTACT_WITHIN_HOURS: Final = 24
MAX_NOTES: Final = 1_000
# An intended decision older than this cannot be in flight any more: no invocation lasts longer
# (the Lambda maximum). A cancellation then proceeds instead of waiting for it forever.
DECISION_IN_FLIGHT_SECONDS: Final = 900


class OutcomeKind(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ALREADY_DECIDED = "already_decided"
    CANCELLED = "cancelled"
    NOTHING_TO_CANCEL = "nothing_to_cancel"
    STATUS_PUSHED = "status_pushed"
    STATUS_UNCHANGED = "status_unchanged"
    PERMANENT_FAILURE = "permanent_failure"
    IGNORED = "ignored"


class FailureReason(StrEnum):
    """Why a message failed for good: the low-cardinality `Reason` metric dimension."""

    ITEM_NOT_FOUND = "item_not_found"
    INVALID_TRANSITION = "invalid_transition"
    REQUEST_REJECTED = "request_rejected"  # another 4xx: Offergrid refused the request as sent
    MALFORMED_MESSAGE = "malformed_message"
    INVALID_PROVIDER_EVENT = "invalid_provider_event"


@dataclass(frozen=True)
class Outcome:
    decision: OutcomeKind
    reason: str
    item_ids: tuple[str, ...] = ()
    failure: FailureReason | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "decision": self.decision.value,
            "reason": self.reason,
            "itemIds": list(self.item_ids),
            "failure": self.failure.value if self.failure else None,
        }


@dataclass(frozen=True)
class Ports:
    orders: OrderStore
    work_orders: WorkOrderSink
    serviceability: ServiceabilityChecker
    clock: Clock = SYSTEM_CLOCK
    contact_within_hours: int = DEFAULT_CONTACT_WITHIN_HOURS

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now(), UTC)


# ---------------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------------
def permanent_reason(err: APIStatusError, *, on_transition: bool = False) -> FailureReason | None:
    """The failure reason when `err` is permanent for this message, None when it is transient.

    401/403 are not retryable for one request but mean a wrong key or role: a configuration
    problem. Treating them as transient keeps the messages (retries, then the DLQ and its alarm)
    instead of dropping every order until someone notices.
    """
    if err.retryable or isinstance(err, AuthenticationError | PermissionDeniedError):
        return None
    if isinstance(err, NotFoundError):
        return FailureReason.ITEM_NOT_FOUND
    if on_transition and isinstance(err, UnprocessableEntityError | ConflictError):
        return FailureReason.INVALID_TRANSITION
    return FailureReason.REQUEST_REJECTED


def _new_record(
    item_id: str, order_id: str | None, now: datetime, *, offer_id: str | None = None
) -> OrderRecord:
    return OrderRecord(item_id=item_id, order_id=order_id, offer_id=offer_id, created_at=now, updated_at=now)


def _record_for(ports: Ports, item: OrderItem, now: datetime) -> OrderRecord:
    record = ports.orders.get(item.id) or _new_record(item.id, item.order_id, now, offer_id=item.offer_id)
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
) -> Outcome:
    now = ports.now()
    record = ports.orders.get(item_id) or _new_record(item_id, order_id, now)
    record.last_failure = f"{failure.value}: {detail}"[:MAX_NOTES]
    if status is not None:
        record.offergrid_status = status
    record.add_history(
        now, "permanent_failure", status=status, detail=record.last_failure, dedup_key=dedup_key
    )
    ports.orders.save(record)
    return Outcome(OutcomeKind.PERMANENT_FAILURE, detail, (item_id,), failure)


def _fetch_item(
    client: OffergridClient, ports: Ports, item_id: str, order_id: str | None, dedup_key: str | None
) -> OrderItem | Outcome:
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


def _patch(
    client: OffergridClient,
    ports: Ports,
    record: OrderRecord,
    update: StatusUpdate,
    dedup_key: str | None,
) -> OrderItem | Outcome:
    """PATCH the status; a permanent refusal is recorded (on `record`) and returned as an Outcome.

    A 409/422 may answer the client's retry of a PATCH that Offergrid applied but whose answer was
    lost: the item is re-read, and if it has the target status the PATCH counts as applied.
    """
    try:
        # A 2xx without a readable item (204, a message) was applied: the item has the target status.
        return client.update_order_item_status(record.item_id, update) or OrderItem(
            id=record.item_id, status=update.status
        )
    except APIStatusError as err:
        if isinstance(err, ConflictError | UnprocessableEntityError):
            current = _already_in_status(client, record.item_id, update.status)
            if current is not None:
                logger.info(
                    "status PATCH refused but the item already has that status: treated as applied",
                    extra={"itemId": record.item_id, "status": update.status.value, "code": err.status_code},
                )
                return current
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
        return Outcome(OutcomeKind.PERMANENT_FAILURE, detail, (record.item_id,), failure)


def _already_in_status(client: OffergridClient, item_id: str, target: OrderItemStatus) -> OrderItem | None:
    """The item re-read, if it has the `target` status; None if not or it cannot be read for good."""
    try:
        item = client.get_order_item(item_id)
    except APIStatusError as err:
        if permanent_reason(err) is None:
            raise
        return None
    return item if parse_status(item.status) is target else None


# ---------------------------------------------------------------------------------------------------
# order.created
# ---------------------------------------------------------------------------------------------------
def acceptance_notes(contact_by: datetime, hours: int, work_order_id: str) -> str:
    return (
        f"Accepted. We will contact the customer within {hours} hours "
        f"(by {contact_by:%Y-%m-%d %H:%M} UTC) to schedule the service. Reference {work_order_id}."
    )


def handle_order_created(
    event: OffergridEvent, *, ports: Ports, client: OffergridClient, dedup_key: str | None = None
) -> Outcome:
    item_id = event.item_id
    if not item_id:
        return Outcome(
            OutcomeKind.PERMANENT_FAILURE, "order.created without itemId", (), FailureReason.MALFORMED_MESSAGE
        )
    fetched = _fetch_item(client, ports, item_id, event.order_id, dedup_key)
    if isinstance(fetched, Outcome):
        return fetched
    item = fetched
    now = ports.now()
    record = _record_for(ports, item, now)
    status = parse_status(item.status)

    # A retry after a crash between our PATCH and recording it: finish, do not decide again.
    if (
        record.decision is None
        and record.intended_decision is Decision.ACCEPTED
        and status is OrderItemStatus.ACCEPTED
    ):
        return _finish_accept(ports, record, item, dedup_key, resumed=True)
    if (
        record.decision is None
        and record.intended_decision is Decision.REJECTED
        and status is OrderItemStatus.REJECTED
    ):
        return _finish_reject(ports, record, record.decision_reason or "rejected", dedup_key)

    if record.decision is Decision.CANCELLED:
        record.add_history(
            now, "skipped", status=str(item.status), detail="cancelled before decision", dedup_key=dedup_key
        )
        ports.orders.save(record)
        return Outcome(OutcomeKind.ALREADY_DECIDED, "the order was cancelled before we decided", (item_id,))
    if not is_decidable(item.status):
        detail = f"item is already {item.status}"
        if record.decision is None:
            record.decision = Decision.DECIDED_ELSEWHERE
            record.decision_reason = detail
        record.add_history(now, "skipped", status=str(item.status), detail=detail, dedup_key=dedup_key)
        ports.orders.save(record)
        return Outcome(OutcomeKind.ALREADY_DECIDED, detail, (item_id,))

    verdict = ports.serviceability.check(item)
    if verdict.serviceable:
        return _accept(client, ports, record, item, dedup_key)
    return _reject(client, ports, record, verdict.reason, dedup_key)


def _accept(
    client: OffergridClient, ports: Ports, record: OrderRecord, item: OrderItem, dedup_key: str | None
) -> Outcome:
    now = ports.now()
    work_order_id = work_order_id_for(item.id)
    contact_by = now + timedelta(hours=ports.contact_within_hours)
    record.intended_decision = Decision.ACCEPTED
    record.work_order_id = work_order_id
    record.add_history(now, "accepting", status=str(item.status), dedup_key=dedup_key)
    record = ports.orders.save(record)
    update = StatusUpdate(
        status=OrderItemStatus.ACCEPTED,
        provider_notes=acceptance_notes(contact_by, ports.contact_within_hours, work_order_id),
        metadata={"workOrderId": work_order_id, "contactBy": contact_by.isoformat().replace("+00:00", "Z")},
    )
    patched = _patch(client, ports, record, update, dedup_key)
    if isinstance(patched, Outcome):
        return patched
    record.offergrid_status = str(patched.status)
    return _finish_accept(ports, record, item, dedup_key, resumed=False, contact_by=contact_by)


def _finish_accept(
    ports: Ports,
    record: OrderRecord,
    item: OrderItem,
    dedup_key: str | None,
    *,
    resumed: bool,
    contact_by: datetime | None = None,
) -> Outcome:
    now = ports.now()
    work_order_id = record.work_order_id or work_order_id_for(item.id)
    customer = item.customer_info.to_wire() if item.customer_info else None
    address = item.service_address.to_wire() if item.service_address else None
    ports.work_orders.open(
        WorkOrder(
            work_order_id=work_order_id,
            item_id=item.id,
            order_id=item.order_id,
            offer_id=item.offer_id,
            offer_name=item.offer_name,
            customer=customer,
            service_address=address,
            order_notes=item.notes,
            contact_by=contact_by or now + timedelta(hours=ports.contact_within_hours),
            created_at=now,
        )
    )
    reason = f"serviceable; work order {work_order_id}"
    record.decision = Decision.ACCEPTED
    record.decision_reason = reason
    record.intended_decision = None
    record.work_order_id = work_order_id
    record.offergrid_status = OrderItemStatus.ACCEPTED.value
    detail = "resumed after an interruption" if resumed else None
    record.add_history(now, "accepted", status=record.offergrid_status, detail=detail, dedup_key=dedup_key)
    ports.orders.save(record)
    return Outcome(OutcomeKind.ACCEPTED, reason, (item.id,))


def _reject(
    client: OffergridClient, ports: Ports, record: OrderRecord, reason: str, dedup_key: str | None
) -> Outcome:
    now = ports.now()
    record.intended_decision = Decision.REJECTED
    record.decision_reason = reason
    record.add_history(now, "rejecting", status=record.offergrid_status, detail=reason, dedup_key=dedup_key)
    record = ports.orders.save(record)
    patched = _patch(
        client, ports, record, StatusUpdate(status=OrderItemStatus.REJECTED, provider_notes=reason), dedup_key
    )
    if isinstance(patched, Outcome):
        return patched
    return _finish_reject(ports, record, reason, dedup_key)


def _finish_reject(ports: Ports, record: OrderRecord, reason: str, dedup_key: str | None) -> Outcome:
    record.decision = Decision.REJECTED
    record.decision_reason = reason
    record.intended_decision = None
    record.offergrid_status = OrderItemStatus.REJECTED.value
    record.add_history(
        ports.now(), "rejected", status=record.offergrid_status, detail=reason, dedup_key=dedup_key
    )
    ports.orders.save(record)
    return Outcome(OutcomeKind.REJECTED, reason, (record.item_id,))


# ---------------------------------------------------------------------------------------------------
# order.cancelled
# ---------------------------------------------------------------------------------------------------
def handle_order_cancelled(
    event: OffergridEvent, *, ports: Ports, client: OffergridClient, dedup_key: str | None = None
) -> Outcome:
    if not event.item_id and not event.order_id:
        return Outcome(
            OutcomeKind.PERMANENT_FAILURE,
            "order.cancelled without orderId or itemId",
            (),
            FailureReason.MALFORMED_MESSAGE,
        )
    targets = _items_to_cancel(event, ports, client)
    if not targets:
        return Outcome(OutcomeKind.NOTHING_TO_CANCEL, f"no items of order {event.order_id} are ours")
    results = [_cancel_item(item_id, event, ports, client, dedup_key, listed) for item_id, listed in targets]
    summary = "; ".join(
        f"{item_id}: {done}" for (item_id, _), (done, _) in zip(targets, results, strict=True)
    )
    cancelled = tuple(item_id for (item_id, _), (_, ok) in zip(targets, results, strict=True) if ok)
    if not cancelled:
        return Outcome(OutcomeKind.NOTHING_TO_CANCEL, summary)
    return Outcome(OutcomeKind.CANCELLED, summary, cancelled)


def _items_to_cancel(
    event: OffergridEvent, ports: Ports, client: OffergridClient
) -> list[tuple[str, OrderItem | None]]:
    """Decision 4: the itemId, else the items of the order in our records, else from listing orders.

    Items found by listing come with their listed state (not fetched again); the others are None.
    """
    if event.item_id:
        return [(event.item_id, None)]
    assert event.order_id is not None
    records = ports.orders.find_by_order(event.order_id)
    if records:
        return [(item_id, None) for item_id in sorted(record.item_id for record in records)]
    listed = {item.id: item for item in client.list_orders() if item.order_id == event.order_id}
    return [(item_id, listed[item_id]) for item_id in sorted(listed)]


def _cancellation_notes(reason: str | None) -> str:
    return f"Cancelled: {reason}"[:MAX_NOTES] if reason else "Cancelled at the customer's request."


def _decision_in_flight(record: OrderRecord, item: OrderItem, now: datetime) -> bool:
    """An accept/reject was started (intent saved) and its PATCH has not landed yet."""
    return (
        record.intended_decision is not None
        and is_decidable(item.status)
        and (now - record.updated_at).total_seconds() < DECISION_IN_FLIGHT_SECONDS
    )


def _cancel_item(
    item_id: str,
    event: OffergridEvent,
    ports: Ports,
    client: OffergridClient,
    dedup_key: str | None,
    listed: OrderItem | None = None,
) -> tuple[str, bool]:
    """Cancel one item (`listed`: its state from a listing, so not fetched again).

    Returns what was done (for the outcome's reason) and whether the item is now cancelled. The
    work order is cancelled only with the item: one that Offergrid cannot cancel (active, completed,
    failed...) keeps its work order. `RecordConflict` while a decision on the item is in flight.
    """
    if listed is None:
        fetched = _fetch_item(client, ports, item_id, event.order_id, dedup_key)
        if isinstance(fetched, Outcome):
            return f"not cancelled ({fetched.reason})", False
        listed = fetched
    item = listed
    now = ports.now()
    record = _record_for(ports, item, now)
    if _decision_in_flight(record, item, now):
        raise RecordConflict(f"order record {item_id!r} has a decision in flight; cancel after it")

    status = parse_status(item.status)
    if status is OrderItemStatus.CANCELLED:
        done = "already cancelled on Offergrid"
    elif status is not None and OrderItemStatus.CANCELLED in allowed_targets(status):
        patched = _patch(
            client,
            ports,
            record,
            StatusUpdate(status=OrderItemStatus.CANCELLED, provider_notes=_cancellation_notes(event.reason)),
            dedup_key,
        )
        if isinstance(patched, Outcome):
            return f"not cancelled ({patched.reason})", False
        record.offergrid_status = str(patched.status)
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
    if record.work_order_id:
        ports.work_orders.cancel(record.work_order_id, reason=event.reason, at=now)
    if record.decision is None:
        record.decision = Decision.CANCELLED
        record.decision_reason = event.reason or "cancelled"
    record.intended_decision = None
    record.cancelled_at = record.cancelled_at or now
    record.add_history(now, "cancelled", status=record.offergrid_status, detail=done, dedup_key=dedup_key)
    ports.orders.save(record)
    return done, True


# ---------------------------------------------------------------------------------------------------
# workorder.status_changed
# ---------------------------------------------------------------------------------------------------
def handle_status_change(
    change: ProviderStatusChange, *, ports: Ports, client: OffergridClient, dedup_key: str | None = None
) -> Outcome:
    dedup_key = dedup_key or change.dedup_key
    fetched = _fetch_item(client, ports, change.item_id, None, dedup_key)
    if isinstance(fetched, Outcome):
        return fetched
    item = fetched
    now = ports.now()
    record = _record_for(ports, item, now)
    if change.work_order_id and not record.work_order_id:
        record.work_order_id = change.work_order_id
    target = change.target_status

    if parse_status(item.status) is target:
        record.add_history(now, "status_unchanged", status=target.value, dedup_key=dedup_key)
        ports.orders.save(record)
        return Outcome(OutcomeKind.STATUS_UNCHANGED, f"item is already {target.value}", (item.id,))
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
    patched = _patch(client, ports, record, change.to_status_update(), dedup_key)
    if isinstance(patched, Outcome):
        return patched
    record.offergrid_status = str(patched.status)
    record.add_history(
        now, "status_pushed", status=record.offergrid_status, detail=change.notes, dedup_key=dedup_key
    )
    ports.orders.save(record)
    return Outcome(OutcomeKind.STATUS_PUSHED, f"{item.status} -> {target.value}", (item.id,))
