"""The offer sync of one container, built from `SyncSettings`; the Offergrid client is the caller's."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING

from offergrid_integration import aws
from offergrid_integration.catalog.mapping import CatalogMapping, MappingError, default_mapping, load_mapping
from offergrid_integration.catalog.report import MetricsSink, SyncReport
from offergrid_integration.catalog.service import (
    OfferSyncClient,
    SyncDependencies,
    SyncOptions,
    run_offer_sync,
)
from offergrid_integration.catalog.settings import SyncSettings
from offergrid_integration.catalog.sources import (
    CatalogReadError,
    CatalogSource,
    open_catalog_source,
    read_s3_object,
)
from offergrid_integration.catalog.state import DynamoDBSyncState, SyncStateStore
from offergrid_integration.clock import SYSTEM_CLOCK, Clock
from offergrid_integration.config import ConfigurationError
from offergrid_integration.secrets import Secret, parse_api_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class OfferSync:
    def __init__(
        self,
        settings: SyncSettings,
        *,
        clock: Clock = SYSTEM_CLOCK,
        state: SyncStateStore | None = None,
        s3_client: S3Client | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.state = state or DynamoDBSyncState(settings.sync_state_table, clock=clock)
        self._s3 = s3_client

    @property
    def s3(self) -> S3Client:
        return self._s3 if self._s3 is not None else aws.clients().s3

    @cached_property
    def source(self) -> CatalogSource:
        settings = self.settings
        uri = settings.catalog_source_uri
        if uri.startswith("s3://"):
            return open_catalog_source(uri, settings.catalog_format, s3_client=self.s3)
        key: Callable[[], str] | None = None
        if settings.catalog_api_key_secret:
            key = Secret(
                settings.catalog_api_key_secret, parse_api_key, max_age_seconds=settings.secrets_cache_seconds
            )
        return open_catalog_source(
            uri, settings.catalog_format, api_key=key, api_key_header=settings.catalog_api_key_header
        )

    def load_mapping(self) -> CatalogMapping:
        """The configured mapping, read on every run (a new document needs no deploy); the default one
        once per process."""
        uri = self.settings.catalog_mapping
        if uri is None:
            return default_mapping()
        try:
            return load_mapping(read_s3_object(uri, self.s3))
        except (CatalogReadError, MappingError) as error:
            raise ConfigurationError(
                f"CATALOG_MAPPING: {error}", problems={"CATALOG_MAPPING": str(error)}
            ) from None

    def options(self, dry_run: bool, skus: Sequence[str] | None) -> SyncOptions:
        return SyncOptions(
            dry_run=dry_run,
            skus=skus,
            missing_policy=self.settings.missing_offer_policy,
            min_time_left=self.settings.sync_min_time_left_seconds,
            max_writes=self.settings.sync_max_writes_per_run,
            removal_guard=self.settings.removal_guard,
        )

    def run(
        self,
        client: OfferSyncClient,
        *,
        dry_run: bool,
        skus: Sequence[str] | None,
        remaining_time: Callable[[], float],
        metrics: MetricsSink | None = None,
    ) -> SyncReport:
        deps = SyncDependencies(
            source=self.source,
            mapping=self.load_mapping(),
            client=client,
            state=self.state,
            clock=self.clock,
            metrics=metrics,
        )
        return run_offer_sync(deps, self.options(dry_run, skus), remaining_time=remaining_time)
