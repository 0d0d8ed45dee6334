"""The orders queue's partial-batch runner (`orders/processor.py`): SQS's ReportBatchItemFailures
contract for every event shape an SQS trigger (or a person testing it) sends."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from offergrid_integration.orders.processor import NotAnSqsEvent, SqsBatch, SqsRecord, sqs_records

EVENTS = Path(__file__).resolve().parents[2] / "events"
STANDARD_ARN = "arn:aws:sqs:eu-west-1:123456789012:offergrid-orders"


def record(message_id: str, body: str = "{}", *, arn: str = STANDARD_ARN, **extra: Any) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": "eu-west-1",
        **extra,
    }


class Recorder:
    """A batch handler that fails the records it is told to, and says what happened in which order."""

    def __init__(self, fail: dict[str, BaseException] | None = None) -> None:
        self.fail = fail or {}
        self.calls: list[str] = []
        self.handled: list[SqsRecord] = []

    def begin_batch(self, records: Sequence[SqsRecord]) -> None:
        self.calls.append("begin:" + ",".join(r.message_id for r in records))

    def handle_record(self, record: SqsRecord) -> dict[str, Any]:
        self.calls.append(record.message_id)
        self.handled.append(record)
        if record.message_id in self.fail:
            raise self.fail[record.message_id]
        return {"ok": record.message_id}

    def end_batch(self) -> None:
        self.calls.append("end")


def failures(response: dict[str, Any]) -> list[str]:
    assert set(response) == {"batchItemFailures"}
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def test_every_record_is_handled_and_only_the_failed_ones_are_listed() -> None:
    handler = Recorder(fail={"m2": RuntimeError("boom"), "m4": ValueError("bad")})
    event = {"Records": [record(f"m{i}") for i in range(1, 6)]}

    response = SqsBatch(handler).process(event)

    assert failures(dict(response)) == ["m2", "m4"]
    assert handler.calls == ["begin:m1,m2,m3,m4,m5", "m1", "m2", "m3", "m4", "m5", "end"]


def test_a_begin_batch_that_fails_fails_no_record_each_is_still_handled() -> None:
    # Given a handler whose batch preparation (parsing, batched reads) raises
    class FailingBegin(Recorder):
        def begin_batch(self, records: Sequence[SqsRecord]) -> None:
            super().begin_batch(records)
            raise UnicodeEncodeError("utf-8", "\ud83d", 0, 1, "surrogates not allowed")

    handler = FailingBegin(fail={"m2": RuntimeError("boom")})

    # When a batch arrives
    response = SqsBatch(handler).process({"Records": [record("m1"), record("m2"), record("m3")]})

    # Then it is not a failure of the batch: every record is handled on its own, only m2 fails
    assert failures(dict(response)) == ["m2"]
    assert handler.calls == ["begin:m1,m2,m3", "m1", "m2", "m3", "end"]


def test_a_batch_whose_records_all_fail_is_answered_not_raised() -> None:
    handler = Recorder(fail={"a": RuntimeError("x"), "b": RuntimeError("y")})

    response = SqsBatch(handler).process({"Records": [record("a"), record("b")]})

    assert failures(dict(response)) == ["a", "b"]
    assert handler.calls[-1] == "end"


def test_a_batch_without_failures_lists_none() -> None:
    assert SqsBatch(Recorder()).process({"Records": [record("a")]}) == {"batchItemFailures": []}


def test_an_empty_batch_has_nothing_to_do() -> None:
    handler = Recorder()

    assert SqsBatch(handler).process({"Records": []}) == {"batchItemFailures": []}
    assert handler.calls == []


def test_a_base_exception_is_not_a_record_failure_it_ends_the_batch_and_propagates() -> None:
    # The runtime shutting down mid-batch: the whole batch goes back (idempotency keeps that safe).
    handler = Recorder(fail={"b": KeyboardInterrupt()})

    with pytest.raises(KeyboardInterrupt):
        SqsBatch(handler).process({"Records": [record("a"), record("b"), record("c")]})

    assert handler.calls == ["begin:a,b,c", "a", "b", "end"]


def test_message_attributes_are_read_as_strings_binary_ones_ignored() -> None:
    raw = record(
        "m1",
        messageAttributes={
            "dedupKey": {"stringValue": "order.created:item-1", "dataType": "String"},
            "blob": {"binaryValue": "AAEC", "dataType": "Binary"},
        },
    )
    without = record("m2")
    del without["messageAttributes"]

    first, second = sqs_records({"Records": [raw, without]})

    assert first.attributes == {"dedupKey": "order.created:item-1"}
    assert (first.message_id, first.body) == ("m1", "{}")
    assert second.attributes == {}


def test_the_console_and_sam_sample_event_is_an_sqs_event() -> None:
    event = json.loads((EVENTS / "sam_sqs_receive_message.json").read_text())

    (parsed,) = sqs_records(event)

    assert parsed.message_id == event["Records"][0]["messageId"]
    assert parsed.body == "Hello from SQS!"


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ({}, "no Records"),
        (
            {"key1": "value1", "key2": "value2"},
            "no Records (its keys: key1, key2)",
        ),  # the console's hello-world
        ([], "is a list, not an object"),
        ("Records", "is a str"),
        ({"Records": {"messageId": "m"}}, "Records is a dict, not a list"),
        ({"Records": ["m1"]}, "record 0 is a str"),
        ({"Records": [{"body": "{}"}]}, "record 0 has no messageId"),
        ({"Records": [{"messageId": "m1"}]}, "record 0 has no body"),
    ],
)
def test_anything_but_an_sqs_event_is_refused_naming_what_was_expected(event: Any, problem: str) -> None:
    handler = Recorder()

    with pytest.raises(NotAnSqsEvent) as refused:
        SqsBatch(handler).process(event)

    assert problem in str(refused.value)
    assert '"Records": [{"messageId"' in str(refused.value)
    assert isinstance(refused.value, ValueError)
    assert handler.calls == []


def test_records_of_another_service_are_refused_before_any_is_handled() -> None:
    sns = {
        "Records": [
            record("m1"),
            {"EventSource": "aws:sns", "eventSource": "aws:sns", "messageId": "x", "body": "{}"},
        ]
    }
    handler = Recorder()

    with pytest.raises(NotAnSqsEvent, match="record 1 comes from 'aws:sns'"):
        SqsBatch(handler).process(sns)

    assert handler.calls == []  # not even the valid first record


def test_the_event_is_not_changed() -> None:
    event = {"Records": [record("m1", messageAttributes={"k": {"stringValue": "v", "dataType": "String"}})]}
    before = copy.deepcopy(event)

    SqsBatch(Recorder(fail={"m1": RuntimeError()})).process(event)

    assert event == before


def test_the_handler_is_looked_up_per_batch_so_it_can_be_wrapped() -> None:
    handler = Recorder()
    runner = SqsBatch(handler)
    seen: list[str] = []
    original = handler.begin_batch

    def wrapped(records: Sequence[SqsRecord]) -> None:
        seen.append("wrapped")
        original(records)

    handler.begin_batch = wrapped  # type: ignore[method-assign]

    runner.process({"Records": [record("a")]})

    assert seen == ["wrapped"]
