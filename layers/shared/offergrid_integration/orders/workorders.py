"""Work orders: what the provider's own systems (CRM, dispatch) act on once we accept an item.

`WorkOrderSink` is the port. The default adapter writes the work order to DynamoDB (partition key
`workOrderId`) and publishes it on the provider's EventBridge bus:

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
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from offergrid_integration import aws
from offergrid_integration.errors import TransientError
from offergrid_integration.text import MAX_STORED_TEXT, json_text, valid_texts

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table
    from mypy_boto3_events import EventBridgeClient

__all__ = [
    "ACCEPTED_DETAIL_TYPE",
    "CANCELLED_DETAIL_TYPE",
    "EVENT_SOURCE",
    "DynamoDBEventBridgeWorkOrders",
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
_WRITE_ATTEMPTS: Final = 3


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


class DynamoDBEventBridgeWorkOrders:
    def __init__(
        self,
        table_name: str,
        event_bus_name: str,
        *,
        table: Table | None = None,
        events: EventBridgeClient | None = None,
    ) -> None:
        """`table`, `events`: what to use (default: the container's, `aws.clients()`)."""
        self.table_name = table_name
        self.event_bus_name = event_bus_name
        self.table: Table = table if table is not None else aws.clients().tables.Table(table_name)
        self.events: EventBridgeClient = events if events is not None else aws.clients().events

    def get(self, work_order_id: str) -> WorkOrder | None:
        item = self.table.get_item(Key={"workOrderId": work_order_id}, ConsistentRead=True).get("Item")
        return None if item is None else WorkOrder.model_validate(item)

    def open(self, work_order: WorkOrder) -> WorkOrder:
        for _ in range(_WRITE_ATTEMPTS):
            existing = self.get(work_order.work_order_id)
            if existing is not None and not existing.is_open:
                return existing  # cancelled meanwhile (or a tombstone): nothing to announce
            if existing is None and not self._put_if(work_order, "attribute_not_exists(workOrderId)", {}):
                continue  # someone wrote it between our read and our write: look again
            stored = existing or work_order  # a retry announces what is stored, never overwrites it
            self._publish(ACCEPTED_DETAIL_TYPE, stored)
            return stored
        raise WorkOrderWriteConflict(work_order.work_order_id)

    def cancel(
        self, work_order_id: str, *, item_id: str, reason: str | None, at: datetime
    ) -> WorkOrder | None:
        for _ in range(_WRITE_ATTEMPTS):
            existing = self.get(work_order_id)
            if existing is None:
                tombstone = WorkOrder(
                    work_order_id=work_order_id,
                    item_id=item_id,
                    status="cancelled",
                    created_at=at,
                    cancelled_at=at,
                    cancel_reason=reason,
                    opened=False,
                )
                if self._put_if(tombstone, "attribute_not_exists(workOrderId)", {}):
                    return None
                continue
            if not existing.opened:
                return None
            cancelled = existing
            if existing.is_open:
                cancelled = existing.model_copy(
                    update={"status": "cancelled", "cancelled_at": at, "cancel_reason": reason}
                )
                if not self._put_if(cancelled, "#status = :open", {":open": "open"}):
                    continue
            # Announced again when it already was cancelled: the retry of a crash after the write.
            self._publish(CANCELLED_DETAIL_TYPE, cancelled)
            return cancelled
        raise WorkOrderWriteConflict(work_order_id)

    def _put_if(self, work_order: WorkOrder, condition: str, values: dict[str, Any]) -> bool:
        """Put `work_order` if `condition` holds on the stored item; False when it does not."""
        from botocore.exceptions import ClientError

        extra: dict[str, Any] = {"ConditionExpression": condition}
        if values:
            extra["ExpressionAttributeValues"] = values
            extra["ExpressionAttributeNames"] = {"#status": "status"}
        try:
            # Names, addresses, reasons from Offergrid: written valid and bounded (docs/decisions.md#17).
            item = valid_texts(work_order.to_json_dict(), max_length=MAX_STORED_TEXT)
            self.table.put_item(Item=item, **extra)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _publish(self, detail_type: str, work_order: WorkOrder) -> None:
        response = self.events.put_events(
            Entries=[
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": detail_type,
                    "Detail": json_text(
                        valid_texts(work_order.to_event_detail(), max_length=MAX_STORED_TEXT)
                    ),
                    "EventBusName": self.event_bus_name,
                    "Resources": [],
                }
            ]
        )
        if response.get("FailedEntryCount", 0):
            codes = {
                entry.get("ErrorCode", "?") for entry in response.get("Entries", []) if "ErrorCode" in entry
            }
            raise WorkOrderPublishError(f"EventBridge rejected {detail_type}: {', '.join(sorted(codes))}")
