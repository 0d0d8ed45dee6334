"""Work orders: what the provider's own systems (CRM, dispatch) act on once we accept an item.

`WorkOrderSink` is the port. The default adapter writes the work order to DynamoDB (partition key
`workOrderId`) and publishes it on the provider's EventBridge bus:

- detail-type `offergrid.order.accepted`, detail = the work order (camelCase JSON);
- detail-type `offergrid.order.cancelled`, detail = the cancelled work order (with `cancelReason`).

Source `offergrid.integration`. Delivery is at least once (a retried message publishes again), so
consumers deduplicate on `workOrderId` + detail-type. The work order id is derived from the item id,
so a retry after a crash reopens the same work order instead of creating a second one.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

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
    "WorkOrderSink",
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
    order_id: str
    offer_id: str | None = None
    offer_name: str | None = None
    status: Literal["open", "cancelled"] = "open"
    customer: dict[str, Any] | None = None
    service_address: dict[str, Any] | None = None
    order_notes: str | None = None
    contact_by: datetime
    created_at: datetime
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class WorkOrderPublishError(Exception):
    """EventBridge did not take the event. Transient: the message is retried."""

    retryable = True


class WorkOrderSink(Protocol):
    def open(self, work_order: WorkOrder) -> None:
        """Create (or re-announce, when it exists) the work order. Idempotent on its id."""
        ...

    def cancel(self, work_order_id: str, *, reason: str | None, at: datetime) -> WorkOrder | None:
        """Mark the work order cancelled and announce it; None when there is no such work order."""
        ...


class DynamoDBEventBridgeWorkOrders:
    def __init__(
        self,
        table_name: str,
        event_bus_name: str,
        *,
        table: Table | None = None,
        events: EventBridgeClient | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        self.table_name = table_name
        self.event_bus_name = event_bus_name
        self._table = table
        self._events = events
        self._endpoint_url = endpoint_url

    @property
    def table(self) -> Table:
        if self._table is None:
            import boto3

            self._table = boto3.resource("dynamodb", endpoint_url=self._endpoint_url).Table(self.table_name)
        return self._table

    @property
    def events(self) -> EventBridgeClient:
        if self._events is None:
            import boto3

            self._events = boto3.client("events", endpoint_url=self._endpoint_url)
        return self._events

    def get(self, work_order_id: str) -> WorkOrder | None:
        item = self.table.get_item(Key={"workOrderId": work_order_id}, ConsistentRead=True).get("Item")
        return None if item is None else WorkOrder.model_validate(item)

    def open(self, work_order: WorkOrder) -> None:
        existing = self.get(work_order.work_order_id)
        if existing is None:
            self.table.put_item(Item=work_order.to_json_dict())
        else:
            work_order = existing  # a retry: announce what is stored, do not overwrite it
        self._publish(ACCEPTED_DETAIL_TYPE, work_order)

    def cancel(self, work_order_id: str, *, reason: str | None, at: datetime) -> WorkOrder | None:
        existing = self.get(work_order_id)
        if existing is None:
            return None
        cancelled = existing
        if existing.status != "cancelled":
            cancelled = existing.model_copy(
                update={"status": "cancelled", "cancelled_at": at, "cancel_reason": reason}
            )
            self.table.put_item(Item=cancelled.to_json_dict())
        self._publish(CANCELLED_DETAIL_TYPE, cancelled)
        return cancelled

    def _publish(self, detail_type: str, work_order: WorkOrder) -> None:
        response = self.events.put_events(
            Entries=[
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": detail_type,
                    "Detail": json.dumps(work_order.to_json_dict(), separators=(",", ":")),
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
