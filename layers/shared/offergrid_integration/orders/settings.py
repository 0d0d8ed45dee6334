"""The order processor's environment, validated at cold start (`load_settings(ProcessorSettings)`).

| Variable | Required | Meaning |
|---|---|---|
| `OFFERGRID_API_KEY_SECRET` | yes | Secrets Manager id of the API key (common) |
| `OFFERGRID_API_URL`, `RATE_LIMIT_TABLE`, `OFFERGRID_TIMEOUT_SECONDS`, | no | common settings |
| `SECRETS_CACHE_SECONDS`, `AWS_ENDPOINT_URL` | | |
| `ORDERS_TABLE` | yes | order records (pk `itemId`, GSI `byOrderId`) |
| `WORK_ORDERS_TABLE` | yes | work orders (pk `workOrderId`) |
| `IDEMPOTENCY_TABLE` | yes | Powertools idempotency (pk `id`, TTL `expiration`) |
| `EVENT_BUS_NAME` | yes | the provider's bus: work-order events go there |
| `SERVICEABILITY_RULES_PARAMETER` | one of 3 | SSM parameter holding the coverage rules (default) |
| `SERVICEABILITY_RULES_S3_URI` | | `s3://bucket/key` of a larger rules document (wins over the parameter) |
| `SERVICEABILITY_HOOK_URL` | | https URL of the provider's serviceability API (wins over both) |
| `SERVICEABILITY_CACHE_SECONDS` | no | how long rules are cached (default 300) |
| `CUSTOMER_CONTACT_HOURS` | no | promised contact delay in the acceptance notes (default 24) |
| `IDEMPOTENCY_EXPIRY_SECONDS` | no | how long a dedup key is remembered (default 86400) |
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from offergrid_integration.config import CacheSeconds, CommonSettings, HttpsUrl, NonBlankStr, S3Uri

__all__ = ["ProcessorSettings", "S3Uri"]


class ProcessorSettings(CommonSettings):
    orders_table: NonBlankStr = Field(alias="ORDERS_TABLE")
    work_orders_table: NonBlankStr = Field(alias="WORK_ORDERS_TABLE")
    idempotency_table: NonBlankStr = Field(alias="IDEMPOTENCY_TABLE")
    event_bus_name: NonBlankStr = Field(alias="EVENT_BUS_NAME")
    serviceability_rules_parameter: NonBlankStr | None = Field(
        default=None, alias="SERVICEABILITY_RULES_PARAMETER"
    )
    serviceability_rules_s3_uri: S3Uri | None = Field(default=None, alias="SERVICEABILITY_RULES_S3_URI")
    serviceability_hook_url: HttpsUrl | None = Field(default=None, alias="SERVICEABILITY_HOOK_URL")
    serviceability_cache_seconds: CacheSeconds = Field(default=300, alias="SERVICEABILITY_CACHE_SECONDS")
    customer_contact_hours: int = Field(default=24, ge=1, le=24 * 14, alias="CUSTOMER_CONTACT_HOURS")
    idempotency_expiry_seconds: int = Field(
        default=86_400, ge=60, le=30 * 86_400, alias="IDEMPOTENCY_EXPIRY_SECONDS"
    )

    @model_validator(mode="after")
    def _one_serviceability_source(self) -> Self:
        if not (
            self.serviceability_rules_parameter
            or self.serviceability_rules_s3_uri
            or self.serviceability_hook_url
        ):
            raise ValueError(
                "set SERVICEABILITY_RULES_PARAMETER, SERVICEABILITY_RULES_S3_URI or SERVICEABILITY_HOOK_URL"
            )
        return self
