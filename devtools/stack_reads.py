"""What `replay archive` and `replay trace` read of a stack, each through the layer's own code.

- the delivery archive (`archive.S3DeliveryArchive` on the `DeliveryArchiveUri` output);
- the webhook secrets, every value (current and previous: `secrets.parse_webhook_secrets`);
- the order processor's record of an item and its work order (`orders.ports`, `orders.ports`);
- the processor's idempotency records, by dedup key (`DedupRecords`: Powertools' own persistence layer,
  configured as the processor's, so the key a message is remembered under is computed the same way);
- Offergrid's current view of an item (`OffergridClient`, on a deployed stack's shared rate budget, as
  a background caller like the sync: orders first).

The clients are the `Target`'s: the local moto server, or the usual AWS credentials.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import urlsplit

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyItemNotFoundError
from botocore.exceptions import BotoCoreError, ClientError

from devtools.stack_target import ReplayError, Target
from offergrid_integration.archive import S3DeliveryArchive
from offergrid_integration.clock import SYSTEM_CLOCK
from offergrid_integration.offergrid.client import OffergridClient
from offergrid_integration.orders.ports import OrderRecord, WorkOrder, work_order_id_for
from offergrid_integration.orders.processor import IDEMPOTENCY_KEY_PREFIX
from offergrid_integration.ratelimit import Lane, budget_id_for_api_key, build_rate_budget
from offergrid_integration.secrets import SecretFormatError, parse_api_key, parse_webhook_secrets

__all__ = [
    "ARCHIVE_OUTPUT",
    "DedupRecords",
    "archive_of",
    "offergrid_client",
    "order_record",
    "webhook_secrets",
    "work_order",
]

ARCHIVE_OUTPUT: Final = "DeliveryArchiveUri"
WEBHOOK_SECRET_OUTPUT: Final = "WebhookSecretArn"  # noqa: S105 - an output name, not a secret
API_KEY_SECRET_OUTPUT: Final = "ApiKeySecretArn"  # noqa: S105 - an output name, not a secret
IDEMPOTENCY_TABLE_OUTPUT: Final = "IdempotencyTableName"
ORDERS_TABLE_OUTPUT: Final = "OrdersTableName"
WORK_ORDERS_TABLE_OUTPUT: Final = "WorkOrdersTableName"
RATE_LIMIT_TABLE_OUTPUT: Final = "RateLimitTableName"
OFFERGRID_URL_OUTPUT: Final = "OffergridApiUrl"


def archive_of(target: Target) -> S3DeliveryArchive:
    """The stack's delivery archive (its bucket from the `DeliveryArchiveUri` output)."""
    uri = target.output(ARCHIVE_OUTPUT)
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc:
        raise ReplayError(f"{target.where}: {ARCHIVE_OUTPUT} is not an s3:// location: {uri!r}")
    return S3DeliveryArchive(parts.netloc, client_factory=lambda: target.client("s3"))


def _secret_string(target: Target, secret_id: str) -> str:
    try:
        return str(target.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])
    except (ClientError, BotoCoreError) as error:
        raise ReplayError(f"cannot read secret {secret_id!r}: {type(error).__name__}") from None


def webhook_secrets(target: Target) -> list[str]:
    """Every value of the stack's webhook secret (current first): what verifies a delivery again."""
    secret_id = target.output(WEBHOOK_SECRET_OUTPUT)
    try:
        return parse_webhook_secrets(_secret_string(target, secret_id), secret_id=secret_id)
    except SecretFormatError as error:  # names what is wrong, never a value
        raise ReplayError(str(error)) from None


def order_record(target: Target, item_id: str) -> OrderRecord | None:
    """The order processor's record of `item_id` (its decision, history, last failure)."""
    table = target.client("dynamodb")
    name = target.output(ORDERS_TABLE_OUTPUT)
    item = table.get_item(TableName=name, Key={"itemId": {"S": item_id}}, ConsistentRead=True).get("Item")
    if item is None:
        return None
    return OrderRecord.model_validate(_plain(item))


def work_order(target: Target, item_id: str) -> WorkOrder | None:
    """The item's work order (its id is derived from the item's: `work_order_id_for`)."""
    table = target.client("dynamodb")
    name = target.output(WORK_ORDERS_TABLE_OUTPUT)
    key = {"workOrderId": {"S": work_order_id_for(item_id)}}
    item = table.get_item(TableName=name, Key=key, ConsistentRead=True).get("Item")
    return None if item is None else WorkOrder.model_validate(_plain(item))


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {name: _numbers(deserializer.deserialize(value)) for name, value in item.items()}


def _numbers(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == int(value) else float(value)
    if isinstance(value, dict):
        return {key: _numbers(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_numbers(inner) for inner in value]
    return value


class DedupRecords:
    """The order processor's idempotency records, looked up and forgotten by dedup key.

    The processor remembers a message under Powertools' key for `{"dedupKey": ...}` with its key prefix
    (`orders.processor`, `orders.processor`): this is the same persistence layer, configured the same way,
    so it finds the very record (tests/e2e/test_archive_replay.py checks it against the
    processor)."""

    def __init__(self, table_name: str, client: Any, *, now: Callable[[], float] = time.time) -> None:
        self.table_name = table_name
        self.client = client
        self._now = now
        self._store = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=client)
        self._store.configure(
            IdempotencyConfig(event_key_jmespath="dedupKey"), key_prefix=IDEMPOTENCY_KEY_PREFIX
        )

    @classmethod
    def of(cls, target: Target) -> DedupRecords:
        return cls(target.output(IDEMPOTENCY_TABLE_OUTPUT), target.client("dynamodb"))

    def status(self, dedup_key: str) -> dict[str, Any] | None:
        """`{"status": COMPLETED | INPROGRESS | EXPIRED, "expiresAt": epoch}`; None when not remembered."""
        try:
            record = self._store.get_record({"dedupKey": dedup_key})
        except IdempotencyItemNotFoundError:
            return None
        if record is None:
            return None
        expiry = int(record.expiry_timestamp) if record.expiry_timestamp is not None else None
        status = "EXPIRED" if expiry is not None and expiry < self._now() else record.status
        return {"status": status, "expiresAt": expiry}

    def forget(self, dedup_key: str) -> bool:
        """Delete the record of a message the processor finished (COMPLETED), so the next message with
        this key is processed again; False when there is none or it is in progress (never deleted)."""
        try:
            record = self._store.get_record({"dedupKey": dedup_key})
        except IdempotencyItemNotFoundError:
            return False
        if record is None:
            return False
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key={self._store.key_attr: {"S": record.idempotency_key}},
                ConditionExpression="#status = :completed",
                ExpressionAttributeNames={"#status": self._store.status_attr},
                ExpressionAttributeValues={":completed": {"S": "COMPLETED"}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True


def offergrid_client(target: Target) -> OffergridClient:
    """A client of the stack's Offergrid API with its API key, drawing from its shared rate budget as a
    background caller (orders first), as `offer_sync_cli` does."""
    secret_id = target.output(API_KEY_SECRET_OUTPUT)
    try:
        api_key = parse_api_key(_secret_string(target, secret_id), secret_id=secret_id)
    except SecretFormatError as error:  # names what is wrong, never a value
        raise ReplayError(str(error)) from None
    # Locally the functions may run on a compressed clock (the demo), whose budget times are not this
    # process's: one GET takes its own budget there. A deployed stack's is shared, as every caller's.
    table = target.outputs.get(RATE_LIMIT_TABLE_OUTPUT) if target.local is None else None
    budget = build_rate_budget(
        table,
        budget_id_for_api_key(secret_id),
        SYSTEM_CLOCK,
        client=target.client("dynamodb"),
        lane=Lane.BACKGROUND,
    )
    return OffergridClient(
        base_url=target.output(OFFERGRID_URL_OUTPUT),
        api_key=lambda *, force_refresh=False: api_key,
        rate_budget=budget,
        max_retries=1,
    )
