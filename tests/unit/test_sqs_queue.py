"""The orders queue's writer on SQS and its claim checks in S3, against moto holding SQS's documented
limits (`sqs_as_documented`): what is sent always fits, a message that would not is kept in S3
(docs/decisions.md#17)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from offergrid_integration.contract import QueuedMessage, normalise_payload, utc_from_epoch
from offergrid_integration.queueing import (
    SQS_MAX_MESSAGE_BYTES,
    ClaimCheck,
    ClaimCheckMissing,
    MessageTooLarge,
    QueueSendError,
    sqs_message_size,
)
from offergrid_integration.sqs_queue import S3ClaimChecks, SqsQueue

BUCKET = "claim-checks-test"
ATTRIBUTES = {"dedupKey": "order.created:i-1", "eventType": "order.created", "source": "webhook"}


@pytest.fixture
def queue_url(aws: None, sqs_as_documented: list[int]) -> str:
    sqs = boto3.client("sqs")
    return str(
        sqs.create_queue(QueueName="orders", Attributes={"MaximumMessageSize": str(SQS_MAX_MESSAGE_BYTES)})[
            "QueueUrl"
        ]
    )


@pytest.fixture
def claim_checks(aws: None) -> S3ClaimChecks:
    boto3.client("s3").create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    return S3ClaimChecks(BUCKET)


def received(queue_url: str) -> list[dict[str, Any]]:
    return (
        boto3.client("sqs")
        .receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        .get("Messages", [])
    )


def body_of_size(size: int, attributes: dict[str, str]) -> str:
    """A body making, with `attributes`, a message of exactly `size` bytes as SQS counts them."""
    body = "x" * (size - sqs_message_size("", attributes))
    assert sqs_message_size(body, attributes) == size
    return body


def test_a_message_of_exactly_the_limit_is_sent_as_it_is(queue_url: str, claim_checks: S3ClaimChecks) -> None:
    body = body_of_size(SQS_MAX_MESSAGE_BYTES, ATTRIBUTES)

    SqsQueue(queue_url, claim_checks=claim_checks).send(body, ATTRIBUTES)

    [message] = received(queue_url)
    assert message["Body"] == body
    assert boto3.client("s3").list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def test_one_byte_more_is_kept_in_s3_and_queued_as_its_claim_check_with_the_same_attributes(
    queue_url: str, claim_checks: S3ClaimChecks
) -> None:
    body = body_of_size(SQS_MAX_MESSAGE_BYTES + 1, ATTRIBUTES)

    SqsQueue(queue_url, claim_checks=claim_checks).send(body, ATTRIBUTES)

    [message] = received(queue_url)
    check = ClaimCheck.from_body(message["Body"])
    assert check is not None
    assert (check.bucket, check.size) == (BUCKET, len(body))
    assert check.key.startswith("orders/")
    assert {name: value["StringValue"] for name, value in message["MessageAttributes"].items()} == ATTRIBUTES
    assert claim_checks.get(check) == body


def test_the_attributes_count_toward_the_limit(queue_url: str, claim_checks: S3ClaimChecks) -> None:
    # A body that fits alone, but not with its attributes
    body = "x" * (SQS_MAX_MESSAGE_BYTES - 10)

    SqsQueue(queue_url, claim_checks=claim_checks).send(body, ATTRIBUTES)

    [message] = received(queue_url)
    assert ClaimCheck.from_body(message["Body"]) is not None


def test_without_claim_checks_a_message_too_large_is_refused_for_good(queue_url: str) -> None:
    body = body_of_size(SQS_MAX_MESSAGE_BYTES + 1, ATTRIBUTES)

    with pytest.raises(MessageTooLarge) as refused:
        SqsQueue(queue_url).send(body, ATTRIBUTES)

    assert (refused.value.size, refused.value.limit) == (SQS_MAX_MESSAGE_BYTES + 1, SQS_MAX_MESSAGE_BYTES)
    assert received(queue_url) == []


def test_a_claim_check_s3_would_not_keep_is_a_queue_send_error_and_nothing_is_queued(queue_url: str) -> None:
    # Given a bucket that does not exist (S3 answers NoSuchBucket)
    checks = S3ClaimChecks("no-such-bucket")

    with pytest.raises(QueueSendError) as failed:
        SqsQueue(queue_url, claim_checks=checks).send(
            body_of_size(SQS_MAX_MESSAGE_BYTES + 1, ATTRIBUTES), ATTRIBUTES
        )

    assert failed.value.code == "NoSuchBucket"
    assert not isinstance(failed.value, MessageTooLarge)  # a 503: Offergrid retries
    assert received(queue_url) == []


def test_a_claim_check_whose_object_is_gone_is_missing(claim_checks: S3ClaimChecks) -> None:
    check = claim_checks.put('{"event":{}}')
    boto3.client("s3").delete_object(Bucket=BUCKET, Key=check.key)

    with pytest.raises(ClaimCheckMissing):
        claim_checks.get(check)


def test_other_s3_errors_on_read_propagate_to_be_retried(claim_checks: S3ClaimChecks) -> None:
    check = claim_checks.put('{"event":{}}')
    with Stubber(claim_checks.client) as stub:
        stub.add_client_error("get_object", service_error_code="SlowDown", http_status_code=503)
        with pytest.raises(Exception, match="SlowDown"):
            claim_checks.get(check)


def test_the_s3_client_is_made_only_for_a_message_too_large(queue_url: str) -> None:
    made: list[str] = []

    def factory() -> Any:
        made.append("s3")
        return boto3.client("s3")

    queue = SqsQueue(queue_url, claim_checks=S3ClaimChecks(BUCKET, client_factory=factory))
    queue.send("{}", ATTRIBUTES)

    assert made == []


@pytest.mark.parametrize(
    "body",
    ['{"claimCheck":{"bucket":"b","key":"k"}}', '{"claimCheck":[1]}', '{"claimCheck":', '{"event":{}}', "[]"],
)
def test_only_a_whole_claim_check_is_read_as_one(body: str) -> None:
    assert ClaimCheck.from_body(body) is None


def test_the_body_holds_only_characters_sqs_takes() -> None:
    # U+FFFE and U+FFFF are text JSON may carry raw, and SQS refuses; a lone surrogate UTF-8 cannot hold
    event = normalise_payload(
        {"event": "order.cancelled", "orderId": "o-1", "reason": "a\ufffe\uffff\ud83d Ж 😀"}
    )
    message = QueuedMessage.for_event(event, received_at=utc_from_epoch(0), source="webhook")

    body = message.to_json()

    assert "\ufffe" not in body
    assert "\uffff" not in body
    assert json.loads(body)["event"]["reason"] == "a\ufffe\uffff\ufffd Ж 😀"
    assert sqs_message_size(body, {}) == len(body.encode("utf-8"))
