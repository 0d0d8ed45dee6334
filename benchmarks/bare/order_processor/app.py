"""Bare order processor for `bench_cold.py`: the same AWS and HTTP calls as the project's processor
for an `order.created` message, stdlib + boto3 only. Not deployed.

Per record: an idempotency record put (conditional) in the idempotency table, the API key from
Secrets Manager (first use), a rate-budget write in its table before each Offergrid call,
`GET /provider/orders/{itemId}`, the coverage rules from SSM Parameter Store (first use), the
`PATCH .../status` decision; on acceptance the work order (read, conditional put in its table) and
its `offergrid.order.accepted` event on the provider's bus, as the project's accept does; the order
record written, the idempotency record completed. Four boto3 clients (DynamoDB, Secrets Manager,
SSM, EventBridge) created at import, `urllib.request` for HTTP.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from typing import Any

import boto3

endpoint = os.environ.get("AWS_ENDPOINT_URL") or None
API_URL = os.environ["OFFERGRID_API_URL"].rstrip("/")
dynamodb = boto3.client("dynamodb", endpoint_url=endpoint)
secretsmanager = boto3.client("secretsmanager", endpoint_url=endpoint)
ssm = boto3.client("ssm", endpoint_url=endpoint)
events = boto3.client("events", endpoint_url=endpoint)
_cache: dict[str, Any] = {}


def _api_key() -> str:
    if "key" not in _cache:
        raw = secretsmanager.get_secret_value(SecretId=os.environ["OFFERGRID_API_KEY_SECRET"])["SecretString"]
        try:
            document = json.loads(raw)
        except ValueError:
            document = raw
        _cache["key"] = document.get("apiKey", "") if isinstance(document, dict) else str(document).strip()
    return str(_cache["key"])


def _offergrid(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    dynamodb.update_item(
        TableName=os.environ["RATE_LIMIT_TABLE"],
        Key={"pk": {"S": "bare-budget"}},
        UpdateExpression="ADD used :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    request = urllib.request.Request(  # noqa: S310 - the configured Offergrid URL
        API_URL + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"x-api-key": _api_key(), "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        answer: dict[str, Any] = json.loads(response.read() or b"{}")
        return answer


def _rules() -> Any:
    if "rules" not in _cache:
        parameter = ssm.get_parameter(Name=os.environ["SERVICEABILITY_RULES_PARAMETER"])["Parameter"]
        _cache["rules"] = json.loads(parameter["Value"])
    return _cache["rules"]


def _open_work_order(item_id: str, item: dict[str, Any]) -> None:
    table, work_order_id = os.environ["WORK_ORDERS_TABLE"], f"wo-{item_id}"
    dynamodb.get_item(TableName=table, Key={"workOrderId": {"S": work_order_id}}, ConsistentRead=True)
    detail = {"workOrderId": work_order_id, "itemId": item_id, "offerId": str(item.get("offerId"))}
    dynamodb.put_item(
        TableName=table,
        Item={name: {"S": value} for name, value in detail.items()},
        ConditionExpression="attribute_not_exists(workOrderId)",
    )
    events.put_events(
        Entries=[
            {
                "Source": "offergrid.integration",
                "DetailType": "offergrid.order.accepted",
                "Detail": json.dumps(detail),
                "EventBusName": os.environ["EVENT_BUS_NAME"],
            }
        ]
    )


def _process(body: dict[str, Any]) -> None:
    nested = body.get("event")
    event: dict[str, Any] = nested if isinstance(nested, dict) else body
    item_id = str(event.get("itemId") or event.get("item_id"))
    key = str(body.get("dedupKey") or item_id)
    table = os.environ["IDEMPOTENCY_TABLE"]
    expiration = str(int(time.time()) + 3600)
    dynamodb.put_item(
        TableName=table,
        Item={"id": {"S": key}, "status": {"S": "INPROGRESS"}, "expiration": {"N": expiration}},
        ConditionExpression="attribute_not_exists(id)",
    )
    item = _offergrid("GET", f"/provider/orders/{item_id}")
    address = item.get("serviceAddress") or {}
    serviceable = bool(_rules()) and bool(address.get("country"))
    status = "accepted" if serviceable else "rejected"
    _offergrid("PATCH", f"/provider/orders/{item_id}/status", {"status": status})
    if status == "accepted":
        _open_work_order(item_id, item)
    dynamodb.put_item(
        TableName=os.environ["ORDERS_TABLE"],
        Item={"itemId": {"S": item_id}, "status": {"S": status}, "dedupKey": {"S": key}},
    )
    dynamodb.update_item(
        TableName=table,
        Key={"id": {"S": key}},
        UpdateExpression="SET #s = :done",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":done": {"S": "COMPLETED"}},
    )


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    failures = []
    for record in event.get("Records") or []:
        try:
            _process(json.loads(record["body"]))
        except Exception:
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
