"""The webhook ingress: one API Gateway request in, one queued message (or a refusal) out.

Checks run cheapest and most hostile first: method 405, size 413 (docs/decisions.md#2), signature 401,
body 400, freshness 401 (docs/decisions.md#20), queue 200 or 503. A body too large for SQS goes to S3 via
a claim check (docs/decisions.md#17); only a queue without a bucket refuses it, with 413, since a 503
would have Offergrid redeliver it forever. A secret that cannot be read is 503: Offergrid retries anything
but 2xx, so nothing is acknowledged without being stored.

The archive write runs on a worker thread and never delays or decides the answer (`archive`).
`redeliver` is the same path for an archived delivery, without archive write or freshness check.
No pydantic (cold start).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields, replace
from datetime import datetime
from functools import partial
from typing import Any, Final, Protocol, Self

from offergrid_integration.archive import (
    ARCHIVE_WAIT_SECONDS,
    ArchivedDelivery,
    ArchiveTicket,
    BackgroundArchive,
)
from offergrid_integration.checks import (
    MAX_WEBHOOK_BODY_BYTES,
    ConfigurationError,
    bounded_int,
    endpoint_url,
    non_blank,
    queue_url,
)
from offergrid_integration.clock import SYSTEM_CLOCK, Clock
from offergrid_integration.contract import (
    DEPLOY_CHECK_EVENT,
    InvalidEventPayload,
    MessageSource,
    OffergridEvent,
    PayloadReason,
    QueuedMessage,
    normalise_payload,
    utc_from_epoch,
)
from offergrid_integration.queueing import MessageTooLarge, QueuePort, QueueSendError, sqs_message_size
from offergrid_integration.signature import (
    SignatureMatch,
    SignatureVerificationError,
    decode_body,
    find_signature_header,
    load_json,
    parse_signature,
    verify_signature,
)
from offergrid_integration.webhooks.results import (
    DEFAULT_TOLERANCE_SECONDS,
    UNAVAILABLE_BODY,
    IngressOutcome,
    IngressResult,
    RejectReason,
    RequestReason,
    StaleMode,
    judge_freshness,
)

# 200, not 202: Offergrid "retries when it does not get 200" (docs/offergrid-api.md), so any other
# success code could make it redeliver a webhook we already stored.
ACCEPTED_STATUS: Final = 200
ACCEPTED_BODY: Final = {"received": True}
_BAD_REQUEST_MESSAGES: Final[dict[PayloadReason, str]] = {
    PayloadReason.NOT_JSON: "body must be JSON",
    PayloadReason.NOT_OBJECT: "body must be a JSON object",
    PayloadReason.EVENT_MISSING: "body must have an 'event' field",
    PayloadReason.EVENT_INVALID: "'event' must be a short printable string",
    PayloadReason.FIELD_INVALID: (
        "orderId, itemId and offerId must be strings of 1-128 characters without control characters; "
        "timestamp a string or a number"
    ),
    PayloadReason.TOO_DEEP: "body is nested too deeply",
}


# A day: a delivery older than the dedup key's lifetime (IDEMPOTENCY_EXPIRY_SECONDS' default) must be
# refusable (docs/decisions.md#20).
MAX_STALE_TOLERANCE_SECONDS: Final = 86_400


def _stale_mode(value: str) -> StaleMode:
    try:
        return StaleMode(value)
    except ValueError:
        raise ValueError(f"must be one of {', '.join(mode.value for mode in StaleMode)}") from None


def _variable(check: Callable[[str], Any], default: Any = MISSING) -> Any:
    """A setting read from the variable named as its field in capitals: `check` the value or say why not."""
    return field(default=default, metadata={"check": check})


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookIngressSettings:
    """The webhook's environment, checked without pydantic (about 90 ms of cold-start CPU saved) by the
    same rules as `config.load_settings`: one `ConfigurationError` names every bad variable, never its
    value. The webhook never calls Offergrid, so needs no API key."""

    secrets_cache_seconds: int = _variable(partial(bounded_int, ge=0, le=3600), 300)
    # Checked only, so a bad value fails the init naming the variable: boto3 reads it itself (`aws`).
    aws_endpoint_url: str | None = _variable(endpoint_url, None)
    offergrid_webhook_secret: str = _variable(non_blank)
    orders_queue_url: str = _variable(queue_url)
    webhook_max_body_bytes: int = _variable(
        partial(bounded_int, ge=1, le=MAX_WEBHOOK_BODY_BYTES), MAX_WEBHOOK_BODY_BYTES
    )
    # Unset: a verified body too large for SQS is refused with 413 (docs/decisions.md#17), and no
    # delivery is archived (the template always sets both).
    claim_check_bucket: str | None = _variable(non_blank, None)
    delivery_archive_bucket: str | None = _variable(non_blank, None)
    stale_delivery_mode: StaleMode = _variable(_stale_mode, StaleMode.COUNT)  # noqa: RUF009 - a field()
    stale_delivery_tolerance_seconds: int = _variable(
        partial(bounded_int, ge=1, le=MAX_STALE_TOLERANCE_SECONDS), DEFAULT_TOLERANCE_SECONDS
    )

    @classmethod
    def env_var_names(cls) -> list[str]:
        """The environment variables read, in declaration order."""
        return [setting.name.upper() for setting in fields(cls)]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Self:
        """The settings from `environ` (default `os.environ`); `ConfigurationError` if bad."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        problems: dict[str, str] = {}
        for setting in fields(cls):
            name = setting.name.upper()
            raw = (environ.get(name) or "").strip()
            if not raw:
                if setting.default is MISSING:
                    problems[name] = "required but not set"
                continue
            try:
                values[setting.name] = setting.metadata["check"](raw)
            except ValueError as exc:
                problems[name] = str(exc)
        if problems:
            raise ConfigurationError.from_problems(problems) from None  # never a chained value
        return cls(**values)


class WebhookSecretsProvider(Protocol):
    """The webhook secrets, current first (a `Secret(id, parse_webhook_secrets)` is one)."""

    def __call__(self, *, force_refresh: bool = False) -> list[str]: ...


class WebhookIngress:
    """Verify, validate, deduplicate and enqueue Offergrid webhooks (one instance per container). Not a
    dataclass: generating its methods would cost the cold start about 4 million instructions."""

    def __init__(
        self,
        *,
        secrets: WebhookSecretsProvider,
        queue: QueuePort,
        clock: Clock = SYSTEM_CLOCK,
        max_body_bytes: int = MAX_WEBHOOK_BODY_BYTES,
        archive: BackgroundArchive | None = None,
        archive_wait_seconds: float = ARCHIVE_WAIT_SECONDS,
        stale_mode: StaleMode = StaleMode.COUNT,
        stale_tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    ) -> None:
        self.secrets = secrets
        self.queue = queue
        self.clock = clock
        self.max_body_bytes = max_body_bytes
        self.archive = archive
        self.archive_wait_seconds = archive_wait_seconds
        self.stale_mode = stale_mode
        self.stale_tolerance_seconds = stale_tolerance_seconds

    def handle(self, event: Mapping[str, Any], *, correlation_id: str | None = None) -> IngressResult:
        """Process one API Gateway proxy event (REST API v1 or HTTP API v2 payload)."""
        method = _request_method(event)
        if method is not None and method.upper() != "POST":
            return _rejected(405, RequestReason.METHOD_NOT_ALLOWED, "Method Not Allowed", allow="POST")
        body = self._read_body(event)
        if isinstance(body, IngressResult):
            return body
        try:
            header = find_signature_header(event.get("headers"), event.get("multiValueHeaders"))
        except SignatureVerificationError as exc:
            return _rejected(401, exc.reason)
        signature = self._verified(body, header)
        if isinstance(signature, IngressResult):
            return signature

        # Verified: from here on the delivery is archived, whatever its fate.
        now = self.clock.now()
        webhook = self.read_event(body, signature=signature)
        archived = self._start_archive(
            event,
            header,
            received_at=utc_from_epoch(now),
            request_id=correlation_id or _request_id(event),
            check=isinstance(webhook, OffergridEvent) and webhook.event == DEPLOY_CHECK_EVENT,
        )
        if isinstance(webhook, IngressResult):
            return self._with_archive(webhook, archived)
        freshness = judge_freshness(
            webhook.timestamp, now=now, tolerance_seconds=self.stale_tolerance_seconds
        )
        if freshness.stale and self.stale_mode is StaleMode.REFUSE:
            refused = _rejected(401, RequestReason.TIMESTAMP_STALE, signature=signature)
            return self._with_archive(replace(refused, webhook=webhook, freshness=freshness), archived)
        result = self.enqueue(
            webhook,
            received_at=utc_from_epoch(now),
            source="webhook",
            correlation_id=correlation_id or None,
            signature=signature,
        )
        return self._with_archive(replace(result, freshness=freshness), archived)

    def read_event(
        self, body: bytes, *, signature: SignatureMatch | None = None
    ) -> OffergridEvent | IngressResult:
        """The verified body normalised (`contract`), or the 400 it gets."""
        try:
            return normalise_payload(load_json(body))
        except InvalidEventPayload as exc:
            reason = exc.reason
        except ValueError:
            reason = PayloadReason.NOT_JSON
        return _rejected(400, reason, _BAD_REQUEST_MESSAGES[reason], signature=signature)

    def enqueue(
        self,
        webhook: OffergridEvent,
        *,
        received_at: datetime,
        source: MessageSource,
        correlation_id: str | None,
        signature: SignatureMatch | None = None,
    ) -> IngressResult:
        """Queue the message `webhook` becomes (its dedup key: `contract`); the answer it earns."""
        message = QueuedMessage.for_event(
            webhook, received_at=received_at, source=source, correlation_id=correlation_id
        )
        message_body, attributes = message.to_json(), message.message_attributes()
        queued = IngressResult(
            ACCEPTED_STATUS,
            ACCEPTED_BODY,
            IngressOutcome.QUEUED,
            message=message,
            signature=signature,
            message_bytes=sqs_message_size(message_body, attributes),
            webhook=webhook,
        )
        try:
            return replace(queued, message_id=self.queue.send(message_body, attributes))
        except MessageTooLarge:
            return replace(
                queued,
                status=413,
                body={"message": "Payload Too Large"},
                outcome=IngressOutcome.REJECTED,
                reason=RequestReason.MESSAGE_TOO_LARGE,
            )
        except QueueSendError as exc:
            return replace(
                queued, status=503, body=UNAVAILABLE_BODY, outcome=IngressOutcome.QUEUE_FAILED, error=exc.code
            )

    def redeliver(self, delivery: ArchivedDelivery, *, verify: bool = True) -> IngressResult:
        """An archived delivery through `handle`'s path, as `replay`; no archive write or freshness check."""
        try:
            body = delivery.raw_body()
        except ValueError:
            return _rejected(400, RequestReason.BODY_UNDECODABLE, "Bad Request")
        signature = self._verified(body, delivery.signature) if verify else None
        if isinstance(signature, IngressResult):
            return signature
        webhook = self.read_event(body, signature=signature)
        if isinstance(webhook, IngressResult):
            return webhook
        return self.enqueue(
            webhook,
            received_at=delivery.received_at,
            source="replay",
            correlation_id=f"replay:{delivery.request_id}",
            signature=signature,
        )

    def _verified(self, body: bytes, header: str) -> SignatureMatch | IngressResult:
        """The match, or the 401 (bad signature) or 503 (secret unreadable) it earns. A signature no cached
        secret matches (a rotation we have not seen yet, or junk) is tried once more with fresh secrets;
        the secret store throttles forced refreshes."""
        try:
            parse_signature(header)  # a malformed header is refused before any secret is read
        except SignatureVerificationError as exc:
            return _rejected(401, exc.reason)
        try:
            secrets = self._read_secrets(force_refresh=False)
            return verify_signature(body, header, secrets)
        except SignatureVerificationError as exc:
            mismatch = exc
        except _SecretUnavailable as exc:
            return IngressResult(503, UNAVAILABLE_BODY, IngressOutcome.SECRET_UNAVAILABLE, error=exc.error)
        try:
            fresh = self._read_secrets(force_refresh=True)
            if fresh != secrets:
                return verify_signature(body, header, fresh)
        except (SignatureVerificationError, _SecretUnavailable):
            pass  # keep the first verdict; the sender gets its 401 and retries
        return _rejected(401, mismatch.reason)

    def _start_archive(
        self, event: Mapping[str, Any], header: str, *, received_at: datetime, request_id: str, check: bool
    ) -> ArchiveTicket | None:
        if self.archive is None:
            return None
        text = event.get("body")
        return self.archive.start(
            ArchivedDelivery(
                received_at=received_at,
                request_id=request_id,
                body=text if isinstance(text, str) else None,
                is_base64_encoded=event.get("isBase64Encoded") is True,
                signature=header,
                check=check,
            )
        )

    def _with_archive(self, result: IngressResult, ticket: ArchiveTicket | None) -> IngressResult:
        """`result` with the archive write's outcome, waited for at most `archive_wait_seconds`."""
        if ticket is None:
            return result
        return replace(result, archive=ticket.outcome(self.archive_wait_seconds))

    def _read_body(self, event: Mapping[str, Any]) -> bytes | IngressResult:
        text = event.get("body")
        if text is not None and not isinstance(text, str):
            return _rejected(400, RequestReason.BODY_UNDECODABLE, "Bad Request")
        is_base64 = event.get("isBase64Encoded") is True
        # Cheap pre-check on the text: a UTF-8 byte per character at least, 3 bytes per 4 in base64.
        limit = 4 * (self.max_body_bytes // 3 + 1) if is_base64 else self.max_body_bytes
        if text is not None and len(text) > limit:
            return _rejected(413, RequestReason.BODY_TOO_LARGE, "Payload Too Large")
        try:
            body = decode_body(text, is_base64_encoded=is_base64)
        except ValueError:
            return _rejected(400, RequestReason.BODY_UNDECODABLE, "Bad Request")
        if len(body) > self.max_body_bytes:
            return _rejected(413, RequestReason.BODY_TOO_LARGE, "Payload Too Large")
        return body

    def _read_secrets(self, *, force_refresh: bool) -> Sequence[str]:
        try:
            secrets = self.secrets(force_refresh=force_refresh)
        except Exception as exc:  # any failure to read the secret is ours, never the sender's
            raise _SecretUnavailable(_error_name(exc)) from exc
        if not secrets:
            raise _SecretUnavailable("NoWebhookSecret")
        return secrets


class _SecretUnavailable(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def _error_name(error: Exception) -> str:
    """The error's class, and what it gives for a log (`secrets.SecretUnavailableError.log_fields`:
    the secret's id and the AWS error code, never a value)."""
    log_fields = getattr(error, "log_fields", None)
    fields = log_fields() if callable(log_fields) else {}
    return " ".join([type(error).__name__, *(f"{name}={value}" for name, value in fields.items())])


def _request_method(event: Mapping[str, Any]) -> str | None:
    """The HTTP method of a REST (v1) or HTTP API (v2) proxy event; None when it carries neither."""
    method = event.get("httpMethod")
    if isinstance(method, str):
        return method
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, Mapping) else None
    method = http.get("method") if isinstance(http, Mapping) else None
    return method if isinstance(method, str) else None


def _request_id(event: Mapping[str, Any]) -> str:
    """API Gateway's request id (REST v1 and HTTP v2 alike), or a fresh random one (a hand-made event)."""
    context = event.get("requestContext")
    request_id = context.get("requestId") if isinstance(context, Mapping) else None
    return request_id if isinstance(request_id, str) and request_id else os.urandom(16).hex()


def _rejected(
    status: int,
    reason: RejectReason,
    message: str = "Unauthorized",
    *,
    signature: SignatureMatch | None = None,
    allow: str | None = None,
) -> IngressResult:
    return IngressResult(
        status,
        {"message": message},
        IngressOutcome.REJECTED,
        reason=reason,
        signature=signature,
        headers={"Allow": allow} if allow else {},
    )
