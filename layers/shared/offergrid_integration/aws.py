"""One way to reach AWS: every client of a container made once, on first use (so a cold start never
makes one it may not need), from one session. boto3 reads `AWS_ENDPOINT_URL` itself (moto locally,
unset in AWS), so no code of ours takes an endpoint.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

import boto3

if TYPE_CHECKING:
    from botocore.config import Config
    from mypy_boto3_dynamodb import DynamoDBClient, DynamoDBServiceResource
    from mypy_boto3_dynamodb.service_resource import Table
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient


class AwsClients:
    """The AWS clients of one container. The DynamoDB resource (`tables`) converts Python values, so
    low-level callers cannot share it."""

    def __init__(self, session: boto3.session.Session | None = None) -> None:
        self.session = session or boto3.session.Session()
        # boto3 sessions are not thread-safe while making clients; the sync's threads may ask at once.
        self._lock = threading.Lock()

    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        with self._lock:
            return self.session.client("dynamodb")

    @cached_property
    def tables(self) -> DynamoDBServiceResource:
        with self._lock:
            return self.session.resource("dynamodb")

    @cached_property
    def events(self) -> EventBridgeClient:
        with self._lock:
            return self.session.client("events")

    @cached_property
    def s3(self) -> S3Client:
        with self._lock:
            return self.session.client("s3")

    @cached_property
    def secretsmanager(self) -> SecretsManagerClient:
        with self._lock:
            return self.session.client("secretsmanager")

    def sqs_with(self, config: Config) -> SQSClient:
        """A new SQS client of this session with its own `config` (the webhook's fail-fast timeouts):
        a second session would load botocore's data again (about 50 ms of a cold start)."""
        with self._lock:
            return self.session.client("sqs", config=config)

    def s3_with(self, config: Config) -> S3Client:
        """A new S3 client of this session with its own `config` (the webhook's claim checks: the same
        fail-fast timeouts as its queue)."""
        with self._lock:
            return self.session.client("s3", config=config)

    @cached_property
    def ssm(self) -> SSMClient:
        with self._lock:
            return self.session.client("ssm")


class OnFirstUse[T]:
    """A client made the first time it is asked for, once even when threads race (the archive writes on
    a worker thread), or given from the start."""

    def __init__(self, make: Callable[[], T], value: T | None = None) -> None:
        self._make = make
        self._value = value
        self._lock = threading.Lock()

    def get(self) -> T:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._make()
        return self._value


_clients = OnFirstUse(AwsClients)


def clients() -> AwsClients:
    """The container's clients (one session), made on first use."""
    return _clients.get()


def reset() -> None:
    """Forget the container's clients: the next `clients()` starts a new session."""
    global _clients
    _clients = OnFirstUse(AwsClients)


class TableAdapter:
    """Base of an adapter over one DynamoDB table, given or made on first use."""

    def __init__(self, table_name: str, *, table: Table | None = None) -> None:
        self.table_name = table_name
        self._table = table

    @property
    def table(self) -> Table:
        if self._table is None:
            self._table = clients().tables.Table(self.table_name)
        return self._table
