"""The orders queue's partial-batch runner: one SQS event -> each record handled -> the failed ones
reported (`ReportBatchItemFailures`, set on the processor's SQS trigger in template.yaml).

    runner = SqsBatch(pipeline)          # anything with begin_batch / handle_record / end_batch
    runner.process(event)                # -> {"batchItemFailures": [{"itemIdentifier": messageId}, ...]}

A record fails when its handler raises an `Exception`: its message id is listed, SQS makes it
visible again (finally the DLQ); the others are deleted. Every record is handled (the orders queue
is a standard queue: no order to keep), so one failure never holds back the rest of the batch, and a
batch whose records all failed is answered like any other (every id listed) rather than raised. A
`BaseException` that is not an `Exception` (the runtime shutting down) is not a record's failure: it
propagates, and SQS retries the whole batch (idempotency keeps that safe).

`begin_batch(records)` runs before the first record and `end_batch()` after the last, whatever
happened in between (the pipeline's batched reads live exactly that long). A `begin_batch` that
raises fails no record: it is logged, and each record is handled on its own as usual. So whatever
one message does (docs/decisions.md#17), it fails itself only, never its batch.

The event must be what an SQS trigger sends: `{"Records": [...]}`, each record with a `messageId`
and a `body` (`eventSource` `aws:sqs` when present). Anything else (a console test `{}`, another
service's records) is refused with `NotAnSqsEvent`, naming what was expected, before any record is
handled. An empty `Records` list is an empty batch: nothing to do, nothing failed.

Powertools' `BatchProcessor` did this before; its import (asyncio, every event data class, and the
parser's pydantic models whenever pydantic was imported first) was 5-10 % of the processor's cold
start, for a loop this size.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypedDict

__all__ = [
    "BatchHandler",
    "BatchItemFailure",
    "NotAnSqsEvent",
    "PartialBatchResponse",
    "SqsBatch",
    "SqsRecord",
    "sqs_records",
]

_log = logging.getLogger(__name__)

SQS_EVENT_SOURCE: Final = "aws:sqs"
EXPECTED: Final = (
    'an SQS event: {"Records": [{"messageId": "...", "body": "...", "eventSource": "aws:sqs", ...}]}'
)


class BatchItemFailure(TypedDict):
    itemIdentifier: str


class PartialBatchResponse(TypedDict):
    batchItemFailures: list[BatchItemFailure]


class NotAnSqsEvent(ValueError):
    """The event is not what an SQS trigger sends; nothing in it was handled."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"{problem}; the order processor expects {EXPECTED}")
        self.problem = problem


@dataclass(frozen=True, slots=True)
class SqsRecord:
    """One SQS record as the handler reads it."""

    message_id: str
    body: str
    # The string-valued message attributes (binary ones are not ours).
    attributes: Mapping[str, str]

    @classmethod
    def from_event_record(cls, record: Mapping[str, Any]) -> SqsRecord:
        message_attributes = record.get("messageAttributes")
        attributes = {
            str(name): value["stringValue"]
            for name, value in (message_attributes if isinstance(message_attributes, Mapping) else {}).items()
            if isinstance(value, Mapping) and isinstance(value.get("stringValue"), str)
        }
        return cls(record["messageId"], record["body"], attributes)


def sqs_records(event: object) -> list[SqsRecord]:
    """The event's records, or `NotAnSqsEvent` naming the first problem (nothing is handled then)."""
    if not isinstance(event, Mapping):
        raise NotAnSqsEvent(f"the event is a {type(event).__name__}, not an object")
    records = event.get("Records")
    if records is None:
        keys = ", ".join(sorted(str(key) for key in event)[:5]) or "none"
        raise NotAnSqsEvent(f"the event has no Records (its keys: {keys})")
    if not isinstance(records, list):
        raise NotAnSqsEvent(f"Records is a {type(records).__name__}, not a list")
    parsed = []
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise NotAnSqsEvent(f"record {index} is a {type(record).__name__}, not an object")
        source = record.get("eventSource", SQS_EVENT_SOURCE)
        if source != SQS_EVENT_SOURCE:
            raise NotAnSqsEvent(f"record {index} comes from {str(source)[:40]!r}, not {SQS_EVENT_SOURCE!r}")
        for name in ("messageId", "body"):
            if not isinstance(record.get(name), str):
                raise NotAnSqsEvent(f"record {index} has no {name} string")
        parsed.append(SqsRecord.from_event_record(record))
    return parsed


class BatchHandler(Protocol):
    """What runs a batch's records (the processor's `RecordPipeline`)."""

    def begin_batch(self, records: Sequence[SqsRecord]) -> object: ...

    def handle_record(self, record: SqsRecord) -> object: ...

    def end_batch(self) -> None: ...


class SqsBatch:
    """Runs an SQS event's records through `handler` and answers SQS's partial-batch response."""

    def __init__(self, handler: BatchHandler) -> None:
        # Looked up on each batch, so a handler's methods can be wrapped after this is built (tests).
        self.handler = handler

    def process(self, event: object) -> PartialBatchResponse:
        records = sqs_records(event)
        failed: list[BatchItemFailure] = []
        if not records:
            return {"batchItemFailures": failed}
        try:
            self.handler.begin_batch(records)
        except Exception as exc:  # preparing the batch is an optimisation: each record still runs alone
            _log.warning(
                "preparing the batch failed; its records are handled one by one",
                extra={"error": type(exc).__name__, "records": len(records)},
            )
        try:
            for record in records:
                try:
                    self.handler.handle_record(record)
                except Exception:  # the handler reported it; SQS retries it
                    failed.append({"itemIdentifier": record.message_id})
        finally:
            self.handler.end_batch()
        return {"batchItemFailures": failed}
