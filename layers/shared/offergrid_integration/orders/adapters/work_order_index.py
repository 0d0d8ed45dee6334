"""The reconciliation's `WorkOrderIndex` over the work-orders table in DynamoDB."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from offergrid_integration import aws
from offergrid_integration.orders.workorders import WorkOrder

__all__ = ["DynamoDBWorkOrderIndex"]


class DynamoDBWorkOrderIndex(aws.TableAdapter):
    """`WorkOrderIndex` over the work-orders table (the processor's `DynamoDBEventBridgeWorkOrders`).
    The table is made on first use (`aws.TableAdapter`)."""

    def open_work_orders(self) -> Iterator[WorkOrder]:
        from boto3.dynamodb.conditions import Attr

        kwargs: dict[str, Any] = {"FilterExpression": Attr("status").eq("open"), "ConsistentRead": True}
        while True:
            response = self.table.scan(**kwargs)
            for item in response.get("Items", []):
                yield WorkOrder.model_validate(item)
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def get(self, work_order_id: str) -> WorkOrder | None:
        item = self.table.get_item(Key={"workOrderId": work_order_id}, ConsistentRead=True).get("Item")
        return None if item is None else WorkOrder.model_validate(item)
