"""The SQS event source mapping, emulated: poll a queue, invoke the function, delete what succeeded.

What Lambda does, and so does `SqsEventSource`:

- `ReceiveMessage` with `MaxNumberOfMessages` = the event's `BatchSize` (at most 10 per call), all
  system attributes (`ApproximateReceiveCount`, ...) and message attributes;
- with `MaximumBatchingWindowInSeconds`, keep receiving until the batch is full or the window (from
  the first message) has passed, then invoke: in the long-running stack (`start()`, `make local`),
  in real seconds as Lambda does. `drain_until_idle` (tests, the demo) does not wait for it: it runs
  the queue dry as fast as it can, like the compressed visibility timeout below;
- the SQS event built as AWS builds it (`messageId`, `receiptHandle`, `body`, `attributes`,
  `messageAttributes` with `stringValue`/`binaryValue` and `dataType`, `md5OfBody`,
  `eventSource: aws:sqs`, `eventSourceARN`, `awsRegion`);
- on success, delete every record, except, with `FunctionResponseTypes: [ReportBatchItemFailures]`,
  the ones listed in `batchItemFailures` (a malformed list fails the whole batch); on an error
  (the handler raised, timed out or crashed) delete none;
- failed records become visible again after the visibility timeout, here compressed to
  `retry_delay` seconds (the queue's 360 s would stall a demo), so they are received again with a
  higher `ApproximateReceiveCount`; moto applies the queue's `RedrivePolicy` and moves a message
  to the DLQ after `maxReceiveCount` receives.

Deterministic for tests and the demo: `drain_until_idle(timeout)` polls until the queue holds no
message (visible, in flight or waiting for its retry), with no sleeping-and-hoping. `start()` runs
the same loop in a thread for the long-running local stack.
"""

from __future__ import annotations

import base64
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from devtools.local.runtime import InvokeResult
from devtools.local.template import FunctionSpec, TemplateError

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

__all__ = [
    "BatchOutcome",
    "DrainReport",
    "SqsEventSource",
    "build_sqs_event",
    "event_source_enabled",
    "failed_message_ids",
]

MAX_MESSAGES_PER_RECEIVE: Final = 10
_IDLE_POLL_SECONDS: Final = 0.02
_GATHER_POLL_SECONDS: Final = 0.05

Invoker = Callable[[str, dict[str, Any]], InvokeResult]


def _record(message: MessageTypeDef, queue_arn: str, region: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        converted: dict[str, Any] = {
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value["DataType"],
        }
        if "StringValue" in value:
            converted["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            converted["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
        attributes[name] = converted
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": attributes,
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def event_source_enabled(value: Any, *, where: str = "Enabled") -> bool:
    """The `Enabled` property of an event source, after the template's intrinsics were resolved.

    The template sets it from a parameter (`Enabled: !Ref OrderProcessingEnabled`, "true" or
    "false"), so the value is a boolean or its string; anything else (an unresolved intrinsic, a
    typo) is refused, as CloudFormation would, rather than silently read as "enabled".
    """
    if isinstance(value, bool):
        return value
    text = value.strip().lower() if isinstance(value, str) else None
    if text == "true":
        return True
    if text == "false":
        return False
    raise TemplateError(f"{where} must be true or false, got {value!r}")


def build_sqs_event(messages: list[MessageTypeDef], queue_arn: str, region: str) -> dict[str, Any]:
    return {"Records": [_record(message, queue_arn, region) for message in messages]}


def failed_message_ids(outcome: InvokeResult, batch_ids: list[str], *, report_failures: bool) -> set[str]:
    """The records Lambda would leave on the queue after this invocation."""
    if not outcome.ok:
        return set(batch_ids)
    if not report_failures:
        return set()
    result = outcome.result
    if result is None or result == {}:
        return set()
    failures = result.get("batchItemFailures") if isinstance(result, dict) else None
    if failures is None or failures == []:
        return set()
    if not isinstance(failures, list):
        return set(batch_ids)
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in batch_ids:
            return set(batch_ids)  # Lambda treats a malformed response as a failed batch
        failed.add(identifier)
    return failed


@dataclass
class BatchOutcome:
    received: int = 0
    deleted: int = 0
    failed: int = 0
    error: dict[str, Any] | None = None


@dataclass
class DrainReport:
    batches: int = 0
    received: int = 0
    deleted: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class SqsEventSource:
    function_id: str
    invoke: Invoker
    client: SQSClient
    queue_url: str
    queue_arn: str
    region: str
    batch_size: int = 10
    report_batch_item_failures: bool = False
    retry_delay: float = 0.0
    enabled: bool = True
    batching_window: float = 0.0
    _pending_retries: list[tuple[float, str]] = field(default_factory=list, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    totals: DrainReport = field(default_factory=DrainReport, init=False)

    @classmethod
    def for_function(
        cls,
        spec: FunctionSpec,
        *,
        invoke: Invoker,
        client: SQSClient,
        queue_url_for_arn: Callable[[str], str],
        region: str,
        retry_delay: float = 0.0,
    ) -> list[SqsEventSource]:
        """One source per `SQS` event of the function, configured from the template."""
        sources: list[SqsEventSource] = []
        for event in spec.events_of_type("SQS"):
            arn = str(event.properties["Queue"])
            sources.append(
                cls(
                    function_id=spec.logical_id,
                    invoke=invoke,
                    client=client,
                    queue_url=queue_url_for_arn(arn),
                    queue_arn=arn,
                    region=region,
                    batch_size=int(event.properties.get("BatchSize", 10)),
                    report_batch_item_failures="ReportBatchItemFailures"
                    in (event.properties.get("FunctionResponseTypes") or []),
                    retry_delay=retry_delay,
                    batching_window=float(event.properties.get("MaximumBatchingWindowInSeconds", 0) or 0),
                    enabled=event_source_enabled(
                        event.properties.get("Enabled", True),
                        where=f"{spec.logical_id} event {event.name}: Enabled",
                    ),
                )
            )
        return sources

    # -- one batch --------------------------------------------------------------------------------
    def poll_once(self, *, wait_seconds: int = 0, batching_window: float = 0.0) -> BatchOutcome:
        """One batch: receive, invoke, delete what succeeded. With a `batching_window` (seconds),
        keep receiving until the batch is full or the window since the first message has passed."""
        with self._lock:
            self._release_due_retries()
            messages = self._receive(wait_seconds, self.batch_size)
            gathered_until = time.monotonic() + batching_window
            while messages and len(messages) < self.batch_size and time.monotonic() < gathered_until:
                more = self._receive(0, self.batch_size - len(messages))
                messages.extend(more)
                if not more:
                    time.sleep(min(_GATHER_POLL_SECONDS, max(0.0, gathered_until - time.monotonic())))
            if not messages:
                return BatchOutcome()
            outcome = self.invoke(self.function_id, build_sqs_event(messages, self.queue_arn, self.region))
            batch_ids = [message["MessageId"] for message in messages]
            failed = failed_message_ids(outcome, batch_ids, report_failures=self.report_batch_item_failures)
            result = BatchOutcome(received=len(messages), error=outcome.error)
            due = time.monotonic() + self.retry_delay
            for message in messages:
                if message["MessageId"] in failed:
                    self._pending_retries.append((due, message["ReceiptHandle"]))
                    result.failed += 1
                else:
                    self.client.delete_message(
                        QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                    )
                    result.deleted += 1
            self._release_due_retries()
            self._count(result)
            return result

    def _receive(self, wait_seconds: int, up_to: int) -> list[MessageTypeDef]:
        response = self.client.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(up_to, MAX_MESSAGES_PER_RECEIVE),
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(response.get("Messages") or [])

    def _release_due_retries(self) -> None:
        now = time.monotonic()
        due = [handle for when, handle in self._pending_retries if when <= now]
        self._pending_retries = [(when, handle) for when, handle in self._pending_retries if when > now]
        for handle in due:
            # The compressed visibility timeout has passed: visible again, as after the real one.
            with contextlib.suppress(self.client.exceptions.ReceiptHandleIsInvalid):
                self.client.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=handle, VisibilityTimeout=0
                )

    def _count(self, outcome: BatchOutcome) -> None:
        self.totals.batches += 1
        self.totals.received += outcome.received
        self.totals.deleted += outcome.deleted
        self.totals.failed += outcome.failed
        if outcome.error is not None:
            self.totals.errors.append(outcome.error)

    # -- until idle -------------------------------------------------------------------------------
    def messages_left(self) -> int:
        attributes = self.client.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def drain_until_idle(self, timeout: float = 30.0) -> DrainReport:
        """Poll until the queue is empty (failed records retried until deleted or dead-lettered)."""
        report = DrainReport()
        deadline = time.monotonic() + timeout
        while True:
            outcome = self.poll_once()
            if outcome.received:
                report.batches += 1
                report.received += outcome.received
                report.deleted += outcome.deleted
                report.failed += outcome.failed
                if outcome.error is not None:
                    report.errors.append(outcome.error)
                continue
            if self.messages_left() == 0:
                return report
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.function_id}: {self.messages_left()} message(s) still on {self.queue_url} "
                    f"after {timeout:.0f} s"
                )
            time.sleep(_IDLE_POLL_SECONDS)  # a retry is waiting for its compressed visibility timeout

    # -- background -------------------------------------------------------------------------------
    def start(self) -> SqsEventSource:
        if self.enabled and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=f"sqs-{self.function_id}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                outcome = self.poll_once(wait_seconds=1, batching_window=self.batching_window)
            except Exception:  # the stack is shutting down, or moto hiccuped: keep polling
                if self._stop.wait(1.0):
                    return
                continue
            if not outcome.received and self._pending_retries:
                self._stop.wait(min(0.2, max(self.retry_delay, _IDLE_POLL_SECONDS)))
