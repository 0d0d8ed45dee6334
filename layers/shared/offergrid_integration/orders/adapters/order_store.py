"""The order records' store in DynamoDB (`records.OrderStore`), with optimistic writes."""

from __future__ import annotations

from typing import Any

from offergrid_integration import aws
from offergrid_integration.orders.records import ORDER_ID_INDEX, OrderRecord, RecordConflict
from offergrid_integration.text import MAX_STORED_TEXT, valid_texts

__all__ = ["DynamoDBOrderStore"]


class DynamoDBOrderStore(aws.TableAdapter):
    """Order records in DynamoDB: partition key `itemId` (S), GSI `byOrderId` (`orderId` S, ALL).
    The table is made on first use (`aws.TableAdapter`)."""

    def get(self, item_id: str) -> OrderRecord | None:
        response = self.table.get_item(Key={"itemId": item_id}, ConsistentRead=True)
        item = response.get("Item")
        return None if item is None else OrderRecord.model_validate(item)

    def find_by_order(self, order_id: str) -> list[OrderRecord]:
        from boto3.dynamodb.conditions import Key

        records: list[OrderRecord] = []
        kwargs: dict[str, Any] = {
            "IndexName": ORDER_ID_INDEX,
            "KeyConditionExpression": Key("orderId").eq(order_id),
        }
        while True:
            response = self.table.query(**kwargs)
            records.extend(OrderRecord.model_validate(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return records
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

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
