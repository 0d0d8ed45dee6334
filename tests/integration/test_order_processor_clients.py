"""The order processor's AWS clients (issue 12): every one built at init, from one session, and none
on the first record; Powertools idempotency uses the function's DynamoDB client, not its own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import botocore.session
import pytest

from devtools.offergrid_fake import OffergridFake
from functions.order_processor import app
from offergrid_integration import aws
from offergrid_integration.clock import ScaledClock
from offergrid_integration.config import load_settings
from offergrid_integration.orders.processor import ProcessorSettings
from tests.fixtures.aws import FakeLambdaContext, record_boto_clients
from tests.integration.test_order_processor import ITEM, ORDER, Stack, create_stack, load_event


@pytest.fixture
def stack(aws: None, offergrid_fake: OffergridFake) -> Iterator[Stack]:
    app.reset()
    yield create_stack(offergrid_fake.base_url)
    app.reset()


def _no_more_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: botocore.session.Session, service_name: str, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a {service_name} client was built after init")

    monkeypatch.setattr(botocore.session.Session, "create_client", refuse)


def test_every_client_is_built_at_init_from_one_session(
    stack: Stack, offergrid_fake: OffergridFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a pending item in Illinois (covered), and the processor's runtime built as Lambda builds it
    # at init, sessions and clients recorded
    offergrid_fake.add_order_item(id=ITEM, orderId=ORDER)
    settings = load_settings(ProcessorSettings, stack.env)
    aws.reset()  # a new container: the stack's setup made clients of its own
    sessions, clients = record_boto_clients(monkeypatch)
    app.configure(app.Runtime(settings, clock=ScaledClock(20)))
    # Then it made one session and one client per service it calls (DynamoDB twice: the low-level
    # client for the budget and the idempotency records, the resource's for the tables)
    assert len(sessions) == 1
    assert sorted(clients) == ["dynamodb", "dynamodb", "events", "secretsmanager", "ssm"]

    # When the first record comes, with no client allowed to be built any more
    _no_more_clients(monkeypatch)
    response = app.lambda_handler(load_event("sqs_order_created.json"), FakeLambdaContext())
    # Then it is processed (key read, budget, idempotency record, rules, decision, work order, event)
    assert response == {"batchItemFailures": []}
    assert offergrid_fake.order_items[ITEM]["status"] == "accepted"


def test_the_idempotency_records_go_through_the_functions_dynamodb_client(
    stack: Stack, offergrid_fake: OffergridFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a pending item, the runtime, and every call of its own DynamoDB client recorded
    offergrid_fake.add_order_item(id=ITEM, orderId=ORDER)
    runtime = app.Runtime(load_settings(ProcessorSettings, stack.env), clock=ScaledClock(20))
    app.configure(runtime)
    operations: list[str] = []
    calls: Callable[..., Any] = runtime.dynamodb._make_api_call  # type: ignore[attr-defined]

    def record(operation: str, params: dict[str, Any]) -> Any:
        operations.append(f"{operation}:{params.get('TableName')}")
        return calls(operation, params)

    monkeypatch.setattr(runtime.dynamodb, "_make_api_call", record)
    # When a record is processed
    response = app.lambda_handler(load_event("sqs_order_created.json"), FakeLambdaContext())
    # Then the idempotency record was written and completed with that client
    assert response == {"batchItemFailures": []}
    table = stack.env["IDEMPOTENCY_TABLE"]
    assert f"PutItem:{table}" in operations
    assert f"UpdateItem:{table}" in operations
