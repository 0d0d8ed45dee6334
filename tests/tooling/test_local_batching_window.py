"""The local SQS event source honours the template's MaximumBatchingWindowInSeconds (issue 16)."""

from __future__ import annotations

from typing import Any

import boto3

from devtools.local.poller import SqsEventSource
from devtools.local.runtime import InvokeResult
from devtools.local.stack import DEFAULT_TEMPLATE
from devtools.local.template import load_template


class Resolver:
    def ref(self, logical_id: str) -> Any:
        return f"ref:{logical_id}"

    def get_att(self, logical_id: str, attribute: str) -> Any:
        return f"arn:aws:sqs:eu-west-1:123456789012:{logical_id}"


class ArrivingClient:
    """The SQS client, with one more message arriving before each receive (a burst in progress)."""

    def __init__(self, queue_url: str, arrivals: int) -> None:
        self.sqs = boto3.client("sqs")
        self.queue_url = queue_url
        self.arrivals = arrivals

    def receive_message(self, **kwargs: Any) -> Any:
        if self.arrivals:
            self.arrivals -= 1
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=f'{{"n": {self.arrivals}}}')
        return self.sqs.receive_message(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sqs, name)


def test_the_processor_source_reads_the_window_from_the_template() -> None:
    spec = load_template(DEFAULT_TEMPLATE).function("OrderProcessorFunction", Resolver())
    [source] = SqsEventSource.for_function(
        spec,
        invoke=lambda *_: InvokeResult("r", 0.0),
        client=None,  # type: ignore[arg-type]
        queue_url_for_arn=str,
        region="eu-west-1",
    )
    assert (source.batch_size, source.batching_window) == (10, 2.0)


def test_a_burst_arrives_as_one_full_batch_within_the_window(aws: None) -> None:
    queue_url = boto3.client("sqs").create_queue(QueueName="orders")["QueueUrl"]
    batches: list[int] = []

    def invoke(function_id: str, event: dict[str, Any]) -> InvokeResult:
        batches.append(len(event["Records"]))
        return InvokeResult("request", 0.0, result={"batchItemFailures": []})

    def source(arrivals: int) -> SqsEventSource:
        return SqsEventSource(
            function_id="OrderProcessorFunction",
            invoke=invoke,
            client=ArrivingClient(queue_url, arrivals),  # type: ignore[arg-type]
            queue_url=queue_url,
            queue_arn="arn:aws:sqs:eu-west-1:123456789012:orders",
            region="eu-west-1",
            batch_size=5,
            report_batch_item_failures=True,
        )

    # Given messages arriving one per receive: without a window the first one goes alone
    source(5).poll_once()
    assert batches == [1]
    source(0).drain_until_idle(timeout=10)
    batches.clear()
    # With a window the source keeps receiving until the batch of 5 is full (long before the window ends)
    source(5).poll_once(batching_window=30)
    assert batches == [5]
