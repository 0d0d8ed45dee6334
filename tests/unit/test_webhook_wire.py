"""What the webhook queues, the processor reads: one contract (`offergrid_integration.contract`).

For any parsed body, the webhook either refuses it with a reason or queues a body the processor's
parser reads back as the same message (same dedup key, same attributes, the same body written again),
never a malformed message. The integer rule of the webhook's settings (`checks.bounded_int`, no
pydantic) reads a variable as the other functions' pydantic settings do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field, TypeAdapter, ValidationError

from offergrid_integration.checks import bounded_int
from offergrid_integration.contract import (
    InvalidEventPayload,
    OffergridEvent,
    QueuedMessage,
    dedup_key_for,
    normalise_payload,
)
from offergrid_integration.orders.messages import parse_queue_message
from offergrid_integration.signature import load_json
from tests.unit.test_webhook_property import json_values

REPO = Path(__file__).resolve().parents[2]
RECEIVED = datetime(2026, 11, 27, 14, 41, 0, 123000, tzinfo=UTC)  # the body keeps milliseconds

ids = st.one_of(
    st.none(),
    st.just(""),
    st.text(max_size=20),
    st.integers(-5, 10**20),
    st.booleans(),
    st.floats(),
    st.sampled_from(["item-1", "a:b", "é 1", "x" * 129, "\x00", "order-1"]),
)
event_types = st.one_of(
    st.sampled_from(["order.created", "order.cancelled", "offer.ordered", "workorder.status_changed"]),
    # Python's `$` also matches before a final newline (issue 21, case 8)
    st.sampled_from(["order.created\n", "x\n", "\n", "order.created\r", "a\nb"]),
    st.text(max_size=12),
    st.integers(),
    st.none(),
)
flat_payloads = st.fixed_dictionaries(
    {"event": event_types},
    optional={
        "orderId": ids,
        "itemId": ids,
        "offerId": ids,
        "reason": json_values,
        "timestamp": json_values,
        "data": json_values,
        "note": json_values,
    },
)
payloads = st.one_of(
    flat_payloads,
    flat_payloads.map(
        lambda p: {"event": p.get("event"), "data": {k: v for k, v in p.items() if k != "event"}}
    ),
    flat_payloads.map(lambda p: {k: v for k, v in p.items() if k != "event"}),
    json_values,
)


def _refusal(payload: object) -> OffergridEvent | Any:
    try:
        return normalise_payload(payload)
    except InvalidEventPayload as exc:
        return exc.reason


def _assert_read_back_as_queued(message: QueuedMessage) -> QueuedMessage:
    body = message.to_json()
    read = QueuedMessage.from_json(body)
    assert read.to_json() == body
    assert read.message_attributes() == message.message_attributes()
    assert read.dedup_key == message.dedup_key == dedup_key_for(read.event)
    parsed = parse_queue_message(body)  # never a MalformedMessage
    assert (parsed.kind, parsed.dedup_key) == (message.event.event, message.dedup_key)
    return read


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(payload=payloads, correlation_id=st.one_of(st.none(), st.just(""), st.text(max_size=8)))
def test_what_the_webhook_queues_the_processor_reads_back_as_queued(payload: Any, correlation_id: str | None):
    event = _refusal(payload)
    if not isinstance(event, OffergridEvent):
        return  # refused with a reason (test_contract.py: which reason for which body)
    message = QueuedMessage.for_event(
        event, received_at=RECEIVED, source="webhook", correlation_id=correlation_id
    )

    read = _assert_read_back_as_queued(message)

    assert (read.event.event, read.event.order_id, read.event.item_id) == (
        event.event,
        event.order_id,
        event.item_id,
    )
    assert (read.received_at, read.source, read.correlation_id) == (RECEIVED, "webhook", correlation_id)


@pytest.mark.parametrize(
    ("body", "extra"),
    [
        (
            b'{"event":"offer.ordered","offerId":"of-1","quantity":1e400,"nested":[-1e400,{"x":1e400}]}',
            {"quantity": None, "nested": [None, {"x": None}]},
        ),
        (b'{"event":"order.cancelled","orderId":"o-1","reason":{"code":1e400}}', {}),
        (
            b'{"event":"order.created","itemId":12345678901234567890123,"note":"M\\u00fcller \\ud800"}',
            {"note": "M\u00fcller \ufffd"},
        ),
        (b'{"event":"order.created","data":{"itemId":"i-1","event":"ignored","timestamp":-0.0}}', {}),
    ],
)
def test_bodies_json_parses_oddly_are_queued_as_json_the_processor_reads(body: bytes, extra: dict[str, Any]):
    # 1e400 parses to infinity, written as null; a lone surrogate as U+FFFD; huge integers as digits
    message = QueuedMessage.for_event(
        normalise_payload(load_json(body)), received_at=RECEIVED, source="webhook"
    )

    read = _assert_read_back_as_queued(message)

    assert read.event.extra == extra


# ---------------------------------------------------------------------------------------------------
# Settings: the webhook's integer rule is the pydantic settings' rule, without pydantic
# ---------------------------------------------------------------------------------------------------
integers = st.one_of(
    st.integers(-10, 300_000).map(str),
    st.sampled_from(["", " ", "1_000", "1__0", "_1", "+5", "-0", "5.0", "5.00", "5.", "5.5", "0x10"]),
    st.sampled_from(["\uff11\uff12", "1e3", "262145", "6291456", "6291457", " 7 "]),
    st.text(alphabet="0123456789+-_. ", max_size=7),
)


def _read(read: Any, value: str) -> int | str:
    try:
        return int(read(value))
    except (ValueError, ValidationError) as exc:
        errors = exc.errors() if isinstance(exc, ValidationError) else [{"msg": str(exc)}]
        return str(errors[0]["msg"])


@settings(max_examples=250, deadline=None, derandomize=True, database=None)
@given(value=integers, bounds=st.sampled_from([(0, 3600), (1, 6 * 1024 * 1024), (0, 90)]))
def test_an_integer_variable_is_read_as_the_pydantic_settings_read_it(value: str, bounds: tuple[int, int]):
    ge, le = bounds
    pydantic_field = TypeAdapter(Annotated[int, Field(ge=ge, le=le)])
    stripped = value.strip()  # both loaders strip; a blank value is unset before any rule

    assert _read(lambda text: bounded_int(text, ge=ge, le=le), stripped) == _read(
        pydantic_field.validate_python, stripped
    )


def test_the_webhook_function_imports_neither_pydantic_nor_httpx():
    # What its cold start imports, in a fresh interpreter, as Lambda runs it (built at import).
    environ = {
        **os.environ,
        "AWS_LAMBDA_FUNCTION_NAME": "webhook-ingress",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "OFFERGRID_WEBHOOK_SECRET": "offergrid/webhook",
        "ORDERS_QUEUE_URL": "http://127.0.0.1:5000/123456789012/q",
        "PYTHONPATH": os.pathsep.join(
            [str(REPO / "functions" / "webhook_ingress"), str(REPO / "layers" / "shared")]
        ),
    }
    script = "import sys, json, app; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"

    done = subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-c", script], env=environ, capture_output=True, text=True, timeout=120, check=True
    )

    imported = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "offergrid_integration" in imported
    assert not imported & {"pydantic", "pydantic_core", "httpx", "httpcore", "annotated_types"}
