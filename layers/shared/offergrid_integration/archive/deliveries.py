"""A verified delivery kept as received (enough to verify it again, never the secret), and its key.

Keys sort as time does, so a window is one listing; deploy checks go under `checks/`, where no replay
finds them. Stdlib only: the webhook imports this at init.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol
from urllib.parse import quote

from offergrid_integration.signed_body import SIGNATURE_HEADER, decode_body

ARCHIVE_PREFIX: Final = "archive/"
CHECKS_PREFIX: Final = "checks/"
FORMAT_VERSION: Final = 1
_KEY_TIME_FORMAT: Final = "%Y%m%dT%H%M%S"
_KEY_TIME_LENGTH: Final = len("20261127T144100.123Z")


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("a time of the archive must carry a time zone")
    return moment.astimezone(UTC)


def _key_time(moment: datetime) -> str:
    moment = _utc(moment)
    return f"{moment.strftime(_KEY_TIME_FORMAT)}.{moment.microsecond // 1000:03d}Z"


def delivery_key(received_at: datetime, request_id: str, *, check: bool = False) -> str:
    """`archive/yyyy/mm/dd/hh/<received-at>-<request id>.json`; the request id as one segment."""
    moment = _utc(received_at)
    prefix = CHECKS_PREFIX if check else ARCHIVE_PREFIX
    return f"{prefix}{moment:%Y/%m/%d/%H}/{_key_time(moment)}-{quote(request_id, safe='-_.')}.json"


def key_received_at(key: str) -> datetime | None:
    """When the delivery stored under `key` arrived (from its name), or None for another object."""
    name = key.rsplit("/", 1)[-1]
    stamp = name[:_KEY_TIME_LENGTH]
    try:
        moment = datetime.strptime(stamp[:-5], _KEY_TIME_FORMAT).replace(tzinfo=UTC)
        milliseconds = int(stamp[-4:-1])
    except ValueError:
        return None
    if stamp[-5] != "." or stamp[-1] != "Z":
        return None
    return moment + timedelta(milliseconds=milliseconds)


def hour_folder(moment: datetime, *, prefix: str = ARCHIVE_PREFIX) -> str:
    """The folder of the deliveries received in `moment`'s hour (`archive/yyyy/mm/dd/hh/`). Folders and
    the names in them sort as time does, so a window is one listing from its first folder on."""
    return f"{prefix}{_utc(moment):%Y/%m/%d/%H}/"


@dataclass(frozen=True, slots=True)
class ArchivedDelivery:
    """One verified delivery as received (see the module docstring)."""

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

    def to_document(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "receivedAt": _iso(self.received_at),
            "requestId": self.request_id,
            "check": self.check,
            "headers": {SIGNATURE_HEADER: self.signature},
            "isBase64Encoded": self.is_base64_encoded,
            "body": self.body,
        }

    def to_json(self) -> bytes:
        """UTF-8 JSON. A body that is not base64 is UTF-8 text already (the ingress refuses one that
        cannot be: a lone surrogate), so it is written as itself, never `\\u`-escaped."""
        return json.dumps(self.to_document(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes | str) -> ArchivedDelivery:
        """The delivery an archive object holds; `ValueError` naming what is wrong (never the body)."""
        try:
            document = json.loads(data)
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
        return cls(
            received_at=received_at.astimezone(UTC),
            request_id=request_id,
            body=body,
            is_base64_encoded=base64_flag,
            signature=signature,
            check=check,
        )


def _iso(moment: datetime) -> str:
    return _utc(moment).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ArchiveWriteError(Exception):
    """The delivery was not kept. Carries the service's error code, never the body."""

    def __init__(self, code: str) -> None:
        super().__init__(f"the delivery archive refused the write: {code}")
        self.code = code


class DeliveryArchive(Protocol):
    """Where verified deliveries are kept (`s3_archive.S3DeliveryArchive`)."""

    def put(self, delivery: ArchivedDelivery) -> str:
        """Keep `delivery`; return its key. `ArchiveWriteError` when it was not kept."""
        ...
