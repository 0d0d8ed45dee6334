"""`QueuePort` on Amazon SQS (standard queue), with boto3."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from offergrid_integration import aws
from offergrid_integration.orders.wire import QueueSendError

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

# Offergrid waits for our answer: fail fast enough for a 5xx to reach it (and a retry to follow)
# well within API Gateway's 29 s, while botocore's standard mode still retries throttling twice.
_CLIENT_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"max_attempts": 3, "mode": "standard"},
)


class SqsQueue:
    """The orders queue. Without `client`, its own SQS client with the fail-fast timeouts above, from
    the container's session (`aws.clients()`; boto3 reads `AWS_ENDPOINT_URL` itself, so the local
    stack and the tests reach moto): made now (the webhook, at init, for its first request), or with
    `client_on_first_send=True` on the first `send`, once (the offer sync, whose dry runs and quiet
    sweeps send nothing)."""

    def __init__(
        self, queue_url: str, *, client: SQSClient | None = None, client_on_first_send: bool = False
    ) -> None:
        self.queue_url = queue_url
        self._lock = threading.Lock()
        self._client: SQSClient | None = client
        if client is None and not client_on_first_send:
            self._client = _own_client()

    @property
    def client(self) -> SQSClient:
        """The SQS client (made here the first time when it was left to the first send)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = _own_client()
        return self._client

    def send(self, message_body: str, attributes: dict[str, str]) -> str | None:
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
            raise QueueSendError(str(exc.response.get("Error", {}).get("Code", "ClientError"))) from exc
        except BotoCoreError as exc:  # connection, endpoint, timeout: nothing was stored
            raise QueueSendError(type(exc).__name__) from exc
        return response.get("MessageId")


def _own_client() -> SQSClient:
    return aws.clients().sqs_with(_CLIENT_CONFIG)
