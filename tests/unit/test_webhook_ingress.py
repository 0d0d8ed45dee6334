"""`WebhookIngress` without AWS: the order of checks, every status, the forced refresh, the SQS size."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

import pytest

from offergrid_integration.contract import PayloadReason, QueuedMessage
from offergrid_integration.queueing import (
    SQS_MAX_MESSAGE_BYTES,
    MessageTooLarge,
    QueueSendError,
    sqs_message_size,
)
from offergrid_integration.signature import SignatureReason, sign
from offergrid_integration.webhooks.ingress import WebhookIngress
from offergrid_integration.webhooks.results import IngressOutcome, IngressResult, RequestReason

SECRET = "local-dev-webhook-secret"
NEW_SECRET = "rotated-webhook-secret"
BODY = json.dumps(
    {
        "event": "order.created",
        "orderId": "o-1",
        "itemId": "i-1",
        "offerId": "of-1",
        "customer": "jane@example.com",
    },
    separators=(",", ":"),
)


@dataclass
class RecordingQueue:
    sent: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    fail_with: str | None = None
    # A queue without claim checks: larger messages are refused as SqsQueue refuses them.
    max_message_bytes: int | None = None

    def send(self, message_body: str, attributes: dict[str, str]) -> str | None:
        if self.fail_with:
            raise QueueSendError(self.fail_with)
        size = sqs_message_size(message_body, attributes)
        if self.max_message_bytes is not None and size > self.max_message_bytes:
            raise MessageTooLarge(size, self.max_message_bytes)
        self.sent.append((message_body, attributes))
        return f"msg-{len(self.sent)}"


@dataclass
class FakeSecrets:
    values: list[str]
    calls: list[bool] = field(default_factory=list)
    error: Exception | None = None
    rotate_to: list[str] | None = None  # what a forced refresh returns

    def __call__(self, *, force_refresh: bool = False) -> list[str]:
        self.calls.append(force_refresh)
        if self.error:
            raise self.error
        if force_refresh and self.rotate_to is not None:
            self.values = self.rotate_to
        return list(self.values)


class FakeClock:
    def __init__(self, now: float = 1_795_789_805.25) -> None:
        self.current = now

    def now(self) -> float:
        return self.current

    def sleep(self, seconds: float) -> None:
        self.current += seconds


def api_event(
    body: str | None = BODY, signature: str | None = "sign", **overrides: object
) -> dict[str, object]:
    headers: dict[str, str] = {"Content-Type": "application/json"}
    if signature == "sign":
        signature = sign(body or "", SECRET)
    if signature is not None:
        headers["X-Offergrid-Signature"] = signature
    event: dict[str, object] = {
        "httpMethod": "POST",
        "headers": headers,
        "body": body,
        "isBase64Encoded": False,
    }
    event.update(overrides)
    return event


@pytest.fixture
def queue() -> RecordingQueue:
    return RecordingQueue()


@pytest.fixture
def secrets() -> FakeSecrets:
    return FakeSecrets([SECRET])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ingress(queue: RecordingQueue, secrets: FakeSecrets, clock: FakeClock) -> WebhookIngress:
    return WebhookIngress(secrets=secrets, queue=queue, clock=clock, max_body_bytes=1024)


def test_signed_webhook_is_queued_once_with_key_time_and_correlation(ingress, queue, clock):
    result = ingress.handle(api_event(), correlation_id="req-1")
    assert (result.status, result.body, result.outcome) == (200, {"received": True}, IngressOutcome.QUEUED)
    assert result.message_id == "msg-1"
    [(body, attributes)] = queue.sent
    message = QueuedMessage.from_json(body)
    assert message.dedup_key == "order.created:i-1"
    assert message.source == "webhook"
    assert message.correlation_id == "req-1"
    assert message.received_at.timestamp() == pytest.approx(clock.current, abs=0.001)
    assert attributes == {
        "dedupKey": "order.created:i-1",
        "eventType": "order.created",
        "receivedAt": "2026-11-27T14:30:05.250Z",
        "source": "webhook",
        "correlationId": "req-1",
    }


def test_queue_failure_is_503_never_2xx(ingress, queue):
    queue.fail_with = "AWS.SimpleQueueService.NonExistentQueue"
    result = ingress.handle(api_event())
    assert (result.status, result.outcome, result.error) == (
        503,
        IngressOutcome.QUEUE_FAILED,
        "AWS.SimpleQueueService.NonExistentQueue",
    )
    assert result.message is not None  # still known for the logs
    assert queue.sent == []


@pytest.mark.parametrize("error", [RuntimeError("boom"), TimeoutError()])
def test_unreadable_secret_is_503_and_nothing_queued(ingress, queue, secrets, error):
    secrets.error = error
    result = ingress.handle(api_event())
    assert (result.status, result.outcome, result.error) == (
        503,
        IngressOutcome.SECRET_UNAVAILABLE,
        type(error).__name__,
    )
    assert queue.sent == []


def test_empty_secret_list_is_503_not_401(queue, clock):
    ingress = WebhookIngress(secrets=FakeSecrets([]), queue=queue, clock=clock)
    assert ingress.handle(api_event()).status == 503


def test_malformed_header_is_refused_before_the_secret_is_read(ingress, secrets):
    result = ingress.handle(api_event(signature="sha256="))
    assert (result.status, result.reason) == (401, SignatureReason.EMPTY)
    assert secrets.calls == []


def test_401_body_is_generic_whatever_the_reason(ingress):
    bodies = {
        json.dumps(ingress.handle(api_event(signature=signature)).body)
        for signature in (None, "", "xyz", "0" * 64, "ab" * 40, sign(BODY, "wrong-secret"))
    }
    assert bodies == {'{"message": "Unauthorized"}'}


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "get"])
def test_other_methods_are_405(ingress, queue, method):
    result = ingress.handle(api_event(httpMethod=method))
    assert (result.status, result.reason, result.headers) == (
        405,
        RequestReason.METHOD_NOT_ALLOWED,
        {"Allow": "POST"},
    )
    assert queue.sent == []


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "get"])
def test_http_api_v2_methods_other_than_post_are_405_too(ingress, queue, method):
    # An HTTP API (payload v2) event has no httpMethod: the method is in requestContext.http
    event = api_event(requestContext={"http": {"method": method, "path": "/webhooks/offergrid"}})
    del event["httpMethod"]
    result = ingress.handle(event)
    assert (result.status, result.reason, result.headers) == (
        405,
        RequestReason.METHOD_NOT_ALLOWED,
        {"Allow": "POST"},
    )
    assert queue.sent == []


def test_http_api_v2_post_is_accepted(ingress, queue):
    event = api_event(requestContext={"http": {"method": "POST"}})
    del event["httpMethod"]
    assert ingress.handle(event).status == 200
    assert len(queue.sent) == 1


def test_lowercase_post_is_accepted(ingress):
    assert ingress.handle(api_event(httpMethod="post")).status == 200


# --- size: checked first, before any HMAC or JSON work ---------------------------------------------------
def _no_hmac(*args: object, **kwargs: object) -> object:
    raise AssertionError("HMAC computed for an oversized body")


def test_oversized_body_is_413_before_any_hmac_or_secret(ingress, secrets, monkeypatch):
    body = json.dumps({"event": "order.created", "pad": "x" * 1100})
    event = api_event(body, signature=sign(body, SECRET))
    monkeypatch.setattr("offergrid_integration.signature.hmac.new", _no_hmac)
    result = ingress.handle(event)
    assert (result.status, result.reason) == (413, RequestReason.BODY_TOO_LARGE)
    assert secrets.calls == []


def test_size_is_measured_in_bytes_not_characters(ingress):
    body = json.dumps({"event": "order.created", "itemId": "i", "pad": "é" * 500}, ensure_ascii=False)
    assert len(body) < 1024 < len(body.encode())
    assert ingress.handle(api_event(body)).status == 413


def test_size_limit_is_inclusive(ingress, queue):
    prefix = '{"event":"order.created","itemId":"i-1","pad":"'
    body = prefix + "x" * (1024 - len(prefix) - 2) + '"}'
    assert len(body.encode()) == 1024
    assert ingress.handle(api_event(body)).status == 200
    assert ingress.handle(api_event(body[:-2] + 'x"}')).status == 413


def test_base64_body_is_measured_after_decoding(ingress):
    raw = ('{"event":"order.created","itemId":"i-1","pad":"' + "x" * 800 + '"}').encode()
    encoded = base64.b64encode(raw).decode()
    assert len(raw) <= 1024 < len(encoded)
    assert ingress.handle(api_event(encoded, signature=sign(raw, SECRET), isBase64Encoded=True)).status == 200
    big = b"x" * 1025
    result = ingress.handle(
        api_event(base64.b64encode(big).decode(), sign(big, SECRET), isBase64Encoded=True)
    )
    assert result.status == 413


def test_invalid_base64_is_400(ingress, queue):
    result = ingress.handle(api_event("%%%not-base64%%%", isBase64Encoded=True))
    assert (result.status, result.reason) == (400, RequestReason.BODY_UNDECODABLE)
    assert queue.sent == []


def test_non_string_body_is_400(ingress):
    event = api_event(signature=sign("{}", SECRET))
    event["body"] = {"event": "x"}
    assert ingress.handle(event).status == 400


# --- signature before body validity ------------------------------------------------------------------------
def test_bad_signature_on_a_non_json_body_is_401(ingress):
    result = ingress.handle(api_event("not json", signature=sign("other", SECRET)))
    assert (result.status, result.reason) == (401, SignatureReason.MISMATCH)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", PayloadReason.NOT_JSON),
        ("", PayloadReason.NOT_JSON),
        ('{"event": NaN}', PayloadReason.NOT_JSON),
        ('[{"event":"order.created"}]', PayloadReason.NOT_OBJECT),
        ('"order.created"', PayloadReason.NOT_OBJECT),
        ('{"orderId":"o-1"}', PayloadReason.EVENT_MISSING),
        ('{"event":42}', PayloadReason.EVENT_INVALID),
        ('{"event":"order.created","itemId":{"x":1}}', PayloadReason.FIELD_INVALID),
    ],
)
def test_validly_signed_but_invalid_body_is_400(ingress, queue, body, reason):
    result = ingress.handle(api_event(body))
    assert (result.status, result.reason, result.outcome) == (400, reason, IngressOutcome.REJECTED)
    assert result.signature is not None  # it was authentic
    assert queue.sent == []


def test_body_missing_entirely_with_a_valid_signature_of_nothing_is_400(ingress):
    assert ingress.handle(api_event(None, signature=sign(b"", SECRET))).status == 400


def test_unknown_event_type_is_queued_and_flagged(ingress, queue):
    body = '{"event":"offer.ordered","offerId":"of-1"}'
    result = ingress.handle(api_event(body))
    assert result.status == 200
    assert result.unknown_event_type
    assert QueuedMessage.from_json(queue.sent[0][0]).dedup_key.startswith("offer.ordered:sha256:")


# --- rotation and the forced refresh ---------------------------------------------------------------------
def test_signature_with_a_rotated_secret_triggers_one_forced_refresh(ingress, secrets, queue):
    # Given the cache still holds the old secret and Offergrid already signs with the new one
    secrets.rotate_to = [NEW_SECRET, SECRET]
    # When a webhook signed with the new secret arrives
    result = ingress.handle(api_event(signature=sign(BODY, NEW_SECRET)))
    # Then the secrets are re-read once, bypassing the cache, and the webhook is accepted
    assert result.status == 200
    assert result.signature is not None
    assert result.signature.secret_index == 0
    assert secrets.calls == [False, True]


def test_every_mismatch_asks_the_store_for_a_forced_refresh_and_leaves_throttling_to_it(
    ingress, secrets, clock
):
    # Given a store that answers every forced refresh (the real Secret throttles them itself:
    # see tests/integration/test_webhook_ingress.py for the GetSecretValue count against moto)
    bad = api_event(signature="0" * 64)
    # When junk signatures arrive in a burst
    for _ in range(5):
        assert ingress.handle(bad).status == 401
    # Then the ingress keeps no throttle of its own: each mismatch asks once, never more
    assert secrets.calls == [False, True] * 5


def test_failed_forced_refresh_still_answers_401(ingress, secrets):
    class FailingOnRefresh(FakeSecrets):
        def __call__(self, *, force_refresh: bool = False) -> list[str]:
            if force_refresh:
                raise RuntimeError("secrets manager down")
            return super().__call__()

    failing = FailingOnRefresh([SECRET])
    ingress = WebhookIngress(secrets=failing, queue=RecordingQueue(), clock=FakeClock())
    assert ingress.handle(api_event(signature="0" * 64)).status == 401


# --- the queued message: compact UTF-8, never refused for its size while the queue can keep it ----------
def _non_ascii_body(raw_bytes: int) -> str:
    """A valid order.created of about `raw_bytes` UTF-8 bytes, nearly all of it 2-byte characters."""
    prefix = json.dumps({"event": "order.created", "itemId": "i-1", "note": ""}, ensure_ascii=False)[:-2]
    return prefix + "é" * ((raw_bytes - len(prefix) - 2) // 2) + '"}'


def test_a_non_ascii_body_is_queued_as_utf8_not_escaped(queue, secrets, clock):
    # Given a correctly signed 200 KB body of non-ASCII text (600 KB once \u-escaped)
    ingress = WebhookIngress(secrets=secrets, queue=queue, clock=clock)
    body = _non_ascii_body(200_000)
    # When it arrives
    result = ingress.handle(api_event(body))
    # Then it is queued as it came, compactly: about its own size, within what SQS takes
    assert result.status == 200
    [(sent, _)] = queue.sent
    assert "é" * 100 in sent
    assert result.message_bytes is not None
    assert len(body.encode()) < result.message_bytes < len(body.encode()) + 400 < SQS_MAX_MESSAGE_BYTES


def test_a_message_a_queue_without_claim_checks_cannot_hold_is_413_not_503(secrets, clock):
    # Given a queue that refuses a message too large for it (no claim-check bucket configured)
    queue = RecordingQueue(max_message_bytes=SQS_MAX_MESSAGE_BYTES)
    ingress = WebhookIngress(secrets=secrets, queue=queue, clock=clock)
    # When a correctly signed body too large for it arrives
    result = ingress.handle(api_event(_non_ascii_body(300_000)))
    # Then it is refused for good (413, never a 503 Offergrid would retry forever) and nothing is queued
    assert (result.status, result.outcome, result.reason) == (
        413,
        IngressOutcome.REJECTED,
        RequestReason.MESSAGE_TOO_LARGE,
    )
    assert result.body == {"message": "Payload Too Large"}
    assert queue.sent == []
    assert result.signature is not None  # it was authentic: the logs say which event was lost
    assert result.message_bytes is not None
    assert result.message_bytes > SQS_MAX_MESSAGE_BYTES
    assert result.log_fields()["reason"] == "message_too_large"
    assert result.log_fields()["dedup_key"] == "order.created:i-1"


def test_the_default_body_limit_is_lambdas_request_limit(secrets, clock):
    # docs/decisions.md#2: a body larger than 6 MiB cannot reach the function through API Gateway
    ingress = WebhookIngress(secrets=secrets, queue=RecordingQueue(), clock=clock)
    assert ingress.handle(api_event(_non_ascii_body(6 * 1024 * 1024))).status == 200
    result = ingress.handle(api_event(_non_ascii_body(6 * 1024 * 1024 + 3)))
    assert (result.status, result.reason) == (413, RequestReason.BODY_TOO_LARGE)


def test_sqs_message_size_counts_utf8_bytes_of_body_and_attributes():
    assert sqs_message_size("{}", {}) == 2
    assert sqs_message_size("é", {"k": "v", "empty": ""}) == 2 + 1 + 6 + 1


# --- what may be logged -------------------------------------------------------------------------------------
def test_log_fields_hold_codes_and_ids_never_body_signature_or_secret(ingress, queue):
    signature = sign(BODY, SECRET)
    accepted = ingress.handle(api_event(signature=signature), correlation_id="req-1")
    rejected = ingress.handle(api_event(signature=sign(BODY, "wrong-secret")))
    for result in (accepted, rejected):
        rendered = json.dumps(result.log_fields())
        assert "jane@example.com" not in rendered
        assert signature not in rendered
        assert sign(BODY, "wrong-secret") not in rendered
        assert SECRET not in rendered
    assert accepted.log_fields() == {
        "outcome": "queued",
        "status": 200,
        "signed_form": "raw",
        "matched_secret_index": 0,
        "event_type": "order.created",
        "dedup_key": "order.created:i-1",
        "order_id": "o-1",
        "item_id": "i-1",
        "offer_id": "of-1",
        "sqs_message_id": "msg-1",
        "message_bytes": sqs_message_size(*queue.sent[0]),
    }
    assert rejected.log_fields() == {"outcome": "rejected", "status": 401, "reason": "signature_mismatch"}


def test_result_is_a_plain_value():
    result = IngressResult(200, {"received": True}, IngressOutcome.QUEUED)
    assert not result.unknown_event_type
