"""The order records and the work orders in DynamoDB (`ports.OrderStore`, `ports.WorkOrderSink`,
the reconciliation's `WorkOrderIndex`), work orders announced on the provider's EventBridge bus; the
races and what is announced: `orders.ports`. Each table is made on first use (`aws.TableAdapter`)
unless given. Text from Offergrid is written valid and bounded (docs/decisions.md#17)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from offergrid_integration import aws
from offergrid_integration.orders.ports import (
    ACCEPTED_DETAIL_TYPE,
    CANCELLED_DETAIL_TYPE,
    EVENT_SOURCE,
    ORDER_ID_INDEX,
    OrderRecord,
    RecordConflict,
    WorkOrder,
    WorkOrderPublishError,
    WorkOrderWriteConflict,
)
from offergrid_integration.text import MAX_STORED_TEXT, json_text, valid_texts

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table
    from mypy_boto3_events import EventBridgeClient


_WRITE_ATTEMPTS: Final = 3


class DynamoDBOrderStore(aws.TableAdapter):
    """Order records in DynamoDB: partition key `itemId` (S), GSI `byOrderId` (`orderId` S, ALL).
    The table is made on first use (`aws.TableAdapter`)."""

    def get(self, item_id: str) -> OrderRecord | None:
        response = self.table.get_item(Key={"itemId": item_id}, ConsistentRead=True)
        item = response.get("Item")
        return None if item is None else OrderRecord.model_validate(item)

    def find_by_order(self, order_id: str) -> list[OrderRecord]:
        from boto3.dynamodb.conditions import Key

        query = {"IndexName": ORDER_ID_INDEX, "KeyConditionExpression": Key("orderId").eq(order_id)}
        return [OrderRecord.model_validate(item) for item in _every_page(self.table.query, query)]

    def save(self, record: OrderRecord) -> OrderRecord:
        from botocore.exceptions import ClientError

        saved = record.model_copy(update={"version": record.version + 1}, deep=True)
        condition: dict[str, Any]
        if record.version == 0:
            condition = {"ConditionExpression": "attribute_not_exists(itemId)"}
        else:
            condition = {
                "ConditionExpression": "version = :expected",
                "ExpressionAttributeValues": {":expected": record.version},
            }
        try:
            # Text from Offergrid (a reason, a note) is written valid and bounded (docs/decisions.md#17).
            item = valid_texts(saved.to_item(), max_length=MAX_STORED_TEXT)
            self.table.put_item(Item=item, **condition)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise RecordConflict(f"order record {record.item_id!r} changed concurrently") from None
            raise
        return saved


class DynamoDBWorkOrderIndex(aws.TableAdapter):
    """The work orders by id, and every open one (a scan: the reconciliation's `WorkOrderIndex`)."""

    def open_work_orders(self) -> Iterator[WorkOrder]:
        from boto3.dynamodb.conditions import Attr

        scan = {"FilterExpression": Attr("status").eq("open"), "ConsistentRead": True}
        for item in _every_page(self.table.scan, scan):
            yield WorkOrder.model_validate(item)

    def get(self, work_order_id: str) -> WorkOrder | None:
        item = self.table.get_item(Key={"workOrderId": work_order_id}, ConsistentRead=True).get("Item")
        return None if item is None else WorkOrder.model_validate(item)


class DynamoDBEventBridgeWorkOrders(DynamoDBWorkOrderIndex):
    def __init__(
        self,
        table_name: str,
        event_bus_name: str,
        *,
        table: Table | None = None,
        events: EventBridgeClient | None = None,
    ) -> None:
        """`events`: the EventBridge client (default: the container's, `aws.clients()`)."""
        super().__init__(table_name, table=table)
        self.event_bus_name = event_bus_name
        self.events: EventBridgeClient = events if events is not None else aws.clients().events

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


def _every_page(read: Callable[..., Any], kwargs: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every item of a DynamoDB query or scan, page after page."""
    while True:
        response = read(**kwargs)
        yield from response.get("Items", [])
        if "LastEvaluatedKey" not in response:
            return
        kwargs = {**kwargs, "ExclusiveStartKey": response["LastEvaluatedKey"]}
