"""What every order use case shares: its ports, its result type (`OrderOutcome`) and the Offergrid
calls it makes (`OrderItemsApi`).

`OUTCOME_METRICS` sits beside the result type: the metric each successful outcome counts
(docs/architecture.md, metrics_names.py). A permanent failure is counted as `PermanentFailure`
with its `FailureReason` as the `Reason` dimension; see `orders.pipeline`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final, Protocol, runtime_checkable

from offergrid_integration.clock import SYSTEM_CLOCK, Clock
from offergrid_integration.offergrid.models import OrderItem, OrderItemStatus, StatusUpdate
from offergrid_integration.orders.records import OrderStore
from offergrid_integration.orders.serviceability import ServiceabilityChecker
from offergrid_integration.orders.workorders import WorkOrderSink

__all__ = [
    "DECISION_IN_FLIGHT_SECONDS",
    "DEFAULT_CONTACT_WITHIN_HOURS",
    "OUTCOME_METRICS",
    "FailureReason",
    "ListedItemReads",
    "OrderItemsApi",
    "OrderOutcome",
    "OutcomeKind",
    "Ports",
]

DEFAULT_CONTACT_WITHIN_HOURS: Final = 24
# An intended decision older than this cannot be in flight any more: no invocation lasts longer
# (the Lambda maximum). A cancellation then proceeds instead of waiting for it forever.
DECISION_IN_FLIGHT_SECONDS: Final = 900


class OrderItemsApi(Protocol):
    """The Offergrid calls the order use cases make; `OffergridClient` is one (mypy checks it where
    the processor's runtime hands its client to `orders.registry.dispatch`), and so is
    `orders.item_reads.BatchItemReads`, the one batch's reads the pipeline hands them instead."""

    def get_order_item(self, item_id: str) -> OrderItem: ...

    def update_order_item_status(self, item_id: str, update: StatusUpdate) -> OrderItem | None: ...

    def list_orders(self, status: OrderItemStatus | None = None) -> Iterator[OrderItem]: ...

    def list_order_pages(
        self, status: OrderItemStatus | None = None, *, max_retries: int | None = None
    ) -> Iterator[list[OrderItem]]: ...


@runtime_checkable
class ListedItemReads(Protocol):
    """Reads that may answer an item from a listing instead of its GET (`orders.item_reads.
    BatchItemReads`). A use case about to decide an item or write its work order asks them for a
    full read (`steps.fetch_item(full=True)`, docs/decisions.md#16): a listed element only if it
    holds everything the decision needs (`steps.is_full_read`), else a GET. Any other
    `OrderItemsApi` answers with a GET, the read a decision is defined on."""

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
