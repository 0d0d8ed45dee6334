"""The webhook ingress's environment, checked without pydantic (about 90 ms of cold-start CPU saved).

Same contract as `config.load_settings`: one `ConfigurationError` names every bad variable, never its
value.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, Final, Self

from offergrid_integration.checks import (
    MAX_WEBHOOK_BODY_BYTES,
    ConfigurationError,
    bounded_int,
    endpoint_url,
    non_blank,
    queue_url,
)
from offergrid_integration.webhooks.results import DEFAULT_TOLERANCE_SECONDS, StaleMode

_REQUIRED: Final = "required but not set"
# A day: a delivery older than the dedup key's lifetime (IDEMPOTENCY_EXPIRY_SECONDS' default) must be
# refusable (docs/decisions.md#20).
MAX_STALE_TOLERANCE_SECONDS: Final = 86_400


def _stale_mode(value: str) -> StaleMode:
    try:
        return StaleMode(value)
    except ValueError:
        raise ValueError(f"must be one of {', '.join(mode.value for mode in StaleMode)}") from None


@dataclass(frozen=True, slots=True)
class _Variable:
    name: str  # the environment variable
    check: Callable[[str], Any]  # the value, or ValueError naming the rule
    default: Any = None
    required: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookIngressSettings:
    """The webhook ingress verifies and enqueues; it never calls Offergrid, so needs no API key."""

    secrets_cache_seconds: int = 300
    # Checked only, so a bad value fails the init naming the variable; never passed on: boto3 reads
    # the variable itself (offergrid_integration.aws). Set locally (moto); empty in AWS.
    aws_endpoint_url: str | None = None
    offergrid_webhook_secret: str
    orders_queue_url: str
    webhook_max_body_bytes: int = MAX_WEBHOOK_BODY_BYTES
    # Where a verified body too large for SQS is kept (docs/decisions.md#17). Unset: such a body is
    # refused with 413 (the template always sets it).
    claim_check_bucket: str | None = None
    # Where every verified delivery is kept as received (prefixes archive/ and checks/ of this bucket,
    # `archive`). Unset: none is kept (the template always sets it).
    delivery_archive_bucket: str | None = None
    # docs/decisions.md#20: what a delivery whose signed timestamp is older than the tolerance gets.
    stale_delivery_mode: StaleMode = StaleMode.COUNT
    stale_delivery_tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS

    # attribute -> how its variable is read, in declaration order (AwsSettings' fields first)
    VARIABLES: ClassVar[Mapping[str, _Variable]] = {
        "secrets_cache_seconds": _Variable("SECRETS_CACHE_SECONDS", partial(bounded_int, ge=0, le=3600), 300),
        "aws_endpoint_url": _Variable("AWS_ENDPOINT_URL", endpoint_url),
        "offergrid_webhook_secret": _Variable("OFFERGRID_WEBHOOK_SECRET", non_blank, required=True),
        "orders_queue_url": _Variable("ORDERS_QUEUE_URL", queue_url, required=True),
        "webhook_max_body_bytes": _Variable(
            "WEBHOOK_MAX_BODY_BYTES",
            partial(bounded_int, ge=1, le=MAX_WEBHOOK_BODY_BYTES),
            MAX_WEBHOOK_BODY_BYTES,
        ),
        "claim_check_bucket": _Variable("CLAIM_CHECK_BUCKET", non_blank),
        "delivery_archive_bucket": _Variable("DELIVERY_ARCHIVE_BUCKET", non_blank),
        "stale_delivery_mode": _Variable("STALE_DELIVERY_MODE", _stale_mode, StaleMode.COUNT),
        "stale_delivery_tolerance_seconds": _Variable(
            "STALE_DELIVERY_TOLERANCE_SECONDS",
            partial(bounded_int, ge=1, le=MAX_STALE_TOLERANCE_SECONDS),
            DEFAULT_TOLERANCE_SECONDS,
        ),
    }

    @classmethod
    def env_var_names(cls) -> list[str]:
        """The environment variables read, in declaration order."""
        return [variable.name for variable in cls.VARIABLES.values()]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Self:
        """The settings from `environ` (default `os.environ`); `ConfigurationError` if bad."""
        if environ is None:
            environ = os.environ
        values: dict[str, Any] = {}
        problems: dict[str, str] = {}
        for attribute, variable in cls.VARIABLES.items():
            raw = environ.get(variable.name)
            if raw is None or not raw.strip():
                if variable.required:
                    problems[variable.name] = _REQUIRED
                values[attribute] = variable.default
                continue
            try:
                values[attribute] = variable.check(raw.strip())
            except ValueError as exc:
                problems[variable.name] = str(exc)
        if problems:
            raise ConfigurationError.from_problems(problems) from None  # never a chained value
        return cls(**values)
