"""Where the serviceability decision comes from: the coverage rules in an SSM parameter (the
default) or an S3 object, read through Powertools parameters (its cache and `max_age`), or the
provider's own HTTPS API (`HttpsHookChecker`); `build_serviceability_checker` picks one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import httpx
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.base import BaseProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from offergrid_integration import aws
from offergrid_integration.config import ConfigurationError
from offergrid_integration.offergrid.models import OrderItem
from offergrid_integration.orders.serviceability import (
    DEFAULT_RULES_MAX_AGE,
    CoverageRulesChecker,
    RulesSource,
    ServiceabilityChecker,
    ServiceabilityCode,
    ServiceabilityDecision,
    ServiceabilityUnavailable,
)
from offergrid_integration.s3 import S3ReadError, parse_s3_uri, read_s3_object

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_ssm import SSMClient


MAX_RULES_BYTES: Final = 5 * 1024 * 1024
DEFAULT_HOOK_TIMEOUT: Final = 5.0


class _ProviderRulesSource:
    """A rules document read through a Powertools parameters provider (its cache and `max_age`)."""

    def __init__(self, provider: BaseProvider, name: str, description: str, **get_options: Any) -> None:
        self._provider = provider
        self._name = name
        self._get_options = get_options
        self.description = description

    def load(self, *, max_age: int) -> str | bytes:
        try:
            document = self._provider.get(self._name, max_age=max_age, **self._get_options)
        except GetParameterError as exc:
            raise ServiceabilityUnavailable(
                f"cannot read coverage rules from {self.description}: {_read_error_reason(exc)}"
            ) from None
        if not isinstance(document, str | bytes):
            raise ServiceabilityUnavailable(f"coverage rules in {self.description} are not a document")
        return document

    def keep(self, document: str | bytes, *, max_age: int) -> None:
        self._provider.add_to_cache(
            key=self._provider._build_cache_key(name=self._name), value=document, max_age=max_age
        )


def _read_error_reason(error: GetParameterError) -> str:
    """The AWS error code (or exception class) behind a provider's error; never a value."""
    cause = error.__context__
    if isinstance(cause, S3ReadError):
        return cause.problem
    response = getattr(cause, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", "ClientError"))
    return type(cause).__name__ if cause is not None else "unreadable"


class SsmRulesSource(_ProviderRulesSource):
    """The rules document in an SSM parameter (String or SecureString; standard tier holds 4 KB,
    advanced 8 KB: use S3 beyond that), read through Powertools' `SSMProvider`."""

    def __init__(self, name: str, *, client: SSMClient | None = None) -> None:
        """`client`: the SSM client (default: the container's, `aws.clients().ssm`)."""
        provider = parameters.SSMProvider(boto3_client=client if client is not None else aws.clients().ssm)
        super().__init__(provider, name, f"SSM parameter {name}", decrypt=True)
        self.name = name


class S3DocumentProvider(BaseProvider):
    """A Powertools parameters provider for S3 objects (`get("s3://bucket/key")`), size-bounded."""

    def __init__(self, client: S3Client, *, max_bytes: int | None = None) -> None:
        """`max_bytes`: the largest object read (default: `MAX_RULES_BYTES`)."""
        super().__init__(client=client)  # type: ignore[no-untyped-call]  # Powertools leaves it untyped
        self._client = client
        self._max_bytes = max_bytes

    def _get(self, name: str, **sdk_options: Any) -> bytes:
        max_bytes = MAX_RULES_BYTES if self._max_bytes is None else self._max_bytes
        return read_s3_object(name, self._client, max_bytes=max_bytes)

    def _get_multiple(self, path: str, **sdk_options: Any) -> dict[str, str]:
        """Required by Powertools' `BaseProvider`; the rules are one document, read with `get`."""
        raise NotImplementedError("S3 documents are read one at a time")


class S3RulesSource(_ProviderRulesSource):
    """The rules document in S3 (`s3://bucket/key`), for sets too large for a parameter."""

    def __init__(self, uri: str, *, client: S3Client | None = None) -> None:
        """`client`: the S3 client (default: the container's, `aws.clients().s3`)."""
        self.bucket, self.key = parse_s3_uri(uri)
        description = f"s3://{self.bucket}/{self.key}"
        provider = S3DocumentProvider(client if client is not None else aws.clients().s3)
        super().__init__(provider, description, description)


class HttpsHookChecker:
    """The provider's own serviceability API (docs/configuration.md, "Coverage rules"): any answer
    but the documented one is `ServiceabilityUnavailable`, so the order is retried, never rejected."""

    def __init__(
        self, url: str, *, timeout: float = DEFAULT_HOOK_TIMEOUT, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.url = url
        self._http = httpx.Client(transport=transport, timeout=timeout, follow_redirects=False)

    def check(self, item: OrderItem) -> ServiceabilityDecision:
        address = item.service_address.to_wire() if item.service_address else None
        payload = {
            "itemId": item.id,
            "orderId": item.order_id,
            "offerId": item.offer_id,
            "serviceAddress": address,
        }
        try:
            response = self._http.post(self.url, json=payload)
        except httpx.HTTPError as exc:
            raise ServiceabilityUnavailable(
                f"serviceability hook unreachable: {type(exc).__name__}"
            ) from None
        if response.status_code != 200:
            raise ServiceabilityUnavailable(f"serviceability hook answered {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise ServiceabilityUnavailable(
                "serviceability hook answered something other than JSON"
            ) from None
        if not isinstance(body, dict) or not isinstance(body.get("serviceable"), bool):
            raise ServiceabilityUnavailable("serviceability hook answer has no boolean 'serviceable'")
        reason = body.get("reason")
        serviceable: bool = body["serviceable"]
        if not isinstance(reason, str) or not reason.strip():
            reason = "Serviceable." if serviceable else "The service address is outside our coverage area."
        return ServiceabilityDecision(serviceable, ServiceabilityCode.HOOK, reason.strip()[:500])

    def close(self) -> None:
        self._http.close()


def build_serviceability_checker(
    *,
    rules_parameter: str | None,
    rules_s3_uri: str | None,
    hook_url: str | None,
    max_age_seconds: float = DEFAULT_RULES_MAX_AGE,
    ssm_client: SSMClient | None = None,
    s3_client: S3Client | None = None,
) -> ServiceabilityChecker:
    """The provider's hook if configured, else rules from S3 if configured, else from SSM (clients:
    the container's by default)."""
    if hook_url:
        return HttpsHookChecker(hook_url)
    source: RulesSource
    if rules_s3_uri:
        source = S3RulesSource(rules_s3_uri, client=s3_client)
    elif rules_parameter:
        source = SsmRulesSource(rules_parameter, client=ssm_client)
    else:
        raise ConfigurationError.from_problems(
            {
                "SERVICEABILITY_RULES_PARAMETER": "one of SERVICEABILITY_RULES_PARAMETER, "
                "SERVICEABILITY_RULES_S3_URI or SERVICEABILITY_HOOK_URL is required"
            }
        )
    return CoverageRulesChecker(source, max_age_seconds=max_age_seconds)
