"""The one Logger, Tracer and Metrics of the integration, and redaction of secrets in logs.

Redaction runs on the final JSON line, so it covers messages, keys and stack traces alike: registered
secret values, values of secret-looking keys, and `sha256=` signatures. `RedactingFilter` does the same
for stdlib loggers (httpx, botocore). Importing this module runs on every cold start: keep it light.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from offergrid_integration.text import valid_text

if TYPE_CHECKING:
    from aws_lambda_powertools.logging.types import LogRecord

METRICS_NAMESPACE = "OffergridIntegration"  # POWERTOOLS_METRICS_NAMESPACE overrides it
REDACTED = "[REDACTED]"
# Shorter values are not registered: redacting them would blank out ordinary words.
MIN_SECRET_LENGTH = 8
# Stdlib loggers of our dependencies that may log URLs, headers or bodies.
THIRD_PARTY_LOGGERS = ("httpx", "httpcore", "botocore", "boto3", "urllib3", "s3transfer")
# At DEBUG, botocore logs every response body (GetSecretValue's included) and urllib3 every request.
# They stay at INFO even when the function's log level is DEBUG, unless this variable asks for more.
SDK_LOG_LEVEL_ENV = "SDK_LOG_LEVEL"
DEFAULT_SDK_LOG_LEVEL = "INFO"

_registry_lock = threading.Lock()
# Replaced (never mutated) under the lock, so `redact` can read it without locking. Longest first,
# so a secret containing another is replaced whole.
_registered: tuple[str, ...] = ()


def register_secret(value: object) -> None:
    """Redact `value` (a string; and its JSON-escaped form) from every log line from now on."""
    global _registered
    if not isinstance(value, str) or len(value.strip()) < MIN_SECRET_LENGTH:
        return
    variants = {value, json.dumps(value)[1:-1]}
    with _registry_lock:
        if variants.issubset(_registered):
            return
        _registered = tuple(sorted(variants.union(_registered), key=len, reverse=True))


# A key that looks secret: any name ending in one of these words (`x-api-key`, `apiKey`,
# `x-offergrid-signature`, `webhook_secret`, `OFFERGRID_WEBHOOK_SECRETS`, `access_token`, ...). Names
# where the word is not at the end (`apiKeySecretId`, `signature_valid`) are left alone.
_SECRET_KEY = r"[\w.\-]*?(?:api[_\-]?key|signature|authorization|secrets?|password|passwd|token)"  # noqa: S105
# The value after it: a JSON string, a Python repr string, a JSON string inside a JSON string
# (`\"...\"`), a list, or a bare word (with an optional auth scheme). Objects are not matched: their
# own keys are redacted one by one.
_VALUE = r"""(?P<value>
      "(?:[^"\\]|\\.)*"
    | '(?:[^'\\]|\\.)*'
    | \\"(?:[^"\\]|\\[^"])*\\"
    | \[[^\]]*\]
    | (?:(?:bearer|basic|token)\s+)?[^\s,;&)}\]"'\\{\[]+
)"""
# "key": value / 'key': value / \"key\": value (JSON, reprs, JSON inside a message)
_QUOTED_KEY_RE = re.compile(
    rf"""(?P<prefix>(?P<quote>\\?["']){_SECRET_KEY}(?P=quote)\s*[:=]\s*){_VALUE}""",
    re.IGNORECASE | re.VERBOSE,
)
# key=value (query strings, reprs of keyword arguments, ad-hoc messages)
_ASSIGNED_KEY_RE = re.compile(
    rf"""(?P<prefix>(?<![\w.\-]){_SECRET_KEY}\s*=\s*){_VALUE}""",
    re.IGNORECASE | re.VERBOSE,
)
# header: value (only header names, so "bad signature: header missing" stays readable)
_HEADER_RE = re.compile(
    rf"""(?P<prefix>(?<![\w.\-])(?:x-api-key|x-offergrid-signature|(?:proxy-)?authorization)\s*:\s*){_VALUE}""",
    re.IGNORECASE | re.VERBOSE,
)
_SHA256_RE = re.compile(r"sha256=[0-9a-f]+", re.IGNORECASE)
# A Secrets Manager payload (`SecretString`/`SecretBinary`, as botocore logs request and response
# bodies at DEBUG) is dropped to the end of its line: its value may be JSON escaped twice over in a
# bytes repr, and it holds secrets that are not registered yet (they are being read).
_SECRET_PAYLOAD_RE = re.compile(r"(?P<key>Secret(?:String|Binary))[^\n]*")


def _replace_value(match: re.Match[str]) -> str:
    value = match.group("value")
    if value.startswith('\\"'):
        replacement = f'\\"{REDACTED}\\"'
    elif value.startswith("'"):
        replacement = f"'{REDACTED}'"
    elif value.startswith('"') or match.groupdict().get("quote") == '"':
        # An unescaped double-quoted key is JSON structure: keep the document valid JSON.
        replacement = f'"{REDACTED}"'
    else:
        replacement = REDACTED
    return match.group("prefix") + replacement


def redact(text: str) -> str:
    """`text` with every registered secret, secret-looking key value and signature replaced."""
    for secret in _registered:
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _QUOTED_KEY_RE.sub(_replace_value, text)
    text = _ASSIGNED_KEY_RE.sub(_replace_value, text)
    text = _HEADER_RE.sub(_replace_value, text)
    return _SHA256_RE.sub(f"sha256={REDACTED}", text)


def redact_sdk_text(text: str) -> str:
    """`redact`, plus Secrets Manager payloads cut to the end of their line: for the SDKs' own
    records (never our JSON lines, which must stay valid JSON and never carry a payload)."""
    return _SECRET_PAYLOAD_RE.sub(rf"\g<key> {REDACTED}", redact(text))


class RedactingFormatter(LambdaPowertoolsFormatter):
    """The Powertools JSON formatter, redacting the final line and making it valid UTF-8 (Decision 17)."""

    def serialize(self, log: LogRecord) -> str:
        return redact(valid_text(super().serialize(log)))


class RedactingFilter(logging.Filter):
    """Redacts a stdlib record in place: message (with its args), exception text and stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: logging itself reports it later
            return True
        record.msg = redact_sdk_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_sdk_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_sdk_text(record.stack_info)
        return True


def _quiet_sdk_loggers() -> None:
    """Keep the SDKs' loggers at INFO (or `SDK_LOG_LEVEL`), whatever the root logger's level."""
    level = (os.environ.get(SDK_LOG_LEVEL_ENV) or DEFAULT_SDK_LOG_LEVEL).upper()
    if not isinstance(logging.getLevelName(level), int):
        level = DEFAULT_SDK_LOG_LEVEL
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(level)


def _attach_redacting_filter() -> None:
    redacting_filter = RedactingFilter()
    targets: list[logging.Filterer] = [logging.getLogger(name) for name in THIRD_PARTY_LOGGERS]
    targets.extend(logging.getLogger().handlers)
    for target in targets:
        if not any(isinstance(existing, RedactingFilter) for existing in target.filters):
            target.addFilter(redacting_filter)


logger = Logger(logger_formatter=RedactingFormatter())
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or METRICS_NAMESPACE)
_quiet_sdk_loggers()
_attach_redacting_filter()


# On every log line about an order item, in all three functions: one Logs Insights query
# (`filter itemId = "..."`, printed by `replay trace`) follows an item end to end.
ITEM_LOG_KEYS = ("itemId", "orderId")


@contextlib.contextmanager
def item_log_scope(item_id: str | None = None, order_id: str | None = None) -> Iterator[None]:
    """`itemId` / `orderId` (those given) on every log line written inside the block, and only there."""
    keys = {name: value for name, value in zip(ITEM_LOG_KEYS, (item_id, order_id), strict=True) if value}
    logger.append_keys(**keys)
    try:
        yield
    finally:
        logger.remove_keys(list(keys))


def log_metrics[R](handler: Callable[..., R]) -> Callable[..., R]:
    """`@metrics.log_metrics` without its "No metrics to publish" warning: an empty set is normal here (a
    duplicate counts nothing), so it is cleared rather than flushed."""

    @functools.wraps(handler)
    def flushing(event: Any, context: Any) -> R:
        try:
            return handler(event, context)
        finally:
            if metrics.metric_set:
                metrics.flush_metrics()
            else:
                metrics.clear_metrics()  # dimensions or metadata added without a metric

    return flushing


def metric_dimensions(source: Metrics | None = None) -> dict[str, str]:
    """The dimensions every metric of `source` carries; a `single_metric` adds one to them."""
    source = metrics if source is None else source
    dimensions = dict(source.default_dimensions)
    if source.service:
        dimensions.setdefault("service", str(source.service))
    return dimensions


# The Tracer is made on first use: `Tracer()` imports the X-Ray SDK (~150 ms of cold start), which the
# webhook never needs. With tracing disabled (Powertools' own rule: POWERTOOLS_TRACE_DISABLED, outside
# Lambda, sam local) it is a `DisabledTracer`: the same decorators, without the SDK, recording nothing.
_TRACER_LOG = logging.getLogger("aws_lambda_powertools.tracing.tracer")


def _logging_errors(function: Callable[..., Any], message: str) -> Callable[..., Any]:
    @functools.wraps(function)
    def decorate(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except Exception:
            _TRACER_LOG.exception(message)
            raise

    return decorate


class DisabledTracer:
    """A disabled Powertools `Tracer` without the X-Ray SDK: errors logged as it logs them, nothing else."""

    disabled = True

    def capture_lambda_handler(
        self,
        lambda_handler: Callable[..., Any] | None = None,
        capture_response: bool | None = None,
        capture_error: bool | None = None,
    ) -> Callable[..., Any]:
        if lambda_handler is None:
            return self.capture_lambda_handler
        return _logging_errors(lambda_handler, f"Exception received from {lambda_handler.__name__}")

    def capture_method(
        self,
        method: Callable[..., Any] | None = None,
        capture_response: bool | None = None,
        capture_error: bool | None = None,
    ) -> Callable[..., Any]:
        if method is None:
            return self.capture_method
        if not callable(method) or inspect.iscoroutinefunction(method) or inspect.isgeneratorfunction(method):
            return method  # nothing to record: called as it is
        return _logging_errors(method, f"Exception received from '{method.__name__}' method")

    def patch(self, modules: Any = None) -> None:
        """Nothing is patched (a disabled `Tracer` patches nothing either)."""


_tracer: Tracer | DisabledTracer | None = None
_tracer_lock = threading.Lock()


def __getattr__(name: str) -> Tracer | DisabledTracer:
    if name != "tracer":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    global _tracer
    with _tracer_lock:
        if _tracer is None:
            _tracer = DisabledTracer() if Tracer._is_tracer_disabled() else Tracer()  # Tracer()'s own rule
        return _tracer
