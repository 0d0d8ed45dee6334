"""What the order use cases share: the records and work orders they keep, their ports, their
result (`OrderOutcome`, and `OUTCOME_METRICS`: the metric each successful one counts) and the
Offergrid calls they make (`OrderItemsApi`). The adapters are in `orders/adapters/dynamodb.py`.

Record writes are optimistic: `save` succeeds only if the stored record still has the version that
was read, so two messages about one item (a cancellation racing a decision) never overwrite each
other's history; the loser gets `RecordConflict`, transient (the message is retried).

Work orders are what the provider's systems (CRM, dispatch) act on once we accept an item. The
adapter stores each (key `workOrderId`) and publishes it on the provider's EventBridge bus, source
`offergrid.integration`: detail-type `offergrid.order.accepted` (the work order, camelCase JSON) or
`offergrid.order.cancelled` (with `cancelReason`). Delivery is at least once: consumers deduplicate
on `workOrderId` + detail-type. The id is derived from the item id, so a retry reopens the same
work order. Opening and cancelling are conditional writes on the one item, so whichever lands
second sees the first: `open` creates only if none exists (a cancelled one is returned, nothing
announced); `cancel` of one not opened yet stores a cancelled *tombstone* (`opened` false, never
announced), so an acceptance that lands later cannot open it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from offergrid_integration.clock import SYSTEM_CLOCK, Clock
from offergrid_integration.errors import TransientError
from offergrid_integration.offergrid.models import OrderItem, OrderItemStatus, StatusUpdate

if TYPE_CHECKING:  # the offer sync reads records without the serviceability rules' imports
    from offergrid_integration.orders.serviceability import ServiceabilityChecker


DEFAULT_CONTACT_WITHIN_HOURS: Final = 24
# An intended decision older than this cannot be in flight any more: no invocation lasts longer
# (the Lambda maximum). A cancellation then proceeds instead of waiting for it forever.
DECISION_IN_FLIGHT_SECONDS: Final = 900
ORDER_ID_INDEX: Final = "byOrderId"
MAX_HISTORY: Final = 100  # oldest entries are dropped beyond this (DynamoDB items hold 400 KB)
EVENT_SOURCE: Final = "offergrid.integration"
ACCEPTED_DETAIL_TYPE: Final = "offergrid.order.accepted"
CANCELLED_DETAIL_TYPE: Final = "offergrid.order.cancelled"


class OrderItemsApi(Protocol):
    """The Offergrid calls the order use cases make; `OffergridClient` is one (mypy checks it where
    the processor's runtime hands its client to `orders.messages.dispatch`), and so is
    `orders.steps.BatchItemReads`, the one batch's reads the pipeline hands them instead."""

    def get_order_item(self, item_id: str) -> OrderItem: ...

    def update_order_item_status(self, item_id: str, update: StatusUpdate) -> OrderItem | None: ...

    def list_orders(self, status: OrderItemStatus | None = None) -> Iterator[OrderItem]: ...

    def list_order_pages(
        self, status: OrderItemStatus | None = None, *, max_retries: int | None = None
    ) -> Iterator[list[OrderItem]]: ...


@runtime_checkable
class ListedItemReads(Protocol):
    """Reads that may answer an item from a listing (`steps.BatchItemReads`), asked for a full read
    before a decision or a work order (docs/decisions.md#16); any other `OrderItemsApi` GETs."""

    def get_full_order_item(self, item_id: str) -> OrderItem: ...


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


# The metric each successful outcome counts (value: the number of items, at least 1). Outcomes not
# here (already decided, nothing to cancel, unchanged, ignored, repairs) are logged, not counted.
OUTCOME_METRICS: Final[dict[OutcomeKind, str]] = {
    OutcomeKind.ACCEPTED: "OrderAccepted",
    OutcomeKind.REJECTED: "OrderRejected",
    OutcomeKind.CANCELLED: "OrderCancelled",
    OutcomeKind.STATUS_PUSHED: "StatusPushed",
    OutcomeKind.WORK_ORDER_OPENED: "ReconcileWorkOrderOpened",
    OutcomeKind.WORK_ORDER_CANCELLED: "ReconcileWorkOrderCancelled",
}


class Decision(StrEnum):
    """What we decided about an item (or why we did not)."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    # The item was no longer pending/submitted_to_provider when we looked: decided elsewhere.
    DECIDED_ELSEWHERE = "decided_elsewhere"
    # Cancelled before we decided: never accept it afterwards.
    CANCELLED = "cancelled"


class RecordConflict(TransientError):
    """Another writer changed the record since it was read. Transient: retry the message."""


class _Model(BaseModel):
    # Validators built on first use: the offer sync's cold start (a dry run, or a sweep with nothing
    # to look up) never reads a record.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", defer_build=True
    )


class HistoryEntry(_Model):
    at: datetime
    action: str  # e.g. "accepted", "rejected", "status_pushed", "cancelled", "permanent_failure"
    status: str | None = None  # the Offergrid status after the action, when known
    detail: str | None = None
    dedup_key: str | None = None


class OrderRecord(_Model):
    item_id: str
    order_id: str | None = None  # unknown when Offergrid never returned the item (404)
    offer_id: str | None = None
    offergrid_status: str | None = None
    decision: Decision | None = None
    decision_reason: str | None = None
    # Written before the accept/reject PATCH, so a retry after a crash finishes what was started.
    intended_decision: Decision | None = None
    # When the invocation that wrote `intended_decision` will have ended for sure (its deadline):
    # until then its decision is in flight and nobody else decides or cancels the item.
    decision_deadline: datetime | None = None
    # Set on every item of an order cancelled without itemId (docs/decisions.md#4): a later
    # order.created of another item of that order finds it through the byOrderId index.
    order_cancelled_at: datetime | None = None
    work_order_id: str | None = None
    cancelled_at: datetime | None = None
    last_failure: str | None = None
    history: list[HistoryEntry] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
    version: int = 0

    def add_history(
        self,
        at: datetime,
        action: str,
        *,
        status: str | None = None,
        detail: str | None = None,
        dedup_key: str | None = None,
    ) -> None:
        self.history.append(
            HistoryEntry(at=at, action=action, status=status, detail=detail, dedup_key=dedup_key)
        )
        del self.history[:-MAX_HISTORY]
        self.updated_at = at

    def decision_in_flight(self, now: datetime) -> bool:
        """An accept/reject was started (intent saved) by an invocation that may still be running: its
        PATCH may not have landed yet, or it has and the work order is not open yet."""
        deadline = self.decision_deadline
        return (
            self.decision is None
            and self.intended_decision is not None
            and deadline is not None
            and now < deadline
        )

    def pushed(self, status: OrderItemStatus) -> bool:
        """Whether our fulfilment pushed `status` to Offergrid (a work order it ended is not a drift)."""
        return any(entry.action == "status_pushed" and entry.status == status.value for entry in self.history)

    def to_item(self) -> dict[str, Any]:
        """The DynamoDB item (None fields left out, so sparse indexes stay sparse)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class OrderStore(Protocol):
    def get(self, item_id: str) -> OrderRecord | None: ...

    def find_by_order(self, order_id: str) -> list[OrderRecord]:
        """Every record of the order's items."""
        ...

    def save(self, record: OrderRecord) -> OrderRecord:
        """Store `record` if the stored version is still `record.version`; returns it at the next
        version. `RecordConflict` otherwise."""
        ...


def work_order_id_for(item_id: str) -> str:
    """Deterministic: the same item always gets the same work order id."""
    return "WO-" + hashlib.sha256(item_id.encode("utf-8")).hexdigest()[:16].upper()


class WorkOrder(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    work_order_id: str
    item_id: str
    order_id: str | None = None  # None only on a tombstone of an item we never read
    offer_id: str | None = None
    offer_name: str | None = None
    status: Literal["open", "cancelled"] = "open"
    customer: dict[str, Any] | None = None
    service_address: dict[str, Any] | None = None
    order_notes: str | None = None
    contact_by: datetime | None = None  # None only on a tombstone
    created_at: datetime
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    # False on a tombstone: cancelled before it was ever opened, so never announced.
    opened: bool = True

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    def to_json_dict(self) -> dict[str, Any]:
        """The stored item."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def to_event_detail(self) -> dict[str, Any]:
        """What fulfilment receives (the storage-only `opened` flag left out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"opened"})


class WorkOrderPublishError(TransientError):
    """EventBridge did not take the event. Transient: the message is retried."""


class WorkOrderWriteConflict(TransientError):
    """The work order kept changing under our conditional writes. Transient: the message is retried."""

    def __init__(self, work_order_id: str) -> None:
        super().__init__(f"work order {work_order_id} changed concurrently")


class WorkOrderSink(Protocol):
    def open(self, work_order: WorkOrder) -> WorkOrder:
        """Create (or re-announce, when it is open) the work order; idempotent on its id. Returns what
        is stored: a cancelled one (announced nothing) when a cancellation got there first."""
        ...

    def cancel(
        self, work_order_id: str, *, item_id: str, reason: str | None, at: datetime
    ) -> WorkOrder | None:
        """Mark the work order cancelled and announce it if it was ever opened; when it does not
        exist, store a tombstone so it can never be opened. Returns the opened work order now
        cancelled, or None when it was never opened."""
        ...


@runtime_checkable
class WorkOrderReader(Protocol):
    """A sink that can also read one work order back (the DynamoDB adapter): lets a reconciliation
    repair tell an open work order from a missing one without announcing it again."""

    def get(self, work_order_id: str) -> WorkOrder | None: ...


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
