"""Each function's environment as a pydantic model, validated at cold start: `load_settings` raises one
`ConfigurationError` naming every missing or bad variable and why, never its value, so a bad environment
fails the init loudly. The rules are `checks.py`'s, which the webhook (no pydantic) uses directly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from offergrid_integration.checks import ConfigurationError as ConfigurationError
from offergrid_integration.checks import base_url as base_url
from offergrid_integration.checks import endpoint_url, non_blank, queue_url
from offergrid_integration.checks import http_url as http_url
from offergrid_integration.s3 import parse_s3_uri

DEFAULT_OFFERGRID_API_URL = "https://api.offergrid.io"


def _s3_uri(value: str) -> str:
    parse_s3_uri(value)  # ValueError names the rule, never the value
    return value.strip()


NonBlankStr = Annotated[str, AfterValidator(non_blank)]
# A Secrets Manager secret name or ARN (the id, not the value).
SecretId = NonBlankStr
HttpsUrl = Annotated[str, AfterValidator(base_url)]
EndpointUrl = Annotated[str, AfterValidator(endpoint_url)]
QueueUrl = Annotated[str, AfterValidator(queue_url)]
S3Uri = Annotated[str, AfterValidator(_s3_uri)]
CacheSeconds = Annotated[int, Field(ge=0, le=3600)]


class _Settings(BaseModel):
    # defer_build: a model's validator is built when first used, not at import, so a function builds
    # its own settings model only (not every base and sibling of it) during its cold start.
    model_config = ConfigDict(
        defer_build=True,
        frozen=True,
        extra="forbid",
        validate_by_alias=True,
        validate_by_name=True,
        hide_input_in_errors=True,
    )


class AwsSettings(_Settings):
    """What every function reading secrets needs."""

    secrets_cache_seconds: CacheSeconds = Field(default=300, alias="SECRETS_CACHE_SECONDS")
    # Checked only, so a bad value fails the init naming the variable; never passed on: boto3 reads
    # the variable itself (offergrid_integration.aws). Set locally (moto); empty in AWS.
    aws_endpoint_url: EndpointUrl | None = Field(default=None, alias="AWS_ENDPOINT_URL")


class CommonSettings(AwsSettings):
    """What every function calling the Offergrid API needs."""

    offergrid_api_url: HttpsUrl = Field(default=DEFAULT_OFFERGRID_API_URL, alias="OFFERGRID_API_URL")
    offergrid_api_key_secret: SecretId = Field(alias="OFFERGRID_API_KEY_SECRET")
    # Absent: each instance rate-limits itself in process (local runs, tests).
    rate_limit_table: NonBlankStr | None = Field(default=None, alias="RATE_LIMIT_TABLE")
    offergrid_timeout_seconds: float = Field(
        default=10.0, gt=0, le=30, allow_inf_nan=False, alias="OFFERGRID_TIMEOUT_SECONDS"
    )
    # Orders first in the budget: the share of each window the background lane (sync, sweep,
    # reconciliation) leaves to the order processor (ratelimit.py; template OrderReservePercent).
    order_reserve_percent: int = Field(default=40, ge=0, le=90, alias="ORDER_RESERVE_PERCENT")


def env_var_names(model: type[BaseModel]) -> list[str]:
    """The environment variables `model` reads, in declaration order."""
    return [field.alias or name.upper() for name, field in model.model_fields.items()]


def load_settings[T: BaseModel](model: type[T], environ: Mapping[str, str] | None = None) -> T:
    """Validate the environment (default `os.environ`) into `model`; `ConfigurationError` if bad."""
    environ = os.environ if environ is None else environ
    data = {
        name: value.strip() for name in env_var_names(model) if (value := environ.get(name) or "").strip()
    }
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # `from None`: a chained ValidationError would print the input values.
        raise ConfigurationError.from_problems(_problems(exc)) from None


def _problems(exc: ValidationError) -> dict[str, str]:
    problems: dict[str, str] = {}
    for error in exc.errors(include_url=False, include_input=False, include_context=True):
        name = str(error["loc"][0]) if error["loc"] else "environment"
        if error["type"] == "missing":
            reason = "required but not set"
        elif error["type"] == "value_error":
            reason = str(error.get("ctx", {}).get("error", error["msg"]))
        else:
            reason = error["msg"]
        problems[name] = f"{problems[name]}; {reason}" if name in problems else reason
    return problems
