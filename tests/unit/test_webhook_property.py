"""Property: whatever the body and headers, the webhook Lambda never answers 5xx, and it queues a
message (and answers 200) only for a correctly signed, valid webhook.

Runs the real handler against moto (SQS + Secrets Manager), set up once per test function: the
queue is drained after every example. Derandomised with a bounded example count, so it is
deterministic and takes a few seconds.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as event_label
from hypothesis import strategies as st

from functions.webhook_ingress import app
from offergrid_integration.signature import compact_json, sign
from tests.fixtures.queues import receive_all

DEV_SECRET = "local-dev-webhook-secret"
HEADER_NAMES = ["x-offergrid-signature", "X-Offergrid-Signature", "X-OFFERGRID-SIGNATURE"]
SIGNING = ["raw", "raw_prefixed", "raw_uppercase", "compact", "wrong_secret", "random", "missing", "repeated"]
CORRECT = {"raw", "raw_prefixed", "raw_uppercase", "compact"}

ids = st.one_of(st.none(), st.text(max_size=20), st.integers(-5, 10**12))
event_types = st.one_of(
    st.sampled_from(["order.created", "order.cancelled", "offer.ordered"]),
    st.sampled_from(["order.created", "order.cancelled"]),
    st.text(max_size=12),
    st.integers(),
    st.none(),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
webhook_payloads = st.fixed_dictionaries(
    {"event": event_types},
    optional={"orderId": ids, "itemId": ids, "offerId": ids, "reason": json_values, "extra": json_values},
).map(
    lambda payload: (
        payload if payload.get("event", 0) is not None else {k: v for k, v in payload.items() if k != "event"}
    )
)
nested_payloads = webhook_payloads.map(
    lambda p: {"event": p.get("event"), "data": {k: v for k, v in p.items() if k != "event"}}
)
bodies = st.one_of(
    webhook_payloads.map(lambda p: json.dumps(p, separators=(",", ":"), ensure_ascii=False)),
    nested_payloads.map(lambda p: json.dumps(p, indent=2)),
    json_values.map(json.dumps),
    st.text(max_size=60),
    st.none(),
)


@pytest.fixture
def deployed(aws: None, monkeypatch: pytest.MonkeyPatch, lambda_context: Any) -> Any:
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="offergrid-orders-property")["QueueUrl"]
    boto3.client("secretsmanager").create_secret(Name="offergrid/property/webhook", SecretString=DEV_SECRET)
    monkeypatch.setenv("OFFERGRID_WEBHOOK_SECRET", "offergrid/property/webhook")
    monkeypatch.setenv("ORDERS_QUEUE_URL", queue_url)
    app.reset()
    yield sqs, queue_url, lambda_context
    app.reset()


def signature_for(mode: str, raw: bytes, random_text: str) -> str | list[str] | None:
    good = sign(raw, DEV_SECRET)
    match mode:
        case "raw":
            return good
        case "raw_prefixed":
            return "sha256=" + good
        case "raw_uppercase":
            return good.upper()
        case "compact":
            try:
                return sign(compact_json(json.loads(raw)), DEV_SECRET)
            except ValueError:
                return good  # not JSON: the raw form is the only one
        case "wrong_secret":
            return sign(raw, "some-other-secret")
        case "repeated":
            return [good, good]
        case "random":
            return random_text
        case _:
            return None


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=bodies,
    as_base64=st.booleans(),
    mode=st.sampled_from(SIGNING),
    header_name=st.sampled_from(HEADER_NAMES),
    random_text=st.text(max_size=70),
    other_headers=st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=20), max_size=3),
    method=st.sampled_from(["POST", "POST", "POST", "GET", "PUT"]),
)
def test_random_requests_never_5xx_and_queue_only_when_correctly_signed(
    deployed, body, as_base64, mode, header_name, random_text, other_headers, method
):
    sqs, queue_url, lambda_context = deployed
    raw = (body or "").encode("utf-8", "surrogatepass")
    signature = signature_for(mode, raw, random_text)
    headers = {k: v for k, v in other_headers.items() if k.lower() != "x-offergrid-signature"}
    multi = {k: [v] for k, v in headers.items()}
    if isinstance(signature, list):
        multi[header_name] = signature
        headers[header_name] = signature[-1]
    elif signature is not None:
        headers[header_name] = signature
        multi[header_name] = [signature]
    event = {
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": multi,
        "body": base64.b64encode(raw).decode() if as_base64 and body is not None else body,
        "isBase64Encoded": as_base64 and body is not None,
        "requestContext": {"requestId": "property-request"},
    }

    response = app.lambda_handler(event, lambda_context)
    queued = receive_all(sqs, queue_url)

    status = response["statusCode"]
    assert status < 500, response
    assert status in {200, 400, 401, 405, 413}
    assert len(queued) == (1 if status == 200 else 0)
    if mode not in CORRECT or method != "POST":
        assert status != 200
    if status == 200:
        assert json.loads(queued[0]["Body"])["source"] == "webhook"
    event_label(f"status {status}")
    # A correctly signed valid webhook is always accepted
    if mode in CORRECT and method == "POST" and is_valid_webhook(body):
        assert status == 200, response


def is_valid_webhook(body: str | None) -> bool:
    """Independent oracle of what the ingress must accept (docs/decisions.md#2)."""
    try:
        payload = json.loads(body) if body is not None else None
    except ValueError:
        return False
    if not isinstance(payload, dict):
        return False
    event = payload.get("event")
    if not isinstance(event, str) or not 0 < len(event) <= 100 or not all(33 <= ord(c) <= 126 for c in event):
        return False
    fields = payload["data"] if isinstance(payload.get("data"), dict) else payload
    return all(
        value is None
        or value == ""
        or is_usable_id(value)
        or (isinstance(value, int) and not isinstance(value, bool))
        for value in (fields.get(key) for key in ("orderId", "itemId", "offerId"))
    )


def is_usable_id(value: object) -> bool:
    """docs/decisions.md#12, written out again: 1-128 characters, no control character, no surrogate."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= 128
        and not any(ord(c) < 32 or 127 <= ord(c) < 160 or 0xD800 <= ord(c) <= 0xDFFF for c in value)
    )
