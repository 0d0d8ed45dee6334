"""The order domain: decide every item once, handle cancellations, push the provider's status.

Three use cases, each taking the ports and an `OffergridClient` and returning an `OrderOutcome`:

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
the order record and returned as an `OrderOutcome` with a `failure`, so the message is not retried.

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

from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    AFTER_ACCEPTANCE,
    InvalidTransition,
    allowed_targets,
    check_transition,
    is_decidable,
    parse_status,
)
from offergrid_integration.orders.provider_events import ProviderStatusChange
from offergrid_integration.orders.records import Decision, OrderRecord, OrderStore, RecordConflict
from offergrid_integration.orders.serviceability import ServiceabilityChecker
from offergrid_integration.orders.workorders import (
    WorkOrder,
    WorkOrderReader,
    WorkOrderSink,
    work_order_id_for,
)
from offergrid_integration.webhooks.events import OffergridEvent

__all__ = [
    "DEFAULT_CONTACT_WITHIN_HOURS",
    "PROVIDER_WORK",
    "RECONCILE_CANCEL",
    "RECONCILE_OPEN",
    "WORK_ENDED",
    "FailureReason",
    "OrderOutcome",
    "OutcomeKind",
    "Ports",
    "handle_order_cancelled",
    "handle_order_created",
    "handle_reconcile_cancel",
    "handle_reconcile_open",
    "handle_status_change",
    "permanent_reason",
    "pushed_by_us",
    "record_permanent_failure",
]

DEFAULT_CONTACT_WITHIN_HOURS: Final = 24
MAX_NOTES: Final = 1_000
# An intended decision older than this cannot be in flight any more: no invocation lasts longer
# (the Lambda maximum). A cancellation then proceeds instead of waiting for it forever.
DECISION_IN_FLIGHT_SECONDS: Final = 900
# The item statuses a cancellation without itemId looks for at Offergrid (docs/decisions.md#4): the
# ones that can still be cancelled or decided. Older items need nothing.
CANCELLABLE_LISTING: Final = (
    OrderItemStatus.PENDING,
    OrderItemStatus.SUBMITTED_TO_PROVIDER,
    OrderItemStatus.ACCEPTED,
    OrderItemStatus.SCHEDULED,
    OrderItemStatus.IN_PROGRESS,
)


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
    # Reconciliation repairs (orders/reconcile.py): what the repair did, or why nothing was needed.
    WORK_ORDER_OPENED = "work_order_opened"
    WORK_ORDER_CANCELLED = "work_order_cancelled"
    NOTHING_TO_REPAIR = "nothing_to_repair"


class FailureReason(StrEnum):
    """Why a message failed for good: the low-cardinality `Reason` metric dimension."""

    ITEM_NOT_FOUND = "item_not_found"
    INVALID_TRANSITION = "invalid_transition"
    REQUEST_REJECTED = "request_rejected"  # another 4xx: Offergrid refused the request as sent
    MALFORMED_MESSAGE = "malformed_message"
    INVALID_PROVIDER_EVENT = "invalid_provider_event"
    # A fulfilment status for an item we never accepted (docs/decisions.md#11): never pushed.
    ITEM_NOT_ACCEPTED = "item_not_accepted"


@dataclass(frozen=True)
class OrderOutcome:
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
    # Seconds left in the current invocation (None: no deadline known). Bounds how long a decision
    # we start may stay "in flight" for the others.
    remaining_time: Callable[[], float] | None = None

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now(), UTC)

    def decision_deadline(self, now: datetime) -> datetime:
        """When a decision started now is over for sure: this invocation will have ended by then."""
        left = DECISION_IN_FLIGHT_SECONDS if self.remaining_time is None else self.remaining_time()
        return now + timedelta(seconds=min(max(left, 0.0), DECISION_IN_FLIGHT_SECONDS))


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
) -> OrderOutcome:
    now = ports.now()
    record = ports.orders.get(item_id) or _new_record(item_id, order_id, now)
    record.last_failure = f"{failure.value}: {detail}"[:MAX_NOTES]
    if status is not None:
        record.offergrid_status = status
    record.add_history(
        now, "permanent_failure", status=status, detail=record.last_failure, dedup_key=dedup_key
    )
    ports.orders.save(record)
    return OrderOutcome(OutcomeKind.PERMANENT_FAILURE, detail, (item_id,), failure)


def _fetch_item(
    client: OffergridClient, ports: Ports, item_id: str, order_id: str | None, dedup_key: str | None
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


def _patch(
    client: OffergridClient,
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
            current = _already_in_status(client, record.item_id, update.status)
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
) -> OrderOutcome:
    item_id = event.item_id
    if not item_id:
        return OrderOutcome(
            OutcomeKind.PERMANENT_FAILURE, "order.created without itemId", (), FailureReason.MALFORMED_MESSAGE
        )
    fetched = _fetch_item(client, ports, item_id, event.order_id, dedup_key)
    if isinstance(fetched, OrderOutcome):
        return fetched
    item = fetched
    now = ports.now()
    record = _record_for(ports, item, now)
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
        if _decision_in_flight(record, now):
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

    verdict = ports.serviceability.check(item)
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
    client: OffergridClient, ports: Ports, record: OrderRecord, item: OrderItem, dedup_key: str | None
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
        patched = _patch(client, ports, record, update, dedup_key)
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
    stored = ports.work_orders.open(_new_work_order(ports, item, work_order_id, now, contact_by=contact_by))
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


def _new_work_order(
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


def _reject(
    client: OffergridClient, ports: Ports, record: OrderRecord, reason: str, dedup_key: str | None
) -> OrderOutcome:
    now = ports.now()
    record.intended_decision = Decision.REJECTED
    record.decision_deadline = ports.decision_deadline(now)
    record.decision_reason = reason
    record.add_history(now, "rejecting", status=record.offergrid_status, detail=reason, dedup_key=dedup_key)
    record = ports.orders.save(record)
    with _released_on_error(ports, record):
        patched = _patch(
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


# ---------------------------------------------------------------------------------------------------
# order.cancelled
# ---------------------------------------------------------------------------------------------------
def handle_order_cancelled(
    event: OffergridEvent, *, ports: Ports, client: OffergridClient, dedup_key: str | None = None
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
    event: OffergridEvent, ports: Ports, client: OffergridClient
) -> list[tuple[str, OrderItem | None]]:
    """docs/decisions.md#4: the itemId; else every item of the order, from our records AND from
    Offergrid (the items whose webhook has not arrived yet), listing each status that can still be
    cancelled or decided, every page.

    Items found by listing come with their listed state (not fetched again); the others are None.
    """
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


def _decision_in_flight(record: OrderRecord, now: datetime) -> bool:
    """An accept/reject was started (intent saved) by an invocation that may still be running: its
    PATCH may not have landed yet, or it has and the work order is not open yet."""
    if record.intended_decision is None or record.decision is not None or record.decision_deadline is None:
        return False
    return now < record.decision_deadline


def _cancel_item(
    item_id: str,
    event: OffergridEvent,
    ports: Ports,
    client: OffergridClient,
    dedup_key: str | None,
    listed: OrderItem | None = None,
    *,
    whole_order: bool = False,
) -> tuple[str, bool]:
    """Cancel one item (`listed`: its state from a listing, so not fetched again).

    Returns what was done (for the outcome's reason) and whether the item is now cancelled. The
    work order is cancelled only with the item: one that Offergrid cannot cancel (active, completed,
    failed...) keeps its work order. `RecordConflict` while a decision on the item is in flight.
    """
    if listed is None:
        fetched = _fetch_item(client, ports, item_id, event.order_id, dedup_key)
        if isinstance(fetched, OrderOutcome):
            return f"not cancelled ({fetched.reason})", False
        listed = fetched
    item = listed
    now = ports.now()
    record = _record_for(ports, item, now)
    if _decision_in_flight(record, now):
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


# ---------------------------------------------------------------------------------------------------
# workorder.status_changed
# ---------------------------------------------------------------------------------------------------
def handle_status_change(
    change: ProviderStatusChange, *, ports: Ports, client: OffergridClient, dedup_key: str | None = None
) -> OrderOutcome:
    dedup_key = dedup_key or change.dedup_key
    fetched = _fetch_item(client, ports, change.item_id, None, dedup_key)
    if isinstance(fetched, OrderOutcome):
        return fetched
    item = fetched
    now = ports.now()
    record = _record_for(ports, item, now)
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
    patched = _patch(client, ports, record, change.to_status_update(), dedup_key)
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


# ---------------------------------------------------------------------------------------------------
# Reconciliation repairs (orders/reconcile.py queues them; docs/order-state-machine.md)
# ---------------------------------------------------------------------------------------------------
# Offergrid statuses in which the provider still has work to do: the item needs an open work order.
PROVIDER_WORK: Final = frozenset(
    {OrderItemStatus.ACCEPTED, OrderItemStatus.SCHEDULED, OrderItemStatus.IN_PROGRESS}
)
# Statuses that end the provider's work when Offergrid (not our fulfilment) put the item there.
WORK_ENDED: Final = frozenset({OrderItemStatus.CANCELLED, OrderItemStatus.REJECTED, OrderItemStatus.FAILED})
ADOPTED_REASON: Final = "accepted at Offergrid outside this integration; adopted by reconciliation"
RESUMED_REASON: Final = "serviceable; our acceptance's work order opened by reconciliation"
# The event types of the repair messages the reconciler queues (source "reconcile").
RECONCILE_OPEN: Final = "reconcile.open_work_order"
RECONCILE_CANCEL: Final = "reconcile.cancel_work_order"


def pushed_by_us(record: OrderRecord | None, status: OrderItemStatus) -> bool:
    """Whether our fulfilment pushed `status` to Offergrid for this item (then its work order ended
    with fulfilment's knowledge: not a drift)."""
    return record is not None and any(
        entry.action == "status_pushed" and entry.status == status.value for entry in record.history
    )


def _repair_target(
    event: OffergridEvent, ports: Ports, client: OffergridClient, dedup_key: str | None
) -> tuple[OrderItem, OrderRecord, datetime] | OrderOutcome:
    """The item a repair is about, read afresh, with our record of it; `RecordConflict` while a
    decision on it is in flight (the repair is retried after it)."""
    if not event.item_id:
        return OrderOutcome(
            OutcomeKind.PERMANENT_FAILURE, "repair without itemId", (), FailureReason.MALFORMED_MESSAGE
        )
    fetched = _fetch_item(client, ports, event.item_id, event.order_id, dedup_key)
    if isinstance(fetched, OrderOutcome):
        return fetched
    now = ports.now()
    record = _record_for(ports, fetched, now)
    if _decision_in_flight(record, now):
        raise RecordConflict(f"order record {fetched.id!r} has a decision in flight; repair after it")
    return fetched, record, now


def handle_reconcile_open(
    event: OffergridEvent, *, ports: Ports, client: OffergridClient, dedup_key: str | None = None
) -> OrderOutcome:
    """Open the missing work order of an item Offergrid shows accepted/scheduled/in_progress.

    Re-checked here, on fresh state, because the reconciler's view is minutes old: the item must
    still imply provider work, no decision on it may be in flight (`RecordConflict`: retried after
    it), and our record must not say cancelled or rejected (that drift is reported, never repaired).
    An item accepted by hand (record `decided_elsewhere`, or none) is *adopted*: its record becomes
    `accepted`, so fulfilment statuses may be pushed for it (docs/decisions.md#11). Never PATCHes.
    """
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
        stored = ports.work_orders.open(_new_work_order(ports, item, work_order_id, now))
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
    event: OffergridEvent, *, ports: Ports, client: OffergridClient, dedup_key: str | None = None
) -> OrderOutcome:
    """Cancel (and announce) the open work order of an item Offergrid shows cancelled, or rejected or
    failed without our fulfilment having pushed that status. Never PATCHes Offergrid."""
    target = _repair_target(event, ports, client, dedup_key)
    if isinstance(target, OrderOutcome):
        return target
    item, record, now = target
    status = parse_status(item.status)
    if status not in WORK_ENDED or (status is not OrderItemStatus.CANCELLED and pushed_by_us(record, status)):
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
