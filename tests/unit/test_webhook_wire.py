"""The webhook's lean path agrees with the models: same refusals, same queue body, same settings.

The ingress normalises a body with `webhooks.payload` and queues it as `orders.wire` writes it,
without pydantic (its cold start is on Offergrid's retry path); the processor parses the body with
`QueuedMessage`. These properties hold the two to one contract: for any parsed body, both refuse it
with the same reason or both give byte-identical queue bodies, attributes and dedup keys. The
webhook's settings (a dataclass) read the environment exactly as the pydantic settings they
replaced (`REFERENCE`, built from config.py's field types).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field

from offergrid_integration.config import (
    AwsSettings,
    ConfigurationError,
    NonBlankStr,
    QueueUrl,
    SecretId,
    load_settings,
)
from offergrid_integration.orders.queue import QueuedMessage, build_queued_message
from offergrid_integration.orders.wire import webhook_message
from offergrid_integration.webhooks.events import InvalidEventPayload, OffergridEvent
from offergrid_integration.webhooks.freshness import StaleMode
from offergrid_integration.webhooks.payload import normalise_payload
from offergrid_integration.webhooks.settings import WebhookIngressSettings
from offergrid_integration.webhooks.signature import load_json
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


def _refusal(normalise: Any, payload: object) -> Any:
    try:
        return normalise(payload)
    except InvalidEventPayload as exc:
        return exc.reason


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(payload=payloads, correlation_id=st.one_of(st.none(), st.just(""), st.text(max_size=8)))
def test_lean_path_refuses_and_queues_exactly_as_the_models(payload: Any, correlation_id: str | None):
    lean = _refusal(normalise_payload, payload)
    model = _refusal(OffergridEvent.from_payload, payload)

    if not isinstance(model, OffergridEvent):
        assert lean == model  # the same reason code, so the same 400
        return
    message = build_queued_message(
        model, received_at=RECEIVED, source="webhook", correlation_id=correlation_id
    )
    wire = webhook_message(lean, received_at=RECEIVED, source="webhook", correlation_id=correlation_id)
    assert wire.to_json() == message.to_json()
    assert wire.message_attributes() == message.message_attributes()
    assert wire.dedup_key == message.dedup_key
    assert QueuedMessage.from_json(wire.to_json()) == message


@pytest.mark.parametrize(
    "body",
    [
        b'{"event":"offer.ordered","offerId":"of-1","quantity":1e400,"nested":[-1e400,{"x":1e400}]}',
        b'{"event":"order.cancelled","orderId":"o-1","reason":{"code":1e400}}',
        b'{"event":"order.created","itemId":12345678901234567890123,"note":"M\\u00fcller \\ud800"}',
        b'{"event":"order.created","data":{"itemId":"i-1","event":"ignored","timestamp":-0.0}}',
    ],
)
def test_bodies_json_parses_oddly_queue_as_the_models_write_them(body: bytes):
    # 1e400 parses to infinity, which the model's JSON mode writes as null; lone surrogates and huge
    # integers pass through both.
    payload = load_json(body)
    model = build_queued_message(OffergridEvent.from_payload(payload), received_at=RECEIVED, source="webhook")
    wire = webhook_message(normalise_payload(payload), received_at=RECEIVED, source="webhook")

    assert wire.to_json() == model.to_json()
    assert wire.dedup_key == model.dedup_key
    assert json.loads(wire.to_json())  # valid JSON for the processor's parser


def test_received_at_is_utc_and_must_carry_a_zone():
    event = normalise_payload({"event": "order.created", "itemId": "i-1"})
    paris = RECEIVED.astimezone(timezone(timedelta(hours=1)))

    assert webhook_message(event, received_at=paris, source="webhook").received_at == RECEIVED
    with pytest.raises(ValueError, match="time zone"):
        webhook_message(event, received_at=RECEIVED.replace(tzinfo=None), source="webhook")


# ---------------------------------------------------------------------------------------------------
# Settings: the dataclass reads the environment as the pydantic model it replaced
# ---------------------------------------------------------------------------------------------------
class REFERENCE(AwsSettings):
    """The webhook's settings as a pydantic model (as they were before the webhook dropped pydantic)."""

    offergrid_webhook_secret: SecretId = Field(alias="OFFERGRID_WEBHOOK_SECRET")
    orders_queue_url: QueueUrl = Field(alias="ORDERS_QUEUE_URL")
    webhook_max_body_bytes: int = Field(default=6291456, ge=1, le=6291456, alias="WEBHOOK_MAX_BODY_BYTES")
    claim_check_bucket: NonBlankStr | None = Field(default=None, alias="CLAIM_CHECK_BUCKET")
    delivery_archive_bucket: NonBlankStr | None = Field(default=None, alias="DELIVERY_ARCHIVE_BUCKET")
    stale_delivery_mode: StaleMode = Field(default=StaleMode.COUNT, alias="STALE_DELIVERY_MODE")
    stale_delivery_tolerance_seconds: int = Field(
        default=3600, ge=1, le=86_400, alias="STALE_DELIVERY_TOLERANCE_SECONDS"
    )


def _outcome(model: Any, environ: dict[str, str]) -> dict[str, Any]:
    try:
        loaded = load_settings(model, environ)
    except ConfigurationError as exc:
        return {"problems": sorted(exc.problems)}
    return {name: getattr(loaded, name) for name in WebhookIngressSettings.VARIABLES}


integers = st.one_of(
    st.integers(-10, 300_000).map(str),
    st.sampled_from(
        [
            "",
            " ",
            "1_000",
            "1__0",
            "_1",
            "+5",
            "-0",
            "5.0",
            "5.00",
            "5.",
            "5.5",
            "0x10",
            "\uff11\uff12",
            "1e3",
            "262145",
            "6291456",
            "6291457",
        ]
    ),
    st.text(alphabet="0123456789+-_. ", max_size=7),
)
urls = st.sampled_from(
    [
        "",
        "https://sqs.eu-west-1.amazonaws.com/123456789012/offergrid-orders",
        "http://127.0.0.1:5000/123456789012/q",
        "https://example.com/q",
        "http://localhost:4566",
        "http://10.0.0.5:5000/",
        "not a url",
        "https://user:pw@host",
        "  ",
    ]
)


@settings(max_examples=250, deadline=None, derandomize=True, database=None)
@given(
    secret=st.sampled_from(["", "  ", "offergrid/webhook", " padded "]),
    queue=urls,
    endpoint=urls,
    cache=integers,
    max_body=integers,
    bucket=st.sampled_from(["", "  ", "offergrid-claim-checks", " padded "]),
    mode=st.sampled_from(["", " ", "count", "refuse", " refuse ", "REFUSE", "log", "count,refuse"]),
    tolerance=integers,
    unset=st.sets(st.sampled_from(list(WebhookIngressSettings.env_var_names()))),
)
def test_webhook_settings_read_the_environment_as_the_pydantic_model(
    secret: str,
    queue: str,
    endpoint: str,
    cache: str,
    max_body: str,
    bucket: str,
    mode: str,
    tolerance: str,
    unset: set[str],
):
    environ = {
        "OFFERGRID_WEBHOOK_SECRET": secret,
        "ORDERS_QUEUE_URL": queue,
        "AWS_ENDPOINT_URL": endpoint,
        "SECRETS_CACHE_SECONDS": cache,
        "WEBHOOK_MAX_BODY_BYTES": max_body,
        "CLAIM_CHECK_BUCKET": bucket,
        "DELIVERY_ARCHIVE_BUCKET": bucket,
        "STALE_DELIVERY_MODE": mode,
        "STALE_DELIVERY_TOLERANCE_SECONDS": tolerance,
    }
    environ = {name: value for name, value in environ.items() if name not in unset}

    assert _outcome(WebhookIngressSettings, environ) == _outcome(REFERENCE, environ)


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
