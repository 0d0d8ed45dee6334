"""The order processor when its API key secret cannot be read (issue 22): the log line on-call reads
names the secret and the AWS error code, never the value, and the record is retried."""

from __future__ import annotations

import json
from collections.abc import Callable

import boto3

from devtools.offergrid_fake import OffergridFake
from tests.integration import test_order_processor as base
from tests.integration.test_order_processor import API_KEY_SECRET, ITEM, ORDER, Invoke, Stack, load_event

# The fixtures of the main module, made visible to pytest here.
fake = base.fake
stack = base.stack
runtime_factory = base.runtime_factory
runtime = base.runtime
invoke = base.invoke

API_KEY_VALUE = "test-api-key"  # what create_stack puts in the secret


def _warnings(output: str) -> list[dict[str, object]]:
    lines = []
    for line in output.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("message") == "order message failed; it will be retried":
            lines.append(entry)
    return lines


def test_a_deleted_api_key_secret_is_named_with_the_aws_error_in_the_log(
    fake: OffergridFake, stack: Stack, invoke: Invoke, log_output: Callable[[], str]
) -> None:
    # Given a pending item, and the API key secret deleted
    fake.add_order_item(id=ITEM, orderId=ORDER)
    boto3.client("secretsmanager").delete_secret(SecretId=API_KEY_SECRET, ForceDeleteWithoutRecovery=True)
    event = load_event("sqs_order_created.json")

    # When the message is delivered: it fails, to be retried
    assert invoke(event) == [event["Records"][0]["messageId"]]

    # Then the log line says which secret and which AWS error, and nothing of its value
    output = log_output()
    (warning,) = _warnings(output)
    assert warning["error"] == "SecretUnavailableError"
    assert warning["secretId"] == API_KEY_SECRET
    assert warning["awsErrorCode"] == "ResourceNotFoundException"
    assert API_KEY_VALUE not in output
    assert fake.order_items[ITEM]["status"] == "pending"
