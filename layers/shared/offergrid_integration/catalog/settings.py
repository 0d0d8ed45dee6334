"""The offer sync function's environment, validated at cold start (see `config.load_settings`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from offergrid_integration.catalog.guard import DEFAULT_REMOVAL_MINIMUM, DEFAULT_REMOVAL_PERCENT, RemovalGuard
from offergrid_integration.catalog.plan import MissingOfferPolicy
from offergrid_integration.catalog.sources import CatalogFormat
from offergrid_integration.config import CommonSettings, NonBlankStr, QueueUrl, S3Uri, SecretId, http_url
from offergrid_integration.s3 import parse_s3_uri


def _catalog_uri(value: str) -> str:
    value = value.strip()
    if value.startswith("s3://"):
        parse_s3_uri(value)
        return value
    try:
        return http_url(value, allow_query=True)  # a CRM export URL may carry a token in its query
    except ValueError as error:
        raise ValueError(f"must be s3://bucket/key or an https:// URL: {error}") from None


CatalogUri = Annotated[str, AfterValidator(_catalog_uri)]


class SyncSettings(CommonSettings):
    """`functions/offer_sync`: the catalog, what to do with missing offers, state, and the sweep."""

    catalog_source_uri: CatalogUri = Field(alias="CATALOG_SOURCE_URI")
    catalog_format: CatalogFormat = Field(default=CatalogFormat.AUTO, alias="CATALOG_FORMAT")
    # An s3:// JSON mapping document; absent: the default mapping (docs/decisions.md#8).
    catalog_mapping: S3Uri | None = Field(default=None, alias="CATALOG_MAPPING")
    # For an https:// catalog: the secret holding the CRM's API key, and the header it goes in.
    catalog_api_key_secret: SecretId | None = Field(default=None, alias="CATALOG_API_KEY_SECRET")
    catalog_api_key_header: NonBlankStr = Field(default="x-api-key", alias="CATALOG_API_KEY_HEADER")
    missing_offer_policy: MissingOfferPolicy = Field(
        default=MissingOfferPolicy.INACTIVE, alias="MISSING_OFFER_POLICY"
    )
    sync_state_table: NonBlankStr = Field(alias="SYNC_STATE_TABLE")
    orders_queue_url: QueueUrl = Field(alias="ORDERS_QUEUE_URL")
    # Absent: every pending item found is queued (the processor's idempotency still decides it once).
    orders_table: NonBlankStr | None = Field(default=None, alias="ORDERS_TABLE")
    sync_min_time_left_seconds: float = Field(
        default=30.0, ge=5, le=600, allow_inf_nan=False, alias="SYNC_MIN_TIME_LEFT_SECONDS"
    )
    sync_max_writes_per_run: int | None = Field(default=None, ge=1, alias="SYNC_MAX_WRITES_PER_RUN")
    # The removal guard (docs/decisions.md#13): one run removes at most max(minimum, percent % of the
    # team's live offers); more are refused, reported and alarmed.
    sync_removal_guard_percent: float = Field(
        default=DEFAULT_REMOVAL_PERCENT, ge=0, le=100, allow_inf_nan=False, alias="SYNC_REMOVAL_GUARD_PERCENT"
    )
    sync_removal_guard_minimum: int = Field(
        default=DEFAULT_REMOVAL_MINIMUM, ge=0, alias="SYNC_REMOVAL_GUARD_MINIMUM"
    )
    # Items younger than this are left to their webhook (likely still on its way).
    sweep_min_age_seconds: int = Field(default=120, ge=0, le=86_400, alias="SWEEP_MIN_AGE_SECONDS")

    @property
    def removal_guard(self) -> RemovalGuard:
        return RemovalGuard(percent=self.sync_removal_guard_percent, minimum=self.sync_removal_guard_minimum)

    # The reconciliation (orders/reconcile.py), run when the schedule input says `"reconcile": true`.
    # Absent: the run reports that it cannot reconcile (the work orders are needed).
    work_orders_table: NonBlankStr | None = Field(default=None, alias="WORK_ORDERS_TABLE")
    # How far back: items created and work orders opened earlier are left alone.
    reconcile_lookback_hours: int = Field(default=72, ge=1, le=24 * 90, alias="RECONCILE_LOOKBACK_HOURS")
    # How often its schedule runs it, and the share of the hourly budget (10,000) its runs may use.
    reconcile_interval_minutes: int = Field(default=60, ge=5, le=1440, alias="RECONCILE_INTERVAL_MINUTES")
    reconcile_budget_share: float = Field(
        default=0.1, gt=0, le=0.5, allow_inf_nan=False, alias="RECONCILE_BUDGET_SHARE"
    )
