"""`QueuePort` on Amazon SQS (standard queue), with boto3, and its claim checks in S3.

A message SQS cannot hold (body plus attributes over `SQS_MAX_MESSAGE_BYTES`) is kept in the
claim-check bucket and queued as a `wire.ClaimCheck` pointing at it, with the message's own
attributes (docs/decisions.md#17); without a bucket it is `MessageTooLarge`. The order processor
reads it back with the same `S3ClaimChecks` (`orders.processor`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from offergrid_integration import aws
from offergrid_integration.queueing import (
    SQS_MAX_MESSAGE_BYTES,
    ClaimCheck,
    ClaimCheckMissing,
    ClaimCheckStore,
    MessageTooLarge,
    QueueSendError,
    sqs_message_size,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

__all__ = ["CLAIM_CHECK_PREFIX", "S3ClaimChecks", "SqsQueue"]

# Offergrid waits for our answer: fail fast enough for a 5xx to reach it (and a retry to follow)
# well within API Gateway's 29 s, while botocore's standard mode still retries throttling twice.
_CLIENT_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"max_attempts": 3, "mode": "standard"},
)
# Claim-check objects: one folder per day written, so an operator can find a day's large bodies.
CLAIM_CHECK_PREFIX = "orders/"
_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "404"})


class SqsQueue:
    """The orders queue. Without `client`, its own SQS client with the fail-fast timeouts above, from
    the container's session (`aws.clients()`; boto3 reads `AWS_ENDPOINT_URL` itself, so the local
    stack and the tests reach moto): made now (the webhook, at init, for its first request), or with
    `client_on_first_send=True` on the first `send`, once (the offer sync, whose dry runs and quiet
    sweeps send nothing).

    `claim_checks` keeps a message too large for the queue (`max_message_bytes`) and queues its claim
    check instead; without it such a message is `MessageTooLarge`."""

    def __init__(
        self,
        queue_url: str,
        *,
        client: SQSClient | None = None,
        client_on_first_send: bool = False,
        claim_checks: ClaimCheckStore | None = None,
        max_message_bytes: int = SQS_MAX_MESSAGE_BYTES,
    ) -> None:
        self.queue_url = queue_url
        self.claim_checks = claim_checks
        self.max_message_bytes = max_message_bytes
        if client is None and not client_on_first_send:
            client = _own_client()
        self._client = aws.OnFirstUse(_own_client, client)

    @property
    def client(self) -> SQSClient:
        """The SQS client (made here the first time when it was left to the first send)."""
        return self._client.get()

    def send(self, message_body: str, attributes: dict[str, str]) -> str | None:
        size = sqs_message_size(message_body, attributes)
        if size > self.max_message_bytes:
            if self.claim_checks is None:
                raise MessageTooLarge(size, self.max_message_bytes)
            message_body = self.claim_checks.put(message_body).to_json()
        message_attributes: dict[str, MessageAttributeValueTypeDef] = {
            name: {"DataType": "String", "StringValue": value} for name, value in attributes.items() if value
        }
        try:
            response = self.client.send_message(
                QueueUrl=self.queue_url,
                MessageBody=message_body,
                MessageAttributes=message_attributes,
            )
        except ClientError as exc:
            raise QueueSendError(_error_code(exc)) from exc
        except BotoCoreError as exc:  # connection, endpoint, timeout: nothing was stored
            raise QueueSendError(type(exc).__name__) from exc
        return response.get("MessageId")


class S3ClaimChecks:
    """Queue bodies too large for SQS, kept as objects of one bucket (the claim-check pattern).

    The S3 client is made on the first `put` or `get` (by `client_factory`, default the container's
    session with the fail-fast timeouts above): a webhook whose messages all fit the queue never
    makes one. `bucket` is where `put` writes; `get` reads where the claim check points (the
    function's role decides what it may read)."""

    def __init__(
        self, bucket: str | None = None, *, client_factory: Callable[[], S3Client] | None = None
    ) -> None:
        self.bucket = bucket
        self._client = aws.OnFirstUse(client_factory or _own_s3_client)

    @property
    def client(self) -> S3Client:
        return self._client.get()

    def put(self, message_body: str) -> ClaimCheck:
        if not self.bucket:
            raise QueueSendError("NoClaimCheckBucket")
        data = message_body.encode("utf-8")
        key = f"{CLAIM_CHECK_PREFIX}{time.strftime('%Y/%m/%d', time.gmtime())}/{os.urandom(16).hex()}.json"
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType="application/json; charset=utf-8"
            )
        except ClientError as exc:
            raise QueueSendError(_error_code(exc)) from exc
        except BotoCoreError as exc:
            raise QueueSendError(type(exc).__name__) from exc
        return ClaimCheck(self.bucket, key, len(data))

    def get(self, check: ClaimCheck) -> str:
        try:
            response = self.client.get_object(Bucket=check.bucket, Key=check.key)
        except ClientError as exc:
            if _error_code(exc) in _MISSING_CODES:
                raise ClaimCheckMissing(f"s3://{check.bucket}/{check.key} is gone") from None
            raise
        return response["Body"].read().decode("utf-8")


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "ClientError"))


def _own_client() -> SQSClient:
    return aws.clients().sqs_with(_CLIENT_CONFIG)


def _own_s3_client() -> S3Client:
    return aws.clients().s3_with(_CLIENT_CONFIG)
