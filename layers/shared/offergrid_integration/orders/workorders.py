"""Work orders: what the provider's own systems (CRM, dispatch) act on once we accept an item.

`WorkOrderSink` is the port. The default adapter (`orders.adapters.work_orders`) writes the work
order to DynamoDB (partition key `workOrderId`) and publishes it on the provider's EventBridge bus:

- detail-type `offergrid.order.accepted`, detail = the work order (camelCase JSON);
- detail-type `offergrid.order.cancelled`, detail = the cancelled work order (with `cancelReason`).

Source `offergrid.integration`. Delivery is at least once (a retried message publishes again), so
consumers deduplicate on `workOrderId` + detail-type. The work order id is derived from the item id,
so a retry after a crash reopens the same work order instead of creating a second one.

Opening and cancelling race when a cancellation arrives while an acceptance is in flight. Both are
conditional writes on the one work-order item, so whichever lands second sees the first:

- `open` creates the work order only if none exists; when a cancelled one exists it announces
  nothing and returns it, so the caller knows the item was cancelled meanwhile;
- `cancel` of a work order that does not exist yet stores a cancelled *tombstone* (`opened` false),
  so an acceptance that lands later cannot open it. A tombstone is never announced: fulfilment
  never heard of it. A cancelled work order that had been opened is (re-)announced as cancelled.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Final, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from offergrid_integration.errors import TransientError

__all__ = [
    "ACCEPTED_DETAIL_TYPE",
    "CANCELLED_DETAIL_TYPE",
    "EVENT_SOURCE",
    "WorkOrder",
    "WorkOrderPublishError",
    "WorkOrderReader",
    "WorkOrderSink",
    "WorkOrderWriteConflict",
    "work_order_id_for",
]

EVENT_SOURCE: Final = "offergrid.integration"
ACCEPTED_DETAIL_TYPE: Final = "offergrid.order.accepted"
CANCELLED_DETAIL_TYPE: Final = "offergrid.order.cancelled"


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
