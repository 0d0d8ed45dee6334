"""Transient failures fail the record (SQS retries it); the retry decides it exactly once.

Faults are injected in the Offergrid fake (5xx, 429, dropped connections, slow answers) and on the
AWS side (rules missing, bus missing, an idempotency record in progress).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from devtools.offergrid_fake import OffergridFake
from functions.order_processor import app
from offergrid_integration.clock import SYSTEM_CLOCK, ScaledClock
from offergrid_integration.config import load_settings
from offergrid_integration.orders.processor import ProcessorSettings
from tests.fixtures.aws import FakeLambdaContext
from tests.integration import test_order_processor as base
from tests.integration.test_order_processor import (
    ITEM,
    ORDER,
    RULES,
    RULES_PARAMETER,
    Invoke,
    Stack,
    create_bus,
    create_stack,
    load_event,
    patches,
)

# The fixtures of the main module, made visible to pytest here.
fake = base.fake
stack = base.stack
runtime_factory = base.runtime_factory
runtime = base.runtime
invoke = base.invoke

ITEM_PATH = f"/provider/orders/{ITEM}"
STATUS_PATH = f"/provider/orders/{ITEM}/status"
ATTEMPTS = 5  # the client's first attempt + MAX_RETRIES


def assert_accepted_once(fake: OffergridFake, stack: Stack) -> None:
    assert fake.order_items[ITEM]["status"] == "accepted"
    assert len(patches(fake, ITEM)) == 1
    transitions = [entry for entry in fake.history(ITEM) if entry["to"] == "accepted"]
    assert len(transitions) == 1, fake.history(ITEM)
    assert stack.record(ITEM).decision == "accepted"


@pytest.mark.parametrize(
    ("kind", "options", "target"),
    [
        ("status", {"status": 503}, "GET"),
        ("status", {"status": 500}, "PATCH"),
        ("rate_limit", {"retry_after": 0}, "GET"),
        ("rate_limit", {"retry_after": 0}, "PATCH"),
        ("drop", {}, "PATCH"),
    ],
)
def test_a_persistent_fault_fails_the_record_and_the_retry_decides_once(
    fake: OffergridFake, stack: Stack, invoke: Invoke, kind: str, options: dict[str, Any], target: str
) -> None:
    # Given a pending item, and Offergrid failing every attempt the client makes for one delivery
    fake.add_order_item(id=ITEM, orderId=ORDER)
    path = ITEM_PATH if target == "GET" else STATUS_PATH
    fake.inject_fault(kind, times=ATTEMPTS, method=target, path=path, **options)
    event = load_event("sqs_order_created.json")

    # When the message is delivered: the record is reported failed, nothing decided
    assert invoke(event) == [event["Records"][0]["messageId"]]
    assert fake.order_items[ITEM]["status"] == "pending"
    assert fake.pending_faults() == []

    # When SQS delivers it again: it is decided, once
    assert invoke(event) == []
    assert_accepted_once(fake, stack)


def test_a_fault_the_client_retries_through_needs_no_redelivery(
    fake: OffergridFake, stack: Stack, invoke: Invoke
) -> None:
    fake.add_order_item(id=ITEM, orderId=ORDER)
    fake.inject_fault("status", times=2, status=502, method="PATCH", path=STATUS_PATH)
    assert invoke(load_event("sqs_order_created.json")) == []
    assert_accepted_once(fake, stack)


def test_a_timeout_fails_the_record_and_the_retry_decides_once(
    fake: OffergridFake, stack: Stack, runtime_factory: Callable[..., app.Runtime]
) -> None:
    # Given real time and an invocation with 2.5 s left: one attempt (1.5 s timeout), no time to retry
    runtime_factory(clock=SYSTEM_CLOCK)
    fake.add_order_item(id=ITEM, orderId=ORDER)
    fake.inject_fault("slow", delay=3.0, method="GET", path=ITEM_PATH)
    event = load_event("sqs_order_created.json")

    response = app.lambda_handler(event, FakeLambdaContext(timeout_seconds=2.5))

    assert [failure["itemIdentifier"] for failure in response["batchItemFailures"]] == [
        event["Records"][0]["messageId"]
    ]
    assert fake.order_items[ITEM]["status"] == "pending"

    # When it is delivered again with time to spare, it is decided once
    response = app.lambda_handler(event, FakeLambdaContext())
    assert response["batchItemFailures"] == []
    assert_accepted_once(fake, stack)


def test_missing_rules_are_retried_never_a_mass_rejection(
    aws: None,
    fake: OffergridFake,
    runtime_factory: Callable[..., app.Runtime],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the coverage-rules parameter is missing
    boto3.client("ssm").delete_parameter(Name=RULES_PARAMETER)
    runtime_factory()
    fake.add_order_item(id=ITEM, orderId=ORDER)
    event = load_event("sqs_order_created.json")

    # Then the record fails (and alarms through TransientFailure), and nothing is rejected
    response = app.lambda_handler(event, FakeLambdaContext())
    assert len(response["batchItemFailures"]) == 1
    assert fake.calls_matching("PATCH") == []
    assert '"Reason":"ServiceabilityUnavailable"' in capsys.readouterr().out

    # When the rules are back, the retry decides the order
    boto3.client("ssm").put_parameter(Name=RULES_PARAMETER, Type="String", Value=json.dumps(RULES))
    assert app.lambda_handler(event, FakeLambdaContext())["batchItemFailures"] == []
    assert fake.order_items[ITEM]["status"] == "accepted"


def test_invalid_rules_are_retried_never_a_mass_rejection(
    aws: None, fake: OffergridFake, stack: Stack, invoke: Invoke
) -> None:
    boto3.client("ssm").put_parameter(
        Name=RULES_PARAMETER, Type="String", Value='{"allow": []}', Overwrite=True
    )
    fake.add_order_item(id=ITEM, orderId=ORDER)
    assert len(invoke(load_event("sqs_order_created.json"))) == 1
    assert fake.calls_matching("PATCH") == []


@pytest.fixture
def runtime_without_bus(aws: None, offergrid_fake: OffergridFake) -> Iterator[Stack]:
    """A stack whose event bus does not exist yet: work orders cannot be announced."""
    stack = create_stack(offergrid_fake.base_url, with_bus=False)
    app.reset()
    app.configure(app.Runtime(load_settings(ProcessorSettings, stack.env), clock=ScaledClock(20)))
    yield stack
    app.reset()


def test_a_crash_after_the_patch_is_finished_not_decided_again(
    offergrid_fake: OffergridFake, runtime_without_bus: Stack
) -> None:
    # Given a stack whose event bus does not exist yet: the work order cannot be announced
    fake, stack = offergrid_fake, runtime_without_bus
    fake.add_order_item(id=ITEM, orderId=ORDER)
    event = load_event("sqs_order_created.json")

    # When the message is processed, the PATCH succeeds but the record fails after it
    assert len(app.lambda_handler(event, FakeLambdaContext())["batchItemFailures"]) == 1
    assert fake.order_items[ITEM]["status"] == "accepted"
    assert stack.record(ITEM).intended_decision == "accepted"

    # When the bus exists and the message is retried, the acceptance is finished without a 2nd PATCH
    create_bus(stack.crm_queue_url)
    assert app.lambda_handler(event, FakeLambdaContext())["batchItemFailures"] == []
    assert len(fake.calls_matching("PATCH")) == 1
    record = stack.record(ITEM)
    assert (record.decision, record.intended_decision) == ("accepted", None)
    assert record.history[-1].detail == "resumed after an interruption"
    [announced] = stack.published()
    assert announced["detail-type"] == "offergrid.order.accepted"


def test_a_message_in_progress_elsewhere_is_retried_later(
    fake: OffergridFake, stack: Stack, runtime: app.Runtime, invoke: Invoke
) -> None:
    # Given another instance is processing the same dedup key right now
    layer = DynamoDBPersistenceLayer(table_name="idempotency")
    layer.configure(runtime.idempotency_config, key_prefix=app.IDEMPOTENCY_KEY_PREFIX)
    layer.save_inprogress(data={"dedupKey": "order.created:item-456-def"}, remaining_time_in_millis=60_000)
    fake.add_order_item(id=ITEM, orderId=ORDER)

    # Then this delivery fails (SQS retries it) without touching Offergrid
    assert len(invoke(load_event("sqs_order_created.json"))) == 1
    assert fake.calls == []
