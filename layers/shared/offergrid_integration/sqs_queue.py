"""`QueuePort` on Amazon SQS (standard queue), and its claim checks in S3: a message SQS cannot hold
is kept in the claim-check bucket and its `ClaimCheck` queued instead (docs/decisions.md#17);
without a bucket it is `MessageTooLarge`. The processor reads it back with `S3ClaimChecks`."""

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
    """The orders queue. Without `client`, its own fail-fast client from the container's session: made
    now (the webhook, at init), or with `client_on_first_send=True` on the first `send` (the offer
    sync, whose dry runs and quiet sweeps send nothing)."""

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
        """Made here the first time when it was left to the first send."""
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
    """Queue bodies too large for SQS, one object each. The S3 client is made on first use, so a webhook
    whose messages all fit never makes one; `get` reads where the check points (the role decides)."""

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
