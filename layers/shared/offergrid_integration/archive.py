"""The archive of verified deliveries (docs/architecture.md, "The delivery archive"): each kept as
received (enough to verify it again, never the secret), in S3 under a key that sorts as time does, so a
window is one listing; deploy checks go under `checks/`, where no replay finds them.

The webhook writes on a worker thread and its answer waits for the slower of the two writes at most
`ARCHIVE_WAIT_SECONDS` after the queue write: Lambda freezes the environment at the answer, so a write
still running may be lost. A failed or late write is only counted. The S3 client is made by the first
write, on the worker thread, so the cold start does not wait for it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol
from urllib.parse import quote

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from offergrid_integration import aws
from offergrid_integration.signature import SIGNATURE_HEADER, decode_body

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

ARCHIVE_PREFIX: Final = "archive/"
CHECKS_PREFIX: Final = "checks/"
FORMAT_VERSION: Final = 1
_KEY_TIME_FORMAT: Final = "%Y%m%dT%H%M%S"
_KEY_TIME_LENGTH: Final = len("20261127T144100.123Z")
# An S3 PUT takes tens of milliseconds: this only bounds the answer when S3 is slow.
ARCHIVE_WAIT_SECONDS: Final = 1.0
# Writes in flight at once: one per request, plus a late one still running from an earlier request.
_WORKERS: Final = 2
# They bound the worker thread, not the answer (which stops waiting after ARCHIVE_WAIT_SECONDS).
ARCHIVE_CLIENT_CONFIG: Final = Config(
    connect_timeout=2, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"}
)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("a time of the archive must carry a time zone")
    return moment.astimezone(UTC)


def delivery_key(received_at: datetime, request_id: str, *, check: bool = False) -> str:
    """`archive/yyyy/mm/dd/hh/<received-at>-<request id>.json`; the request id as one segment."""
    moment = _utc(received_at)
    folder = hour_folder(moment, prefix=CHECKS_PREFIX if check else ARCHIVE_PREFIX)
    stamp = f"{moment.strftime(_KEY_TIME_FORMAT)}.{moment.microsecond // 1000:03d}Z"
    return f"{folder}{stamp}-{quote(request_id, safe='-_.')}.json"


def key_received_at(key: str) -> datetime | None:
    """When the delivery stored under `key` arrived (from its name), or None for another object."""
    stamp = key.rsplit("/", 1)[-1][:_KEY_TIME_LENGTH]
    try:
        moment = datetime.strptime(stamp[:-5], _KEY_TIME_FORMAT).replace(tzinfo=UTC)
        milliseconds = int(stamp[-4:-1])
    except ValueError:
        return None
    if stamp[-5] != "." or stamp[-1] != "Z":
        return None
    return moment + timedelta(milliseconds=milliseconds)


def hour_folder(moment: datetime, *, prefix: str = ARCHIVE_PREFIX) -> str:
    """The folder of the deliveries received in `moment`'s hour (`archive/yyyy/mm/dd/hh/`)."""
    return f"{prefix}{_utc(moment):%Y/%m/%d/%H}/"


@dataclass(frozen=True, slots=True)
class ArchivedDelivery:
    received_at: datetime
    request_id: str
    body: str | None  # the API Gateway event's `body`: base64 text when `is_base64_encoded`
    is_base64_encoded: bool
    signature: str  # the x-offergrid-signature header's value, as sent
    check: bool = False  # the deploy check's own delivery, not Offergrid's

    @property
    def key(self) -> str:
        return delivery_key(self.received_at, self.request_id, check=self.check)

    def raw_body(self) -> bytes:
        """The bytes Offergrid signed (what the ingress verified): `ValueError` if not decodable."""
        return decode_body(self.body, is_base64_encoded=self.is_base64_encoded)

    def to_json(self) -> bytes:
        """UTF-8 JSON; a body that is not base64 is UTF-8 text already (the ingress refuses one that
        cannot be), so it is written as itself, never `\\u`-escaped."""
        document = {
            "version": FORMAT_VERSION,
            "receivedAt": _utc(self.received_at).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "requestId": self.request_id,
            "check": self.check,
            "headers": {SIGNATURE_HEADER: self.signature},
            "isBase64Encoded": self.is_base64_encoded,
            "body": self.body,
        }
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes | str) -> ArchivedDelivery:
        """The delivery an archive object holds; `ValueError` naming what is wrong (never the body)."""
        try:
            document: Any = json.loads(data)
        except ValueError:
            raise ValueError("an archived delivery must be JSON") from None
        if not isinstance(document, dict) or document.get("version") != FORMAT_VERSION:
            raise ValueError(f"an archived delivery must be an object of version {FORMAT_VERSION}")
        headers = document.get("headers")
        signature = headers.get(SIGNATURE_HEADER) if isinstance(headers, dict) else None
        body, request_id = document.get("body"), document.get("requestId")
        base64_flag, check = document.get("isBase64Encoded"), document.get("check", False)
        if not (
            isinstance(signature, str)
            and (body is None or isinstance(body, str))
            and isinstance(request_id, str)
            and isinstance(base64_flag, bool)
            and isinstance(check, bool)
        ):
            raise ValueError("an archived delivery needs requestId, headers, isBase64Encoded and body")
        try:
            received_at = datetime.fromisoformat(str(document.get("receivedAt")))
        except ValueError:
            raise ValueError("an archived delivery's receivedAt must be an ISO 8601 time") from None
        if received_at.tzinfo is None:
            raise ValueError("an archived delivery's receivedAt must carry a time zone")
        return cls(received_at.astimezone(UTC), request_id, body, base64_flag, signature, check)


class ArchiveWriteError(Exception):
    """The delivery was not kept. Carries the service's error code, never the body."""

    def __init__(self, code: str) -> None:
        super().__init__(f"the delivery archive refused the write: {code}")
        self.code = code


class DeliveryArchive(Protocol):
    def put(self, delivery: ArchivedDelivery) -> str:
        """Keep `delivery`; return its key. `ArchiveWriteError` when it was not kept."""
        ...


@dataclass(frozen=True, slots=True)
class ArchiveOutcome:
    """What became of one delivery's archive write (codes and keys only, never the body)."""

    status: Literal["archived", "failed", "late"]
    key: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "archived"


class ArchiveTicket:
    def __init__(self, future: Future[str]) -> None:
        self.future = future

    def outcome(self, wait_seconds: float) -> ArchiveOutcome:
        """The write's outcome, waiting for it at most `wait_seconds` (then `late`)."""
        try:
            key = self.future.result(timeout=max(0.0, wait_seconds))
        except FutureTimeout:
            return ArchiveOutcome("late", error=f"not written within {wait_seconds:g} s of the queue write")
        except ArchiveWriteError as exc:
            return ArchiveOutcome("failed", error=exc.code)
        except Exception as exc:  # whatever the archive raised is its failure, never the delivery's
            return ArchiveOutcome("failed", error=type(exc).__name__)
        return ArchiveOutcome("archived", key=key)


class BackgroundArchive:
    """`DeliveryArchive.put` on a small pool of worker threads (made on the first write)."""

    def __init__(self, archive: DeliveryArchive, *, workers: int = _WORKERS) -> None:
        self.archive = archive
        self._workers = workers
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def start(self, delivery: ArchivedDelivery) -> ArchiveTicket:
        """The write started; one that cannot even start is a failed write, never the delivery's loss."""
        try:
            with self._lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="archive")
            return ArchiveTicket(self._executor.submit(self.archive.put, delivery))
        except Exception as exc:
            failed: Future[str] = Future()
            failed.set_exception(exc)
            return ArchiveTicket(failed)

    def close(self) -> None:
        """Stop the workers (tests, the container's reset); writes in flight finish first."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)


class S3DeliveryArchive:
    def __init__(self, bucket: str, *, client_factory: Callable[[], S3Client] | None = None) -> None:
        self.bucket = bucket
        self._client = aws.OnFirstUse(
            client_factory or (lambda: aws.clients().s3_with(ARCHIVE_CLIENT_CONFIG))
        )

    @property
    def client(self) -> S3Client:
        return self._client.get()

    def put(self, delivery: ArchivedDelivery) -> str:
        key = delivery.key
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=delivery.to_json(),
                ContentType="application/json; charset=utf-8",
            )
        except ClientError as exc:
            raise ArchiveWriteError(str(exc.response.get("Error", {}).get("Code", "ClientError"))) from exc
        except BotoCoreError as exc:  # connection, endpoint, timeout: nothing was kept
            raise ArchiveWriteError(type(exc).__name__) from exc
        return key

    def keys(self, start: datetime, end: datetime, *, prefix: str = ARCHIVE_PREFIX) -> Iterator[str]:
        """The keys of the deliveries received in [start, end), oldest first: one listing from the
        window's first hour folder, stopped past its last."""
        last_folder = hour_folder(end, prefix=prefix)
        pages = self.client.get_paginator("list_objects_v2").paginate(
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
        return ArchivedDelivery.from_json(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
