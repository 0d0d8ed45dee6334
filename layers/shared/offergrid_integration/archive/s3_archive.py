"""`DeliveryArchive` on S3, in the claim-check bucket. The client is made on the first write, on the
archive's worker thread, so the cold start does not wait for it; reads are for the replay tools.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Final

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from offergrid_integration import aws
from offergrid_integration.archive.deliveries import (
    ARCHIVE_PREFIX,
    ArchivedDelivery,
    ArchiveWriteError,
    hour_folder,
    key_received_at,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

# A write that is not done within these is late: the webhook answers without waiting for it any
# longer (`background.ARCHIVE_WAIT_SECONDS`), so they bound the worker thread, not the answer.
ARCHIVE_CLIENT_CONFIG: Final = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"max_attempts": 3, "mode": "standard"},
)
_CONTENT_TYPE: Final = "application/json; charset=utf-8"


def _own_client() -> S3Client:
    return aws.clients().s3_with(ARCHIVE_CLIENT_CONFIG)


class S3DeliveryArchive:
    """Verified deliveries as objects of `bucket` (layout: `archive.deliveries`)."""

    def __init__(self, bucket: str, *, client_factory: Callable[[], S3Client] | None = None) -> None:
        self.bucket = bucket
        self._client = aws.OnFirstUse(client_factory or _own_client)

    @property
    def client(self) -> S3Client:
        """The S3 client, made the first time it is needed (thread-safe)."""
        return self._client.get()

    def put(self, delivery: ArchivedDelivery) -> str:
        key = delivery.key
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=delivery.to_json(), ContentType=_CONTENT_TYPE
            )
        except ClientError as exc:
            raise ArchiveWriteError(str(exc.response.get("Error", {}).get("Code", "ClientError"))) from exc
        except BotoCoreError as exc:  # connection, endpoint, timeout: nothing was kept
            raise ArchiveWriteError(type(exc).__name__) from exc
        return key

    def keys(self, start: datetime, end: datetime, *, prefix: str = ARCHIVE_PREFIX) -> Iterator[str]:
        """The keys of the deliveries received in [start, end), oldest first: one listing from the
        window's first hour folder (`StartAfter`), stopped past its last (keys sort as time does)."""
        last_folder = hour_folder(end, prefix=prefix)
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket, Prefix=prefix, StartAfter=hour_folder(start, prefix=prefix)
        )
        for page in pages:
            for entry in page.get("Contents", []):
                key = entry["Key"]
                if key[: len(last_folder)] > last_folder:
                    return
                received_at = key_received_at(key)
                if received_at is not None and start <= received_at < end:
                    yield key

    def get(self, key: str) -> ArchivedDelivery:
        """The delivery under `key`; `ValueError` when the object is not one."""
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return ArchivedDelivery.from_json(body)
