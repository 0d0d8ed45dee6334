"""Validly signed webhooks that are hostile or absurd (issue 10, case 9; docs/decisions.md#12).

Each must be a 400 that queues nothing: a Lambda error would be a 502, which Offergrid retries for
ever. Bodies are signed with the real secret, so only the body itself can be refused.
"""

from __future__ import annotations

import json

import pytest

from offergrid_integration.contract import PayloadReason
from offergrid_integration.webhooks.ingress import WebhookIngress
from offergrid_integration.webhooks.results import IngressOutcome
from tests.unit.test_webhook_ingress import FakeClock, FakeSecrets, RecordingQueue, api_event

SECRET = "local-dev-webhook-secret"


@pytest.fixture
def queue() -> RecordingQueue:
    return RecordingQueue()


@pytest.fixture
def ingress(queue: RecordingQueue) -> WebhookIngress:
    return WebhookIngress(secrets=FakeSecrets([SECRET]), queue=queue, clock=FakeClock())


def nested(depth: int) -> str:
    """An order.created whose unknown `extra` field is `depth` arrays deep."""
    head = '{"event":"order.created","itemId":"i-1","orderId":"o-1","extra":'
    return head + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("depth", [300, 1_000, 5_000])
def test_deeply_nested_json_is_a_400_and_not_queued(ingress, queue, depth):
    # Given a validly signed webhook whose body nests `depth` levels deep
    # When the ingress handles it
    result = ingress.handle(api_event(body=nested(depth)))
    # Then it is refused as a bad request, nothing is queued
    assert result.status == 400
    assert result.outcome is IngressOutcome.REJECTED
    assert result.reason is PayloadReason.TOO_DEEP
    assert queue.sent == []


def test_nesting_a_real_payload_needs_is_still_queued(ingress, queue):
    # A dozen levels (metadata inside data inside the envelope...) is ordinary JSON.
    result = ingress.handle(api_event(body=nested(12)))
    assert result.status == 200
    assert len(queue.sent) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("itemId", "item-\ud800"),  # a lone surrogate, as the JSON escape \ud800
        ("orderId", "\udfff"),
        ("offerId", "of-\udc00-1"),
        ("itemId", "i" * 3_000),  # over DynamoDB's key limit and our 128
        ("itemId", "i" * 129),
        ("orderId", "o-\x00-1"),  # a control character
        ("itemId", "line\nbreak"),
    ],
)
def test_identifiers_that_can_never_be_keys_are_a_400(ingress, queue, field, value):
    # Given a signed order webhook with an unusable identifier (json.dumps escapes surrogates)
    body = json.dumps({"event": "order.created", "orderId": "o-1", "itemId": "i-1", field: value})
    # When the ingress handles it
    result = ingress.handle(api_event(body=body))
    # Then it is a 400 naming the field problem class, and nothing is queued
    assert result.status == 400
    assert result.reason is PayloadReason.FIELD_INVALID
    assert queue.sent == []


@pytest.mark.parametrize("value", [".", "..", "a/b", "ünïcødé-ïd", "i" * 128, "with space"])
def test_odd_but_valid_identifiers_are_queued(ingress, queue, value):
    # Decision 12: opaque strings; the client percent-encodes them as one path segment.
    body = json.dumps({"event": "order.created", "orderId": "o-1", "itemId": value})
    result = ingress.handle(api_event(body=body))
    assert result.status == 200
    assert len(queue.sent) == 1
