"""The orders queue as a port, SQS's size rule and the claim check of a body too large for it
(Decision 17). Stdlib only (the webhook's cold start)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from offergrid_integration.contract import QueuedMessage

# What SQS takes in one message (MaximumMessageSize in template.yaml): body plus attributes.
SQS_MAX_MESSAGE_BYTES: Final = 262_144
_STRING_TYPE_BYTES: Final = len(b"String")


class QueueSendError(Exception):
    """The queue did not accept the message: nothing was stored, the sender must retry. Carries the
    service's error code (e.g. `AWS.SimpleQueueService.NonExistentQueue`), never the body."""

    def __init__(self, code: str) -> None:
        super().__init__(f"queue rejected the message: {code}")
        self.code = code


class MessageTooLarge(QueueSendError):
    """Larger than the queue takes, and no claim-check store to keep it in: retrying cannot help."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__("MessageTooLarge")
        self.size = size
        self.limit = limit


class QueuePort(Protocol):
    def send(self, message_body: str, attributes: dict[str, str]) -> str | None:
        """Store one message; its id if the queue gives one; `QueueSendError`."""


def send_queued_message(queue: QueuePort, message: QueuedMessage) -> str | None:
    """Send `message` as the orders queue expects it: JSON body plus its String attributes."""
    return queue.send(message.to_json(), message.message_attributes())


def sqs_message_size(message_body: str, attributes: Mapping[str, str]) -> int:
    """What SQS counts against its limit: the body's UTF-8 bytes plus, per attribute sent (empty
    values are dropped), its name, its data type (`String`) and its value."""
    body_bytes = (
        len(message_body) if message_body.isascii() else len(message_body.encode("utf-8", "surrogatepass"))
    )
    return body_bytes + sum(
        len(name.encode()) + _STRING_TYPE_BYTES + len(value.encode("utf-8", "surrogatepass"))
        for name, value in attributes.items()
        if value
    )


_CLAIM_CHECK_PREFIX: Final = '{"claimCheck":'


@dataclass(frozen=True, slots=True)
class ClaimCheck:
    """Where a queue body too large for SQS is kept: an S3 object. Queued in its place as
    `{"claimCheck":{"bucket":...,"key":...,"bytes":...}}`, with the message's own attributes."""

    bucket: str
    key: str
    size: int

    def to_json(self) -> str:
        return json.dumps(
            {"claimCheck": {"bucket": self.bucket, "key": self.key, "bytes": self.size}},
            separators=(",", ":"),
        )

    @classmethod
    def from_body(cls, body: str) -> ClaimCheck | None:
        """The claim check a queue body is, or None when it is a message itself."""
        if not body.startswith(_CLAIM_CHECK_PREFIX):
            return None
        try:
            pointer = json.loads(body)["claimCheck"]
            bucket, key, size = pointer["bucket"], pointer["key"], pointer["bytes"]
        except (ValueError, TypeError, KeyError):
            return None
        if not (
            isinstance(bucket, str) and bucket and isinstance(key, str) and key and isinstance(size, int)
        ):
            return None
        return cls(bucket, key, size)


class ClaimCheckMissing(LookupError):
    """The object a claim check points at is gone (expired, deleted): retrying cannot bring it back."""


class ClaimCheckStore(Protocol):
    """Where bodies too large for the queue are kept (`sqs_queue.S3ClaimChecks`)."""

    def put(self, message_body: str) -> ClaimCheck:
        """Keep `message_body`; `QueueSendError` when it was not kept."""

    def get(self, check: ClaimCheck) -> str:
        """The body `check` points at; `ClaimCheckMissing` when it is gone."""
